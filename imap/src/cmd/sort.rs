//! SORT and UID SORT (RFC 5256 §3), with DISPLAYFROM / DISPLAYTO (RFC 5957).

use std::cmp::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::search::sent_date_utc;
use crate::message::sort::{base_subject, sort_address};
use crate::parse::{SortArgs, SortKey};
use crate::session::Session;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Number(i64),
    Text(String),
}

fn needs_bytes(keys: &[SortKey]) -> bool {
    keys.iter()
        .any(|k| !matches!(k.key.as_str(), "ARRIVAL" | "SIZE"))
}

fn value(key: &str, raw: &[u8], internaldate: i64, size: u32) -> SortValue {
    match key {
        "ARRIVAL" => SortValue::Number(internaldate),
        "SIZE" => SortValue::Number(size as i64),
        // RFC 5256 §3: DATE is the Date header, INTERNALDATE when it is missing or invalid.
        "DATE" => SortValue::Number(sent_date_utc(raw).unwrap_or(internaldate)),
        "SUBJECT" => SortValue::Text(base_subject(raw)),
        other => SortValue::Text(sort_address(raw, &other.to_ascii_lowercase())),
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn sort(
        &mut self,
        tag: &str,
        SortArgs {
            uid,
            keys,
            charset,
            key,
        }: SortArgs,
    ) {
        let (keys, charset) = (&keys[..], charset.as_str());
        if !matches!(charset, "UTF-8" | "US-ASCII") {
            return self.tagged(
                tag,
                "NO",
                &format!("[BADCHARSET (UTF-8 US-ASCII)] Charset {charset} not supported"),
            );
        }
        let hits = match self.matching(&key).await {
            Ok(h) => h,
            Err(e) => return self.store_failed(tag, e),
        };
        let folder_id = self.selected.as_ref().expect("selected").folder.id;
        let mut rows: Vec<(Vec<SortValue>, u32, u32)> = Vec::with_capacity(hits.len());
        for chunk in hits.chunks(256) {
            let uids: Vec<u32> = chunk.iter().map(|h| h.1).collect();
            let infos = match self.ctx.store.message_infos(folder_id, &uids).await {
                Ok(i) => i,
                Err(e) => return self.store_failed(tag, e),
            };
            for (&(seq, uid, _), info) in chunk.iter().zip(infos.iter()) {
                let raw = match needs_bytes(keys) {
                    true => match self.ctx.store.read_blob(&info.blob_hash).await {
                        Ok(r) => r,
                        Err(e) => return self.store_failed(tag, e),
                    },
                    false => Vec::new(),
                };
                let values = keys
                    .iter()
                    .map(|k| value(&k.key, &raw, info.internaldate, info.size))
                    .collect();
                rows.push((values, seq, uid));
            }
        }
        rows.sort_by(|a, b| {
            for (i, k) in keys.iter().enumerate() {
                let ord = a.0[i].cmp(&b.0[i]);
                let ord = if k.reverse { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            // RFC 5256 §3: ties are broken by sequence number.
            a.1.cmp(&b.1)
        });
        let list: String = rows
            .iter()
            .map(|r| format!(" {}", if uid { r.2 } else { r.1 }))
            .collect();
        self.untagged(format!("SORT{list}"));
        self.tagged(tag, "OK", "SORT completed");
    }
}
