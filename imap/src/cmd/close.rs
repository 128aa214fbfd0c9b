//! CLOSE (RFC 9051 §6.4.1, expunges silently) and UNSELECT (RFC 3691, does not).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn close(&mut self, tag: &str, expunge: bool) {
        let Some(sel) = self.deselect() else {
            return;
        };
        if expunge && !sel.read_only {
            // RFC 9051 §6.4.1: CLOSE expunges silently.
            let deleted: Vec<u32> = sel
                .messages
                .iter()
                .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
                .map(|m| m.uid)
                .collect();
            if let Err(e) = self.ctx.store.expunge(sel.folder.id, &deleted).await {
                return self.store_failed(tag, e);
            }
        }
        self.tagged(
            tag,
            "OK",
            if expunge {
                "CLOSE completed"
            } else {
                "UNSELECT completed"
            },
        );
    }
}
