//! A folder's counters and messages as one read saw them (RFC 9051 §2.3.1.2, RFC 7162
//! CHANGEDSINCE/QRESYNC): what a session's view is built from at SELECT and brought up to
//! date with, shared or as a delegate sees it (ADR 0034). Split from `folder_messages.rs`,
//! which keeps the writes.

use sqlx::Row;

use crate::Store;
use crate::delegate_seen::{SELECT_AS_DELEGATE, as_delegate, shared_and_delegate};
use crate::error::{Result, StoreError};
use crate::flags::flags_from_text;
use crate::group_commit::Txn;
use crate::message_ref::MessageRef;

/// A folder as one read transaction saw it: what a session's view is built from and brought
/// up to date with. Every message changed after the counters' HIGHESTMODSEQ is left out and
/// every one at or below it is in, so a session that takes this modseq as known never
/// misses a change nor learns of a message after a higher UID (RFC 9051 §2.3.1.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderSnapshot {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    /// By UID: all messages, or those changed after the modseq asked.
    pub messages: Vec<MessageRef>,
    /// UIDs expunged after the modseq asked (empty for a whole-folder snapshot).
    pub vanished: Vec<u32>,
}

impl Store {
    /// The whole folder as a session selects it (RFC 9051 §6.3.2): counters and every
    /// message, from one snapshot (see [`FolderSnapshot`]).
    pub async fn folder_snapshot(&self, folder_id: i64) -> Result<FolderSnapshot> {
        self.snapshot_of(folder_id, None, None).await
    }

    /// Messages changed and UIDs expunged after `modseq` (RFC 7162 CHANGEDSINCE / QRESYNC),
    /// with the counters, from one snapshot (see [`FolderSnapshot`]).
    pub async fn changes_since(&self, folder_id: i64, modseq: u64) -> Result<FolderSnapshot> {
        self.snapshot_of(folder_id, Some(modseq), None).await
    }

    /// [`Store::folder_snapshot`] (`since` `None`) or [`Store::changes_since`] as `delegate`
    /// sees the folder when `Some`: their own `\Seen`, and a message changed for them when
    /// its shared flags or their `\Seen` changed (ADR 0034).
    pub async fn snapshot_as(
        &self,
        folder_id: i64,
        since: Option<u64>,
        delegate: Option<&str>,
    ) -> Result<FolderSnapshot> {
        self.snapshot_of(folder_id, since, delegate).await
    }

    /// The counters, the messages (all, or those changed after `since`) and the expunged
    /// UIDs, from one snapshot: read at two moments, a message could be listed as changed by
    /// the first read and as expunged by the next, and a session would then bring it back
    /// mid-list after reporting its expunge (issue 11).
    async fn snapshot_of(
        &self,
        folder_id: i64,
        since: Option<u64>,
        delegate: Option<&str>,
    ) -> Result<FolderSnapshot> {
        match delegate {
            None => self.shared_snapshot(folder_id, since).await,
            Some(reader) => self.delegate_snapshot(folder_id, since, reader).await,
        }
    }

    /// [`Store::snapshot_of`] in one statement, which sees one snapshot on both engines
    /// (PostgreSQL's READ COMMITTED takes one per statement) and costs one round trip to
    /// PostgreSQL instead of a transaction's five (ADR 0040).
    async fn shared_snapshot(&self, folder_id: i64, since: Option<u64>) -> Result<FolderSnapshot> {
        let rows = sqlx::query(
            "SELECT CAST(0 AS BIGINT) AS part, uidvalidity AS a, uidnext AS b, highestmodseq AS c, \
             '' AS flags FROM mailboxes WHERE id = $1 \
             UNION ALL SELECT 1, uid, modseq, 0, flags FROM mailbox_messages \
             WHERE mailbox_id = $1 AND modseq > $2 \
             UNION ALL SELECT 2, uid, 0, 0, '' FROM expunged \
             WHERE mailbox_id = $1 AND modseq > $2 AND $3 = 1 \
             ORDER BY part, a",
        )
        .bind(folder_id)
        .bind(since.map_or(-1, |m| m as i64))
        .bind(i64::from(since.is_some()))
        .fetch_all(self.pool())
        .await?;
        let counters = rows
            .first()
            .filter(|r| r.try_get::<i64, _>("part").ok() == Some(0))
            .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        let mut snapshot = FolderSnapshot {
            uidvalidity: counters.try_get::<i64, _>("a")? as u32,
            uidnext: counters.try_get::<i64, _>("b")? as u32,
            highestmodseq: counters.try_get::<i64, _>("c")? as u64,
            messages: Vec::new(),
            vanished: Vec::new(),
        };
        for r in &rows[1..] {
            let uid = r.try_get::<i64, _>("a")? as u32;
            match r.try_get::<i64, _>("part")? {
                1 => snapshot.messages.push(MessageRef {
                    uid,
                    modseq: r.try_get::<i64, _>("b")? as u64,
                    flags: flags_from_text(&r.try_get::<String, _>("flags")?),
                }),
                _ => snapshot.vanished.push(uid),
            }
        }
        Ok(snapshot)
    }

    /// [`Store::snapshot_of`] as a delegate sees the folder (ADR 0034), in one read
    /// transaction.
    async fn delegate_snapshot(
        &self,
        folder_id: i64,
        since: Option<u64>,
        reader: &str,
    ) -> Result<FolderSnapshot> {
        let mut txn = self.read_snapshot().await?;
        let counters =
            sqlx::query("SELECT uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE id = $1")
                .bind(folder_id)
                .fetch_optional(&mut *txn)
                .await?
                .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        let after = since.map_or(-1, |m| m as i64);
        let messages = changed_for_delegate(&mut txn, folder_id, reader, after).await?;
        let vanished = match since {
            None => Vec::new(),
            Some(_) => sqlx::query(
                "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
            )
            .bind(folder_id)
            .bind(after)
            .fetch_all(&mut *txn)
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<i64, _>("uid")? as u32))
            .collect::<Result<Vec<_>>>()?,
        };
        txn.commit().await?;
        Ok(FolderSnapshot {
            uidvalidity: counters.try_get::<i64, _>("uidvalidity")? as u32,
            uidnext: counters.try_get::<i64, _>("uidnext")? as u32,
            highestmodseq: counters.try_get::<i64, _>("highestmodseq")? as u64,
            messages,
            vanished,
        })
    }
}

/// The messages of a folder changed after `after` as `reader` sees them (a delegate, ADR
/// 0034), by UID.
async fn changed_for_delegate(
    txn: &mut Txn,
    folder_id: i64,
    reader: &str,
    after: i64,
) -> Result<Vec<MessageRef>> {
    let sql = format!("{SELECT_AS_DELEGATE} AND (mm.modseq > $3 OR s.modseq > $3) ORDER BY mm.uid");
    // Only the constant text is formatted in; every value is bound.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(folder_id)
        .bind(reader)
        .bind(after)
        .fetch_all(&mut **txn)
        .await?;
    rows.iter()
        .map(|r| shared_and_delegate(r).map(|(shared, row)| as_delegate(shared, row)))
        .collect()
}
