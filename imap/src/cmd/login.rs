//! LOGIN (RFC 9051 §6.2.3); the password check is shared with AUTHENTICATE.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::LoginArgs;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn login(&mut self, tag: &str, LoginArgs { user, password }: &LoginArgs) {
        if !self.tls {
            // RFC 9051 §6.2.3: LOGINDISABLED.
            self.tagged(
                tag,
                "NO",
                "[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS",
            );
            return;
        }
        let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
        else {
            self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            return;
        };
        self.check_login(tag, user, password, None).await;
    }

    /// A password login; with `authz` (PLAIN's authorization id, RFC 4616) the session opens
    /// that BAL when it is delegated to `user` (ADR 0016), with the delegation's rights.
    pub(crate) async fn check_login(
        &mut self,
        tag: &str,
        user: &str,
        password: &str,
        authz: Option<&str>,
    ) {
        // Failures slowed then locked per account and address (docs/limits.md).
        let guard = self.ctx.auth_guard.clone();
        if let mssante_net::Admission::Locked { .. } = guard.admit(self.peer.ip(), user) {
            self.tagged(
                tag,
                "NO",
                "[UNAVAILABLE] Too many failures, try again later",
            );
            return;
        }
        match self.ctx.store.authenticate(user, password).await {
            Ok(Ok(bal)) => {
                guard.succeeded(user);
                let opened = match authz {
                    None => Ok(Some(bal.clone())),
                    Some(target) => self.ctx.store.find_bal(target).await,
                };
                let Ok(Some(opened)) = opened else {
                    tracing::info!(peer = %self.peer, user, ?authz, "IMAP login as another BAL refused: no such BAL");
                    return self.tagged(tag, "NO", "[AUTHORIZATIONFAILED] Not authorized");
                };
                self.bal = Some(opened);
                match self.start_access(Some(&bal), None, authz.is_some()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(peer = %self.peer, user, ?authz, "IMAP login as another BAL refused: no delegation");
                        self.bal = None;
                        return self.tagged(tag, "NO", "[AUTHORIZATIONFAILED] Not authorized");
                    }
                    Err(e) => {
                        tracing::error!("access lookup failed: {e}");
                        self.bal = None;
                        return self.tagged(
                            tag,
                            "NO",
                            "[UNAVAILABLE] Temporary authentication failure",
                        );
                    }
                }
                tracing::info!(peer = %self.peer, listener = ?self.kind, login = %bal.address, ?authz, "IMAP login");
                let caps = self.capabilities().join(" ");
                self.tagged(tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
            }
            Ok(Err(why)) => {
                tracing::info!(peer = %self.peer, user, ?why, "IMAP login failed");
                tokio::time::sleep(guard.failed(self.peer.ip(), user, "imap")).await;
                self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            }
            Err(e) => {
                tracing::error!("login lookup failed: {e}");
                self.tagged(tag, "NO", "[UNAVAILABLE] Temporary authentication failure");
            }
        }
    }
}
