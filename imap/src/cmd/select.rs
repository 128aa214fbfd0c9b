//! SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3; CONDSTORE and QRESYNC RFC 7162 §3.1.8, §3.2.5).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::{QresyncParams, SelectArgs, compact};
use crate::session::Session;
use crate::view::SelectedMailbox;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn select(
        &mut self,
        tag: &str,
        SelectArgs {
            mailbox,
            read_only,
            condstore,
            qresync,
        }: SelectArgs,
    ) {
        // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected; a previous one is
        // closed first (without expunging), with the CLOSED response code.
        if self.deselect().is_some() {
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
        if qresync.is_some() && !self.enabled.qresync {
            return self.tagged(tag, "BAD", "QRESYNC must be enabled first");
        }
        if condstore {
            self.enabled.condstore = true;
        }
        let Some(folder) = self.existing_folder(tag, &mailbox).await else {
            return;
        };
        // RFC 4314 §4: SELECT and EXAMINE need `r`.
        if !self.require(tag, &folder, "r").await {
            return;
        }
        // Changes are heard from before the snapshot is read (ADR 0057): one committed after
        // it cannot go unreported.
        self.changes.watch_folder(Some(folder.id));
        // Counters and messages from one snapshot: the HIGHESTMODSEQ taken as known covers
        // exactly the messages listed, so no later report can bring one in below them.
        let delegate = self.delegate_seen(folder.bal_id);
        let snapshot = match self
            .ctx
            .store
            .snapshot_as(folder.id, None, delegate.as_deref())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.deselect();
                return self.store_failed(tag, e);
            }
        };
        let first_recent = match if read_only {
            self.ctx.store.first_recent_uid(folder.id).await
        } else {
            self.ctx.store.claim_recent(folder.id).await
        } {
            Ok(f) => f,
            Err(e) => {
                self.deselect();
                return self.store_failed(tag, e);
            }
        };
        let (uidvalidity, uidnext, highestmodseq) = (
            snapshot.uidvalidity,
            snapshot.uidnext,
            snapshot.highestmodseq,
        );
        let mut selected = SelectedMailbox {
            folder,
            read_only,
            messages: snapshot.messages,
            known_modseq: highestmodseq,
            uidnext,
            recent: Default::default(),
            claimed: None,
            keywords: Default::default(),
        };
        let all_flags: Vec<String> = selected
            .messages
            .iter()
            .flat_map(|m| m.flags.iter().cloned())
            .collect();
        selected.learn_keywords(&all_flags);
        for line in selected.flags_announcement() {
            self.untagged(line);
        }
        let messages = &selected.messages;
        self.untagged(format!("{} EXISTS", messages.len()));
        let recent_count = messages.iter().filter(|m| m.uid >= first_recent).count();
        self.untagged(format!("{recent_count} RECENT"));
        if let Some(first_unseen) = messages
            .iter()
            .position(|m| !m.flags.iter().any(|f| f == "\\Seen"))
        {
            self.untagged(format!("OK [UNSEEN {}] First unseen", first_unseen + 1));
        }
        self.untagged(format!("OK [UIDVALIDITY {}] UIDs valid", uidvalidity));
        self.untagged(format!("OK [UIDNEXT {}] Predicted next UID", uidnext));
        self.untagged(format!("OK [HIGHESTMODSEQ {highestmodseq}] Highest"));
        // RFC 8474 §4.1.
        self.untagged(format!(
            "OK [MAILBOXID ({})] Mailbox id",
            selected.folder.object_id
        ));
        selected.add_recent_from(first_recent);
        if let Some(q) = qresync.filter(|q| q.uidvalidity == uidvalidity) {
            self.qresync_resync(&selected, &q).await;
        }
        self.selected = Some(selected);
        self.tagged(
            tag,
            "OK",
            if read_only {
                "[READ-ONLY] EXAMINE completed"
            } else {
                "[READ-WRITE] SELECT completed"
            },
        );
    }

    /// RFC 7162 §3.2.5.1: what changed since the client's modseq.
    async fn qresync_resync(&mut self, sel: &SelectedMailbox, q: &QresyncParams) {
        let delegate = self.delegate_seen(sel.folder.bal_id);
        let Ok(since) = self
            .ctx
            .store
            .snapshot_as(sel.folder.id, Some(q.modseq), delegate.as_deref())
            .await
        else {
            return;
        };
        let (changed, vanished) = (since.messages, since.vanished);
        let largest = sel.largest_uid().max(vanished.last().copied().unwrap_or(0));
        let vanished: Vec<u32> = match &q.known_uids {
            Some(known) => vanished
                .into_iter()
                .filter(|u| known.contains(*u, largest))
                .collect(),
            None => vanished,
        };
        if !vanished.is_empty() {
            self.untagged(format!("VANISHED (EARLIER) {}", compact(&vanished)));
        }
        for m in changed {
            if let Some(seq) = sel.seq_of(m.uid) {
                self.untagged(format!(
                    "{seq} FETCH (UID {} FLAGS ({}) MODSEQ ({}))",
                    m.uid,
                    sel.flags_text(&m),
                    m.modseq
                ));
            }
        }
    }
}
