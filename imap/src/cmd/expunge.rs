//! EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::SequenceSet;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn expunge(&mut self, tag: &str, uids: Option<SequenceSet>) {
        let sel = self.selected.as_ref().expect("selected");
        if sel.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        }
        let largest = sel.largest_uid();
        let deleted: Vec<u32> = sel
            .messages
            .iter()
            .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
            .map(|m| m.uid)
            .filter(|&u| uids.as_ref().is_none_or(|set| set.contains(u, largest)))
            .collect();
        let folder_id = sel.folder.id;
        match self.ctx.store.expunge(folder_id, &deleted).await {
            Ok(_) => {
                // The notification reports them as EXPUNGE / VANISHED.
                self.report_changes(true).await;
                self.tagged(tag, "OK", "EXPUNGE completed");
            }
            Err(e) => self.store_failed(tag, e),
        }
    }
}
