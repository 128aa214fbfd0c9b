//! What `mssante import` writes (ADR 0020), in two phases so that a BAL is seen whole or not
//! at all, and a killed import resumes where it stopped:
//!
//! 1. staging: each message's body and `messages` row are written in batches, with a row of
//!    `import_staged` that says where it goes (folder, UID, flags…). No folder refers to
//!    them yet, so nothing shows: not over IMAP, not in `bal list`.
//! 2. finishing: one transaction creates the BAL, its folders with their UIDVALIDITY, UIDNEXT
//!    and HIGHESTMODSEQ, subscriptions, grants and publications, and moves the staged rows
//!    into `mailbox_messages` (and the delegates' own `\Seen`, staged in
//!    `import_staged_seen`, into `delegate_seen`).
//!
//! A run is named by the archive (SHA-256 of its manifest) and the BAL; `done` runs make a
//! second import of the same archive a no-op.

use sqlx::Row;

use crate::address::Address;
use crate::blob::{PreparedBlob, record_blob};
use crate::error::{Result, StoreError};
use crate::export::{BalSnapshot, DelegateSeenRecord, MessageRecord, Receipts};
use crate::{Store, now};

/// Where the import of one BAL of one archive stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportRun {
    /// Staging: `staged` lines are written, the next is line `staged` (0-based).
    Staging { run_id: i64, staged: i64 },
    /// Finished earlier: the BAL exists.
    Done { bal_id: i64 },
}

/// One line of a BAL's index, with the bytes of its message.
#[derive(Clone, Debug)]
pub struct StagedMessage {
    pub seq: i64,
    /// Empty for a message the BAL sent that none of its folders holds (its receipts state).
    pub folder: String,
    pub uid: i64,
    pub modseq: i64,
    pub flags: String,
    pub internaldate: i64,
    /// The message number in the archive: lines sharing it share one stored message.
    pub message_number: i64,
    /// SHA-256 of `raw`, checked by the caller.
    pub blob_hash: String,
    pub raw: Vec<u8>,
    pub message: MessageRecord,
    pub receipts: Receipts,
    /// The delegates' own `\Seen` on this placement (ADR 0034), readers the caller kept.
    pub delegate_seen: Vec<DelegateSeenRecord>,
}

/// A recipient still queued at export is not relayed by the importing instance: the message
/// left with the old operator's queue. It is recorded as failed, saying so.
const QUEUED_AT_EXPORT: &str = "queued when exported; not relayed by this instance";

impl Store {
    /// The run of `address` from `archive`, started if there is none.
    pub async fn import_run(&self, archive: &str, address: &str) -> Result<ImportRun> {
        let address = Address::parse(address)?;
        let mut w = self.write_txn().await?;
        sqlx::query(
            "INSERT INTO import_runs (archive, address, state, started_at) VALUES ($1, $2, 'staging', $3) \
             ON CONFLICT (archive, address) DO NOTHING",
        )
        .bind(archive)
        .bind(address.as_str())
        .bind(now())
        .execute(&mut *w.txn)
        .await?;
        let row = sqlx::query(
            "SELECT r.id, r.state, r.bal_id, (SELECT COUNT(*) FROM import_staged s WHERE s.run_id = r.id) AS staged \
             FROM import_runs r WHERE r.archive = $1 AND r.address = $2",
        )
        .bind(archive)
        .bind(address.as_str())
        .fetch_one(&mut *w.txn)
        .await?;
        w.commit().await?;
        let state: String = row.try_get("state")?;
        Ok(if state == "done" {
            ImportRun::Done {
                bal_id: row.try_get("bal_id")?,
            }
        } else {
            ImportRun::Staging {
                run_id: row.try_get("id")?,
                staged: row.try_get("staged")?,
            }
        })
    }

