//! Folder and message operations for the IMAP server (RFC 9051), with CONDSTORE/QRESYNC
//! bookkeeping (RFC 7162): every change to a message takes a new modseq above the folder's
//! HIGHESTMODSEQ, and expunged UIDs are remembered with the modseq of their removal.
//!
//! Other sessions learn about changes through [`Store::subscribe_changes`] (in-process; a
//! PostgreSQL LISTEN/NOTIFY bridge can feed the same channel for other nodes).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::blob::blob_hash;
use crate::delivery::MessageMeta;
use crate::error::{Result, StoreError, duplicate_as};
use crate::{Store, now};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    pub id: i64,
    pub bal_id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
}

/// What a session keeps per message of the selected folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRef {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Vec<String>,
}

/// What FETCH needs besides the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Vec<String>,
    pub internaldate: i64,
    pub size: u32,
    pub blob_hash: String,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// Result of a STORE: the messages whose flags changed, and those skipped because they
/// changed after UNCHANGEDSINCE (RFC 7162 §3.1.3, reported as MODIFIED).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    pub changed: Vec<MessageRef>,
    pub conflicts: Vec<u32>,
}

/// A change notification: the folder whose content or flags changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderChanged {
    pub folder_id: i64,
}

fn flags_from_text(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Canonical spelling of system flags (flags compare case-insensitively, RFC 9051 §2.3.2).
fn canonical_flag(flag: &str) -> String {
    const SYSTEM: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
    SYSTEM
        .iter()
        .find(|s| s.eq_ignore_ascii_case(flag))
        .map(|s| s.to_string())
        .unwrap_or_else(|| flag.to_string())
}

fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

fn apply_flags(current: &[String], op: FlagOp, flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = match op {
        FlagOp::Replace => Vec::new(),
        _ => current.to_vec(),
    };
    match op {
        FlagOp::Replace | FlagOp::Add => {
            for f in flags {
                if !has_flag(&out, f) {
                    out.push(canonical_flag(f));
                }
            }
        }
        FlagOp::Remove => out.retain(|f| !has_flag(flags, f)),
    }
    out
}

/// Contiguous runs of sorted UIDs, so that range queries replace huge IN lists.
fn uid_runs(uids: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &u in uids {
        match runs.last_mut() {
            Some((_, end)) if u == *end + 1 => *end = u,
            _ => runs.push((u, u)),
        }
    }
    runs
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
    })
}

