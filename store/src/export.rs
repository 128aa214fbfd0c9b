//! What `mssante export` reads (ADR 0020): a BAL with everything that is not message bytes
//! (its row, folders and their IMAP counters, subscriptions, grants, directory publications),
//! then its folders page by page in UID order, so that memory stays constant whatever the
//! size of the BAL. The same records are what `import.rs` writes back.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Store;
use crate::address::Address;
use crate::error::{Result, StoreError};

/// A BAL's row as it is stored, password hash included (the archive is as sensitive as the
/// database).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalRecord {
    pub address: String,
    pub domain: String,
    pub bal_type: String,
    pub national_id: Option<String>,
    pub finess: Option<String>,
    pub siret: Option<String>,
    pub display_name: Option<String>,
    pub status: String,
    pub password_hash: Option<String>,
    pub liste_rouge: bool,
    pub quota_bytes: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub status_changed_at: i64,
}

/// A folder with its IMAP state (RFC 9051 §2.3.1.1 UIDVALIDITY/UIDNEXT, RFC 7162
/// HIGHESTMODSEQ and the expunged UIDs QRESYNC reports as VANISHED).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRecord {
    /// This instance's id (paging the export); not carried to another instance.
    pub id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highestmodseq: i64,
    pub first_recent_uid: i64,
    pub created_at: i64,
    /// (uid, modseq) of expunged messages.
    pub expunged: Vec<(i64, i64)>,
}

/// One row of `access_grants` (habilitations and delegations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    pub grantee_kind: String,
    pub grantee: String,
    pub origin: String,
    pub rights: String,
    pub not_after: Option<i64>,
    pub created_at: i64,
    /// Per-folder rights of a delegation: (folder, RFC 4314 letters).
    pub folders: Vec<(String, String)>,
}

/// A publication of the BAL to the national directory and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicationRecord {
    pub resource_url: String,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Everything of a BAL but its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalSnapshot {
    pub bal: BalRecord,
    pub folders: Vec<FolderRecord>,
    pub subscriptions: Vec<String>,
    pub grants: Vec<GrantRecord>,
    pub publications: Vec<PublicationRecord>,
    /// The BAL's audit trail, oldest first, as chained on this instance.
    pub audit: Vec<crate::AuditEntry>,
}

/// The envelope facts of a stored message (the `messages` row without its id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageRecord {
    pub received_at: i64,
    pub mail_from: String,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub source: String,
    pub message_id_hdr: Option<String>,
    pub subject: Option<String>,
    pub x_mss_nil: Option<String>,
    /// Submitted by this BAL (its receipts state follows it).
    pub sent_by_bal: bool,
}

/// What became of one recipient of a message the BAL sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientRecord {
    pub address: String,
    pub orcpt: Option<String>,
    pub notify: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub dsn_status: Option<String>,
    pub remote_mta: Option<String>,
    pub updated_at: i64,
}

/// A DSN or MDN recorded against a message the BAL sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingRecord {
    pub original_msgid: Option<String>,
    pub recipient: String,
    pub kind: String,
    pub state: String,
    pub detail: Option<String>,
    pub error_codes: Option<String>,
    pub received_at: i64,
}

/// The receipts state of a sent message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipts {
    pub recipients: Vec<RecipientRecord>,
    pub events: Vec<TrackingRecord>,
}

/// A message as it sits in one folder, with what is needed to read its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderEntry {
    pub uid: i64,
    pub modseq: i64,
    pub flags: String,
    pub internaldate: i64,
    /// The stored message (`messages.id`): copies in several folders share it.
    pub message_number: i64,
    pub blob_hash: String,
    pub size: i64,
    pub message: MessageRecord,
    /// The delegates' own `\Seen` on this placement (ADR 0034), by reader.
    pub delegate_seen: Vec<DelegateSeenRecord>,
}

/// One delegate's `\Seen` on one message of a folder (a `delegate_seen` row, ADR 0034).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegateSeenRecord {
    /// The delegate: their address or PSC identity (the audit author of their sessions).
    pub reader: String,
    pub seen: bool,
    /// The folder modseq the change took (RFC 7162).
    pub modseq: i64,
}

fn opt(r: &AnyRow, column: &str) -> Result<Option<String>> {
    Ok(r.try_get(column)?)
}

fn bal_record(r: &AnyRow) -> Result<BalRecord> {
    Ok(BalRecord {
        address: r.try_get("address")?,
        domain: r.try_get("domain")?,
        bal_type: r.try_get("bal_type")?,
        national_id: opt(r, "national_id")?,
        finess: opt(r, "finess")?,
        siret: opt(r, "siret")?,
        display_name: opt(r, "display_name")?,
        status: r.try_get("status")?,
        password_hash: opt(r, "password_hash")?,
        liste_rouge: r.try_get::<i64, _>("liste_rouge")? != 0,
        quota_bytes: r.try_get("quota_bytes")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        status_changed_at: r.try_get("status_changed_at")?,
    })
}

