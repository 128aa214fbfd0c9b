//! SUBSCRIBE and UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8): one handler, on or off.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn subscribe(&mut self, tag: &str, raw: &[u8], on: bool) {
        let Some(name) = self.mailbox_name(raw) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        match self
            .ctx
            .store
            .set_subscription(self.bal_id(), &name, on)
            .await
        {
            Ok(()) => self.tagged(
                tag,
                "OK",
                if on {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.store_failed(tag, e),
        }
    }
}
