//! STARTTLS (RFC 3207).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::ListenerKind;
use crate::reply::{self, Reply};
use crate::session::{Flow, Session};

/// Bound on the TLS handshake so a stalled client cannot hold a session slot.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn starttls(&mut self) -> Flow {
        if self.tls {
            self.reply(reply::bad_sequence("TLS already active"));
            return Flow::Continue;
        }
        // The MX asks peer operators for their certificate (docs/mssante.md §3).
        let acceptor = match self.kind {
            ListenerKind::Mx => self
                .ctx
                .trust
                .mx_tls
                .clone()
                .or_else(|| self.ctx.tls.clone()),
            _ => self.ctx.tls.clone(),
        };
        let Some(acceptor) = acceptor else {
            self.reply(Reply::new(454, "4.7.0", "TLS not available"));
            return Flow::Continue;
        };
        self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        // CVE-2011-0411: anything the client pipelined after STARTTLS arrived in plaintext
        // and must not be executed inside the TLS session. Drop it.
        if !self.rbuf.is_empty() {
            tracing::warn!(peer = %self.peer, bytes = self.rbuf.len(), "discarding plaintext pipelined after STARTTLS");
            self.rbuf.clear();
        }
        match self.conn.upgrade(&acceptor, HANDSHAKE_TIMEOUT).await {
            Ok(()) => {
                self.tls = true;
                // RFC 3207 §4.2: forget everything learnt before TLS; the client starts
                // again with EHLO.
                self.helo = None;
                self.auth = None;
                self.txn = None;
                if self.kind == ListenerKind::Mx {
                    self.peer_identity = Some(self.check_peer_certificate());
                } else {
                    self.client_cert = mssante_auth::external::connection_certificate(
                        self.ctx.client_ca.as_ref(),
                        &self.conn.peer_certificates(),
                        self.peer,
                    );
                }
                Flow::Continue
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, "TLS handshake failed: {e}");
                Flow::Close
            }
        }
    }
}
