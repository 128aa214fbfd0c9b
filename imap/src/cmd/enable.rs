//! ENABLE (RFC 5161; CONDSTORE and QRESYNC RFC 7162 §3.2.3, UTF8=ACCEPT RFC 6855,
//! IMAP4rev2 RFC 9051 §6.3.1).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
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
}
