//! THREAD=ORDEREDSUBJECT (RFC 5256 §2.1, §4): messages grouped by base subject; the earliest
//! of a group is the parent of the others. REFERENCES threading is not offered yet.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::search::sent_date_utc;
use crate::message::sort::base_subject;
use crate::parse::ThreadArgs;
use crate::session::Session;

/// One message as threading sees it.
struct Item {
    subject: String,
    date: i64,
    seq: u32,
    id: u32,
}

/// RFC 5256 §4 thread list of ORDEREDSUBJECT groups, each sorted by date then number:
/// `(a)`, `(a b)`, `(a (b)(c))`.
fn format_groups(groups: &[Vec<&Item>]) -> String {
    let mut out = String::new();
    for group in groups {
        out.push('(');
        out.push_str(&group[0].id.to_string());
        match &group[1..] {
            [] => {}
            [only] => out.push_str(&format!(" {}", only.id)),
            children => {
                out.push(' ');
                for c in children {
                    out.push_str(&format!("({})", c.id));
                }
            }
        }
        out.push(')');
    }
    out
}

fn ordered_subject(mut items: Vec<Item>) -> String {
    // §2.1: sort by base subject, then sent date (sequence number breaks ties).
    items.sort_by(|a, b| (&a.subject, a.date, a.seq).cmp(&(&b.subject, b.date, b.seq)));
    let mut groups: Vec<Vec<&Item>> = Vec::new();
    for item in &items {
        match groups.last_mut() {
            Some(g) if g[0].subject == item.subject => g.push(item),
            _ => groups.push(vec![item]),
        }
    }
    // Threads in the order of their first message's sent date.
    groups.sort_by_key(|g| (g[0].date, g[0].seq));
    format_groups(&groups)
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn thread(
        &mut self,
        tag: &str,
        ThreadArgs {
            uid,
            algorithm,
            charset,
            key,
        }: ThreadArgs,
    ) {
        let (algorithm, charset) = (algorithm.as_str(), charset.as_str());
        if algorithm != "ORDEREDSUBJECT" {
            return self.tagged(
                tag,
                "NO",
                &format!("Threading algorithm {algorithm} not supported"),
            );
        }
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
        let mut items = Vec::with_capacity(hits.len());
        for chunk in hits.chunks(256) {
            let uids: Vec<u32> = chunk.iter().map(|h| h.1).collect();
            let infos = match self.ctx.store.message_infos(folder_id, &uids).await {
                Ok(i) => i,
                Err(e) => return self.store_failed(tag, e),
            };
            for (&(seq, uid_, _), info) in chunk.iter().zip(infos.iter()) {
                let raw = match self.ctx.store.read_blob(&info.blob_hash).await {
                    Ok(r) => r,
                    Err(e) => return self.store_failed(tag, e),
                };
                items.push(Item {
                    subject: base_subject(&raw),
                    // §2.1: the sent date, or INTERNALDATE when the message has none.
                    date: sent_date_utc(&raw).unwrap_or(info.internaldate),
                    seq,
                    id: if uid { uid_ } else { seq },
                });
            }
        }
        self.untagged(format!("THREAD {}", ordered_subject(items)));
        self.tagged(tag, "OK", "THREAD completed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(subject: &str, date: i64, seq: u32) -> Item {
        Item {
            subject: subject.into(),
            date,
            seq,
            id: seq,
        }
    }

    #[test]
    fn groups_by_subject_and_date() {
        let items = vec![
            item("B", 5, 1),
            item("A", 1, 2),
            item("A", 3, 3),
            item("C", 2, 4),
            item("A", 2, 5),
            item("B", 9, 6),
        ];
        assert_eq!(ordered_subject(items), "(2 (5)(3))(4)(1 6)");
    }
}
