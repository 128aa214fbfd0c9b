//! DELETE (RFC 9051 §6.3.5).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn delete(&mut self, tag: &str, raw: &[u8]) {
        let Some(folder) = self.existing_folder(tag, raw).await else {
            return;
        };
        // RFC 4314 §4: DELETE needs `x`.
        if !self.require(tag, &folder, "x").await {
            return;
        }
        if folder.name == "INBOX" {
            return self.tagged(tag, "NO", "[CANNOT] INBOX cannot be deleted");
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.folder.id == folder.id)
        {
            self.deselect();
        }
        match self
            .ctx
            .store
            .delete_folder(folder.bal_id, &folder.name)
            .await
        {
            Ok(()) => self.tagged(tag, "OK", "DELETE completed"),
            Err(e) => self.store_failed(tag, e),
        }
    }
}
