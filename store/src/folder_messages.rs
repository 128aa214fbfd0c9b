//! The messages in a folder, for the IMAP server (RFC 9051), with CONDSTORE/QRESYNC
//! bookkeeping (RFC 7162): every change to a message takes a new modseq above the folder's
//! HIGHESTMODSEQ, and expunged UIDs are remembered with the modseq of their removal.
//!
//! Other sessions learn about changes through [`Store::subscribe_changes`] (in-process; a
//! PostgreSQL LISTEN/NOTIFY bridge can feed the same channel for other nodes).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::PendingAudit;
use crate::blob::{PreparedBlob, blob_hash, record_blob};
use crate::delegate_seen::{copy_delegate_seen, has_seen, set_delegate_seen, with_seen};
use crate::delivery::MessageMeta;
use crate::error::{Result, StoreError};
use crate::flags::{FlagOp, apply_flags, flags_from_text};
use crate::folder::{RecentClaim, claim_recent_in};
use crate::group_commit::{Txn, write_by};
use crate::message_ref::MessageRef;
use crate::migration::{SourceMessage, insert_migrated};
use crate::{Engine, Store, now};

/// Most runs of UIDs one COPY or EXPUNGE statement matches on PostgreSQL; a set of more
/// runs (rare: a client's scattered selection) takes the transaction path.
pub(crate) const MAX_RUNS: usize = 200;

/// What FETCH needs besides the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Vec<String>,
    pub internaldate: i64,
    pub size: u32,
    pub blob_hash: String,
    /// RFC 8474 EMAILID: the stored message's, shared by its copies.
    pub email_id: String,
    /// RFC 8514 SAVEDATE: when it was put in this folder (unknown for older messages).
    pub saved_at: Option<i64>,
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

/// `uids` ascending, each once: what an audit entry written before its statement names.
fn distinct_sorted(uids: &[u32]) -> Vec<u32> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

/// Contiguous runs of sorted UIDs, so that range queries replace huge IN lists.
pub(crate) fn uid_runs(uids: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &u in uids {
        match runs.last_mut() {
            Some((_, end)) if u == *end + 1 => *end = u,
            _ => runs.push((u, u)),
        }
    }
    runs
}

pub(crate) fn ref_from_row(r: &AnyRow) -> Result<MessageRef> {
    Ok(MessageRef {
        uid: r.try_get::<i64, _>("uid")? as u32,
        modseq: r.try_get::<i64, _>("modseq")? as u64,
        flags: flags_from_text(&r.try_get::<String, _>("flags")?),
    })
}

/// Largest body [`Store::message_infos_with_bodies`] reads with its metadata: the caller's
/// batch of messages times this bounds the memory a FETCH holds.
pub const BODY_WITH_INFO_MAX: i64 = 128 * 1024;

fn info_from_row(r: &AnyRow) -> Result<MessageInfo> {
    Ok(MessageInfo {
        uid: r.try_get::<i64, _>("uid")? as u32,
        modseq: r.try_get::<i64, _>("modseq")? as u64,
        flags: flags_from_text(&r.try_get::<String, _>("flags")?),
        internaldate: r.try_get("internaldate")?,
        size: r.try_get::<i64, _>("size")? as u32,
        blob_hash: r.try_get("blob_hash")?,
        email_id: format!("M{}", r.try_get::<i64, _>("message_id")?),
        saved_at: r.try_get("saved_at")?,
    })
}

/// Takes the next modseq of a folder (one per command: all its changes share it).
pub(crate) async fn next_modseq(txn: &mut Txn, folder_id: i64) -> Result<u64> {
    let row = sqlx::query("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 RETURNING highestmodseq")
        .bind(folder_id)
        .fetch_optional(&mut **txn)
        .await?
        .ok_or_else(|| StoreError::NotFound("folder".into()))?;
    Ok(row.try_get::<i64, _>("highestmodseq")? as u64)
}

