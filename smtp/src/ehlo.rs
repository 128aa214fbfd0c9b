//! EHLO and HELO (RFC 5321 §4.1.1.1) and the extensions we advertise.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::Reply;
use crate::session::{Helo, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn ehlo(&mut self, name: String, extended: bool) {
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction in progress.
        self.txn = None;
        self.helo = Some(Helo { name, extended });
        let hostname = self.ctx.config.hostname.clone();
        if !extended {
            self.reply(Reply::bare(250, hostname));
            return;
        }
        let mut lines = vec![
            hostname,
            "PIPELINING".into(),                                  // RFC 2920
            format!("SIZE {}", self.ctx.config.max_message_size), // RFC 1870
            "8BITMIME".into(),                                    // RFC 6152
            "ENHANCEDSTATUSCODES".into(),                         // RFC 2034
            "SMTPUTF8".into(),                                    // RFC 6531
            "CHUNKING".into(),                                    // RFC 3030
            "DSN".into(),                                         // RFC 3461
        ];
        if self.starttls_available() {
            lines.push("STARTTLS".into()); // RFC 3207
        }
        // RFC 4954 §4 and our policy: no authentication before TLS, none on the MX.
        if self.tls && self.kind.requires_auth() && self.auth.is_none() {
            // RFC 7628 §3 OAUTHBEARER and Google's XOAUTH2, with a PSC token (docs/mssante.md §4).
            let mut auth = String::from("AUTH PLAIN LOGIN");
            if self.ctx.psc.is_some() {
                auth.push_str(" XOAUTH2 OAUTHBEARER");
            }
            // RFC 4422 Appendix A: EXTERNAL only with a usable client certificate (ADR 0029).
            if self.client_cert.is_some() {
                auth.push_str(" EXTERNAL");
            }
            lines.push(auth);
        }
        // RFC 2034 §3: no enhanced status codes in the EHLO response.
        self.reply(Reply::multiline(250, None, lines));
    }

    pub(crate) fn starttls_available(&self) -> bool {
        !self.tls && self.ctx.tls.is_some()
    }
}
