//! `mssante migrate` (ADR 0032): messages copied from another operator's IMAP server, and
//! where each one came from, so that a re-run copies only what is new and the verification
//! report can compare both sides.
//!
//! A copied message and the row naming its source are written in one transaction
//! (`folder_messages.rs`, `append_from`): a run killed at any point never leaves a message
//! that the next run would copy again.

use sqlx::Row;

use crate::delivery::MessageMeta;
use crate::error::Result;
use crate::flags::flags_from_text;
use crate::{Store, now};

/// Which message of the source a copy came from: RFC 9051 §2.3.1.1, a folder's name, its
/// UIDVALIDITY and a UID name one message for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMessage {
    pub bal_id: i64,
    /// The source folder's name, decoded to UTF-8 (with the source's hierarchy separator).
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// A source message already copied: where its copy is, and what was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigratedMessage {
    pub uidvalidity: u32,
    pub source_uid: u32,
    pub mailbox_id: i64,
    pub uid: u32,
    /// SHA-256 (hex) of the bytes fetched from the source.
    pub sha256: String,
    pub size: i64,
}

/// A message of a target folder, as the verification and the Message-ID fallback see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetMessage {
    pub uid: u32,
    pub blob_hash: String,
    pub size: i64,
    pub flags: Vec<String>,
    pub internaldate: i64,
    /// The Message-ID header (without angle brackets), when it had one.
    pub message_id: Option<String>,
}

impl Store {
    /// Appends `raw` to `folder_id` (as APPEND would) and records that it is the copy of
    /// `source`, in one transaction. Returns the copy's UID.
    pub async fn append_migrated(
        &self,
        folder_id: i64,
        raw: Vec<u8>,
        flags: &[String],
        internaldate: i64,
        meta: MessageMeta,
        source: &SourceMessage,
    ) -> Result<u32> {
        let ((_, uid), _) = self
            .append_from(
                folder_id,
                raw,
                (flags, internaldate),
                meta,
                Some(source.clone()),
                Default::default(),
            )
            .await?;
        Ok(uid)
    }

    /// Records that `source` is already here as `uid` of `folder_id` (found again by
    /// Message-ID and size after the source's UIDVALIDITY changed).
    pub async fn remember_migrated(
        &self,
        source: &SourceMessage,
        folder_id: i64,
        uid: u32,
        sha256: &str,
        size: i64,
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        insert_migrated(&mut w.txn, source, folder_id, uid, sha256, size).await?;
        w.commit().await?;
        Ok(())
    }

    /// What was copied from the source folder `folder` into the BAL, under any UIDVALIDITY.
    pub async fn migrated_messages(
        &self,
        bal_id: i64,
        folder: &str,
    ) -> Result<Vec<MigratedMessage>> {
        let rows = sqlx::query(
            "SELECT uidvalidity, source_uid, mailbox_id, uid, sha256, size FROM migrated_messages \
             WHERE bal_id = $1 AND source_folder = $2 ORDER BY uidvalidity, source_uid",
        )
        .bind(bal_id)
        .bind(folder)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MigratedMessage {
                    uidvalidity: r.try_get::<i64, _>("uidvalidity")? as u32,
                    source_uid: r.try_get::<i64, _>("source_uid")? as u32,
                    mailbox_id: r.try_get("mailbox_id")?,
                    uid: r.try_get::<i64, _>("uid")? as u32,
                    sha256: r.try_get("sha256")?,
                    size: r.try_get("size")?,
                })
            })
            .collect()
    }

    /// Forgets what was copied from `folder` under an earlier UIDVALIDITY (its UIDs name
    /// nothing any more, RFC 9051 §2.3.1.1), once the messages were found again.
    pub async fn forget_migrated(&self, bal_id: i64, folder: &str, uidvalidity: u32) -> Result<()> {
        let mut w = self.write_txn().await?;
        sqlx::query(
            "DELETE FROM migrated_messages WHERE bal_id = $1 AND source_folder = $2 AND uidvalidity <> $3",
        )
        .bind(bal_id)
        .bind(folder)
        .bind(i64::from(uidvalidity))
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Every message of a folder with its hash, size, flags, date and Message-ID.
    pub async fn target_messages(&self, folder_id: i64) -> Result<Vec<TargetMessage>> {
        let rows = sqlx::query(
            "SELECT mm.uid, mm.flags, mm.internaldate, m.blob_hash, m.size, m.message_id_hdr \
             FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1 ORDER BY mm.uid",
        )
        .bind(folder_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TargetMessage {
                    uid: r.try_get::<i64, _>("uid")? as u32,
                    blob_hash: r.try_get("blob_hash")?,
                    size: r.try_get("size")?,
                    flags: flags_from_text(&r.try_get::<String, _>("flags")?),
                    internaldate: r.try_get("internaldate")?,
                    message_id: r.try_get("message_id_hdr")?,
                })
            })
            .collect()
    }
}

pub(crate) async fn insert_migrated(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    source: &SourceMessage,
    folder_id: i64,
    uid: u32,
    sha256: &str,
    size: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO migrated_messages (bal_id, source_folder, uidvalidity, source_uid, mailbox_id, uid, sha256, size, migrated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(source.bal_id)
    .bind(&source.folder)
    .bind(i64::from(source.uidvalidity))
    .bind(i64::from(source.uid))
    .bind(folder_id)
    .bind(i64::from(uid))
    .bind(sha256)
    .bind(size)
    .bind(now())
    .execute(&mut **txn)
    .await?;
    Ok(())
}
