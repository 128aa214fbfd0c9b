//! CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE (RFC 9051 §6.1, §6.2), ENABLE (RFC 5161),
//! ID (RFC 2971).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Flow, Session};

const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// What we advertise depends on TLS and authentication (RFC 9051 §6.1.1, §6.2.3).
    pub(crate) fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = [
            "IMAP4rev2",
            "IMAP4rev1",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "STATUS=SIZE",
            "MULTIAPPEND",
            "BINARY",
            "CHILDREN",
            "UTF8=ACCEPT",
            "SORT",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        caps.push(format!("APPENDLIMIT={}", self.ctx.config.max_literal));
        if self.bal.is_none() {
            if self.tls {
                caps.push("AUTH=PLAIN".into());
            } else {
                // RFC 9051 §6.2.3 / §11.1: no cleartext passwords.
                caps.push("STARTTLS".into());
                caps.push("LOGINDISABLED".into());
            }
        }
        caps
    }

    pub(crate) fn capability(&mut self, tag: &str) {
        let caps = self.capabilities().join(" ");
        self.untagged(format!("CAPABILITY {caps}"));
        self.tagged(tag, "OK", "CAPABILITY completed");
    }

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
                Flow::Continue
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, "TLS handshake failed: {e}");
                Flow::Close
            }
        }
    }

    pub(crate) async fn login(&mut self, tag: &str, user: &[u8], password: &[u8]) {
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

    async fn check_login(&mut self, tag: &str, user: &str, password: &str) {
        match self.ctx.store.authenticate(user, password).await {
            Ok(Ok(bal)) => {
                tracing::info!(peer = %self.peer, listener = ?self.kind, login = %bal.address, "IMAP login");
                self.bal = Some(bal);
                let caps = self.capabilities().join(" ");
                self.tagged(tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
            }
            Ok(Err(why)) => {
                tracing::info!(peer = %self.peer, user, ?why, "IMAP login failed");
                self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            }
            Err(e) => {
                tracing::error!("login lookup failed: {e}");
                self.tagged(tag, "NO", "[UNAVAILABLE] Temporary authentication failure");
            }
        }
    }

    /// AUTHENTICATE PLAIN (RFC 9051 §6.2.2, SASL-IR RFC 4959).
    pub(crate) async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<String>,
    ) -> Flow {
        if mechanism != "PLAIN" {
            self.tagged(tag, "NO", "Unsupported authentication mechanism");
            return Flow::Continue;
        }
        if !self.tls {
            self.tagged(
                tag,
                "NO",
                "[PRIVACYREQUIRED] Authentication is disabled before STARTTLS",
            );
            return Flow::Continue;
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
                        return Flow::Continue;
                    }
                    Err(_) => return Flow::Close,
                }
            }
        };
        if response.trim() == "*" {
            self.tagged(tag, "BAD", "Authentication cancelled");
            return Flow::Continue;
        }
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
            [authz, user, password] if authz.is_empty() || authz.eq_ignore_ascii_case(user) => {
                let (user, password) = (user.to_string(), password.to_string());
                self.check_login(tag, &user, &password).await;
            }
            _ => self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed"),
        }
        Flow::Continue
    }

    pub(crate) fn enable(&mut self, tag: &str, caps: &[String]) {
        let mut enabled = Vec::new();
        for cap in caps {
            let newly = match cap.as_str() {
                "CONDSTORE" => !std::mem::replace(&mut self.enabled.condstore, true),
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                "QRESYNC" => {
                    self.enabled.condstore = true;
                    !std::mem::replace(&mut self.enabled.qresync, true)
                }
                "UTF8=ACCEPT" => !std::mem::replace(&mut self.enabled.utf8, true),
                "IMAP4REV2" => !std::mem::replace(&mut self.enabled.rev2, true),
                _ => false,
            };
            if newly {
                enabled.push(if cap == "IMAP4REV2" {
                    "IMAP4rev2".to_string()
                } else {
                    cap.clone()
                });
            }
        }
        self.untagged(
            format!(
                "ENABLED{}",
                enabled.iter().map(|c| format!(" {c}")).collect::<String>()
            )
            .trim_end(),
        );
        self.tagged(tag, "OK", "ENABLE completed");
    }

    pub(crate) fn id(&mut self, tag: &str) {
        self.untagged(format!(
            "ID (\"name\" \"mssante\" \"version\" \"{}\")",
            env!("CARGO_PKG_VERSION")
        ));
        self.tagged(tag, "OK", "ID completed");
    }
}
