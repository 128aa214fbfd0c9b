//! RENAME (RFC 9051 §6.3.6): children move with their parent.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::mailbox_names::{DELIMITER, valid_name};
use crate::parse::RenameArgs;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn rename(&mut self, tag: &str, RenameArgs { from, to }: &RenameArgs) {
        let Some(folder) = self.existing_folder(tag, from).await else {
            return;
        };
        let Some(to) = self.mailbox_name(to) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        if let Err(why) = valid_name(&to) {
            return self.tagged(tag, "NO", &format!("[CANNOT] {why}"));
        }
        // RFC 4314 §4: RENAME needs `x` on the source; within the own BAL only.
        if !self.require(tag, &folder, "x").await {
            return;
        }
        if folder.bal_id != self.bal_id() || self.access.resolve(&to).is_some() {
            return self.tagged(tag, "NO", "[NOPERM] Folders move within their own BAL only");
        }
        if to == "INBOX" || to.starts_with(&format!("{}{DELIMITER}", folder.name)) {
            return self.tagged(tag, "NO", "[CANNOT] Cannot rename to that name");
        }
        match self
            .ctx
            .store
            .rename_folder(self.bal_id(), &folder.name, &to, DELIMITER)
            .await
        {
            Ok(()) => self.tagged(tag, "OK", "RENAME completed"),
            Err(e) => self.store_failed(tag, e),
        }
    }
}
