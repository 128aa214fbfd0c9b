//! GETQUOTAROOT (RFC 9208 §4.3): the quota root of a mailbox (see `getquota.rs`).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn get_quota_root(&mut self, tag: &str, mailbox: &[u8]) {
        let Some(folder) = self.existing_folder(tag, mailbox).await else {
            return;
        };
        let line = match self.quota_line().await {
            Ok(l) => l,
            Err(e) => return self.store_failed(tag, e),
        };
        let mut root = b"QUOTAROOT ".to_vec();
        root.extend(self.wire_name(&folder.name));
        if line.is_some() {
            root.extend_from_slice(b" \"\"");
        }
        self.untagged_bytes(&root);
        if let Some(l) = line {
            self.untagged(l);
        }
        self.tagged(tag, "OK", "GETQUOTAROOT completed");
    }
}
