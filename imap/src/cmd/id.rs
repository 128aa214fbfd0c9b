//! ID (RFC 2971): we say who we are; what the client says is not used.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn id(&mut self, tag: &str) {
        self.untagged(format!(
            "ID (\"name\" \"mssante\" \"version\" \"{}\")",
            env!("CARGO_PKG_VERSION")
        ));
        self.tagged(tag, "OK", "ID completed");
    }
}
