//! STARTTLS (RFC 9051 §6.2.1).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Flow, Session};

const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn starttls(&mut self, tag: &str) -> Flow {
        let acceptor = match (&self.ctx.tls, self.tls) {
            (_, true) => {
                self.tagged(tag, "BAD", "TLS already active");
                return Flow::Continue;
            }
            (None, _) => {
                self.tagged(tag, "NO", "TLS not available");
                return Flow::Continue;
            }
            (Some(a), false) => a.clone(),
        };
        self.tagged(tag, "OK", "Begin TLS negotiation now");
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        // RFC 9051 §6.2.1: anything pipelined after STARTTLS was sent in clear; drop it.
        self.rbuf.clear();
        match self.conn.upgrade(&acceptor, HANDSHAKE_TIMEOUT).await {
            Ok(()) => {
                self.tls = true;
                self.client_cert = mssante_auth::external::connection_certificate(
                    self.ctx.client_ca.as_ref(),
                    &self.conn.peer_certificates(),
                    self.peer,
                );
                Flow::Continue
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, "TLS handshake failed: {e}");
                Flow::Close
            }
        }
    }
}
