//! APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315 §3),
//! APPENDLIMIT (RFC 7889), CATENATE (RFC 4469, `catenate.rs`).

use mssante_store::{AppendMode, AuditAction, Store, WriteAudit};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::datetime::parse_date_time;
use crate::parse::{AppendArgs, AppendMessage, compact};
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn append(&mut self, tag: &str, AppendArgs { mailbox, messages }: AppendArgs) {
        if let Some((uidvalidity, uids)) = self.append_messages(tag, &mailbox, messages).await {
            self.tagged(
                tag,
                "OK",
                &format!(
                    "[APPENDUID {uidvalidity} {}] APPEND completed",
                    compact(&uids)
                ),
            );
        }
    }

    /// Stores `messages` in `mailbox`, all checked before any is stored, and gives their
    /// UIDVALIDITY and UIDs; `None` once the refusal is answered. APPEND and REPLACE.
    pub(crate) async fn append_messages(
        &mut self,
        tag: &str,
        mailbox: &[u8],
        mut messages: Vec<AppendMessage>,
    ) -> Option<(u32, Vec<u32>)> {
        let Some(name) = self.mailbox_name(mailbox) else {
            return self.refuse(tag, "NO", "Invalid mailbox name encoding");
        };
        let folder = match self.find_folder(&name).await {
            Ok(Some(f)) => f,
            Ok(None) => return self.refuse(tag, "NO", "[TRYCREATE] No such mailbox"),
            Err(e) => return self.store_refused(tag, e),
        };
        // RFC 4314 §4: APPEND needs `i` on the target.
        if !self.require(tag, &folder, "i").await {
            return None;
        }
        let bal_id = folder.bal_id;
        // RFC 4469 §5: CATENATE messages are put together (their URLs checked) first.
        for m in messages.iter_mut() {
            if let Some(parts) = m.catenate.take() {
                match self.catenate(&parts).await {
                    Ok(bytes) => m.bytes = bytes,
                    Err(e) => {
                        self.catenate_failed(tag, e);
                        return None;
                    }
                }
            }
        }
        // Check every message before storing any (RFC 3502 §6: all or nothing).
        let mut dates = Vec::with_capacity(messages.len());
        for m in &messages {
            if m.bytes.is_empty() {
                return self.refuse(tag, "NO", "Empty message");
            }
            if m.bytes.len() > self.ctx.config.max_literal {
                return self.refuse(tag, "NO", "[TOOBIG] Message too big");
            }
            if m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Recent")) {
                return self.refuse(tag, "BAD", "\\Recent cannot be set");
            }
            match &m.date {
                None => dates.push(mssante_store::now()),
                Some(d) => match parse_date_time(d) {
                    Some(t) => dates.push(t),
                    None => return self.refuse(tag, "BAD", "Invalid date-time"),
                },
            }
        }
        // RFC 9208 (OVERQUOTA): refuse before storing anything when the quota would be exceeded.
        // One message is checked by the write itself (one round trip less, ADR 0046);
        // several are checked together first (RFC 3502 §6: all or nothing).
        let single = messages.len() == 1;
        if !single {
            let total: u64 = messages.iter().map(|m| m.bytes.len() as u64).sum();
            match self.ctx.store.over_quota(bal_id, total).await {
                Ok(true) => {
                    // Recorded as a refused single APPEND is ([`Session::audit_failed_write`]).
                    let failed = "failed: OVERQUOTA";
                    self.audit(
                        bal_id,
                        AuditAction::Append,
                        &folder.name,
                        Vec::new(),
                        failed,
                    )
                    .await;
                    return self.refuse(tag, "NO", "[OVERQUOTA] Quota exceeded");
                }
                Ok(false) => {}
                Err(e) => return self.store_refused(tag, e),
            }
        }
        // One message into the mailbox this session has selected read-write: its report
        // of the message would claim \Recent, so the write claims it (ADR 0050).
        let claim = single
            && self
                .selected
                .as_ref()
                .is_some_and(|s| s.folder.id == folder.id && !s.read_only);
        let mut uids = Vec::new();
        let mut uidvalidity = folder.uidvalidity;
        // A delegate's `\Seen` is their own, not the holder's (RFC 4314 §4, ADR 0034): the
        // copy of a reply a secretary saves stays unread for the doctor.
        let reader = self.delegate_seen(bal_id);
        for (m, date) in messages.into_iter().zip(dates) {
            let meta = crate::message::message_meta(&m.bytes);
            // A delegate's APPEND is recorded in the transaction that stores the message.
            let audit = self.audit_event(bal_id, AuditAction::Append, &folder.name);
            let store = &self.ctx.store;
            let mode = AppendMode {
                check_quota: single,
                reader: reader.as_deref(),
                claim_recent: claim,
            };
            let append = store.append_with(folder.id, m.bytes, (&m.flags, date), meta, mode);
            let attempted = WriteAudit {
                at_source: audit.clone(),
                at_target: None,
            };
            match Store::audited(audit, append).await {
                Ok(((v, uid), claimed)) => {
                    uidvalidity = v;
                    uids.push(uid);
                    if let Some(sel) = self.selected.as_mut().filter(|_| claimed.is_some()) {
                        sel.claimed = claimed;
                    }
                }
                Err(e) => {
                    self.store_failed(tag, e);
                    self.audit_failed_write(attempted, &[]);
                    return None;
                }
            }
        }
        Some((uidvalidity, uids))
    }

    fn refuse<R>(&mut self, tag: &str, status: &str, text: &str) -> Option<R> {
        self.tagged(tag, status, text);
        None
    }

    fn store_refused<R>(&mut self, tag: &str, e: mssante_store::StoreError) -> Option<R> {
        self.store_failed(tag, e);
        None
    }
}