fn entry_from_row(r: &AnyRow, bal_id: i64) -> Result<FolderEntry> {
    let auth: Option<i64> = r.try_get("auth_bal_id")?;
    Ok(FolderEntry {
        uid: r.try_get("uid")?,
        modseq: r.try_get("modseq")?,
        flags: r.try_get("flags")?,
        internaldate: r.try_get("internaldate")?,
        message_number: r.try_get("message_id")?,
        blob_hash: r.try_get("blob_hash")?,
        size: r.try_get("size")?,
        message: MessageRecord {
            received_at: r.try_get("received_at")?,
            mail_from: r.try_get("mail_from")?,
            envid: opt(r, "envid")?,
            ret: opt(r, "ret")?,
            source: r.try_get("source")?,
            message_id_hdr: opt(r, "message_id_hdr")?,
            subject: opt(r, "subject")?,
            x_mss_nil: opt(r, "x_mss_nil")?,
            sent_by_bal: auth == Some(bal_id),
        },
        delegate_seen: Vec::new(),
    })
}

impl Store {
    /// The addresses of the BALs of one domain, or of all, in order: what an export covers.
    pub async fn bal_addresses(&self, domain: Option<&str>) -> Result<Vec<String>> {
        let rows = match domain {
            Some(d) => {
                sqlx::query(
                    "SELECT b.address FROM bals b JOIN domains d ON d.id = b.domain_id \
                     WHERE d.name = $1 ORDER BY b.address",
                )
                .bind(d.to_lowercase())
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query("SELECT address FROM bals ORDER BY address")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(|r| Ok(r.try_get("address")?)).collect()
    }

    /// A BAL with everything but its messages, and its id on this instance.
    pub async fn bal_snapshot(&self, address: &str) -> Result<(i64, BalSnapshot)> {
        let address = Address::parse(address)?;
        let row = sqlx::query(
            "SELECT b.id, b.address, d.name AS domain, b.bal_type, b.national_id, b.finess, b.siret, \
             b.display_name, b.status, b.password_hash, b.liste_rouge, b.quota_bytes, b.created_at, \
             b.updated_at, b.status_changed_at FROM bals b JOIN domains d ON d.id = b.domain_id \
             WHERE b.address = $1",
        )
        .bind(address.as_str())
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("BAL {address}")))?;
        let bal_id: i64 = row.try_get("id")?;
        let snapshot = BalSnapshot {
            bal: bal_record(&row)?,
            folders: self.folder_records(bal_id).await?,
            subscriptions: self.subscriptions(bal_id).await?,
            grants: self.grant_records(bal_id).await?,
            publications: self.publication_records(address.as_str()).await?,
            audit: self
                .audit_entries(address.as_str(), &crate::AuditQuery::default())
                .await?,
        };
        Ok((bal_id, snapshot))
    }

