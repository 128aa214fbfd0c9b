//! UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same connection,
//! so that a client can log in as another BAL without a new TLS handshake.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Enabled, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn unauthenticate(&mut self, tag: &str) {
        if let Some(bal) = self.bal.take() {
            tracing::info!(peer = %self.peer, login = %bal.address, "IMAP unauthenticate");
        }
        // RFC 8437 §2: the selected mailbox is closed without expunging, and what ENABLE
        // turned on is off again: the connection is as just after the greeting (and TLS).
        self.deselect();
        self.notify = None;
        self.changes.watch_every_folder(false);
        self.access = Default::default();
        self.enabled = Enabled::default();
        self.tagged(tag, "OK", "UNAUTHENTICATE completed");
    }
}
