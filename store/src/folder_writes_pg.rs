//! IMAP writes on PostgreSQL in one statement each (ADR 0043), as deliveries are
//! (`delivery_pg.rs`): a statement outside a transaction block is its own transaction, so
//! the write costs one round trip and one commit instead of BEGIN, a statement per row and
//! COMMIT. The rows written are exactly those of the transaction paths
//! (`folder_messages.rs::append_in`, `folder.rs`'s `ClaimRecent`), which SQLite keeps (its
//! dialect has no data-modifying CTEs) and which PostgreSQL still uses for a delegate's
//! APPEND (the audit entry is read then chained) and for `mssante migrate`.

use sqlx::Row;

use crate::blob::PreparedBlob;
use crate::delivery::MessageMeta;
use crate::error::{Result, StoreError};
use crate::{Store, now, retrying_conflicts};

/// APPEND: the blob, the `messages` row, the folder's next UID and modseq (under its row
/// lock, RFC 9051 §2.3.1.1, RFC 7162 §3.1.1), the `mailbox_messages` row and the NOTIFY to
/// other nodes. The folder row is taken before the `mailbox_messages` insert whose trigger
/// updates the BAL's usage row (`mm` reads `mb`), the order of every write (ADR 0040). A
/// folder that is gone fails the whole statement (a division by zero) rather than leaving
/// a message row without a copy.
const APPEND: &str = "WITH b AS (INSERT INTO blobs (hash, size, created_at) VALUES ($1, $2, $3) \
     ON CONFLICT (hash) DO NOTHING), \
     d AS (INSERT INTO blob_data (hash, data) VALUES ($1, $4) ON CONFLICT (hash) DO NOTHING), \
     m AS (INSERT INTO messages (blob_hash, size, received_at, mail_from, source, message_id_hdr, \
     subject, x_mss_nil) VALUES ($1, $2, $3, '', 'imap', $5, $6, $7) RETURNING id), \
     mb AS (UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 \
     WHERE id = $8 RETURNING id, uidvalidity, uidnext - 1 AS uid, highestmodseq), \
     mm AS (INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate, \
     saved_at) SELECT mb.id, mb.uid, m.id, mb.highestmodseq, $9, $10, $3 FROM mb, m), \
     n AS (SELECT pg_notify($11, $12) FROM mb) \
     SELECT (SELECT uidvalidity FROM mb) AS uidvalidity, (SELECT uid FROM mb) AS uid, \
     (SELECT count(*) FROM n)::BIGINT AS notified, \
     (1 / (SELECT count(*) FROM mb)::INT)::BIGINT AS folder_found";

/// The \Recent claim (RFC 3501 §2.3.2), see [`Store::claim_recent`]. The folder row is
/// locked (and the claim committed, with its fsync) only when it has unclaimed messages:
/// `FOR UPDATE` re-reads the newest row version after waiting for a concurrent claim and
/// skips it when that claim took everything; the `UPDATE` then writes the row it locked.
/// With nothing to claim, UIDNEXT of the statement's snapshot is the answer: every message
/// the caller knows of was read before this statement, so its UID is below it.
const CLAIM_RECENT: &str = "WITH old AS (SELECT id, first_recent_uid FROM mailboxes \
     WHERE id = $1 AND first_recent_uid < uidnext FOR UPDATE), \
     claimed AS (UPDATE mailboxes m SET first_recent_uid = m.uidnext FROM old \
     WHERE m.id = old.id RETURNING old.first_recent_uid) \
     SELECT COALESCE((SELECT first_recent_uid FROM claimed), uidnext) AS first \
     FROM mailboxes WHERE id = $1";

/// What [`Store::append_pg`] stores.
pub(crate) struct AppendPg<'a> {
    pub folder_id: i64,
    pub hash: &'a str,
    pub size: i64,
    pub bytes: &'a [u8],
    pub flags: &'a str,
    pub internaldate: i64,
    pub meta: &'a MessageMeta,
}

impl Store {
    /// APPEND in one statement; returns (uidvalidity, uid). The caller tells local
    /// sessions; other nodes are told by the statement's NOTIFY.
    pub(crate) async fn append_pg(&self, a: &AppendPg<'_>) -> Result<(u32, u32)> {
        let row = retrying_conflicts(|| async {
            let q = sqlx::query(APPEND)
                .bind(a.hash)
                .bind(a.size)
                .bind(now())
                .bind(a.bytes)
                .bind(a.meta.message_id.as_deref())
                .bind(a.meta.subject.as_deref())
                .bind(a.meta.x_mss_nil.as_deref())
                .bind(a.folder_id)
                .bind(a.flags)
                .bind(a.internaldate)
                .bind(crate::notify::CHANNEL)
                .bind(format!("{}:{}", self.node_tag(), a.folder_id));
            // The tagged OK waits for the commit, not for the first row (`fetch_committed`).
            crate::db::fetch_committed(q, self.pool())
                .await
                .and_then(|row| row.ok_or(sqlx::Error::RowNotFound))
                .map_err(folder_gone)
        })
        .await?;
        let uidvalidity: i64 = row.try_get("uidvalidity")?;
        let uid: i64 = row.try_get("uid")?;
        Ok((uidvalidity as u32, uid as u32))
    }

    /// [`Store::claim_recent`] on PostgreSQL: one round trip, claim or not.
    pub(crate) async fn claim_recent_pg(&self, folder_id: i64) -> Result<u32> {
        let row = retrying_conflicts(|| async {
            crate::db::fetch_committed(sqlx::query(CLAIM_RECENT).bind(folder_id), self.pool())
                .await
                .map_err(StoreError::Database)
        })
        .await?
        .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        Ok(row.try_get::<i64, _>("first")? as u32)
    }
}

/// The statement's division by zero is a folder that no longer exists.
fn folder_gone(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("22012") => {
            StoreError::NotFound("folder".into())
        }
        _ => StoreError::Database(e),
    }
}

/// The body of a prepared blob: always inline on PostgreSQL (ADR 0023).
pub(crate) fn inline_bytes(blob: &PreparedBlob) -> Option<&[u8]> {
    match blob {
        PreparedBlob::Inline(bytes) => Some(bytes.as_slice()),
        PreparedBlob::File => None,
    }
}
