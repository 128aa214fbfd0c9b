//! The folders of a BAL (RFC 9051 mailboxes, the `mailboxes` table): the default set every
//! BAL gets, create, delete, rename, subscriptions, status and the RFC 3501 \\Recent claim,
//! and the per-folder summary the admin commands print.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Result, StoreError, duplicate_as};
use crate::group_commit::{Txn, TxnFuture, Write};
use crate::{Store, now};

/// Folders every BAL gets at creation, with their RFC 6154 special-use attribute.
/// The special-use attributes of RFC 6154 §2 (what CREATE may ask for, §5.2, and what a
/// migration recognises at the source).
pub const SPECIAL_USES: [&str; 7] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

pub(crate) const DEFAULT_FOLDERS: [(&str, Option<&str>); 4] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
];

/// A folder of a BAL (an IMAP mailbox, RFC 9051 §2.3): what a session needs to select it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    pub id: i64,
    pub bal_id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    /// RFC 8474 MAILBOXID: kept across RENAME, never reused.
    pub object_id: String,
}

/// A folder as the admin commands show it (`bal show`): its counters as stored, and how many
/// messages it holds. IMAP sessions use [`Folder`] and [`FolderStatus`] instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderSummary {
    pub id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highestmodseq: i64,
    pub messages: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderStatus {
    pub messages: u32,
    /// Messages no read-write session has seen yet (RFC 3501 \Recent).
    pub recent: u32,
    pub unseen: u32,
    pub deleted: u32,
    pub size: u64,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub highestmodseq: u64,
}

fn folder_from_row(r: &AnyRow) -> Result<Folder> {
    Ok(Folder {
        id: r.try_get("id")?,
        bal_id: r.try_get("bal_id")?,
        name: r.try_get("name")?,
        special_use: r.try_get("special_use")?,
        uidvalidity: r.try_get::<i64, _>("uidvalidity")? as u32,
        uidnext: r.try_get::<i64, _>("uidnext")? as u32,
        highestmodseq: r.try_get::<i64, _>("highestmodseq")? as u64,
        object_id: format!("F{}", r.try_get::<i64, _>("created_uidvalidity")?),
    })
}

/// A UIDVALIDITY for a new folder (RFC 9051 §2.3.1.1: must change whenever UIDs could be
/// reused). The current time in seconds, but always above any value handed out before, so a
/// folder deleted and re-created within one second still gets a new one.
pub(crate) async fn next_uidvalidity(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE counters SET value = CASE WHEN value + 1 > $1 THEN value + 1 ELSE $1 END \
         WHERE name = 'uidvalidity' RETURNING value",
    )
    .bind(now().clamp(1, u32::MAX as i64))
    .fetch_one(&mut **txn)
    .await?;
    Ok(row.try_get("value")?)
}

pub(crate) async fn insert_folder(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    name: &str,
    special_use: Option<&str>,
) -> Result<i64> {
    let uidvalidity = next_uidvalidity(txn).await?;
    let row = sqlx::query(
        "INSERT INTO mailboxes (bal_id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed, created_at, created_uidvalidity) \
         VALUES ($1, $2, $3, $4, 1, 1, 1, $5, $4) RETURNING id",
    )
    .bind(bal_id)
    .bind(name)
    .bind(special_use)
    .bind(uidvalidity)
    .bind(now())
    .fetch_one(&mut **txn)
    .await?;
    Ok(row.try_get("id")?)
}

