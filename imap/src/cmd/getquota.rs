//! GETQUOTA and GETQUOTAROOT (RFC 9208 §4.2, §4.3), STORAGE resource only. Each BAL has at
//! most one quota root, named "", covering all its folders; a BAL without a quota has none.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// `QUOTA "" (STORAGE used limit)` in KiB (RFC 9208 §5.1), if the BAL has a quota.
    pub(super) async fn quota_line(&mut self) -> mssante_store::Result<Option<String>> {
        let bal_id = self.bal.as_ref().expect("authenticated").id;
        let (used, quota) = self.ctx.store.bal_usage(bal_id).await?;
        Ok(quota.map(|q| format!("QUOTA \"\" (STORAGE {} {})", used.div_ceil(1024), q / 1024)))
    }

    pub(crate) async fn get_quota(&mut self, tag: &str, root: &[u8]) {
        if !root.is_empty() {
            return self.tagged(tag, "NO", "[NONEXISTENT] No such quota root");
        }
        match self.quota_line().await {
            Ok(Some(l)) => {
                self.untagged(l);
                self.tagged(tag, "OK", "GETQUOTA completed");
            }
            Ok(None) => self.tagged(tag, "NO", "[NONEXISTENT] No quota set for this mailbox"),
            Err(e) => self.store_failed(tag, e),
        }
    }
}
