//! The selected mailbox as one session sees it: message sequence numbers, and the diff
//! against the store that becomes untagged EXISTS / EXPUNGE / VANISHED / FETCH responses
//! (RFC 9051 §7.4, §7.5; RFC 7162 §3.2.10).

use std::collections::BTreeSet;

use mssante_store::{Folder, FolderSnapshot, MessageRef, RecentClaim};

/// The system flags (RFC 9051 §2.3.2) every mailbox offers.
pub const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

pub struct SelectedMailbox {
    pub folder: Folder,
    pub read_only: bool,
    /// Messages by sequence number (index + 1), in UID order.
    pub messages: Vec<MessageRef>,
    /// Every change up to this modseq has been reported to the client.
    pub known_modseq: u64,
    /// UIDNEXT as last reported.
    pub uidnext: u32,
    /// Messages that are \Recent for this session (RFC 3501 §2.3.2).
    pub recent: BTreeSet<u32>,
    /// \Recent claimed for this session by its own APPEND or COPY into this mailbox, made
    /// with the write (ADR 0050), until the report of the new messages takes it.
    pub claimed: Option<RecentClaim>,
    /// Keywords announced to the client in FLAGS / PERMANENTFLAGS. A FETCH may name only
    /// these: a new one is announced first (RFC 9051 §7.3.5, as Dovecot does).
    pub keywords: BTreeSet<String>,
}

/// What changed since the last report, ready to be turned into responses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sequence numbers to report as EXPUNGE, highest first (each one shifts the ones above).
    pub expunged_seqs: Vec<u32>,
    pub expunged_uids: Vec<u32>,
    /// New EXISTS count, when messages were added.
    pub exists: Option<u32>,
    /// (sequence number, message) whose flags changed.
    pub flag_changes: Vec<(u32, MessageRef)>,
    /// A message carries a keyword the client was not told about: FLAGS comes first.
    pub new_keywords: bool,
}

