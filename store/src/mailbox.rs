//! IMAP folders of a BAL and the messages in them.

use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::{Store, now};

/// Folders every BAL gets at creation, with their RFC 6154 special-use attribute.
pub(crate) const DEFAULT_FOLDERS: [(&str, Option<&str>); 4] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxInfo {
    pub id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highestmodseq: i64,
    pub messages: i64,
}

/// A message as it sits in one folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub uid: i64,
    pub modseq: i64,
    pub message_id: i64,
    pub blob_hash: String,
    pub size: i64,
    pub flags: String,
    pub internaldate: i64,
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

pub(crate) async fn insert_mailbox(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    name: &str,
    special_use: Option<&str>,
) -> Result<i64> {
    let uidvalidity = next_uidvalidity(txn).await?;
    let row = sqlx::query(
        "INSERT INTO mailboxes (bal_id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed, created_at) \
         VALUES ($1, $2, $3, $4, 1, 1, 1, $5) RETURNING id",
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

impl Store {
    /// The folders of a BAL with their IMAP counters and message counts.
    pub async fn mailboxes(&self, address: &str) -> Result<Vec<MailboxInfo>> {
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
                Ok(MailboxInfo {
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

    /// The messages of one folder of a BAL, by UID.
    pub async fn mailbox_messages(
        &self,
        address: &str,
        folder: &str,
    ) -> Result<Vec<StoredMessage>> {
        let mailbox_id = self
            .mailboxes(address)
            .await?
            .into_iter()
            .find(|m| m.name == folder)
            .map(|m| m.id)
            .ok_or_else(|| StoreError::NotFound(format!("folder {folder} of {address}")))?;
        let rows = sqlx::query(
            "SELECT mm.uid, mm.modseq, mm.message_id, mm.flags, mm.internaldate, m.blob_hash, m.size \
             FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1 ORDER BY mm.uid",
        )
        .bind(mailbox_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredMessage {
                    uid: r.try_get("uid")?,
                    modseq: r.try_get("modseq")?,
                    message_id: r.try_get("message_id")?,
                    blob_hash: r.try_get("blob_hash")?,
                    size: r.try_get("size")?,
                    flags: r.try_get("flags")?,
                    internaldate: r.try_get("internaldate")?,
                })
            })
            .collect()
    }

    /// The bytes of a stored message: from the database when it is small (ADR 0009),
    /// from the blob store otherwise.
    pub async fn read_blob(&self, hash: &str) -> Result<Vec<u8>> {
        let inline = sqlx::query("SELECT data FROM blob_data WHERE hash = $1")
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = inline {
            return Ok(row.try_get::<Vec<u8>, _>("data")?);
        }
        let store = self.clone();
        let hash = hash.to_string();
        tokio::task::spawn_blocking(move || store.inner.blobs.get(&hash))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
            .map_err(StoreError::Io)
    }
}
