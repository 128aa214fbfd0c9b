//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH results (RFC 4731), MODSEQ search
//! (RFC 7162 §3.1.5).

use mssante_store::{MessageInfo, MessageRef};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::search::{body_contains, header_contains, sent_date, text_contains};
use crate::parse::{SearchArgs, SearchKey, SearchReturn, compact};
use crate::session::Session;

/// What evaluating the keys needs beyond flags and numbers.
#[derive(Default, Clone, Copy)]
struct Needs {
    info: bool,
    bytes: bool,
}

fn needs(key: &SearchKey) -> Needs {
    match key {
        SearchKey::Before(_)
        | SearchKey::On(_)
        | SearchKey::Since(_)
        | SearchKey::Larger(_)
        | SearchKey::Smaller(_)
        | SearchKey::EmailId(_)
        | SearchKey::SavedBefore(_)
        | SearchKey::SavedOn(_)
        | SearchKey::SavedSince(_) => Needs {
            info: true,
            bytes: false,
        },
        SearchKey::Header(..)
        | SearchKey::Body(_)
        | SearchKey::Text(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => Needs {
            info: true,
            bytes: true,
        },
        SearchKey::Not(k) => needs(k),
        SearchKey::Or(a, b) => merge(needs(a), needs(b)),
        SearchKey::And(keys) => keys.iter().map(needs).fold(Needs::default(), merge),
        _ => Needs::default(),
    }
}

fn merge(a: Needs, b: Needs) -> Needs {
    Needs {
        info: a.info || b.info,
        bytes: a.bytes || b.bytes,
    }
}

fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        _ => false,
    }
}

/// One message as the matcher sees it.
struct Candidate<'a> {
    seq: u32,
    recent: bool,
    exists: u32,
    largest_uid: u32,
    msg: &'a MessageRef,
    info: Option<&'a MessageInfo>,
    raw: Option<&'a [u8]>,
}

