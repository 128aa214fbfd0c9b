//! NAMESPACE (RFC 2342, RFC 9051 §6.3.10).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn namespace(&mut self, tag: &str) {
        // One personal namespace; "Other users" comes with delegations.
        self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
        self.tagged(tag, "OK", "NAMESPACE completed");
    }
}
