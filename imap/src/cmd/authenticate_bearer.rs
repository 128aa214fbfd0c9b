//! AUTHENTICATE XOAUTH2 and OAUTHBEARER (RFC 7628) with a Pro Santé Connect token
//! (docs/mssante.md §4): the BAL named in the SASL message is opened when the token's
//! identity may open it (ADR 0012). After TLS only, like every login here.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mssante_auth::{BearerMechanism, PscVerifier};
use mssante_store::AccessOrigin;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Flow, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// The bearer mechanisms offered in CAPABILITY: only after TLS, only with `[psc]`.
    pub(crate) fn bearer_capabilities(&self) -> &'static [&'static str] {
        if self.tls && self.ctx.psc.is_some() {
            &["AUTH=XOAUTH2", "AUTH=OAUTHBEARER"]
        } else {
            &[]
        }
    }

    /// AUTHENTICATE with a bearer mechanism, the initial response from SASL-IR (RFC 4959) or
    /// after an empty continuation.
    pub(crate) async fn authenticate_bearer(
        &mut self,
        tag: &str,
        mechanism: BearerMechanism,
        verifier: Arc<PscVerifier>,
        initial: Option<String>,
    ) -> Flow {
        let response = match self.sasl_response(tag, initial).await {
            Ok(response) => response,
            Err(flow) => return flow,
        };
        let Ok(message) = B64.decode(response.trim()) else {
            self.tagged(tag, "BAD", "Invalid base64");
            return Flow::Continue;
        };
        match mssante_auth::bearer_login(&verifier, &self.ctx.store, mechanism, &message).await {
            Ok(Ok(done)) => {
                tracing::info!(peer = %self.peer, listener = ?self.kind,
                    login = %done.access.bal.address, identity = %done.identity.log_id,
                    via = done.access.origin.as_str(), ?mechanism, "IMAP login with a PSC token");
                let as_delegate = done.access.origin == AccessOrigin::Delegation;
                self.bal = Some(done.access.bal);
                let identity = done.identity.national_id.as_str();
                if !matches!(
                    self.start_access(None, Some(identity), as_delegate).await,
                    Ok(true)
                ) {
                    tracing::error!(peer = %self.peer, "access lookup failed after a bearer login");
                    self.bal = None;
                    self.tagged(tag, "NO", "[UNAVAILABLE] Temporary authentication failure");
                    return Flow::Continue;
                }
                let caps = self.capabilities().join(" ");
                self.tagged(tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
            }
            Ok(Err(why)) => {
                tracing::info!(peer = %self.peer, ?mechanism, reason = %why, "IMAP login failed");
                // RFC 7628 §3.2.2: an error challenge, the client's answer, then NO.
                let challenge = B64.encode(mechanism.error_challenge());
                self.wbuf
                    .extend_from_slice(format!("+ {challenge}\r\n").as_bytes());
                if self.read_continuation().await.is_err() {
                    return Flow::Close;
                }
                self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            }
            Err(e) => {
                tracing::error!("login lookup failed: {e}");
                self.tagged(tag, "NO", "[UNAVAILABLE] Temporary authentication failure");
            }
        }
        Flow::Continue
    }
}
