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
        if self.selected.take().is_some() {
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
        // The status first, then the messages: a message added in between is in the list
        // and reported again later (harmless), never left out with its modseq counted as
        // known — which would later insert it mid-list and shift sequence numbers.
        let loaded = async {
            let status = self.ctx.store.folder_status(folder.id).await?;
            let refs = self.ctx.store.message_refs(folder.id).await?;
            Ok::<_, mssante_store::StoreError>((refs, status))
        }
        .await;
        let (messages, mut status) = match loaded {
            Ok(v) => v,
            Err(e) => return self.store_failed(tag, e),
        };
        let first_recent = match if read_only {
            self.ctx.store.first_recent_uid(folder.id).await
        } else {
            self.ctx.store.claim_recent(folder.id).await
        } {
            Ok(f) => f,
            Err(e) => return self.store_failed(tag, e),
        };
        // What the list holds bounds UIDNEXT and HIGHESTMODSEQ from below.
        let largest = messages.last().map_or(0, |m| m.uid);
        status.uidnext = status.uidnext.max(largest + 1);
        let listed_modseq = messages.iter().map(|m| m.modseq).max().unwrap_or(0);
        let announced_modseq = status.highestmodseq.max(listed_modseq);
        let mut selected = SelectedMailbox {
            folder,
            read_only,
            messages,
            known_modseq: status.highestmodseq,
            uidnext: status.uidnext,
            recent: Default::default(),
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
        self.untagged(format!(
            "OK [UIDVALIDITY {}] UIDs valid",
            status.uidvalidity
        ));
        self.untagged(format!(
            "OK [UIDNEXT {}] Predicted next UID",
            status.uidnext
        ));
        self.untagged(format!("OK [HIGHESTMODSEQ {announced_modseq}] Highest"));
        selected.add_recent_from(first_recent);
        if let Some(q) = qresync.filter(|q| q.uidvalidity == status.uidvalidity) {
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
        let Ok((changed, vanished)) = self.ctx.store.changes_since(sel.folder.id, q.modseq).await
        else {
            return;
        };
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