impl Store {
    /// UIDs, modseqs and flags of a whole folder, by UID (what SELECT loads).
    pub async fn message_refs(&self, folder_id: i64) -> Result<Vec<MessageRef>> {
        let rows = sqlx::query(
            "SELECT uid, modseq, flags FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid",
        )
        .bind(folder_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(ref_from_row).collect()
    }

    /// FETCH metadata for sorted `uids` (missing ones are skipped).
    pub async fn message_infos(&self, folder_id: i64, uids: &[u32]) -> Result<Vec<MessageInfo>> {
        let rows = self.info_rows(folder_id, uids, false).await?;
        rows.iter().map(info_from_row).collect()
    }

    /// [`Store::message_infos`] with the bodies stored in the database of at most
    /// [`BODY_WITH_INFO_MAX`] bytes, read in the same query: a FETCH of bodies then costs
    /// one round trip per batch instead of one more per message (ADR 0043). A larger body
    /// (or one kept as a file) is `None`: read it with [`Store::read_blob`].
    pub async fn message_infos_with_bodies(
        &self,
        folder_id: i64,
        uids: &[u32],
    ) -> Result<Vec<(MessageInfo, Option<Vec<u8>>)>> {
        let rows = self.info_rows(folder_id, uids, true).await?;
        rows.iter()
            .map(|r| Ok((info_from_row(r)?, r.try_get("body")?)))
            .collect()
    }

    async fn info_rows(&self, folder_id: i64, uids: &[u32], bodies: bool) -> Result<Vec<AnyRow>> {
        let (body, join) = match bodies {
            true => (
                ", CASE WHEN m.size <= $4 THEN bd.data END AS body",
                " LEFT JOIN blob_data bd ON bd.hash = m.blob_hash",
            ),
            false => ("", ""),
        };
        let sql = format!(
            "SELECT mm.uid, mm.modseq, mm.flags, mm.internaldate, m.size, m.blob_hash, \
             mm.message_id, mm.saved_at{body} \
             FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id{join} \
             WHERE mm.mailbox_id = $1 AND mm.uid >= $2 AND mm.uid <= $3 ORDER BY mm.uid"
        );
        let mut out = Vec::with_capacity(uids.len());
        for (lo, hi) in uid_runs(uids) {
            // Only constant fragments are formatted in; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(folder_id)
                .bind(lo as i64)
                .bind(hi as i64);
            if bodies {
                q = q.bind(BODY_WITH_INFO_MAX);
            }
            out.extend(q.fetch_all(self.pool()).await?);
        }
        Ok(out)
    }

    /// Removes messages from a folder, remembering their UIDs for QRESYNC. Returns the UIDs
    /// actually removed.
    pub async fn expunge(&self, folder_id: i64, uids: &[u32]) -> Result<Vec<u32>> {
        let audit = PendingAudit::take(self);
        if uids.is_empty() && !audit.is_some() {
            return Ok(Vec::new());
        }
        // PostgreSQL: one statement (ADR 0046).
        let runs = uid_runs(uids);
        if self.engine() == Engine::Postgres && !audit.is_some() && runs.len() <= MAX_RUNS {
            let removed = self.expunge_pg(folder_id, &runs).await?;
            if !removed.is_empty() {
                self.folder_committed(folder_id);
            }
            return Ok(removed);
        }
        // A delegate's, with the audit entry, in one statement too (ADR 0059).
        if self.engine() == Engine::Postgres
            && !uids.is_empty()
            && runs.len() <= MAX_RUNS
            && let Some(removed) = self
                .expunge_as_delegate_pg(folder_id, &distinct_sorted(uids), &audit)
                .await?
        {
            return Ok(removed);
        }
        let write = CopyWrite {
            from: folder_id,
            uids: uids.to_vec(),
            to: None,
            remove_source: true,
            check_quota: false,
            claim_recent: false,
            audit,
            engine: self.engine(),
        };
        let changed = |c: &Copied| match c.removed.is_empty() {
            true => Vec::new(),
            false => vec![folder_id],
        };
        Ok(self.write_notifying(write, changed).await?.removed)
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
        let (appended, _) = self
            .append_from(
                folder_id,
                raw,
                (flags, internaldate),
                meta,
                None,
                AppendMode::default(),
            )
            .await?;
        Ok(appended)
    }

    /// [`Store::append`] refused with [`StoreError::OverQuota`], nothing stored, when the
    /// message does not fit in the BAL's quota (RFC 9208, OVERQUOTA). The check is made with the
    /// write (in its statement on PostgreSQL, in its transaction on SQLite), not by a read
    /// before it.
    pub async fn append_within_quota(
        &self,
        folder_id: i64,
        raw: Vec<u8>,
        flags_and_date: (&[String], i64),
        meta: MessageMeta,
    ) -> Result<(u32, u32)> {
        let mode = AppendMode {
            check_quota: true,
            ..AppendMode::default()
        };
        let (appended, _) = self
            .append_from(folder_id, raw, flags_and_date, meta, None, mode)
            .await?;
        Ok(appended)
    }

    /// [`Store::append_within_quota`] by a session that has the folder selected read-write
    /// and will report the new message: the \\Recent claim that report would make (RFC
    /// 3501 §2.3.2, [`Store::claim_recent`]) is made by the write itself, in its statement
    /// or transaction, instead of a second write with its own commit (ADR 0050).
    pub async fn append_claiming_recent(
        &self,
        folder_id: i64,
        raw: Vec<u8>,
        flags_and_date: (&[String], i64),
        meta: MessageMeta,
    ) -> Result<((u32, u32), RecentClaim)> {
        let mode = AppendMode {
            check_quota: true,
            claim_recent: true,
            ..AppendMode::default()
        };
        let (appended, claim) = self
            .append_with(folder_id, raw, flags_and_date, meta, mode)
            .await?;
        Ok((
            appended,
            claim.ok_or(StoreError::NotFound("folder".into()))?,
        ))
    }

    /// [`Store::append`] as `mode` says: within the quota, as a delegate whose `\Seen`
    /// is their own (ADR 0034), claiming \\Recent (ADR 0050, the claim returned).
    pub async fn append_with(
        &self,
        folder_id: i64,
        raw: Vec<u8>,
        flags_and_date: (&[String], i64),
        meta: MessageMeta,
        mode: AppendMode<'_>,
    ) -> Result<((u32, u32), Option<RecentClaim>)> {
        self.append_from(folder_id, raw, flags_and_date, meta, None, mode)
            .await
    }

    /// APPEND, and when the message is a copy from another server, the row naming its
    /// `source` in the same transaction (`migration.rs`).
    pub(crate) async fn append_from(
        &self,
        folder_id: i64,
        raw: Vec<u8>,
        (flags, internaldate): (&[String], i64),
        meta: MessageMeta,
        source: Option<SourceMessage>,
        AppendMode {
            check_quota,
            reader,
            claim_recent,
        }: AppendMode<'_>,
    ) -> Result<((u32, u32), Option<RecentClaim>)> {
        let hash = blob_hash(&raw);
        let size = raw.len() as i64;
        let blob = self.prepare_blob(&hash, raw).await?;
        let flags = apply_flags(&[], FlagOp::Replace, flags);
        // A delegate's \Seen is their own row, not the shared flag (ADR 0034).
        let own_seen = reader.filter(|_| has_seen(&flags)).map(str::to_string);
        let flags = match own_seen {
            Some(_) => with_seen(&flags, false).join(" "),
            None => flags.join(" "),
        };
        let audit = PendingAudit::take(self);
        // PostgreSQL: one statement (ADR 0043), in a transaction with the audit entry of a
        // delegate's (ADR 0044); a migration record takes the transaction path.
        if let Some(bytes) = inline_bytes(&blob)
            && self.engine() == crate::Engine::Postgres
            && source.is_none()
        {
            let append = AppendPg {
                folder_id,
                hash: &hash,
                size,
                bytes,
                flags: &flags,
                internaldate,
                meta: &meta,
                check_quota,
                claim_recent,
            };
            let appended = match audit.is_some() || own_seen.is_some() {
                true => self.append_pg_audited(&append, audit, own_seen).await?,
                false => self.append_pg(&append).await?,
            };
            self.folder_committed(folder_id);
            return Ok(appended);
        }
        let write = AppendWrite {
            folder_id,
            hash,
            size,
            blob,
            flags,
            internaldate,
            meta,
            audit,
            source,
            check_quota,
            own_seen,
            claim_recent,
        };
        self.write_notifying(write, |_| vec![folder_id]).await
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
        Ok(self
            .copy_from(from, uids, to, remove_source, false)
            .await?
            .0)
    }

    /// COPY by a session that has the target selected read-write (a copy within the
    /// selected folder): the \\Recent claim its report of the copies would make is made by
    /// the write (ADR 0050, as [`Store::append_claiming_recent`]); `None` when no source
    /// matched.
    pub async fn copy_claiming_recent(
        &self,
        from: i64,
        uids: &[u32],
        to: i64,
    ) -> Result<(Vec<(u32, u32)>, Option<RecentClaim>)> {
        self.copy_from(from, uids, to, false, true).await
    }

    async fn copy_from(
        &self,
        from: i64,
        uids: &[u32],
        to: i64,
        remove_source: bool,
        claim_recent: bool,
    ) -> Result<(Vec<(u32, u32)>, Option<RecentClaim>)> {
        let audit = PendingAudit::take(self);
        // PostgreSQL: a COPY is one statement (ADR 0046); a MOVE (two folders' rows, in
        // order) keeps the transaction.
        let runs = uid_runs(uids);
        if self.engine() == Engine::Postgres
            && !remove_source
            && !audit.is_some()
            && !runs.is_empty()
            && runs.len() <= MAX_RUNS
        {
            let copied = self.copy_pg(from, &runs, to, claim_recent).await?;
            self.folder_committed(to);
            return Ok(copied);
        }
        // A delegate's COPY within the BAL, with its audit entry, in one statement too
        // (ADR 0059).
        if self.engine() == Engine::Postgres
            && !remove_source
            && !runs.is_empty()
            && runs.len() <= MAX_RUNS
        {
            let (folders, asked) = ((from, to), distinct_sorted(uids));
            if let Some(copied) = self
                .copy_as_delegate_pg(folders, &asked, claim_recent, &audit)
                .await?
            {
                return Ok(copied);
            }
        }
        let write = CopyWrite {
            from,
            uids: uids.to_vec(),
            to: Some(to),
            remove_source,
            // A COPY adds to the target BAL's usage (RFC 9208, OVERQUOTA), and so does a MOVE
            // into a folder of another BAL (one reached through a delegation); a MOVE between
            // two folders of one BAL does not (`ensure_room`).
            check_quota: true,
            claim_recent,
            audit,
            engine: self.engine(),
        };
        let changed = |_: &Copied| match remove_source {
            true => vec![to, from],
            false => vec![to],
        };
        let copied = self.write_notifying(write, changed).await?;
        Ok((copied.pairs, copied.recent))
    }

    /// The messages of one folder of a BAL, by UID.
    pub async fn folder_messages(&self, address: &str, folder: &str) -> Result<Vec<StoredMessage>> {
        let mailbox_id = self
            .folder_summaries(address)
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
        rows.iter().map(stored_from_row).collect()
    }
}

/// A row of `mailbox_messages` joined with `messages` (uid, modseq, message_id, flags,
/// internaldate, blob_hash, size).
pub(crate) fn stored_from_row(r: &AnyRow) -> Result<StoredMessage> {
    Ok(StoredMessage {
        uid: r.try_get("uid")?,
        modseq: r.try_get("modseq")?,
        message_id: r.try_get("message_id")?,
        blob_hash: r.try_get("blob_hash")?,
        size: r.try_get("size")?,
        flags: r.try_get("flags")?,
        internaldate: r.try_get("internaldate")?,
    })
}

/// APPEND's write (see [`Store::append`]).
struct AppendWrite {
    folder_id: i64,
    hash: String,
    size: i64,
    blob: PreparedBlob,
    flags: String,
    internaldate: i64,
    meta: MessageMeta,
    audit: PendingAudit,
    /// `mssante migrate`: the message of another server this is the copy of.
    source: Option<SourceMessage>,
    /// Refuse when the message does not fit in the BAL's quota.
    check_quota: bool,
    /// The delegate whose own `\Seen` the message gets (ADR 0034).
    own_seen: Option<String>,
    /// Claim \\Recent for the caller (ADR 0050).
    claim_recent: bool,
}

write_by!(AppendWrite, ((u32, u32), Option<RecentClaim>), append_in);

async fn append_in(txn: &mut Txn, w: &AppendWrite) -> Result<((u32, u32), Option<RecentClaim>)> {
    if w.check_quota {
        ensure_room(txn, w.folder_id, w.size, None).await?;
    }
    record_blob(txn, &w.hash, w.size, &w.blob).await?;
    let row = sqlx::query(
        "INSERT INTO messages (blob_hash, size, received_at, mail_from, source, message_id_hdr, subject, x_mss_nil) \
         VALUES ($1, $2, $3, '', 'imap', $4, $5, $6) RETURNING id",
    )
    .bind(&w.hash)
    .bind(w.size)
    .bind(now())
    .bind(w.meta.message_id.clone())
    .bind(w.meta.subject.clone())
    .bind(w.meta.x_mss_nil.clone())
    .fetch_one(&mut **txn)
    .await?;
    let message_id: i64 = row.try_get("id")?;
    let appended = insert_message(txn, w.folder_id, message_id, &w.flags, w.internaldate).await?;
    if let Some(reader) = &w.own_seen {
        // The new message's modseq covers the row (as for a copied row): 0 here.
        set_delegate_seen(txn, w.folder_id, reader, &[appended.1], true, 0).await?;
    }
    w.audit.record(txn, &[appended.1]).await?;
    if let Some(source) = &w.source {
        insert_migrated(txn, source, w.folder_id, appended.1, &w.hash, w.size).await?;
    }
    let claim = match w.claim_recent {
        true => Some(claim_recent_in(txn, w.folder_id).await?),
        false => None,
    };
    Ok((appended, claim))
}

/// COPY, MOVE (copy then remove) and EXPUNGE (remove only, `to` is `None`).
struct CopyWrite {
    from: i64,
    uids: Vec<u32>,
    to: Option<i64>,
    remove_source: bool,
    /// Refuse when the copies do not fit in the target BAL's quota.
    check_quota: bool,
    /// Claim \\Recent in the target for the caller (ADR 0050).
    claim_recent: bool,
    audit: PendingAudit,
    engine: Engine,
}

#[derive(Default)]
struct Copied {
    /// (source uid, new uid), for COPYUID.
    pairs: Vec<(u32, u32)>,
    /// Source UIDs removed, ascending.
    removed: Vec<u32>,
    /// The \\Recent claim in the target, when asked for and something was copied.
    recent: Option<RecentClaim>,
}

write_by!(CopyWrite, Copied, copy_in);

async fn copy_in(txn: &mut Txn, w: &CopyWrite) -> Result<Copied> {
    let mut out = Copied::default();
    if let Some(to) = w.to
        && w.remove_source
    {
        lock_folders_in_order(txn, w.engine, w.from, to).await?;
    }
    if let Some(to) = w.to {
        out.pairs = copy_to(txn, w, to).await?;
        if w.claim_recent && !out.pairs.is_empty() {
            out.recent = Some(claim_recent_in(txn, to).await?);
        }
    }
    let sources: Vec<u32> = out.pairs.iter().map(|p| p.0).collect();
    if w.remove_source {
        let gone = match w.to {
            Some(_) => &sources,
            None => &w.uids,
        };
        out.removed = expunge_in(txn, w.from, gone).await?;
    }
    // A copy or move is recorded with its source UIDs (and, in the target's BAL when
    // another, with the new ones), an expunge with those it removed.
    match w.to {
        Some(_) => {
            let copies: Vec<u32> = out.pairs.iter().map(|p| p.1).collect();
            w.audit.record_copy(txn, &sources, &copies).await?;
        }
        None => w.audit.record(txn, &out.removed).await?,
    }
    Ok(out)
}

/// The copies of COPY or MOVE in `to`: (source uid, new uid) pairs.
async fn copy_to(txn: &mut Txn, w: &CopyWrite, to: i64) -> Result<Vec<(u32, u32)>> {
    let mut sources = Vec::new();
    for (lo, hi) in uid_runs(&w.uids) {
        // `readers`: whether there are delegates' `\Seen` rows to copy (most messages
        // have none: no statement for them).
        let rows = sqlx::query("SELECT mm.uid, mm.message_id, mm.flags, mm.internaldate, m.size, \
             (SELECT COUNT(*) FROM delegate_seen s WHERE s.mailbox_id = mm.mailbox_id AND s.uid = mm.uid) AS readers \
             FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1 AND mm.uid >= $2 AND mm.uid <= $3 ORDER BY mm.uid")
            .bind(w.from)
            .bind(lo as i64)
            .bind(hi as i64)
            .fetch_all(&mut **txn)
            .await?;
        sources.extend(rows);
    }
    if w.check_quota && !sources.is_empty() {
        let mut bytes = 0;
        for r in &sources {
            bytes += r.try_get::<i64, _>("size")?;
        }
        let moved_from = w.remove_source.then_some(w.from);
        ensure_room(txn, to, bytes, moved_from).await?;
    }
    let mut pairs = Vec::with_capacity(sources.len());
    let mut read_by_delegates = Vec::new();
    for r in &sources {
        let (_, new_uid) = insert_message(
            txn,
            to,
            r.try_get("message_id")?,
            &r.try_get::<String, _>("flags")?,
            r.try_get("internaldate")?,
        )
        .await?;
        let uid: i64 = r.try_get("uid")?;
        if r.try_get::<i64, _>("readers")? > 0 {
            read_by_delegates.push((uid, new_uid));
        }
        pairs.push((uid as u32, new_uid));
    }
    copy_delegate_seen(txn, w.from, to, &read_by_delegates).await?;
    Ok(pairs)
}

/// Fails with [`StoreError::OverQuota`] when `bytes` more would take the BAL of `folder_id`
/// over its quota (RFC 9208, OVERQUOTA), read in the write's transaction: on SQLite, the single
/// writer makes it exact. Bytes `moved_from` a folder of the same BAL add nothing to its
/// usage: only a MOVE across BALs (into a delegated folder, or out of one) is checked.
async fn ensure_room(
    txn: &mut Txn,
    folder_id: i64,
    bytes: i64,
    moved_from: Option<i64>,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT b.used_bytes, b.quota_bytes, \
         CAST(CASE WHEN f.bal_id = (SELECT bal_id FROM mailboxes WHERE id = $2) THEN 1 ELSE 0 END \
         AS BIGINT) AS same_bal FROM mailboxes f JOIN bals b ON b.id = f.bal_id WHERE f.id = $1",
    )
    .bind(folder_id)
    .bind(moved_from.unwrap_or(-1))
    .fetch_optional(&mut **txn)
    .await?
    .ok_or_else(|| StoreError::NotFound("folder".into()))?;
    if row.try_get::<i64, _>("same_bal")? == 1 {
        return Ok(());
    }
    let used: i64 = row.try_get("used_bytes")?;
    match row.try_get::<Option<i64>, _>("quota_bytes")? {
        Some(quota) if used + bytes > quota => Err(StoreError::OverQuota),
        _ => Ok(()),
    }
}

