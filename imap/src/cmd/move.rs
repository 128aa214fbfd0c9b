//! MOVE and UID MOVE (RFC 6851): COPY then expunge of the source, in one store
//! transaction; the handler is shared with COPY (`copy.rs`).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::CopyArgs;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn move_messages(&mut self, tag: &str, args: &CopyArgs) {
        self.copy_or_move(tag, args, true).await
    }
}