fn has_flag(m: &MessageRef, flag: &str) -> bool {
    m.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

fn day(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

fn matches(key: &SearchKey, c: &Candidate<'_>) -> bool {
    let raw = c.raw.unwrap_or(&[]);
    let internal_day = c.info.map(|i| day(i.internaldate)).unwrap_or(0);
    let sent_day = || sent_date(raw).map(day);
    let saved_day = c.info.and_then(|i| i.saved_at).map(day);
    match key {
        SearchKey::All => true,
        SearchKey::Flag(f) => has_flag(c.msg, f),
        SearchKey::NotFlag(f) => !has_flag(c.msg, f),
        // RFC 3501 §6.4.4: NEW is RECENT UNSEEN; OLD is NOT RECENT.
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !has_flag(c.msg, "\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Header(field, needle) => {
            let field = match field.as_str() {
                "BCC" => "Bcc",
                "CC" => "Cc",
                "FROM" => "From",
                "TO" => "To",
                "SUBJECT" => "Subject",
                other => other,
            };
            header_contains(raw, field, needle)
        }
        SearchKey::Body(needle) => body_contains(raw, needle),
        SearchKey::Text(needle) => text_contains(raw, needle),
        SearchKey::Before(d) => internal_day < *d,
        SearchKey::On(d) => internal_day == *d,
        SearchKey::Since(d) => internal_day >= *d,
        SearchKey::SentBefore(d) => sent_day().is_some_and(|s| s < *d),
        SearchKey::SentOn(d) => sent_day().is_some_and(|s| s == *d),
        SearchKey::SentSince(d) => sent_day().is_some_and(|s| s >= *d),
        SearchKey::Larger(n) => c.info.is_some_and(|i| i.size > *n),
        SearchKey::Smaller(n) => c.info.is_some_and(|i| i.size < *n),
        SearchKey::Uid(set) => set.contains(c.msg.uid, c.largest_uid),
        SearchKey::Seq(set) => set.contains(c.seq, c.exists),
        SearchKey::ModSeq(m) => c.msg.modseq >= *m,
        SearchKey::EmailId(id) => c.info.is_some_and(|i| i.email_id == *id),
        // Threads have no stored identity: THREADID is always NIL, so nothing matches.
        SearchKey::ThreadId(_) => false,
        // RFC 8514 §5: a message without a save date matches none of these.
        SearchKey::SavedBefore(d) => saved_day.is_some_and(|s| s < *d),
        SearchKey::SavedOn(d) => saved_day.is_some_and(|s| s == *d),
        SearchKey::SavedSince(d) => saved_day.is_some_and(|s| s >= *d),
        SearchKey::SaveDateSupported => true,
        SearchKey::Not(k) => !matches(k, c),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        SearchKey::And(keys) => keys.iter().all(|k| matches(k, c)),
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// The messages of the selected mailbox matching `key`: (seq, uid, modseq), in order.
    pub(crate) async fn matching(
        &mut self,
        key: &SearchKey,
    ) -> mssante_store::Result<Vec<(u32, u32, u64)>> {
        let need = needs(key);
        let sel = self.selected.as_ref().expect("selected");
        let folder_id = sel.folder.id;
        let snapshot: Vec<MessageRef> = sel.messages.clone();
        let (exists, largest_uid) = (sel.exists(), sel.largest_uid());
        let recent = sel.recent.clone();
        let mut hits: Vec<(u32, u32, u64)> = Vec::new();
        for (chunk_index, chunk) in snapshot.chunks(256).enumerate() {
            let infos = if need.info {
                let uids: Vec<u32> = chunk.iter().map(|m| m.uid).collect();
                self.ctx.store.message_infos(folder_id, &uids).await?
            } else {
                Vec::new()
            };
            for (i, msg) in chunk.iter().enumerate() {
                let info = infos.iter().find(|x| x.uid == msg.uid);
                let raw = match (need.bytes, info) {
                    (true, Some(info)) => Some(self.ctx.store.read_blob(&info.blob_hash).await?),
                    _ => None,
                };
                let seq = (chunk_index * 256 + i) as u32 + 1;
                let candidate = Candidate {
                    seq,
                    recent: recent.contains(&msg.uid),
                    exists,
                    largest_uid,
                    msg,
                    info,
                    raw: raw.as_deref(),
                };
                if matches(key, &candidate) {
                    hits.push((seq, msg.uid, msg.modseq));
                }
            }
        }
        Ok(hits)
    }

    pub(crate) async fn search(
        &mut self,
        tag: &str,
        SearchArgs {
            uid,
            returns,
            charset,
            key,
        }: SearchArgs,
    ) {
        if let Some(cs) = charset
            .as_deref()
            .filter(|c| !matches!(*c, "UTF-8" | "US-ASCII"))
        {
            return self.tagged(
                tag,
                "NO",
                &format!("[BADCHARSET (UTF-8 US-ASCII)] Charset {cs} not supported"),
            );
        }
        if uses_modseq(&key) {
            self.condstore_enabling_command();
        }
        let hits = match self.matching(&key).await {
            Ok(h) => h,
            Err(e) => return self.store_failed(tag, e),
        };
        let ids: Vec<u32> = hits.iter().map(|h| if uid { h.1 } else { h.0 }).collect();
        let highest_modseq = uses_modseq(&key).then(|| hits.iter().map(|h| h.2).max().unwrap_or(0));
        match returns {
            None => {
                let list: String = ids.iter().map(|i| format!(" {i}")).collect();
                let modseq = highest_modseq
                    .filter(|_| !ids.is_empty())
                    .map(|m| format!(" (MODSEQ {m})"))
                    .unwrap_or_default();
                self.untagged(format!("SEARCH{list}{modseq}"));
            }
            Some(returns) => {
                let reported: Vec<(u32, u64)> = hits
                    .iter()
                    .map(|h| (if uid { h.1 } else { h.0 }, h.2))
                    .collect();
                let line =
                    esearch_response(tag, uid, &returns, &reported, highest_modseq.is_some());
                self.untagged(line);
                if returns.update {
                    let uids = hits.iter().map(|h| h.1).collect();
                    self.keep_context(tag, uid, key, None, uids);
                }
            }
        }
        self.tagged(tag, "OK", "SEARCH completed");
    }
}

/// The ESEARCH response (RFC 4731 §3.1): `ESEARCH (TAG "t") UID MIN 1 MAX 9 COUNT 3 ALL 1,5,9`,
/// for SEARCH (results ascending) and ESORT (results in sort order, RFC 5267 §3.2: MIN is
/// the first sorted, MAX the last, ALL in sort order). PARTIAL gives a window of the results
/// (RFC 5267 §4.4, RFC 9394 §3.1), `NIL` when it is empty. With a MODSEQ key, the highest
/// modseq of the messages reported (RFC 7162 §3.1.10: of MIN/MAX only when those are all
/// that is returned).
pub(super) fn esearch_response(
    tag: &str,
    uid: bool,
    returns: &SearchReturn,
    results: &[(u32, u64)],
    with_modseq: bool,
) -> String {
    let ids = |r: &[(u32, u64)]| compact(&r.iter().map(|h| h.0).collect::<Vec<_>>());
    let highest = |r: &[(u32, u64)]| r.iter().map(|h| h.1).max().unwrap_or(0);
    let mut line = format!("ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    let mut reported_modseq = 0;
    if let (true, Some(&(id, m))) = (returns.min, results.first()) {
        line.push_str(&format!(" MIN {id}"));
        reported_modseq = reported_modseq.max(m);
    }
    if let (true, Some(&(id, m))) = (returns.max, results.last()) {
        line.push_str(&format!(" MAX {id}"));
        reported_modseq = reported_modseq.max(m);
    }
    if returns.count {
        line.push_str(&format!(" COUNT {}", results.len()));
    }
    if returns.all && !results.is_empty() {
        line.push_str(&format!(" ALL {}", ids(results)));
    }
    if let Some(range) = returns.partial {
        let window = range.select(results);
        let set = match window.is_empty() {
            true => "NIL".to_string(),
            false => ids(window),
        };
        line.push_str(&format!(" PARTIAL ({range} {set})"));
        reported_modseq = reported_modseq.max(highest(window));
    }
    if returns.all || returns.count {
        reported_modseq = highest(results);
    }
    if with_modseq && !results.is_empty() {
        line.push_str(&format!(" MODSEQ {reported_modseq}"));
    }
    line
}