    async fn folder_records(&self, bal_id: i64) -> Result<Vec<FolderRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, special_use, uidvalidity, uidnext, highestmodseq, first_recent_uid, \
             created_at FROM mailboxes WHERE bal_id = $1 ORDER BY name",
        )
        .bind(bal_id)
        .fetch_all(self.pool())
        .await?;
        let mut folders = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let expunged =
                sqlx::query("SELECT uid, modseq FROM expunged WHERE mailbox_id = $1 ORDER BY uid")
                    .bind(id)
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(|e| Ok((e.try_get("uid")?, e.try_get("modseq")?)))
                    .collect::<Result<Vec<_>>>()?;
            folders.push(FolderRecord {
                id,
                name: r.try_get("name")?,
                special_use: opt(r, "special_use")?,
                uidvalidity: r.try_get("uidvalidity")?,
                uidnext: r.try_get("uidnext")?,
                highestmodseq: r.try_get("highestmodseq")?,
                first_recent_uid: r.try_get("first_recent_uid")?,
                created_at: r.try_get("created_at")?,
                expunged,
            });
        }
        Ok(folders)
    }

    async fn grant_records(&self, bal_id: i64) -> Result<Vec<GrantRecord>> {
        let rows = sqlx::query(
            "SELECT id, grantee_kind, grantee, origin, rights, not_after, created_at FROM access_grants \
             WHERE bal_id = $1 ORDER BY grantee_kind, grantee, origin",
        )
        .bind(bal_id)
        .fetch_all(self.pool())
        .await?;
        let mut grants = Vec::with_capacity(rows.len());
        for r in &rows {
            let folders = sqlx::query(
                "SELECT folder, rights FROM access_grant_folders WHERE grant_id = $1 ORDER BY folder",
            )
            .bind(r.try_get::<i64, _>("id")?)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|f| Ok((f.try_get("folder")?, f.try_get("rights")?)))
            .collect::<Result<Vec<_>>>()?;
            grants.push(GrantRecord {
                grantee_kind: r.try_get("grantee_kind")?,
                grantee: r.try_get("grantee")?,
                origin: r.try_get("origin")?,
                rights: r.try_get("rights")?,
                not_after: r.try_get("not_after")?,
                created_at: r.try_get("created_at")?,
                folders,
            });
        }
        Ok(grants)
    }

    async fn publication_records(&self, address: &str) -> Result<Vec<PublicationRecord>> {
        let rows = sqlx::query(
            "SELECT resource_url, body, status, attempts, next_attempt, last_error, created_at, \
             updated_at FROM directory_outbox WHERE address = $1 ORDER BY id",
        )
        .bind(address)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PublicationRecord {
                    resource_url: r.try_get("resource_url")?,
                    body: r.try_get("body")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    next_attempt: r.try_get("next_attempt")?,
                    last_error: opt(r, "last_error")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Up to `limit` messages of a folder with a UID above `after_uid`, in UID order: one page
    /// of an export.
    pub async fn folder_entries_page(
        &self,
        bal_id: i64,
        folder_id: i64,
        after_uid: i64,
        limit: i64,
    ) -> Result<Vec<FolderEntry>> {
        let rows = sqlx::query(
            "SELECT mm.uid, mm.modseq, mm.flags, mm.internaldate, mm.message_id, m.blob_hash, m.size, \
             m.received_at, m.mail_from, m.envid, m.ret, m.source, m.auth_bal_id, m.message_id_hdr, \
             m.subject, m.x_mss_nil FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1 AND mm.uid > $2 ORDER BY mm.uid LIMIT $3",
        )
        .bind(folder_id)
        .bind(after_uid)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut entries = rows
            .iter()
            .map(|r| entry_from_row(r, bal_id))
            .collect::<Result<Vec<_>>>()?;
        if let Some(last) = entries.last().map(|e| e.uid) {
            self.attach_delegate_seen(folder_id, after_uid, last, &mut entries)
                .await?;
        }
        Ok(entries)
    }

    /// Fills the `delegate_seen` of a page of `entries` (UIDs in `(after_uid, last_uid]`, in
    /// order) with one query.
    async fn attach_delegate_seen(
        &self,
        folder_id: i64,
        after_uid: i64,
        last_uid: i64,
        entries: &mut [FolderEntry],
    ) -> Result<()> {
        let rows = sqlx::query(
            "SELECT uid, reader, seen, modseq FROM delegate_seen \
             WHERE mailbox_id = $1 AND uid > $2 AND uid <= $3 ORDER BY uid, reader",
        )
        .bind(folder_id)
        .bind(after_uid)
        .bind(last_uid)
        .fetch_all(self.pool())
        .await?;
        let mut at = 0;
        for r in &rows {
            let uid: i64 = r.try_get("uid")?;
            while at < entries.len() && entries[at].uid < uid {
                at += 1;
            }
            let Some(entry) = entries.get_mut(at).filter(|e| e.uid == uid) else {
                continue;
            };
            entry.delegate_seen.push(DelegateSeenRecord {
                reader: r.try_get("reader")?,
                seen: r.try_get::<i64, _>("seen")? != 0,
                modseq: r.try_get("modseq")?,
            });
        }
        Ok(())
    }

    /// Up to `limit` messages the BAL submitted (numbers above `after`) that none of its
    /// folders holds: their receipts state travels with the BAL all the same.
    pub async fn sent_entries_page(
        &self,
        bal_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<FolderEntry>> {
        let rows = sqlx::query(
            "SELECT 0 AS uid, 0 AS modseq, '' AS flags, m.received_at AS internaldate, m.id AS message_id, \
             m.blob_hash, m.size, m.received_at, m.mail_from, m.envid, m.ret, m.source, m.auth_bal_id, \
             m.message_id_hdr, m.subject, m.x_mss_nil FROM messages m WHERE m.auth_bal_id = $1 AND m.id > $2 \
             AND NOT EXISTS (SELECT 1 FROM mailbox_messages mm JOIN mailboxes f ON f.id = mm.mailbox_id \
             WHERE mm.message_id = m.id AND f.bal_id = $1) ORDER BY m.id LIMIT $3",
        )
        .bind(bal_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| entry_from_row(r, bal_id)).collect()
    }

    /// The recipients and reports of a stored message (the receipts state of a sent message).
    pub async fn receipts_of(&self, message_number: i64) -> Result<Receipts> {
        let recipients = sqlx::query(
            "SELECT address, orcpt, notify, status, attempts, last_error, dsn_status, remote_mta, \
             updated_at FROM recipients WHERE message_id = $1 ORDER BY id",
        )
        .bind(message_number)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(RecipientRecord {
                address: r.try_get("address")?,
                orcpt: opt(r, "orcpt")?,
                notify: opt(r, "notify")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_error: opt(r, "last_error")?,
                dsn_status: opt(r, "dsn_status")?,
                remote_mta: opt(r, "remote_mta")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let events = sqlx::query(
            "SELECT original_msgid, recipient, kind, state, detail, error_codes, received_at \
             FROM tracking_events WHERE message_id = $1 ORDER BY received_at, id",
        )
        .bind(message_number)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(TrackingRecord {
                original_msgid: opt(r, "original_msgid")?,
                recipient: r.try_get("recipient")?,
                kind: r.try_get("kind")?,
                state: r.try_get("state")?,
                detail: opt(r, "detail")?,
                error_codes: opt(r, "error_codes")?,
                received_at: r.try_get("received_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Receipts { recipients, events })
    }
}
