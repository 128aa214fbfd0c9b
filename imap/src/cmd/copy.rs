//! COPY and UID COPY (RFC 9051 §6.4.7; COPYUID RFC 4315 §3). MOVE (`move.rs`) shares
//! the handler.

use mssante_store::Store;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::{CopyArgs, compact};
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn copy(&mut self, tag: &str, args: &CopyArgs) {
        self.copy_or_move(tag, args, false).await
    }

    /// COPY, or MOVE when `is_move` (RFC 6851 §3.3: same responses plus the expunges).
    pub(crate) async fn copy_or_move(
        &mut self,
        tag: &str,
        CopyArgs { uid, set, mailbox }: &CopyArgs,
        is_move: bool,
    ) {
        let uid = *uid;
        if !uid && self.invalid_seqs(set) {
            return self.tagged(tag, "BAD", "Invalid message sequence number");
        }
        let Some(name) = self.mailbox_name(mailbox) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        let sel = self.selected.as_ref().expect("selected");
        if is_move && sel.read_only {
            return self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        }
        let (from, read_only) = (sel.folder.id, sel.read_only);
        let target = match self.find_folder(&name).await {
            Ok(Some(f)) => f,
            // RFC 9051 §6.4.7: TRYCREATE tells the client the mailbox could be created.
            Ok(None) => return self.tagged(tag, "NO", "[TRYCREATE] No such mailbox"),
            Err(e) => return self.store_failed(tag, e),
        };
        // RFC 4314 §4: COPY and MOVE need `i` on the target.
        if !self.require(tag, &target, "i").await {
            return;
        }
        let uids = self.resolve(set, uid);
        if uids.is_empty() {
            return self.tagged(tag, "OK", "Nothing to do");
        }
        // A COPY within the mailbox selected read-write: its report of the copies would
        // claim \Recent, so the write claims it (ADR 0050).
        let claim = !is_move && target.id == from && !read_only;
        // A delegate's copy is recorded in the write's transaction, in the trail of each
        // BAL it touches (`copy_audit`).
        let audit = self.copy_audit(&target, &String::from_utf8_lossy(mailbox), is_move);
        let store = &self.ctx.store;
        let copy = async {
            match claim {
                true => store.copy_claiming_recent(from, &uids, target.id).await,
                false => store
                    .copy_messages(from, &uids, target.id, is_move)
                    .await
                    .map(|pairs| (pairs, None)),
            }
        };
        let attempted = audit.clone();
        let copied = Store::audited_write(audit, copy).await;
        let pairs = match copied {
            Ok((pairs, claimed)) => {
                if let Some(sel) = self.selected.as_mut().filter(|_| claimed.is_some()) {
                    sel.claimed = claimed;
                }
                pairs
            }
            Err(e) => {
                self.store_failed(tag, e);
                return self.audit_failed_write(attempted, &uids);
            }
        };
        let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let dst: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let code = format!(
            "[COPYUID {} {} {}]",
            target.uidvalidity,
            compact(&src),
            compact(&dst)
        );
        if is_move {
            // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK.
            self.untagged(format!("OK {code} Moved"));
            self.report_changes(true).await;
            self.tagged(tag, "OK", "MOVE completed");
        } else {
            self.tagged(tag, "OK", &format!("{code} COPY completed"));
        }
    }
}
