//! SORT and UID SORT (RFC 5256 §3), with DISPLAYFROM / DISPLAYTO (RFC 5957), ESORT and
//! PARTIAL results (RFC 5267 §3.2, §4.4; RFC 9394).

use std::cmp::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::cmd::search::esearch_response;
use crate::message::search::sent_date_utc;
use crate::message::sort::{base_subject, sort_address};
use crate::parse::{SearchKey, SortArgs, SortKey};
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
    /// The messages matching `key` as (seq, uid, modseq), in the order of `keys`.
    pub(crate) async fn sorted_hits(
        &mut self,
        keys: &[SortKey],
        key: &SearchKey,
    ) -> mssante_store::Result<Vec<(u32, u32, u64)>> {
        let hits = self.matching(key).await?;
        let mut rows: Vec<(Vec<SortValue>, (u32, u32, u64))> = Vec::with_capacity(hits.len());
        self.for_each_hit(&hits, needs_bytes(keys), |m| {
            let values = keys
                .iter()
                .map(|k| value(&k.key, m.raw, m.info.internaldate, m.info.size))
                .collect();
            rows.push((values, (m.seq, m.uid, m.modseq)));
        })
        .await?;
        rows.sort_by(|a, b| {
            for (i, k) in keys.iter().enumerate() {
                let ord = a.0[i].cmp(&b.0[i]);
                let ord = if k.reverse { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            // RFC 5256 §3: ties are broken by sequence number.
            a.1.0.cmp(&b.1.0)
        });
        Ok(rows.into_iter().map(|r| r.1).collect())
    }

    pub(crate) async fn sort(
        &mut self,
        tag: &str,
        SortArgs {
            uid,
            returns,
            keys,
            charset,
            key,
        }: SortArgs,
    ) {
        let charset = charset.as_str();
        if !matches!(charset, "UTF-8" | "US-ASCII") {
            return self.tagged(
                tag,
                "NO",
                &format!("[BADCHARSET (UTF-8 US-ASCII)] Charset {charset} not supported"),
            );
        }
        let hits = match self.sorted_hits(&keys, &key).await {
            Ok(h) => h,
            Err(e) => return self.store_failed(tag, e),
        };
        let sorted: Vec<(u32, u64)> = hits
            .iter()
            .map(|h| (if uid { h.1 } else { h.0 }, h.2))
            .collect();
        match returns {
            // RFC 5267 §3.2: ESORT answers in an ESEARCH response, results in sort order.
            Some(returns) => {
                let line = esearch_response(tag, uid, &returns, &sorted, false);
                self.untagged(line);
                if returns.update {
                    let uids = hits.iter().map(|h| h.1).collect();
                    self.keep_context(tag, uid, key, Some(keys), uids);
                }
            }
            None => {
                let list: String = sorted.iter().map(|r| format!(" {}", r.0)).collect();
                self.untagged(format!("SORT{list}"));
            }
        }
        self.tagged(tag, "OK", "SORT completed");
    }
}
