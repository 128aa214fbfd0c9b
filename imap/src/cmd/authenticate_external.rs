//! AUTHENTICATE EXTERNAL (RFC 4422 Appendix A, RFC 9051 §6.2.2): an application BAL logs in
//! with the TLS client certificate of the connection, bound to it by the operator (ADR 0029).

use mssante_auth::ExternalOutcome;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Flow, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// The response (SASL-IR, RFC 4959, or after an empty continuation) is the authorization
    /// identity: empty, or the BAL to open (RFC 4422 Appendix A.1).
    pub(crate) async fn authenticate_external(
        &mut self,
        tag: &str,
        initial: Option<String>,
    ) -> Flow {
        if self.tls && self.client_cert.is_none() {
            // Not advertised on this connection: no certificate chaining to client_ca_file.
            tracing::info!(peer = %self.peer, "IMAP EXTERNAL without a usable client certificate");
            self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            return Flow::Continue;
        }
        let response = match self.sasl_response(tag, initial).await {
            Ok(response) => response,
            Err(flow) => return flow,
        };
        let outcome = mssante_auth::external_exchange(
            &self.ctx.store,
            self.client_cert.as_ref(),
            &response,
            self.peer,
            "imap",
        )
        .await;
        match outcome {
            ExternalOutcome::LoggedIn(bal) => {
                self.bal = Some(bal);
                let caps = self.capabilities().join(" ");
                self.tagged(tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
            }
            ExternalOutcome::BadEncoding => self.tagged(tag, "BAD", "Invalid base64"),
            // RFC 5530 §3: AUTHORIZATIONFAILED when the certificate is good but may not act
            // as the BAL it named.
            ExternalOutcome::Refused(why) if why.is_authorization() => self.tagged(
                tag,
                "NO",
                "[AUTHORIZATIONFAILED] Not authorized for this mailbox",
            ),
            ExternalOutcome::Refused(_) => {
                self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed")
            }
            ExternalOutcome::Unavailable => {
                self.tagged(tag, "NO", "[UNAVAILABLE] Temporary authentication failure")
            }
        }
        Flow::Continue
    }
}
