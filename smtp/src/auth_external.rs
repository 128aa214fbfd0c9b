//! AUTH EXTERNAL (RFC 4954, RFC 4422 Appendix A) on submission: an application BAL logs in
//! with the TLS client certificate of the connection, bound to it by the operator (ADR 0029).

use mssante_auth::ExternalOutcome;
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
        let outcome = mssante_auth::external_exchange(
            &self.ctx.store,
            self.client_cert.as_ref(),
            &response,
            self.peer,
            "smtp",
        )
        .await;
        match outcome {
            ExternalOutcome::LoggedIn(bal) => {
                self.auth = Some(bal);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            ExternalOutcome::BadEncoding => self.reply(bad_encoding()),
            // RFC 4954 §6: 535 5.7.8 for a bad certificate binding and for an authorization
            // identity the certificate may not act as alike.
            ExternalOutcome::Refused(_) => self.reply(invalid_credentials()),
            ExternalOutcome::Unavailable => self.reply(temporary_failure()),
        }
        Flow::Continue
    }
}