pub(crate) async fn subscribe_in(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    name: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO subscriptions (bal_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(bal_id)
        .bind(name)
        .execute(&mut **txn)
        .await?;
    Ok(())
}

impl Store {
    pub async fn folders(&self, bal_id: i64) -> Result<Vec<Folder>> {
        let rows = sqlx::query("SELECT id, bal_id, name, special_use, uidvalidity, uidnext, highestmodseq, COALESCE(created_uidvalidity, uidvalidity) AS created_uidvalidity FROM mailboxes WHERE bal_id = $1 ORDER BY name")
            .bind(bal_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(folder_from_row).collect()
    }

    pub async fn folder(&self, bal_id: i64, name: &str) -> Result<Option<Folder>> {
        let row = sqlx::query("SELECT id, bal_id, name, special_use, uidvalidity, uidnext, highestmodseq, COALESCE(created_uidvalidity, uidvalidity) AS created_uidvalidity FROM mailboxes WHERE bal_id = $1 AND name = $2")
            .bind(bal_id)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(folder_from_row).transpose()
    }

    pub async fn create_folder(
        &self,
        bal_id: i64,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Folder> {
        let mut w = self.write_txn().await?;
        let exists = sqlx::query("SELECT id FROM mailboxes WHERE bal_id = $1 AND name = $2")
            .bind(bal_id)
            .bind(name)
            .fetch_optional(&mut *w.txn)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Duplicate(format!("mailbox {name}")));
        }
        insert_folder(&mut w.txn, bal_id, name, special_use)
            .await
            .map_err(|e| match e {
                StoreError::Database(db) => duplicate_as(&format!("mailbox {name}"))(db),
                other => other,
            })?;
        w.commit().await?;
        let folder = self
            .folder(bal_id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(name.into()))?;
        // Sessions watching mailbox names (IMAP NOTIFY, RFC 5465 §5.4) hear of it.
        self.notify(folder.id).await;
        Ok(folder)
    }

    /// Deletes a folder and its messages (RFC 9051 §6.3.4). INBOX cannot be deleted.
    pub async fn delete_folder(&self, bal_id: i64, name: &str) -> Result<()> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
        }
        let folder = self
            .folder(bal_id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))?;
        let mut w = self.write_txn().await?;
        for sql in [
            "DELETE FROM mailbox_messages WHERE mailbox_id = $1",
            "DELETE FROM expunged WHERE mailbox_id = $1",
            "DELETE FROM mailboxes WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(folder.id)
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await?;
        self.notify(folder.id).await;
        Ok(())
    }

    /// Renames a folder and its children (RFC 9051 §6.3.6). Renaming INBOX moves its
    /// messages to a new folder and leaves INBOX empty. `delimiter` separates levels.
    pub async fn rename_folder(
        &self,
        bal_id: i64,
        from: &str,
        to: &str,
        delimiter: char,
    ) -> Result<()> {
        let source = self
            .folder(bal_id, from)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {from}")))?;
        if self.folder(bal_id, to).await?.is_some() {
            return Err(StoreError::Duplicate(format!("mailbox {to}")));
        }
        if from == "INBOX" {
            let target = self.create_folder(bal_id, to, None).await?;
            let uids: Vec<u32> = self
                .message_refs(source.id)
                .await?
                .iter()
                .map(|m| m.uid)
                .collect();
            self.copy_messages(source.id, &uids, target.id, true)
                .await?;
            return Ok(());
        }
        let children = self
            .folders(bal_id)
            .await?
            .into_iter()
            .filter(|f| f.name.starts_with(&format!("{from}{delimiter}")));
        let mut w = self.write_txn().await?;
        // A renamed folder gets a new UIDVALIDITY: clients must not mix it up with a
        // folder created later under the old name (imaptest uidvalidity-rename).
        for (id, new_name) in std::iter::once((source.id, to.to_string()))
            .chain(children.map(|c| (c.id, format!("{to}{}", &c.name[from.len()..]))))
        {
            let uidvalidity = next_uidvalidity(&mut w.txn).await?;
            sqlx::query("UPDATE mailboxes SET name = $1, uidvalidity = $2 WHERE id = $3")
                .bind(new_name)
                .bind(uidvalidity)
                .bind(id)
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await?;
        self.notify(source.id).await;
        Ok(())
    }

    pub async fn subscriptions(&self, bal_id: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM subscriptions WHERE bal_id = $1 ORDER BY name")
            .bind(bal_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    pub async fn set_subscription(&self, bal_id: i64, name: &str, subscribed: bool) -> Result<()> {
        let mut w = self.write_txn().await?;
        if subscribed {
            subscribe_in(&mut w.txn, bal_id, name).await?;
        } else {
            sqlx::query("DELETE FROM subscriptions WHERE bal_id = $1 AND name = $2")
                .bind(bal_id)
                .bind(name)
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await?;
        // IMAP NOTIFY SubscriptionChange (RFC 5465 §5.5): a notification names a folder, so
        // the subscribed one's when it exists (only names then: its messages did not change).
        if let Some(folder) = self.folder(bal_id, name).await? {
            self.notify(folder.id).await;
        }
        Ok(())
    }

    pub async fn folder_status(&self, folder_id: i64) -> Result<FolderStatus> {
        self.folder_status_as(folder_id, None).await
    }

    /// STATUS as `delegate` sees the folder when `Some`: UNSEEN counts their own `\\Seen`
    /// (ADR 0034), everything else is the folder's. A delegate's UNSEEN is the folder's
    /// messages less their rows marked seen, read by the `delegate_seen_changes` index: the
    /// rows go with their message (the foreign key's cascade), so none is left over to count,
    /// and the folder's messages are not probed one by one.
    pub async fn folder_status_as(
        &self,
        folder_id: i64,
        delegate: Option<&str>,
    ) -> Result<FolderStatus> {
        let row = sqlx::query(
            "SELECT m.uidnext, m.uidvalidity, m.highestmodseq, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id) AS messages, \
             CASE WHEN $2 IS NULL THEN \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id AND mm.flags NOT LIKE '%\\Seen%') \
             ELSE (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id) - \
             (SELECT COUNT(*) FROM delegate_seen s WHERE s.mailbox_id = m.id AND s.reader = $2 \
             AND s.seen = 1) END AS unseen, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id AND mm.flags LIKE '%\\Deleted%') AS deleted, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id AND mm.uid >= m.first_recent_uid) AS recent, \
             (SELECT CAST(COALESCE(SUM(msg.size), 0) AS BIGINT) FROM mailbox_messages mm JOIN messages msg ON msg.id = mm.message_id WHERE mm.mailbox_id = m.id) AS size \
             FROM mailboxes m WHERE m.id = $1",
        )
        .bind(folder_id)
        .bind(delegate)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        Ok(FolderStatus {
            messages: row.try_get::<i64, _>("messages")? as u32,
            unseen: row.try_get::<i64, _>("unseen")? as u32,
            deleted: row.try_get::<i64, _>("deleted")? as u32,
            recent: row.try_get::<i64, _>("recent")? as u32,
            size: row.try_get::<i64, _>("size")? as u64,
            uidnext: row.try_get::<i64, _>("uidnext")? as u32,
            uidvalidity: row.try_get::<i64, _>("uidvalidity")? as u32,
            highestmodseq: row.try_get::<i64, _>("highestmodseq")? as u64,
        })
    }

    /// RFC 3501 §2.3.2: claims the messages no read-write session has seen yet. Returns the
    /// first UID that is recent for the caller (every UID at or above it, up to UIDNEXT).
    ///
    /// When another session has claimed everything already (the common case: a SELECT of a
    /// folder that received nothing since), nothing is written: a read answers. Every
    /// message the caller knows of was read before this (UID below the UIDNEXT read here),
    /// so none of them is at or above the returned UID.
    pub async fn claim_recent(&self, folder_id: i64) -> Result<u32> {
        // PostgreSQL: the read and the claim in one statement (`folder_writes_pg.rs`).
        if self.engine() == crate::Engine::Postgres {
            return self.claim_recent_pg(folder_id).await;
        }
        let row = sqlx::query("SELECT first_recent_uid, uidnext FROM mailboxes WHERE id = $1")
            .bind(folder_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        let first: i64 = row.try_get("first_recent_uid")?;
        if first >= row.try_get::<i64, _>("uidnext")? {
            return Ok(first as u32);
        }
        self.write(ClaimRecent { folder_id }).await
    }

    /// The first UID still recent, without claiming anything (EXAMINE, STATUS).
    pub async fn first_recent_uid(&self, folder_id: i64) -> Result<u32> {
        let row = sqlx::query("SELECT first_recent_uid FROM mailboxes WHERE id = $1")
            .bind(folder_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        Ok(row.try_get::<i64, _>("first_recent_uid")? as u32)
    }

    /// The folders of a BAL with their IMAP counters and message counts.
    pub async fn folder_summaries(&self, address: &str) -> Result<Vec<FolderSummary>> {
        let bal = self.bal(address).await?;
        let rows = sqlx::query(
            "SELECT m.id, m.name, m.special_use, m.uidvalidity, m.uidnext, m.highestmodseq, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id) AS messages \
             FROM mailboxes m WHERE m.bal_id = $1 ORDER BY m.name",
        )
        .bind(bal.id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FolderSummary {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    special_use: r.try_get("special_use")?,
                    uidvalidity: r.try_get("uidvalidity")?,
                    uidnext: r.try_get("uidnext")?,
                    highestmodseq: r.try_get("highestmodseq")?,
                    messages: r.try_get("messages")?,
                })
            })
            .collect()
    }
}

/// The \\Recent claim (RFC 3501 §2.3.2) a write makes for the session that will report its
/// new messages (ADR 0050): UIDs from `first` up to, not including, `next` are recent for
/// that session and for no other. The write's own messages are among them, and so are
/// messages delivered before it that no session had noticed yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecentClaim {
    pub first: u32,
    pub next: u32,
}

/// The write of [`Store::claim_recent`]: every message up to UIDNEXT stops being recent.
struct ClaimRecent {
    folder_id: i64,
}

impl Write for ClaimRecent {
    type Output = u32;
    fn run<'a>(&'a self, txn: &'a mut Txn) -> TxnFuture<'a, u32> {
        Box::pin(async move { Ok(claim_recent_in(txn, self.folder_id).await?.first) })
    }
}

/// Claims every message of the folder up to UIDNEXT in the caller's transaction. Exact
/// when the transaction holds the folder row (PostgreSQL, after the write's `UPDATE` of
/// it) or is the single writer (SQLite).
pub(crate) async fn claim_recent_in(txn: &mut Txn, folder_id: i64) -> Result<RecentClaim> {
    let row = sqlx::query("SELECT first_recent_uid, uidnext FROM mailboxes WHERE id = $1")
        .bind(folder_id)
        .fetch_optional(&mut **txn)
        .await?
        .ok_or_else(|| StoreError::NotFound("folder".into()))?;
    let first: i64 = row.try_get("first_recent_uid")?;
    let next: i64 = row.try_get("uidnext")?;
    if first < next {
        sqlx::query("UPDATE mailboxes SET first_recent_uid = $1 WHERE id = $2")
            .bind(next)
            .bind(folder_id)
            .execute(&mut **txn)
            .await?;
    }
    Ok(RecentClaim {
        first: first as u32,
        next: next as u32,
    })
}
