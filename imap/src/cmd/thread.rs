//! THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES. The algorithms are in
//! `message/thread.rs`; here the matching messages are read for their keys.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::search::sent_date_utc;
use crate::message::sort::{base_subject, is_reply_or_forward, thread_ids};
use crate::message::thread::{ThreadItem, ordered_subject, references};
use crate::parse::ThreadArgs;
use crate::session::Session;

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
        let by_references = match algorithm {
            "REFERENCES" => true,
            "ORDEREDSUBJECT" => false,
            _ => {
                return self.tagged(
                    tag,
                    "NO",
                    &format!("Threading algorithm {algorithm} not supported"),
                );
            }
        };
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
        let mut items = Vec::with_capacity(hits.len());
        let scanned = self
            .for_each_hit(&hits, true, |m| {
                items.push(ThreadItem {
                    id: if uid { m.uid } else { m.seq },
                    seq: m.seq,
                    // RFC 5256 §2.1: the sent date, or INTERNALDATE when the message has none.
                    date: sent_date_utc(m.raw).unwrap_or(m.info.internaldate),
                    subject: base_subject(m.raw),
                    reply: by_references && is_reply_or_forward(m.raw),
                    ids: match by_references {
                        true => thread_ids(m.raw),
                        false => Default::default(),
                    },
                })
            })
            .await;
        if let Err(e) = scanned {
            return self.store_failed(tag, e);
        }
        let threads = match by_references {
            true => references(&items),
            false => ordered_subject(&items),
        };
        self.untagged(format!("THREAD {threads}"));
        self.tagged(tag, "OK", "THREAD completed");
    }
}
