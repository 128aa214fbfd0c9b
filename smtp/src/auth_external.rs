//! AUTH EXTERNAL (RFC 4954, RFC 4422 Appendix A) on submission: an application BAL logs in
//! with the TLS client certificate of the connection, bound to it by the operator (ADR 0029).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::auth::{bad_encoding, invalid_credentials, temporary_failure};
use crate::reply::Reply;
use crate::session::{Flow, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// The response is the authorization identity (RFC 4422 Appendix A.1): `AUTH EXTERNAL =`
    /// (RFC 4954 §4: an empty initial response) lets the server pick the one BAL the
    /// certificate is bound to; a base64 address names the BAL.
    pub(crate) async fn sasl_external(&mut self, initial: Option<String>) -> Flow {
        if self.client_cert.is_none() {
            // Not advertised on this connection: no certificate chaining to client_ca_file.
            tracing::info!(peer = %self.peer, "EXTERNAL without a usable client certificate");
            self.reply(invalid_credentials());
            return Flow::Continue;
        }
        let response = match initial {
            Some(r) if r == "=" => String::new(),
            Some(r) => r,
            None => match self.challenge("").await {
                Ok(line) => line,
                Err(Some(r)) => {
                    self.reply(r);
                    return Flow::Continue;
                }
                Err(None) => return Flow::Close,
            },
        };
        let Ok(authzid) = B64.decode(response.trim()) else {
            self.reply(bad_encoding());
            return Flow::Continue;
        };
        let login =
            mssante_auth::external_login(&self.ctx.store, self.client_cert.as_ref(), &authzid)
                .await;
        match login {
            Ok(Ok(bal)) => {
                let subject = self.client_cert.as_ref().map(|c| c.subject.as_str());
                tracing::info!(peer = %self.peer, login = %bal.address,
                    certificate = subject.unwrap_or_default(), "authenticated with a client certificate");
                self.auth = Some(bal);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            Ok(Err(why)) => {
                // RFC 4954 §6: 535 5.7.8 for a bad certificate binding and for an
                // authorization identity the certificate may not act as alike.
                tracing::info!(peer = %self.peer, reason = %why, "EXTERNAL authentication failed");
                self.reply(invalid_credentials());
            }
            Err(e) => {
                tracing::error!("authentication lookup failed: {e}");
                self.reply(temporary_failure());
            }
        }
        Flow::Continue
    }
}
