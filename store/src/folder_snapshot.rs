//! A folder's counters and messages as one read saw them (RFC 9051 §2.3.1.2, RFC 7162
//! CHANGEDSINCE/QRESYNC): what a session's view is built from at SELECT and brought up to
//! date with, shared or as a delegate sees it (ADR 0034). Split from `folder_messages.rs`,
//! which keeps the writes.

use sqlx::Row;

use crate::Store;
use crate::delegate_seen::as_delegate;
use crate::error::{Result, StoreError};
use crate::flags::flags_from_text;
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
        snapshot_from_rows(&rows, |_, shared| Ok(shared))
    }

    /// [`Store::snapshot_of`] as a delegate sees the folder (ADR 0034), in one statement like
    /// [`Store::shared_snapshot`] (ADR 0042): the messages changed for everyone come by the
    /// `(mailbox_id, modseq)` index, those whose only change is the delegate's own `\Seen`
    /// from the delegate's rows, instead of a scan of the whole folder.
    async fn delegate_snapshot(
        &self,
        folder_id: i64,
        since: Option<u64>,
        reader: &str,
    ) -> Result<FolderSnapshot> {
        let rows = sqlx::query(DELEGATE_SNAPSHOT)
            .bind(folder_id)
            .bind(since.map_or(-1, |m| m as i64))
            .bind(i64::from(since.is_some()))
            .bind(reader)
            .fetch_all(self.pool())
            .await?;
        snapshot_from_rows(&rows, |r, shared| {
            let seen = r.try_get::<Option<i64>, _>("delegate_seen")?;
            let modseq = r.try_get::<Option<i64>, _>("delegate_modseq")?;
            let row = seen.zip(modseq).map(|(s, m)| (s != 0, m as u64));
            Ok(as_delegate(shared, row))
        })
    }
}

/// The statement of [`Store::delegate_snapshot`]: $1 folder, $2 modseq (-1 for all), $3 1
/// when a modseq was given, $4 the reader. Its third part finds the delegate's own `\Seen`
/// changed after $2 by the `delegate_seen_changes` index (migration 0030, ADR 0051), not by a
/// walk of the folder's unchanged messages.
const DELEGATE_SNAPSHOT: &str = "SELECT CAST(0 AS BIGINT) AS part, uidvalidity AS a, uidnext AS b, highestmodseq AS c, \
         '' AS flags, CAST(NULL AS BIGINT) AS delegate_seen, CAST(NULL AS BIGINT) AS delegate_modseq \
         FROM mailboxes WHERE id = $1 \
         UNION ALL SELECT 1, mm.uid, mm.modseq, 0, mm.flags, s.seen, s.modseq \
         FROM mailbox_messages mm LEFT JOIN delegate_seen s \
         ON s.mailbox_id = mm.mailbox_id AND s.uid = mm.uid AND s.reader = $4 \
         WHERE mm.mailbox_id = $1 AND mm.modseq > $2 \
         UNION ALL SELECT 1, mm.uid, mm.modseq, 0, mm.flags, s.seen, s.modseq \
         FROM delegate_seen s JOIN mailbox_messages mm ON mm.mailbox_id = s.mailbox_id AND mm.uid = s.uid \
         WHERE s.mailbox_id = $1 AND s.reader = $4 AND s.modseq > $2 AND mm.modseq <= $2 AND $3 = 1 \
         UNION ALL SELECT 2, uid, 0, 0, '', NULL, NULL FROM expunged \
         WHERE mailbox_id = $1 AND modseq > $2 AND $3 = 1 \
         ORDER BY part, a";

/// A snapshot from the rows of a `UNION ALL` snapshot statement: part 0 the counters (a, b,
/// c: uidvalidity, uidnext, highestmodseq), part 1 the messages (a, b, flags: uid, modseq,
/// flags; `message` turns the shared view into the session's), part 2 the vanished UIDs.
fn snapshot_from_rows(
    rows: &[sqlx::any::AnyRow],
    message: impl Fn(&sqlx::any::AnyRow, MessageRef) -> Result<MessageRef>,
) -> Result<FolderSnapshot> {
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
            1 => {
                let shared = MessageRef {
                    uid,
                    modseq: r.try_get::<i64, _>("b")? as u64,
                    flags: flags_from_text(&r.try_get::<String, _>("flags")?),
                };
                snapshot.messages.push(message(r, shared)?);
            }
            _ => snapshot.vanished.push(uid),
        }
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ADR 0051: a delegate's report of changes since a modseq finds their own `\Seen`
    /// changes by (folder, reader, modseq), instead of walking every unchanged message of
    /// the folder and probing `delegate_seen` for each (what an owner's report never does).
    #[tokio::test]
    async fn a_delegates_changes_since_come_by_index_not_by_a_walk_of_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::open(&url, dir.path()).await.unwrap();
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {DELEGATE_SNAPSHOT}"
        )))
        .bind(1_i64)
        .bind(5_i64)
        .bind(1_i64)
        .bind("sec@x.fr")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>("detail").unwrap())
        .collect();
        let walks = plan.iter().filter(|l| l.contains("modseq<?")).count();
        let by_index = plan
            .iter()
            .filter(|l| {
                l.contains("delegate_seen_changes (mailbox_id=? AND reader=? AND modseq>?)")
            })
            .count();
        assert_eq!((walks, by_index), (0, 1), "{plan:#?}");
        store.close().await;
    }
}
