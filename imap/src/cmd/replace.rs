//! REPLACE and UID REPLACE (RFC 8508): a message of the selected mailbox (typically a
//! draft) is replaced by a new one, appended to any mailbox, in one command.

use mssante_store::{AuditAction, Store, WriteAudit};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::ReplaceArgs;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn replace(
        &mut self,
        tag: &str,
        ReplaceArgs {
            uid,
            target,
            mailbox,
            message,
        }: ReplaceArgs,
    ) {
        let sel = self.selected.as_ref().expect("selected");
        if sel.read_only {
            // RFC 8508 §3.3: the old message could not be expunged.
            return self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
        }
        let folder_id = sel.folder.id;
        // A delegate's expunge of the old message is in the holder's trail, in its own
        // transaction, as an EXPUNGE's (the new message's APPEND records its own entry).
        let expunge_audit =
            self.audit_event(sel.folder.bal_id, AuditAction::Expunge, &sel.folder.name);
        let old_uid = match uid {
            true => sel.seq_of(target).map(|_| target),
            false => match sel.messages.get(target as usize - 1) {
                Some(m) => Some(m.uid),
                // RFC 9051 §6.4.5: a number beyond EXISTS is a protocol error.
                None => return self.tagged(tag, "BAD", "Invalid message sequence number"),
            },
        };
        let Some(old_uid) = old_uid else {
            return self.tagged(tag, "NO", "[NONEXISTENT] No such message");
        };
        // The new message is checked and stored as APPEND does; the old one stays when that
        // fails (RFC 8508 §3.3).
        let Some((uidvalidity, uids)) = self.append_messages(tag, &mailbox, vec![message]).await
        else {
            return;
        };
        // RFC 8508 §3.4: APPENDUID goes in an untagged OK, before the EXPUNGE.
        self.untagged(format!(
            "OK [APPENDUID {uidvalidity} {}] Replacement stored",
            uids[0]
        ));
        let old = [old_uid];
        let expunge = self.ctx.store.expunge(folder_id, &old);
        let attempted = WriteAudit {
            at_source: expunge_audit.clone(),
            at_target: None,
        };
        match Store::audited(expunge_audit, expunge).await {
            Ok(_) => {
                self.report_changes(true).await;
                self.tagged(tag, "OK", "REPLACE completed");
            }
            Err(e) => {
                self.store_failed(tag, e);
                self.audit_failed_write(attempted, &old);
            }
        }
    }
}
