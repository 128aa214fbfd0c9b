//! Accepting a message: one blob, one `messages` row, one `recipients` row per recipient,
//! a `mailbox_messages` row per local recipient and queue state for remote ones.
//!
//! Durability contract (what lets SMTP say "250 OK"): [`Store::deliver`] returns only after
//! the blob is fsynced and the transaction holding every row is committed. If either step
//! fails nothing is visible: rows are all-or-nothing, and a blob without rows is an orphan
//! that no folder references.

use std::collections::HashSet;

use mssante_mail::dsn::{Action, Notify, NotifyEvent};
use sqlx::Row;

use crate::Store;
use crate::address::Address;
use crate::bal::{Bal, BalStatus};
use crate::blob::{PreparedBlob, blob_hash, record_blob};
use crate::error::{Result, StoreError};
use crate::group_commit::{Txn, TxnFuture, Write};
use crate::queue::notify_wants;
use crate::tracking::record_tracking;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Received from another MTA on the MX listener.
    Mx,
    /// Submitted by an authenticated client.
    Submission,
    /// Generated here: a delivery status notification (RFC 3464) to a sender.
    Report,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Mx => "mx",
            Source::Submission => "submission",
            Source::Report => "report",
        }
    }
}

/// RFC 3461 §4.3 RET parameter (the mail vocabulary's, re-exported for the store's callers).
pub use mssante_mail::dsn::Ret;

/// Header fields read once at the edge (the protocol crate parses; the store records).
#[derive(Clone, Debug, Default)]
pub struct MessageMeta {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub x_mss_nil: Option<String>,
    /// What a DSN or MDN that this message is says about messages we sent (docs/mssante.md §6).
    pub tracking: Vec<crate::tracking::TrackingReport>,
}

/// Where a recipient's copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcptDisposition {
    /// Into the INBOX of a local BAL.
    Local { bal_id: i64 },
    /// Into the outbound queue.
    Remote,
}

#[derive(Clone, Debug)]
pub struct RecipientSpec {
    pub address: Address,
    /// RFC 3461 §4.2 ORCPT, as `addr-type;address` with the xtext decoded.
    pub orcpt: Option<String>,
    /// RFC 3461 §4.1 NOTIFY; `None` when the client gave none (the default then applies).
    pub notify: Option<Notify>,
    pub disposition: RcptDisposition,
}

#[derive(Clone, Debug)]
pub struct IncomingMessage {
    /// The whole message as stored (trace header included).
    pub raw: Vec<u8>,
    /// Envelope sender; empty for the null sender `<>`.
    pub mail_from: String,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub source: Source,
    pub auth_bal_id: Option<i64>,
    pub meta: MessageMeta,
    pub recipients: Vec<RecipientSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub message_id: i64,
    pub blob_hash: String,
    pub delivered_local: usize,
    pub queued_remote: usize,
}

/// What RCPT TO finds for an address.
#[derive(Clone, Debug)]
pub enum RcptLookup {
    /// A BAL of a local domain (whatever its status: the caller decides what to answer),
    /// and whether it is over its quota already (RFC 9208: read with the BAL, in the same
    /// round trip to the database).
    Local { bal: Bal, over_quota: bool },
    /// A local domain, but no such BAL.
    UnknownLocal,
    /// Not one of our domains.
    NotLocal,
}

impl Store {
    pub async fn lookup_recipient(&self, address: &Address) -> Result<RcptLookup> {
        // The BAL first: a BAL exists only in a local domain, so the common case (mail for
        // one of our BALs) costs one query; the domain is asked only when there is none.
        if let Some((bal, over_quota)) = self.find_bal_and_fullness(address).await? {
            // A removed BAL's address stays reserved but names no mailbox any more (ADR 0033).
            if bal.status == crate::BalStatus::Closed
                && self.bal_removed_at(bal.id).await?.is_some()
            {
                return Ok(RcptLookup::UnknownLocal);
            }
            return Ok(RcptLookup::Local { bal, over_quota });
        }
        if let Some(bal) = self.alias_target(address).await? {
            let over_quota = self.over_quota(bal.id, 0).await?;
            return Ok(RcptLookup::Local { bal, over_quota });
        }
        Ok(match self.is_local_domain(address.domain()).await? {
            true => RcptLookup::UnknownLocal,
            false => RcptLookup::NotLocal,
        })
    }

    /// Stores a message durably for all its recipients. See the module documentation.
    /// On SQLite, concurrent deliveries share one commit (group commit, `group_commit.rs`).
    pub async fn deliver(&self, mut msg: IncomingMessage) -> Result<DeliveryReceipt> {
        if msg.recipients.is_empty() {
            return Err(StoreError::Invalid(
                "a message needs at least one recipient".into(),
            ));
        }
        let raw = std::mem::take(&mut msg.raw);
        let hash = blob_hash(&raw);
        let size = raw.len() as i64;
        let blob = self.prepare_blob(&hash, raw).await?;
        let prepared = PreparedMessage {
            msg,
            hash,
            size,
            blob,
        };
        // SQLite: shared commits; PostgreSQL: one statement per message (`delivery_pg.rs`).
        let (receipt, inboxes) = match &self.inner.group_commit {
            Some(batcher) => batcher.submit(prepared).await?,
            None => self.insert_message_pg(&prepared).await?,
        };
        // Committed: this node's sessions now, other nodes through the outbox (ADR 0054).
        for inbox in inboxes {
            self.folder_committed(inbox);
        }
        Ok(receipt)
    }

