//! IDLE (RFC 2177, RFC 9051 §6.3.13): changes are pushed as they happen.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::access::AccessCheck;
use crate::session::{Flow, Session};

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn idle(&mut self, tag: &str) -> Flow {
        self.wbuf.extend_from_slice(b"+ idling\r\n");
        loop {
            // ADR 0016: a revocation wakes IDLE (`wait_for_change_or_input`) and ends it.
            if !matches!(self.check_access().await, AccessCheck::Unchanged) {
                self.untagged("BYE [NOPERM] Access to this mailbox was revoked");
                return Flow::Close;
            }
            if self.selected.is_some() {
                self.report_selected(true).await;
                self.report_context_updates().await;
            }
            self.report_notify().await;
            match self.wait_for_change_or_input().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) => return Flow::Close,
            }
            if !self.rbuf.contains(&b'\n') {
                continue;
            }
            return match self.read_line(false).await {
                Ok(Some(line)) if line.eq_ignore_ascii_case(b"DONE") => {
                    self.tagged(tag, "OK", "IDLE terminated");
                    Flow::Continue
                }
                Ok(_) => {
                    self.tagged(tag, "BAD", "Expected DONE");
                    Flow::Continue
                }
                Err(_) => Flow::Close,
            };
        }
    }
}
