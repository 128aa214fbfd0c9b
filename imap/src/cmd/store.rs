//! STORE and UID STORE (RFC 9051 §6.4.6) with UNCHANGEDSINCE (RFC 7162 §3.1.3).

use mssante_store::FlagOp;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::{StoreArgs, StoreOp, compact};
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn store_flags(
        &mut self,
        tag: &str,
        StoreArgs {
            uid,
            set,
            unchanged_since,
            op,
            silent,
            flags,
        }: StoreArgs,
    ) {
        let (set, flags) = (&set, &flags[..]);
        if !uid && self.invalid_seqs(set) {
            return self.tagged(tag, "BAD", "Invalid message sequence number");
        }
        let sel = self.selected.as_ref().expect("selected");
        if sel.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        }
        let folder_id = sel.folder.id;
        // ADR 0034: a delegate's \Seen is their own.
        let delegate = self.delegate_seen(sel.folder.bal_id);
        if unchanged_since.is_some() {
            self.condstore_enabling_command();
        }
        let uids = self.resolve(set, uid);
        let op = match op {
            StoreOp::Replace => FlagOp::Replace,
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
        };
        let update = match self
            .ctx
            .store
            .update_flags_as(
                folder_id,
                &uids,
                (op, flags),
                unchanged_since,
                delegate.as_deref(),
            )
            .await
        {
            Ok(u) => u,
            Err(e) => return self.store_failed(tag, e),
        };
        let sel = self.selected.as_mut().expect("selected");
        if sel.learn_keywords(update.changed.iter().flat_map(|m| &m.flags)) {
            self.announce_flags();
        }
        // RFC 7162 §3.2.4: once QRESYNC is enabled every untagged FETCH carries the UID.
        let with_uid = uid || self.enabled.qresync;
        let sel = self.selected.as_mut().expect("selected");
        let mut lines = Vec::new();
        for m in &update.changed {
            if let Some(seq) = sel.seq_of(m.uid) {
                sel.messages[seq as usize - 1] = m.clone();
                let uid_part = if with_uid {
                    format!("UID {} ", m.uid)
                } else {
                    String::new()
                };
                let modseq = if self.enabled.condstore {
                    format!(" MODSEQ ({})", m.modseq)
                } else {
                    String::new()
                };
                // RFC 7162 §3.1.3: with CONDSTORE, .SILENT still reports the new MODSEQ.
                if !silent {
                    lines.push(format!(
                        "{seq} FETCH ({uid_part}FLAGS ({}){modseq})",
                        sel.flags_text(m)
                    ));
                } else if self.enabled.condstore {
                    lines.push(format!("{seq} FETCH ({uid_part}MODSEQ ({}))", m.modseq));
                }
            }
        }
        // Messages the STORE did not change still get their FLAGS when not silent.
        if !silent {
            for u in uids.iter().filter(|u| {
                !update.changed.iter().any(|m| m.uid == **u) && !update.conflicts.contains(u)
            }) {
                if let Some(seq) = sel.seq_of(*u) {
                    let m = &sel.messages[seq as usize - 1];
                    let uid_part = if with_uid {
                        format!("UID {} ", m.uid)
                    } else {
                        String::new()
                    };
                    lines.push(format!(
                        "{seq} FETCH ({uid_part}FLAGS ({}))",
                        sel.flags_text(m)
                    ));
                }
            }
        }
        for l in lines {
            self.untagged(l);
        }
        if update.conflicts.is_empty() {
            self.tagged(tag, "OK", "STORE completed");
        } else {
            let sel = self.selected.as_ref().expect("selected");
            let mut ids: Vec<u32> = if uid {
                update.conflicts.clone()
            } else {
                update
                    .conflicts
                    .iter()
                    .filter_map(|u| sel.seq_of(*u))
                    .collect()
            };
            ids.sort_unstable();
            self.tagged(
                tag,
                "OK",
                &format!(
                    "[MODIFIED {}] Conditional STORE failed for some messages",
                    compact(&ids)
                ),
            );
        }
    }
}
