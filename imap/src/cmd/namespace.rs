//! NAMESPACE (RFC 2342 §5, RFC 9051 §6.3.10).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn namespace(&mut self, tag: &str) {
        // The personal namespace, and the BALs delegated to this session under the
        // other-users one (ADR 0016); no shared namespace.
        self.untagged(format!(
            "NAMESPACE ((\"\" \"/\")) ((\"{}/\" \"/\")) NIL",
            crate::state::OTHER_USERS
        ));
        self.tagged(tag, "OK", "NAMESPACE completed");
    }
}
