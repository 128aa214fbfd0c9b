//! AUTHENTICATE PLAIN (RFC 9051 §6.2.2) with SASL-IR (RFC 4959).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::AuthenticateArgs;
use crate::session::{Flow, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// AUTHENTICATE PLAIN (RFC 9051 §6.2.2, SASL-IR RFC 4959).
    pub(crate) async fn authenticate(
        &mut self,
        tag: &str,
        AuthenticateArgs { mechanism, initial }: AuthenticateArgs,
    ) -> Flow {
        if let Some(bearer) = mssante_auth::BearerMechanism::from_name(&mechanism)
            && let Some(verifier) = self.ctx.psc.clone()
        {
            return self
                .authenticate_bearer(tag, bearer, verifier, initial)
                .await;
        }
        if mechanism == "EXTERNAL" {
            return self.authenticate_external(tag, initial).await;
        }
        if mechanism != "PLAIN" {
            self.tagged(tag, "NO", "Unsupported authentication mechanism");
            return Flow::Continue;
        }
        let response = match self.sasl_response(tag, initial).await {
            Ok(response) => response,
            Err(flow) => return flow,
        };
        let decoded = B64
            .decode(response.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some(parts) = decoded
            .as_deref()
            .map(|d| d.split('\0').collect::<Vec<_>>())
        else {
            self.tagged(tag, "BAD", "Invalid base64");
            return Flow::Continue;
        };
        match parts.as_slice() {
            [authz, user, password] => {
                // RFC 4616 §2: an authorization id other than the user opens that BAL as
                // its delegate (ADR 0016).
                let authz = (!authz.is_empty() && !authz.eq_ignore_ascii_case(user))
                    .then(|| authz.to_string());
                let (user, password) = (user.to_string(), password.to_string());
                self.check_login(tag, &user, &password, authz.as_deref())
                    .await;
            }
            _ => self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed"),
        }
        Flow::Continue
    }

    /// The client's SASL response, after the TLS check: the SASL-IR initial response (RFC
    /// 4959) or the line read after an empty continuation; `*` cancels (RFC 9051 §6.2.2).
    /// `Err(flow)`: the command is already answered, or the connection is lost.
    pub(crate) async fn sasl_response(
        &mut self,
        tag: &str,
        initial: Option<String>,
    ) -> Result<String, Flow> {
        if !self.tls {
            self.tagged(
                tag,
                "NO",
                "[PRIVACYREQUIRED] Authentication is disabled before STARTTLS",
            );
            return Err(Flow::Continue);
        }
        let response = match initial {
            Some(r) if r == "=" => String::new(),
            Some(r) => r,
            None => {
                self.wbuf.extend_from_slice(b"+ \r\n");
                match self.read_continuation().await {
                    Ok(Some(line)) => String::from_utf8_lossy(&line).into_owned(),
                    Ok(None) => {
                        self.tagged(tag, "BAD", "Line too long");
                        return Err(Flow::Continue);
                    }
                    Err(_) => return Err(Flow::Close),
                }
            }
        };
        if response.trim() == "*" {
            self.tagged(tag, "BAD", "Authentication cancelled");
            return Err(Flow::Continue);
        }
        Ok(response)
    }
}