impl SelectedMailbox {
    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    /// Adds the keywords among `flags` to those announced; true when one is new.
    pub fn learn_keywords<'a>(&mut self, flags: impl IntoIterator<Item = &'a String>) -> bool {
        let mut new = false;
        for f in flags.into_iter().filter(|f| !f.starts_with('\\')) {
            if !self.keywords.contains(f) {
                self.keywords.insert(f.clone());
                new = true;
            }
        }
        new
    }

    /// The untagged FLAGS and OK [PERMANENTFLAGS] lines for the announced keywords
    /// (RFC 9051 §7.3.5, §7.1); nothing is permanent in a read-only mailbox.
    pub fn flags_announcement(&self) -> [String; 2] {
        let keywords: String = self.keywords.iter().map(|k| format!(" {k}")).collect();
        let permanent = if self.read_only {
            "()".to_string()
        } else {
            format!("({SYSTEM_FLAGS}{keywords} \\*)")
        };
        [
            format!("FLAGS ({SYSTEM_FLAGS}{keywords})"),
            format!("OK [PERMANENTFLAGS {permanent}] Flags permitted"),
        ]
    }

    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// A message's flags as the client sees them: stored flags plus \Recent.
    pub fn flags_text(&self, m: &MessageRef) -> String {
        let mut text = if self.recent.contains(&m.uid) {
            "\\Recent".to_string()
        } else {
            String::new()
        };
        for f in &m.flags {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(f);
        }
        text
    }

    /// Marks as recent the messages at or above `first` (a claim from the store).
    pub fn add_recent_from(&mut self, first: u32) {
        self.add_recent_in(first..);
    }

    /// Marks as recent the messages whose UIDs are in `uids`.
    pub fn add_recent_in(&mut self, uids: impl std::ops::RangeBounds<u32>) {
        let recent: Vec<u32> = self
            .messages
            .iter()
            .map(|m| m.uid)
            .filter(|u| uids.contains(u))
            .collect();
        self.recent.extend(recent);
    }

    pub fn largest_uid(&self) -> u32 {
        self.messages.last().map(|m| m.uid).unwrap_or(0)
    }

    /// Applies what the store reports since `known_modseq` (one snapshot: changed or new
    /// messages, expunged UIDs, counters). Changes this session already knows (its own
    /// STORE) are not repeated.
    pub fn apply(&mut self, snapshot: FolderSnapshot) -> Changes {
        let FolderSnapshot {
            messages: changed,
            vanished,
            highestmodseq,
            uidnext,
            ..
        } = snapshot;
        let mut out = Changes::default();
        for &uid in &vanished {
            if let Some(seq) = self.seq_of(uid) {
                self.messages.remove(seq as usize - 1);
                self.recent.remove(&uid);
                out.expunged_seqs.push(seq);
                out.expunged_uids.push(uid);
            }
        }
        // Removing in order of arrival gives correct numbers when reported in that order.
        let before = self.messages.len();
        let largest_known = self.largest_uid();
        for m in changed {
            // An expunged UID never comes back (RFC 9051 §2.3.1.1), whatever else is said.
            if vanished.binary_search(&m.uid).is_ok() {
                continue;
            }
            out.new_keywords |= self.learn_keywords(&m.flags);
            match self.messages.binary_search_by_key(&m.uid, |x| x.uid) {
                Ok(i) => {
                    let known = &self.messages[i];
                    if known.flags != m.flags || known.modseq != m.modseq {
                        self.messages[i] = m.clone();
                        out.flag_changes.push((i as u32 + 1, m));
                    }
                }
                // New messages come above every UID known (the snapshot is consistent and
                // UIDs are committed in order): a lower one is a message this view dropped,
                // and announcing it now would renumber messages the client knows.
                Err(_) if m.uid <= largest_known => {
                    tracing::error!(
                        "folder {}: UID {} is new to a session that knows UID {largest_known}; not announced",
                        self.folder.id,
                        m.uid
                    );
                }
                Err(_) => self.messages.push(m),
            }
        }
        if self.messages.len() > before {
            out.exists = Some(self.exists());
        }
        self.known_modseq = self.known_modseq.max(highestmodseq);
        self.uidnext = uidnext;
        // Flag changes are reported with the numbers after expunges and appends.
        for (seq, m) in out.flag_changes.iter_mut() {
            if let Some(s) = self.seq_of(m.uid) {
                *seq = s;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(uid: u32, modseq: u64, flags: &[&str]) -> MessageRef {
        MessageRef {
            uid,
            modseq,
            flags: flags.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// What the store would report: `changed` and `vanished` at `modseq`.
    fn report(changed: Vec<MessageRef>, vanished: &[u32], modseq: u64) -> FolderSnapshot {
        FolderSnapshot {
            uidvalidity: 1,
            uidnext: 10,
            highestmodseq: modseq,
            messages: changed,
            vanished: vanished.to_vec(),
        }
    }

    fn view(msgs: Vec<MessageRef>) -> SelectedMailbox {
        SelectedMailbox {
            folder: Folder {
                id: 1,
                bal_id: 1,
                name: "INBOX".into(),
                special_use: None,
                uidvalidity: 1,
                uidnext: 10,
                highestmodseq: 5,
                object_id: "F1".into(),
            },
            read_only: false,
            messages: msgs,
            known_modseq: 5,
            uidnext: 10,
            recent: Default::default(),
            claimed: None,
            keywords: Default::default(),
        }
    }

    #[test]
    fn expunges_are_numbered_as_they_happen() {
        let mut v = view(vec![m(1, 1, &[]), m(2, 1, &[]), m(3, 1, &[])]);
        let c = v.apply(report(vec![], &[1, 3], 6));
        // Removing UID 1 (seq 1) first makes UID 3 seq 2.
        assert_eq!(c.expunged_seqs, vec![1, 2]);
        assert_eq!(v.exists(), 1);
        assert_eq!(c.exists, None);
    }

    #[test]
    fn new_messages_and_flag_changes() {
        let mut v = view(vec![m(1, 1, &[]), m(2, 1, &[])]);
        let c = v.apply(report(vec![m(2, 6, &["\\Seen"]), m(5, 6, &[])], &[], 6));
        assert_eq!(c.exists, Some(3));
        assert_eq!(c.flag_changes, vec![(2, m(2, 6, &["\\Seen"]))]);
        // Our own STORE already applied locally: nothing to repeat.
        let c = v.apply(report(vec![m(2, 6, &["\\Seen"])], &[], 6));
        assert_eq!(c, Changes::default());
    }

    #[test]
    fn new_keywords_are_flagged_once() {
        let mut v = view(vec![m(1, 1, &[])]);
        let c = v.apply(report(vec![m(1, 6, &["$hello", "\\Seen"])], &[], 6));
        assert!(c.new_keywords);
        assert_eq!(
            v.flags_announcement()[0],
            "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $hello)"
        );
        let c = v.apply(report(vec![m(2, 7, &["$hello"])], &[], 7));
        assert!(!c.new_keywords);
    }

    /// Issue 11: a message reported both changed and expunged (two reads that saw the
    /// folder at different times) came back mid-list after its EXPUNGE, so every higher
    /// sequence number named another UID. Expunged wins; nothing is renumbered.
    #[test]
    fn an_expunged_message_never_comes_back() {
        let mut v = view(vec![m(1, 1, &[]), m(2, 1, &[]), m(3, 1, &[])]);
        let c = v.apply(report(vec![m(2, 6, &["$a"]), m(4, 6, &[])], &[2], 7));
        assert_eq!(c.expunged_seqs, vec![2]);
        assert!(c.flag_changes.is_empty(), "{c:?}");
        let uids: Vec<u32> = v.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 3, 4]);
        assert_eq!(c.exists, Some(3));
    }

    /// A UID below the largest one announced is never announced as new: it would take a
    /// sequence number the client already gives to another message (RFC 9051 §2.3.1.2).
    #[test]
    fn new_messages_only_above_the_largest_uid() {
        let mut v = view(vec![m(1, 1, &[]), m(5, 1, &[])]);
        let c = v.apply(report(vec![m(3, 6, &[]), m(6, 6, &[])], &[], 6));
        let uids: Vec<u32> = v.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 5, 6]);
        assert_eq!(c.exists, Some(3));
    }
}
