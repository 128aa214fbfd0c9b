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
        self.check_login(tag, user, password).await;
    }

    pub(crate) async fn check_login(&mut self, tag: &str, user: &str, password: &str) {
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
                tracing::info!(peer = %self.peer, listener = ?self.kind, login = %bal.address, "IMAP login");
                self.bal = Some(bal);
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
