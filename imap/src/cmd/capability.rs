//! CAPABILITY (RFC 9051 §6.1.1): what we advertise depends on TLS and authentication.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

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
            "THREAD=REFERENCES",
            "ESORT",
            "PARTIAL",
            "COMPRESS=DEFLATE",
            "OBJECTID",
            "SAVEDATE",
            "REPLACE",
            "PREVIEW",
            "CATENATE",
            "CONTEXT=SEARCH",
            "CONTEXT=SORT",
            "NOTIFY",
            "UNAUTHENTICATE",
            "ACL",
            "RIGHTS=texk",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        caps.push(format!("APPENDLIMIT={}", self.ctx.config.max_literal));
        if self.bal.is_none() {
            if self.tls {
                caps.push("AUTH=PLAIN".into());
                caps.extend(self.bearer_capabilities().iter().map(|c| c.to_string()));
                if self.client_cert.is_some() {
                    // RFC 4422 Appendix A: offered only when a usable certificate was presented.
                    caps.push("AUTH=EXTERNAL".into());
                }
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
}