    /// Number of stored messages (one per accepted message, whatever its recipients).
    pub async fn message_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM messages")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}

/// A message whose body is ready (in memory for the database, or durable as a file),
/// waiting for its rows.
pub(crate) struct PreparedMessage {
    pub msg: IncomingMessage,
    pub hash: String,
    pub size: i64,
    pub blob: PreparedBlob,
}

impl Write for PreparedMessage {
    type Output = (DeliveryReceipt, Vec<i64>);
    fn run<'a>(&'a self, txn: &'a mut Txn) -> TxnFuture<'a, Self::Output> {
        Box::pin(insert_message(txn, self, crate::now()))
    }
}

/// The rows of one accepted message, inside the caller's transaction. Returns the receipt
/// and the INBOX folders that changed (notified after commit).
pub(crate) async fn insert_message(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    p: &PreparedMessage,
    t: i64,
) -> Result<(DeliveryReceipt, Vec<i64>)> {
    let (msg, hash, size) = (&p.msg, &p.hash, p.size);
    // The first statement is a write, so on SQLite the transaction takes the write lock at
    // once and never has to upgrade a read snapshot.
    record_blob(txn, hash, size, &p.blob).await?;
    let row = sqlx::query(
        "INSERT INTO messages (blob_hash, size, received_at, mail_from, envid, ret, source, auth_bal_id, \
         message_id_hdr, subject, x_mss_nil) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(hash)
    .bind(size)
    .bind(t)
    .bind(&msg.mail_from)
    .bind(msg.envid.clone())
    .bind(msg.ret.map(Ret::as_str))
    .bind(msg.source.as_str())
    .bind(msg.auth_bal_id)
    .bind(msg.meta.message_id.clone())
    .bind(msg.meta.subject.clone())
    .bind(msg.meta.x_mss_nil.clone())
    .fetch_one(&mut **txn)
    .await?;
    let message_id: i64 = row.try_get("id")?;

    let mut delivered_to = HashSet::new();
    let mut inboxes = Vec::new();
    let mut queued_remote = 0;
    for rcpt in &msg.recipients {
        let (status, bal_id, next_attempt, report_due) = match rcpt.disposition {
            RcptDisposition::Local { bal_id } => {
                // Two addresses may lead to one BAL: one copy per BAL.
                if delivered_to.insert(bal_id) {
                    inboxes.push(append_to_inbox(txn, bal_id, message_id, size, t).await?);
                }
                // RFC 3461 §5.2.1: final delivery with NOTIFY=SUCCESS earns `delivered`.
                let success = notify_wants(rcpt.notify, &msg.mail_from, NotifyEvent::Success);
                (
                    "delivered",
                    Some(bal_id),
                    None,
                    success.then_some(Action::Delivered),
                )
            }
            RcptDisposition::Remote => {
                queued_remote += 1;
                ("queued", None, Some(t), None)
            }
        };
        sqlx::query(
            "INSERT INTO recipients (message_id, address, orcpt, notify, bal_id, status, attempts, \
             next_attempt, updated_at, dsn_status, report_due) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10)",
        )
        .bind(message_id)
        .bind(rcpt.address.as_str())
        .bind(rcpt.orcpt.clone())
        .bind(rcpt.notify.map(|n| n.to_string()))
        .bind(bal_id)
        .bind(status)
        .bind(next_attempt)
        .bind(t)
        .bind((status == "delivered").then_some("2.0.0"))
        .bind(report_due.map(Action::as_str))
        .execute(&mut **txn)
        .await?;
    }
    record_tracking(txn, &msg.meta.tracking, message_id, t).await?;
    let receipt = DeliveryReceipt {
        message_id,
        blob_hash: hash.clone(),
        delivered_local: delivered_to.len(),
        queued_remote,
    };
    Ok((receipt, inboxes))
}

/// Appends a message to a BAL's INBOX: takes the next UID and modseq (RFC 9051 §2.3.1.1,
/// RFC 7162 §3.1.1) in the same transaction, so concurrent deliveries never share a UID,
/// and counts its `size` bytes in the BAL's usage (ADR 0049: the writer keeps the counter).
async fn append_to_inbox(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    message_id: i64,
    size: i64,
    internaldate: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 \
         WHERE bal_id = $1 AND name = 'INBOX' RETURNING id, uidnext - 1 AS uid, highestmodseq",
    )
    .bind(bal_id)
    .fetch_optional(&mut **txn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("INBOX of BAL #{bal_id}")))?;
    let inbox_id: i64 = row.try_get("id")?;
    sqlx::query(
        "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate, saved_at) \
         VALUES ($1, $2, $3, $4, '', $5, $5)",
    )
    .bind(inbox_id)
    .bind(row.try_get::<i64, _>("uid")?)
    .bind(message_id)
    .bind(row.try_get::<i64, _>("highestmodseq")?)
    .bind(internaldate)
    .execute(&mut **txn)
    .await?;
    sqlx::query("UPDATE bals SET used_bytes = used_bytes + $1 WHERE id = $2")
        .bind(size)
        .bind(bal_id)
        .execute(&mut **txn)
        .await?;
    Ok(inbox_id)
}

/// Whether mail for this BAL is accepted, and if not the reason to give the sender.
pub fn accepts_mail(bal: &Bal) -> std::result::Result<(), &'static str> {
    match bal.status {
        BalStatus::Active => Ok(()),
        BalStatus::Suspended => Err("mailbox suspended"),
        BalStatus::Closed => Err("mailbox closed"),
    }
}