/// A MOVE writes two folder rows, and appending or removing messages then writes the BAL's
/// usage row (the writer's own update, ADR 0049, or a removal's trigger): every PostgreSQL write takes folder rows first, by ascending id,
/// then the BAL's, so that two MOVEs in opposite directions (or a MOVE and an APPEND) cannot
/// deadlock (ADR 0040). SQLite has a single writer already.
async fn lock_folders_in_order(txn: &mut Txn, engine: Engine, a: i64, b: i64) -> Result<()> {
    if engine == Engine::Postgres {
        sqlx::query("SELECT id FROM mailboxes WHERE id IN ($1, $2) ORDER BY id FOR UPDATE")
            .bind(a)
            .bind(b)
            .fetch_all(&mut **txn)
            .await?;
    }
    Ok(())
}

/// Adds a message row to a folder with the next UID and modseq, and its bytes to the BAL's
/// usage.
async fn insert_message(
    txn: &mut Txn,
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
    sqlx::query("INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate, saved_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(folder_id)
        .bind(uid)
        .bind(message_id)
        .bind(row.try_get::<i64, _>("highestmodseq")?)
        .bind(flags)
        .bind(internaldate)
        .bind(now())
        .execute(&mut **txn)
        .await?;
    // ADR 0049: the writer counts the copy in its BAL's usage (no insert trigger).
    sqlx::query(
        "UPDATE bals SET used_bytes = used_bytes + (SELECT size FROM messages WHERE id = $1) \
         WHERE id = (SELECT bal_id FROM mailboxes WHERE id = $2)",
    )
    .bind(message_id)
    .bind(folder_id)
    .execute(&mut **txn)
    .await?;
    Ok((row.try_get::<i64, _>("uidvalidity")? as u32, uid as u32))
}

async fn expunge_in(txn: &mut Txn, folder_id: i64, uids: &[u32]) -> Result<Vec<u32>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = next_modseq(txn, folder_id).await?;
    let mut removed = Vec::new();
    // Two statements per run of UIDs, not one more per message: the UIDs QRESYNC will
    // report as VANISHED (RFC 7162 §3.2.10), then the rows themselves.
    for (lo, hi) in uid_runs(uids) {
        sqlx::query(
            "INSERT INTO expunged (mailbox_id, uid, modseq) SELECT mailbox_id, uid, $4 \
             FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND uid <= $3",
        )
        .bind(folder_id)
        .bind(lo as i64)
        .bind(hi as i64)
        .bind(modseq as i64)
        .execute(&mut **txn)
        .await?;
        let rows = sqlx::query("DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND uid <= $3 RETURNING uid")
            .bind(folder_id)
            .bind(lo as i64)
            .bind(hi as i64)
            .fetch_all(&mut **txn)
            .await?;
        for r in &rows {
            removed.push(r.try_get::<i64, _>("uid")? as u32);
        }
    }
    removed.sort_unstable();
    Ok(removed)
}

