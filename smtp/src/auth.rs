//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, and XOAUTH2 / OAUTHBEARER
//! (RFC 7628) carrying a Pro Santé Connect token when `[psc]` is configured; after TLS only.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{self, Reply};
use crate::session::{Flow, MAX_COMMAND_LINE, Session};

/// What SASL PLAIN carries (RFC 4616 §2): `authzid NUL authcid NUL passwd`.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainCredentials {
    pub authzid: String,
    pub login: String,
    pub password: String,
}

pub fn decode_plain(b64: &str) -> Option<PlainCredentials> {
    let bytes = B64.decode(b64.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('\0');
    let (authzid, login, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || login.is_empty() {
        return None;
    }
    Some(PlainCredentials {
        authzid: authzid.into(),
        login: login.into(),
        password: password.into(),
    })
}

fn decode_b64_text(b64: &str) -> Option<String> {
    String::from_utf8(B64.decode(b64.trim()).ok()?).ok()
}

/// RFC 4954 §4: "*" cancels the exchange.
pub(crate) fn cancelled() -> Reply {
    Reply::new(501, "5.7.0", "Authentication cancelled")
}

/// Same answer whatever the reason: no account enumeration, no hint to a token forger.
pub(crate) fn invalid_credentials() -> Reply {
    Reply::new(535, "5.7.8", "Authentication credentials invalid")
}

pub(crate) fn temporary_failure() -> Reply {
    Reply::new(454, "4.7.0", "Temporary authentication failure")
}

pub(crate) fn bad_encoding() -> Reply {
    Reply::new(501, "5.5.2", "Invalid base64 or SASL message")
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn auth(&mut self, mechanism: String, initial: Option<String>) -> Flow {
        if !self.kind.requires_auth() {
            self.reply(Reply::new(
                503,
                "5.5.1",
                "AUTH not available on this service",
            ));
            return Flow::Continue;
        }
        // RFC 4954 §4 and our policy: never credentials in cleartext.
        if !self.tls {
            self.reply(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
            return Flow::Continue;
        }
        if self.helo.is_none() {
            self.reply(reply::bad_sequence("Send EHLO first"));
            return Flow::Continue;
        }
        if self.auth.is_some() {
            self.reply(reply::bad_sequence("Already authenticated"));
            return Flow::Continue;
        }
        if self.txn.is_some() {
            self.reply(reply::bad_sequence(
                "AUTH not allowed during a mail transaction",
            ));
            return Flow::Continue;
        }
        if let Some(bearer) = mssante_auth::BearerMechanism::from_name(&mechanism)
            && let Some(verifier) = self.ctx.psc.clone()
        {
            return self.sasl_bearer(bearer, &verifier, initial).await;
        }
        if mechanism == "EXTERNAL" {
            return self.sasl_external(initial).await;
        }
        let credentials = match mechanism.as_str() {
            "PLAIN" => self.sasl_plain(initial).await,
            "LOGIN" => self.sasl_login(initial).await,
            _ => Err(Some(Reply::new(
                504,
                "5.5.4",
                "Unrecognized authentication mechanism",
            ))),
        };
        match credentials {
            Ok((login, password)) => self.check_credentials(&login, &password).await,
            Err(Some(r)) => self.reply(r),
            Err(None) => return Flow::Close,
        }
        Flow::Continue
    }

    /// Sends a 334 challenge and reads the client's line. `Err(None)`: connection lost.
    pub(crate) async fn challenge(&mut self, prompt: &str) -> Result<String, Option<Reply>> {
        self.reply(Reply::bare(334, prompt));
        let line = match self.read_line(MAX_COMMAND_LINE, false).await {
            Ok(Some(l)) => l,
            Ok(None) => return Err(Some(reply::line_too_long())),
            Err(_) => return Err(None),
        };
        let line = String::from_utf8(line).map_err(|_| Some(bad_encoding()))?;
        if line.trim() == "*" {
            return Err(Some(cancelled()));
        }
        Ok(line)
    }

    async fn sasl_plain(
        &mut self,
        initial: Option<String>,
    ) -> Result<(String, String), Option<Reply>> {
        let response = match initial {
            // RFC 4954 §4: "=" is an empty initial response.
            Some(r) if r != "=" => r,
            _ => self.challenge("").await?,
        };
        let creds = decode_plain(&response).ok_or_else(|| Some(bad_encoding()))?;
        // Acting as another identity is for delegations (docs/mssante.md §8), not built yet.
        if !creds.authzid.is_empty() && !creds.authzid.eq_ignore_ascii_case(&creds.login) {
            return Err(Some(invalid_credentials()));
        }
        Ok((creds.login, creds.password))
    }

    async fn sasl_login(
        &mut self,
        initial: Option<String>,
    ) -> Result<(String, String), Option<Reply>> {
        let user_b64 = match initial {
            Some(r) => r,
            None => self.challenge("VXNlcm5hbWU6").await?,
        };
        let login = decode_b64_text(&user_b64).ok_or_else(|| Some(bad_encoding()))?;
        let pass_b64 = self.challenge("UGFzc3dvcmQ6").await?;
        let password = decode_b64_text(&pass_b64).ok_or_else(|| Some(bad_encoding()))?;
        Ok((login, password))
    }

    /// XOAUTH2 / OAUTHBEARER: the initial response (or one after an empty 334), the token
    /// checked by `mssante_auth`, the BAL named in the message opened if the identity may.
    async fn sasl_bearer(
        &mut self,
        mechanism: mssante_auth::BearerMechanism,
        verifier: &mssante_auth::PscVerifier,
        initial: Option<String>,
    ) -> Flow {
        let response = match initial {
            Some(r) if r != "=" => r,
            _ => match self.challenge("").await {
                Ok(line) => line,
                Err(Some(r)) => {
                    self.reply(r);
                    return Flow::Continue;
                }
                Err(None) => return Flow::Close,
            },
        };
        let Ok(message) = B64.decode(response.trim()) else {
            self.reply(bad_encoding());
            return Flow::Continue;
        };
        let login =
            mssante_auth::bearer_login(verifier, &self.ctx.store, mechanism, &message).await;
        match login {
            Ok(Ok(done)) => {
                tracing::info!(peer = %self.peer, login = %done.access.bal.address,
                    identity = %done.identity.log_id, via = done.access.origin.as_str(),
                    ?mechanism, "authenticated with a PSC token");
                self.auth = Some(done.access.bal);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            Ok(Err(why)) => {
                tracing::info!(peer = %self.peer, ?mechanism, reason = %why, "authentication failed");
                // RFC 7628 §3.2.2: an error challenge, the client's answer, then the refusal.
                let challenge = B64.encode(mechanism.error_challenge());
                if let Err(None) = self.challenge(&challenge).await {
                    return Flow::Close;
                }
                self.reply(invalid_credentials());
            }
            Err(e) => {
                tracing::error!("authentication lookup failed: {e}");
                self.reply(temporary_failure());
            }
        }
        Flow::Continue
    }

    async fn check_credentials(&mut self, login: &str, password: &str) {
        // Failures slowed then locked per account and address (docs/limits.md).
        let guard = self.ctx.auth_guard.clone();
        if let mssante_net::Admission::Locked { .. } = guard.admit(self.peer.ip(), login) {
            self.reply(temporary_failure());
            return;
        }
        match self.ctx.store.authenticate(login, password).await {
            Ok(Ok(bal)) => {
                guard.succeeded(login);
                tracing::info!(peer = %self.peer, login = %bal.address, "authenticated");
                self.auth = Some(bal);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            Ok(Err(why)) => {
                // Same answer whatever the reason: no account enumeration.
                tracing::info!(peer = %self.peer, login, ?why, "authentication failed");
                let delay = guard.failed(self.peer.ip(), login, self.kind.name());
                tokio::time::sleep(delay).await;
                self.reply(invalid_credentials());
            }
            Err(e) => {
                tracing::error!("authentication lookup failed: {e}");
                self.reply(temporary_failure());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sasl_plain() {
        let b64 = B64.encode("\0a@b.fr\0secret");
        assert_eq!(
            decode_plain(&b64).unwrap(),
            PlainCredentials {
                authzid: "".into(),
                login: "a@b.fr".into(),
                password: "secret".into()
            }
        );
        assert!(decode_plain(&B64.encode("a@b.fr\0secret")).is_none());
        assert!(decode_plain(&B64.encode("\0\0secret")).is_none());
        assert!(decode_plain("not base64!").is_none());
    }
}