fn info_from_row(r: &AnyRow) -> Result<MessageInfo> {
    Ok(MessageInfo {
        uid: r.try_get::<i64, _>("uid")? as u32,
        modseq: r.try_get::<i64, _>("modseq")? as u64,
        flags: flags_from_text(&r.try_get::<String, _>("flags")?),
        internaldate: r.try_get("internaldate")?,
        size: r.try_get::<i64, _>("size")? as u32,
        blob_hash: r.try_get("blob_hash")?,
    })
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

/// Takes the next modseq of a folder (one per command: all its changes share it).
async fn next_modseq(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    folder_id: i64,
) -> Result<u64> {
    let row = sqlx::query("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 RETURNING highestmodseq")
        .bind(folder_id)
        .fetch_optional(&mut **txn)
        .await?
        .ok_or_else(|| StoreError::NotFound("folder".into()))?;
    Ok(row.try_get::<i64, _>("highestmodseq")? as u64)
}

impl Store {
    pub async fn folders(&self, bal_id: i64) -> Result<Vec<Folder>> {
        let rows = sqlx::query("SELECT id, bal_id, name, special_use, uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE bal_id = $1 ORDER BY name")
            .bind(bal_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(folder_from_row).collect()
    }

    pub async fn folder(&self, bal_id: i64, name: &str) -> Result<Option<Folder>> {
        let row = sqlx::query("SELECT id, bal_id, name, special_use, uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE bal_id = $1 AND name = $2")
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
        crate::mailbox::insert_mailbox(&mut w.txn, bal_id, name, special_use)
            .await
            .map_err(|e| match e {
                StoreError::Database(db) => duplicate_as(&format!("mailbox {name}"))(db),
                other => other,
            })?;
        w.commit().await?;
        self.folder(bal_id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(name.into()))
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
            let uidvalidity = crate::mailbox::next_uidvalidity(&mut w.txn).await?;
            sqlx::query("UPDATE mailboxes SET name = $1, uidvalidity = $2 WHERE id = $3")
                .bind(new_name)
                .bind(uidvalidity)
                .bind(id)
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await?;
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
        w.commit().await
    }

    pub async fn folder_status(&self, folder_id: i64) -> Result<FolderStatus> {
        let row = sqlx::query(
            "SELECT m.uidnext, m.uidvalidity, m.highestmodseq, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id) AS messages, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id AND mm.flags NOT LIKE '%\\Seen%') AS unseen, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id AND mm.flags LIKE '%\\Deleted%') AS deleted, \
             (SELECT COUNT(*) FROM mailbox_messages mm WHERE mm.mailbox_id = m.id AND mm.uid >= m.first_recent_uid) AS recent, \
             (SELECT CAST(COALESCE(SUM(msg.size), 0) AS BIGINT) FROM mailbox_messages mm JOIN messages msg ON msg.id = mm.message_id WHERE mm.mailbox_id = m.id) AS size \
             FROM mailboxes m WHERE m.id = $1",
        )
        .bind(folder_id)
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
    pub async fn claim_recent(&self, folder_id: i64) -> Result<u32> {
        let mut w = self.write_txn().await?;
        let row = sqlx::query("SELECT first_recent_uid, uidnext FROM mailboxes WHERE id = $1")
            .bind(folder_id)
            .fetch_optional(&mut *w.txn)
            .await?
            .ok_or_else(|| StoreError::NotFound("folder".into()))?;
        let first: i64 = row.try_get("first_recent_uid")?;
        sqlx::query("UPDATE mailboxes SET first_recent_uid = $1 WHERE id = $2")
            .bind(row.try_get::<i64, _>("uidnext")?)
            .bind(folder_id)
            .execute(&mut *w.txn)
            .await?;
        w.commit().await?;
        Ok(first as u32)
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

    /// UIDs, modseqs and flags of a whole folder, by UID (what SELECT loads).
    pub async fn message_refs(&self, folder_id: i64) -> Result<Vec<MessageRef>> {
        let rows = sqlx::query(
            "SELECT uid, modseq, flags FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid",
        )
        .bind(folder_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MessageRef {
                    uid: r.try_get::<i64, _>("uid")? as u32,
                    modseq: r.try_get::<i64, _>("modseq")? as u64,
                    flags: flags_from_text(&r.try_get::<String, _>("flags")?),
                })
            })
            .collect()
    }

    /// FETCH metadata for sorted `uids` (missing ones are skipped).
    pub async fn message_infos(&self, folder_id: i64, uids: &[u32]) -> Result<Vec<MessageInfo>> {
        let mut out = Vec::with_capacity(uids.len());
        for (lo, hi) in uid_runs(uids) {
            let rows = sqlx::query(
                "SELECT mm.uid, mm.modseq, mm.flags, mm.internaldate, m.size, m.blob_hash \
                 FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
                 WHERE mm.mailbox_id = $1 AND mm.uid >= $2 AND mm.uid <= $3 ORDER BY mm.uid",
            )
            .bind(folder_id)
            .bind(lo as i64)
            .bind(hi as i64)
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                out.push(info_from_row(r)?);
            }
        }
        Ok(out)
    }

    /// STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3).
    pub async fn update_flags(
        &self,
        folder_id: i64,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<FlagUpdate> {
        let mut w = self.write_txn().await?;
        let modseq = next_modseq(&mut w.txn, folder_id).await?;
        let mut update = FlagUpdate::default();
        for (lo, hi) in uid_runs(uids) {
            let rows = sqlx::query("SELECT uid, modseq, flags FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND uid <= $3 ORDER BY uid")
                .bind(folder_id)
                .bind(lo as i64)
                .bind(hi as i64)
                .fetch_all(&mut *w.txn)
                .await?;
            for r in &rows {
                let uid = r.try_get::<i64, _>("uid")? as u32;
                let current_modseq = r.try_get::<i64, _>("modseq")? as u64;
                if unchanged_since.is_some_and(|since| current_modseq > since) {
                    update.conflicts.push(uid);
                    continue;
                }
                let current = flags_from_text(&r.try_get::<String, _>("flags")?);
                let new = apply_flags(&current, op, flags);
                let same = new.len() == current.len() && new.iter().all(|f| has_flag(&current, f));
                if same {
                    continue;
                }
                sqlx::query("UPDATE mailbox_messages SET flags = $1, modseq = $2 WHERE mailbox_id = $3 AND uid = $4")
                    .bind(new.join(" "))
                    .bind(modseq as i64)
                    .bind(folder_id)
                    .bind(uid as i64)
                    .execute(&mut *w.txn)
                    .await?;
                update.changed.push(MessageRef {
                    uid,
                    modseq,
                    flags: new,
                });
            }
        }
        w.commit().await?;
        if !update.changed.is_empty() {
            self.notify(folder_id).await;
        }
        Ok(update)
    }

    /// Removes messages from a folder, remembering their UIDs for QRESYNC. Returns the UIDs
    /// actually removed.
    pub async fn expunge(&self, folder_id: i64, uids: &[u32]) -> Result<Vec<u32>> {
        let mut w = self.write_txn().await?;
        let removed = expunge_in(&mut w.txn, folder_id, uids).await?;
        w.commit().await?;
        if !removed.is_empty() {
            self.notify(folder_id).await;
        }
        Ok(removed)
    }

    /// APPEND (RFC 9051 §6.3.12): returns (uidvalidity, uid) for APPENDUID (RFC 4315).
    pub async fn append(
        &self,
        folder_id: i64,
        raw: Vec<u8>,
        flags: &[String],
        internaldate: i64,
        meta: MessageMeta,
    ) -> Result<(u32, u32)> {
        let hash = blob_hash(&raw);
        let size = raw.len() as i64;
        let blob = self.prepare_blob(&hash, raw).await?;
        let mut w = self.write_txn().await?;
        crate::delivery::record_blob(&mut w.txn, &hash, size, &blob).await?;
        let row = sqlx::query(
            "INSERT INTO messages (blob_hash, size, received_at, mail_from, source, message_id_hdr, subject, x_mss_nil) \
             VALUES ($1, $2, $3, '', 'imap', $4, $5, $6) RETURNING id",
        )
        .bind(&hash)
        .bind(size)
        .bind(now())
        .bind(meta.message_id)
        .bind(meta.subject)
        .bind(meta.x_mss_nil)
        .fetch_one(&mut *w.txn)
        .await?;
        let message_id: i64 = row.try_get("id")?;
        let flags: Vec<String> = apply_flags(&[], FlagOp::Replace, flags);
        let (uidvalidity, uid) = insert_message(
            &mut w.txn,
            folder_id,
            message_id,
            &flags.join(" "),
            internaldate,
        )
        .await?;
        w.commit().await?;
        self.notify(folder_id).await;
        Ok((uidvalidity, uid))
    }

    /// COPY / MOVE (RFC 9051 §6.4.7, RFC 6851): the copies share the stored message.
    /// Returns (source uid, new uid) pairs for COPYUID (RFC 4315).
    pub async fn copy_messages(
        &self,
        from: i64,
        uids: &[u32],
        to: i64,
        remove_source: bool,
    ) -> Result<Vec<(u32, u32)>> {
        let infos = self.message_infos(from, uids).await?;
        let mut w = self.write_txn().await?;
        let mut pairs = Vec::with_capacity(infos.len());
        for (lo, hi) in uid_runs(uids) {
            let rows = sqlx::query("SELECT uid, message_id, flags, internaldate FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND uid <= $3 ORDER BY uid")
                .bind(from)
                .bind(lo as i64)
                .bind(hi as i64)
                .fetch_all(&mut *w.txn)
                .await?;
            for r in &rows {
                let (_, new_uid) = insert_message(
                    &mut w.txn,
                    to,
                    r.try_get("message_id")?,
                    &r.try_get::<String, _>("flags")?,
                    r.try_get("internaldate")?,
                )
                .await?;
                pairs.push((r.try_get::<i64, _>("uid")? as u32, new_uid));
            }
        }
        if remove_source {
            let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            expunge_in(&mut w.txn, from, &moved).await?;
        }
        w.commit().await?;
        drop(infos);
        self.notify(to).await;
        if remove_source {
            self.notify(from).await;
        }
        Ok(pairs)
    }

    /// Messages changed and UIDs expunged after `modseq` (RFC 7162 CHANGEDSINCE / QRESYNC).
    pub async fn changes_since(
        &self,
        folder_id: i64,
        modseq: u64,
    ) -> Result<(Vec<MessageRef>, Vec<u32>)> {
        let rows = sqlx::query("SELECT uid, modseq, flags FROM mailbox_messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid")
            .bind(folder_id)
            .bind(modseq as i64)
            .fetch_all(self.pool())
            .await?;
        let changed = rows
            .iter()
            .map(|r| {
                Ok(MessageRef {
                    uid: r.try_get::<i64, _>("uid")? as u32,
                    modseq: r.try_get::<i64, _>("modseq")? as u64,
                    flags: flags_from_text(&r.try_get::<String, _>("flags")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        )
        .bind(folder_id)
        .bind(modseq as i64)
        .fetch_all(self.pool())
        .await?;
        let vanished = rows
            .iter()
            .map(|r| Ok(r.try_get::<i64, _>("uid")? as u32))
            .collect::<Result<Vec<_>>>()?;
        Ok((changed, vanished))
    }

    /// Bytes used by a BAL across its folders, and its quota (RFC 9208 STORAGE).
    pub async fn bal_usage(&self, bal_id: i64) -> Result<(u64, Option<u64>)> {
        let row = sqlx::query(
            "SELECT (SELECT CAST(COALESCE(SUM(msg.size), 0) AS BIGINT) FROM mailboxes f JOIN mailbox_messages mm ON mm.mailbox_id = f.id \
             JOIN messages msg ON msg.id = mm.message_id WHERE f.bal_id = $1) AS used, \
             (SELECT quota_bytes FROM bals WHERE id = $1) AS quota",
        )
        .bind(bal_id)
        .fetch_one(self.pool())
        .await?;
        Ok((
            row.try_get::<i64, _>("used")? as u64,
            row.try_get::<Option<i64>, _>("quota")?.map(|q| q as u64),
        ))
    }
}

/// Adds a message row to a folder with the next UID and modseq.
async fn insert_message(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    folder_id: i64,
    message_id: i64,
    flags: &str,
    internaldate: i64,
) -> Result<(u32, u32)> {
    let row = sqlx::query(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 \
         WHERE id = $1 RETURNING uidvalidity, uidnext - 1 AS uid, highestmodseq",
    )
    .bind(folder_id)
    .fetch_optional(&mut **txn)
    .await?
    .ok_or_else(|| StoreError::NotFound("folder".into()))?;
    let uid: i64 = row.try_get("uid")?;
    sqlx::query("INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(folder_id)
        .bind(uid)
        .bind(message_id)
        .bind(row.try_get::<i64, _>("highestmodseq")?)
        .bind(flags)
        .bind(internaldate)
        .execute(&mut **txn)
        .await?;
    Ok((row.try_get::<i64, _>("uidvalidity")? as u32, uid as u32))
}

async fn expunge_in(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    folder_id: i64,
    uids: &[u32],
) -> Result<Vec<u32>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = next_modseq(txn, folder_id).await?;
    let mut removed = Vec::new();
    for (lo, hi) in uid_runs(uids) {
        let rows = sqlx::query("DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND uid <= $3 RETURNING uid")
            .bind(folder_id)
            .bind(lo as i64)
            .bind(hi as i64)
            .fetch_all(&mut **txn)
            .await?;
        for r in &rows {
            let uid: i64 = r.try_get("uid")?;
            sqlx::query("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES ($1, $2, $3)")
                .bind(folder_id)
                .bind(uid)
                .bind(modseq as i64)
                .execute(&mut **txn)
                .await?;
            removed.push(uid as u32);
        }
    }
    removed.sort_unstable();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_operations() {
        let cur = vec!["\\Seen".to_string(), "$Label".to_string()];
        assert_eq!(
            apply_flags(&cur, FlagOp::Add, &["\\seen".into(), "\\flagged".into()]),
            vec!["\\Seen", "$Label", "\\Flagged"]
        );
        assert_eq!(
            apply_flags(&cur, FlagOp::Remove, &["$label".into()]),
            vec!["\\Seen"]
        );
        assert_eq!(
            apply_flags(&cur, FlagOp::Replace, &["\\Draft".into()]),
            vec!["\\Draft"]
        );
    }

    #[test]
    fn runs() {
        assert_eq!(
            uid_runs(&[1, 2, 3, 7, 9, 10]),
            vec![(1, 3), (7, 7), (9, 10)]
        );
        assert!(uid_runs(&[]).is_empty());
    }
}