/// What `Store::append_pg` (`folder_writes_pg.rs`) stores.
pub(crate) struct AppendPg<'a> {
    pub folder_id: i64,
    pub hash: &'a str,
    pub size: i64,
    pub bytes: &'a [u8],
    pub flags: &'a str,
    pub internaldate: i64,
    pub meta: &'a MessageMeta,
    pub check_quota: bool,
    /// Claim \\Recent for the caller (ADR 0050).
    pub claim_recent: bool,
}

/// How [`Store::append_with`] stores a message, besides its bytes, flags and date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendMode<'a> {
    /// Refuse (`StoreError::OverQuota`) when the message does not fit in the BAL's quota.
    pub check_quota: bool,
    /// A delegate appending to the BAL they act on (ADR 0034): a `\Seen` among the flags is
    /// theirs (their row of `delegate_seen`), not the shared flag the holder sees.
    pub reader: Option<&'a str>,
    /// Claim \\Recent for the caller, who has the folder selected read-write and will
    /// report the message (ADR 0050).
    pub claim_recent: bool,
}

/// The body of a prepared blob: always inline on PostgreSQL (ADR 0023).
pub(crate) fn inline_bytes(blob: &PreparedBlob) -> Option<&[u8]> {
    match blob {
        PreparedBlob::Inline(bytes) => Some(bytes.as_slice()),
        PreparedBlob::File => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs() {
        assert_eq!(
            uid_runs(&[1, 2, 3, 7, 9, 10]),
            vec![(1, 3), (7, 7), (9, 10)]
        );
        assert!(uid_runs(&[]).is_empty());
    }
}