    /// Whether `address` was created by a finished import of `archive` (a re-run skips it).
    pub async fn import_finished(&self, archive: &str, address: &str) -> Result<bool> {
        let address = Address::parse(address)?;
        let row = sqlx::query(
            "SELECT 1 AS one FROM import_runs WHERE archive = $1 AND address = $2 AND state = 'done'",
        )
        .bind(archive)
        .bind(address.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Writes a batch of messages of a run (bodies, `messages` rows, staged placements) in one
    /// transaction. Lines must come in order; a line already staged is an error.
    pub async fn stage_messages(&self, run_id: i64, batch: Vec<StagedMessage>) -> Result<()> {
        let mut prepared = Vec::with_capacity(batch.len());
        for m in batch {
            let size = m.raw.len() as i64;
            let hash = m.blob_hash.clone();
            let mut m = m;
            let raw = std::mem::take(&mut m.raw);
            let blob = self.prepare_blob(&hash, raw).await?;
            prepared.push((m, size, blob));
        }
        let mut w = self.write_txn().await?;
        for (m, size, blob) in &prepared {
            let message_id = match staged_message_id(&mut w.txn, run_id, m.message_number).await? {
                Some(id) => id,
                None => insert_staged_message(&mut w.txn, m, *size, blob).await?,
            };
            sqlx::query(
                "INSERT INTO import_staged (run_id, seq, folder, uid, modseq, flags, internaldate, \
                 source_message, message_id, source, sent_by_bal) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(run_id)
            .bind(m.seq)
            .bind(&m.folder)
            .bind(m.uid)
            .bind(m.modseq)
            .bind(&m.flags)
            .bind(m.internaldate)
            .bind(m.message_number)
            .bind(message_id)
            .bind(&m.message.source)
            .bind(m.message.sent_by_bal as i64)
            .execute(&mut *w.txn)
            .await?;
            stage_delegate_seen(&mut w.txn, run_id, m).await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Makes a staged BAL visible: one transaction creates it with its folders, counters,
    /// subscriptions, grants and publications and places every staged message. Refuses when
    /// the address is taken (a conflict is never overwritten).
    pub async fn finish_import(&self, run_id: i64, snapshot: &BalSnapshot) -> Result<i64> {
        let b = &snapshot.bal;
        let address = Address::parse(&b.address)?;
        let mut w = self.write_txn().await?;
        let domain_id = ensure_domain(&mut w.txn, address.domain()).await?;
        let bal_id: i64 = sqlx::query(
            "INSERT INTO bals (address, domain_id, bal_type, national_id, finess, siret, display_name, \
             status, password_hash, liste_rouge, quota_bytes, created_at, updated_at, status_changed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(address.as_str())
        .bind(domain_id)
        .bind(&b.bal_type)
        .bind(b.national_id.clone())
        .bind(b.finess.clone())
        .bind(b.siret.clone())
        .bind(b.display_name.clone())
        .bind(&b.status)
        .bind(b.password_hash.clone())
        .bind(b.liste_rouge as i64)
        .bind(b.quota_bytes)
        .bind(b.created_at)
        .bind(b.updated_at)
        .bind(b.status_changed_at)
        .fetch_one(&mut *w.txn)
        .await
        .map_err(crate::error::duplicate_as(&format!("BAL {address}")))?
        .try_get("id")?;
        insert_folders(&mut w.txn, bal_id, snapshot).await?;
        place_staged(&mut w.txn, run_id, bal_id).await?;
        insert_bal_extras(&mut w.txn, bal_id, snapshot).await?;
        sqlx::query("DELETE FROM import_staged_seen WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *w.txn)
            .await?;
        sqlx::query("DELETE FROM import_staged WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *w.txn)
            .await?;
        sqlx::query(
            "UPDATE import_runs SET state = 'done', bal_id = $1, finished_at = $2 WHERE id = $3",
        )
        .bind(bal_id)
        .bind(now())
        .bind(run_id)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        Ok(bal_id)
    }
}

/// The delegates' `\Seen` of a staged line, placed by [`place_staged`] at the finish.
async fn stage_delegate_seen(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_id: i64,
    m: &StagedMessage,
) -> Result<()> {
    for d in &m.delegate_seen {
        sqlx::query(
            "INSERT INTO import_staged_seen (run_id, seq, reader, seen, modseq) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(m.seq)
        .bind(&d.reader)
        .bind(d.seen as i64)
        .bind(d.modseq)
        .execute(&mut **txn)
        .await?;
    }
    Ok(())
}

async fn staged_message_id(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_id: i64,
    message_number: i64,
) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT message_id FROM import_staged WHERE run_id = $1 AND source_message = $2 LIMIT 1",
    )
    .bind(run_id)
    .bind(message_number)
    .fetch_optional(&mut **txn)
    .await?;
    Ok(row.map(|r| r.try_get("message_id")).transpose()?)
}

/// The `messages` row of a staged message, with its receipts. A message the BAL submitted
/// is staged as source `import` without its submitter: `message status` lists submissions
/// only, so its tracking shows once the BAL is finished, not before.
async fn insert_staged_message(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    m: &StagedMessage,
    size: i64,
    blob: &PreparedBlob,
) -> Result<i64> {
    record_blob(txn, &m.blob_hash, size, blob).await?;
    let msg = &m.message;
    let source = if msg.source == "submission" {
        "import"
    } else {
        msg.source.as_str()
    };
    let message_id: i64 = sqlx::query(
        "INSERT INTO messages (blob_hash, size, received_at, mail_from, envid, ret, source, \
         message_id_hdr, subject, x_mss_nil) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&m.blob_hash)
    .bind(size)
    .bind(msg.received_at)
    .bind(&msg.mail_from)
    .bind(msg.envid.clone())
    .bind(msg.ret.clone())
    .bind(source)
    .bind(msg.message_id_hdr.clone())
    .bind(msg.subject.clone())
    .bind(msg.x_mss_nil.clone())
    .fetch_one(&mut **txn)
    .await?
    .try_get("id")?;
    for r in &m.receipts.recipients {
        let (status, last_error) = if r.status == "queued" {
            ("failed", Some(QUEUED_AT_EXPORT.to_string()))
        } else {
            (r.status.as_str(), r.last_error.clone())
        };
        sqlx::query(
            "INSERT INTO recipients (message_id, address, orcpt, notify, status, attempts, last_error, \
             dsn_status, remote_mta, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(message_id)
        .bind(&r.address)
        .bind(r.orcpt.clone())
        .bind(r.notify.clone())
        .bind(status)
        .bind(r.attempts)
        .bind(last_error)
        .bind(r.dsn_status.clone())
        .bind(r.remote_mta.clone())
        .bind(r.updated_at)
        .execute(&mut **txn)
        .await?;
    }
    for e in &m.receipts.events {
        sqlx::query(
            "INSERT INTO tracking_events (message_id, original_msgid, recipient, kind, state, detail, \
             error_codes, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(message_id)
        .bind(e.original_msgid.clone())
        .bind(&e.recipient)
        .bind(&e.kind)
        .bind(&e.state)
        .bind(e.detail.clone())
        .bind(e.error_codes.clone())
        .bind(e.received_at)
        .execute(&mut **txn)
        .await?;
    }
    Ok(message_id)
}

async fn ensure_domain(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    domain: &str,
) -> Result<i64> {
    sqlx::query(
        "INSERT INTO domains (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(domain)
    .bind(now())
    .execute(&mut **txn)
    .await?;
    Ok(sqlx::query("SELECT id FROM domains WHERE name = $1")
        .bind(domain)
        .fetch_one(&mut **txn)
        .await?
        .try_get("id")?)
}

async fn insert_folders(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    snapshot: &BalSnapshot,
) -> Result<()> {
    for f in &snapshot.folders {
        let folder_id: i64 = sqlx::query(
            "INSERT INTO mailboxes (bal_id, name, special_use, uidvalidity, uidnext, highestmodseq, \
             subscribed, created_at, first_recent_uid) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) RETURNING id",
        )
        .bind(bal_id)
        .bind(&f.name)
        .bind(f.special_use.clone())
        .bind(f.uidvalidity)
        .bind(f.uidnext)
        .bind(f.highestmodseq)
        .bind(f.created_at)
        .bind(f.first_recent_uid)
        .fetch_one(&mut **txn)
        .await?
        .try_get("id")?;
        for (uid, modseq) in &f.expunged {
            sqlx::query("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES ($1, $2, $3)")
                .bind(folder_id)
                .bind(uid)
                .bind(modseq)
                .execute(&mut **txn)
                .await?;
        }
    }
    // Later UIDVALIDITY values handed out here must stay above the imported ones
    // (RFC 9051 §2.3.1.1: a re-created folder needs a new one).
    if let Some(max) = snapshot.folders.iter().map(|f| f.uidvalidity).max() {
        sqlx::query(
            "UPDATE counters SET value = CASE WHEN value > $1 THEN value ELSE $1 END WHERE name = 'uidvalidity'",
        )
        .bind(max)
        .execute(&mut **txn)
        .await?;
    }
    for name in &snapshot.subscriptions {
        crate::folder::subscribe_in(txn, bal_id, name).await?;
    }
    Ok(())
}

/// Moves the staged placements into the BAL's folders, and gives the messages it submitted
/// their source and submitter back.
async fn place_staged(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_id: i64,
    bal_id: i64,
) -> Result<()> {
    let placed = sqlx::query(
        "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate) \
         SELECT f.id, s.uid, s.message_id, s.modseq, s.flags, s.internaldate FROM import_staged s \
         JOIN mailboxes f ON f.bal_id = $1 AND f.name = s.folder WHERE s.run_id = $2 AND s.folder <> ''",
    )
    .bind(bal_id)
    .bind(run_id)
    .execute(&mut **txn)
    .await?
    .rows_affected();
    let staged: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM import_staged WHERE run_id = $1 AND folder <> ''")
            .bind(run_id)
            .fetch_one(&mut **txn)
            .await?
            .try_get("n")?;
    if placed as i64 != staged {
        return Err(StoreError::Invalid(format!(
            "{} staged messages name a folder the BAL does not have",
            staged - placed as i64
        )));
    }
    // ADR 0049: the writer counts the placed copies in the BAL's usage (no insert trigger).
    sqlx::query(
        "UPDATE bals SET used_bytes = used_bytes + (SELECT COALESCE(SUM(m.size), 0) \
         FROM import_staged s JOIN messages m ON m.id = s.message_id \
         WHERE s.run_id = $2 AND s.folder <> '') WHERE id = $1",
    )
    .bind(bal_id)
    .bind(run_id)
    .execute(&mut **txn)
    .await?;
    // Each delegate's own \Seen (ADR 0034) on the placements just made.
    sqlx::query(
        "INSERT INTO delegate_seen (mailbox_id, uid, reader, seen, modseq) \
         SELECT f.id, s.uid, d.reader, d.seen, d.modseq FROM import_staged_seen d \
         JOIN import_staged s ON s.run_id = d.run_id AND s.seq = d.seq \
         JOIN mailboxes f ON f.bal_id = $1 AND f.name = s.folder \
         WHERE d.run_id = $2 AND s.folder <> ''",
    )
    .bind(bal_id)
    .bind(run_id)
    .execute(&mut **txn)
    .await?;
    sqlx::query(
        "UPDATE messages SET source = 'submission' WHERE source = 'import' AND id IN \
         (SELECT message_id FROM import_staged WHERE run_id = $1 AND source = 'submission')",
    )
    .bind(run_id)
    .execute(&mut **txn)
    .await?;
    sqlx::query(
        "UPDATE messages SET auth_bal_id = $1 WHERE id IN \
         (SELECT message_id FROM import_staged WHERE run_id = $2 AND sent_by_bal = 1)",
    )
    .bind(bal_id)
    .bind(run_id)
    .execute(&mut **txn)
    .await?;
    Ok(())
}

async fn insert_bal_extras(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    snapshot: &BalSnapshot,
) -> Result<()> {
    for g in &snapshot.grants {
        let grant_id: i64 = sqlx::query(
            "INSERT INTO access_grants (bal_id, grantee_kind, grantee, origin, rights, not_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(bal_id)
        .bind(&g.grantee_kind)
        .bind(&g.grantee)
        .bind(&g.origin)
        .bind(&g.rights)
        .bind(g.not_after)
        .bind(g.created_at)
        .fetch_one(&mut **txn)
        .await?
        .try_get("id")?;
        for (folder, rights) in &g.folders {
            sqlx::query(
                "INSERT INTO access_grant_folders (grant_id, folder, rights) VALUES ($1, $2, $3)",
            )
            .bind(grant_id)
            .bind(folder)
            .bind(rights)
            .execute(&mut **txn)
            .await?;
        }
    }
    crate::audit::insert_imported_trail(txn, bal_id, &snapshot.audit).await?;
    for p in &snapshot.publications {
        sqlx::query(
            "INSERT INTO directory_outbox (address, resource_url, body, status, attempts, next_attempt, \
             last_error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&snapshot.bal.address)
        .bind(&p.resource_url)
        .bind(&p.body)
        .bind(&p.status)
        .bind(p.attempts)
        .bind(p.next_attempt)
        .bind(p.last_error.clone())
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut **txn)
        .await?;
    }
    Ok(())
}
