//! STATUS (RFC 9051 §6.3.11) with STATUS=SIZE (RFC 8438), HIGHESTMODSEQ (RFC 7162) and
//! MAILBOXID (RFC 8474 §4.2).

use mssante_store::Folder;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::StatusArgs;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn status(&mut self, tag: &str, StatusArgs { mailbox, items }: &StatusArgs) {
        let Some(folder) = self.existing_folder(tag, mailbox).await else {
            return;
        };
        // RFC 4314 §4: STATUS needs `r`.
        if !self.require(tag, &folder, "r").await {
            return;
        }
        if let Some(bad) = items.iter().find(|i| {
            !matches!(
                i.as_str(),
                "MESSAGES"
                    | "UIDNEXT"
                    | "UIDVALIDITY"
                    | "UNSEEN"
                    | "SIZE"
                    | "HIGHESTMODSEQ"
                    | "RECENT"
                    | "DELETED"
                    | "MAILBOXID"
            )
        }) {
            return self.tagged(tag, "BAD", &format!("Unknown STATUS item {bad}"));
        }
        // RFC 9051 §7.5.1: the response names the mailbox as the client does, so a folder of
        // a delegated BAL by its `Other Users/…` name, not by its name in that BAL.
        let shown = match folder.bal_id == self.bal_id() {
            true => None,
            false => self.access.shared_name(folder.bal_id, &folder.name),
        }
        .unwrap_or_else(|| folder.name.clone());
        self.status_line(&folder, &shown, items).await;
        self.tagged(tag, "OK", "STATUS completed");
    }

    /// The untagged STATUS of `folder`, named `shown` (as the client knows it). UNSEEN is
    /// the session's own for a delegate (ADR 0034).
    pub(crate) async fn status_line(&mut self, folder: &Folder, shown: &str, items: &[String]) {
        let delegate = self.delegate_seen(folder.bal_id);
        let status = self
            .ctx
            .store
            .folder_status_as(folder.id, delegate.as_deref());
        let Ok(st) = status.await else {
            return;
        };
        let values: Vec<String> = items
            .iter()
            .map(|i| {
                if i == "MAILBOXID" {
                    // RFC 8474 §4.2.
                    return format!("MAILBOXID ({})", folder.object_id);
                }
                let v = match i.as_str() {
                    "MESSAGES" => st.messages as u64,
                    "UIDNEXT" => st.uidnext as u64,
                    "UIDVALIDITY" => st.uidvalidity as u64,
                    "UNSEEN" => st.unseen as u64,
                    "SIZE" => st.size,
                    "HIGHESTMODSEQ" => st.highestmodseq,
                    "DELETED" => st.deleted as u64,
                    "RECENT" => st.recent as u64,
                    _ => 0,
                };
                format!("{i} {v}")
            })
            .collect();
        let mut line = b"STATUS ".to_vec();
        line.extend(self.wire_name(shown));
        line.extend(format!(" ({})", values.join(" ")).as_bytes());
        self.untagged_bytes(&line);
    }
}
