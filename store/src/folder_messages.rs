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
use crate::delegate_seen::{
    SELECT_AS_DELEGATE, as_delegate, copy_delegate_seen, has_seen, set_delegate_seen,
    shared_and_delegate, with_seen,
};
use crate::delivery::MessageMeta;
use crate::error::{Result, StoreError};
use crate::flags::{canonical_flag, flags_from_text};
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

fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

pub(crate) fn apply_flags(current: &[String], op: FlagOp, flags: &[String]) -> Vec<String> {
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
async fn next_modseq(txn: &mut Txn, folder_id: i64) -> Result<u64> {
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

    /// STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3) on the shared flags.
    pub async fn update_flags(
        &self,
        folder_id: i64,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<FlagUpdate> {
        self.update_flags_as(folder_id, uids, (op, flags), unchanged_since, None)
            .await
    }

    /// STORE as `delegate` sees the folder when `Some` (their own `\Seen`, ADR 0034): the
    /// changed messages come back with the flags and modseq that delegate sees.
    pub async fn update_flags_as(
        &self,
        folder_id: i64,
        uids: &[u32],
        (op, flags): (FlagOp, &[String]),
        unchanged_since: Option<u64>,
        delegate: Option<&str>,
    ) -> Result<FlagUpdate> {
        let audit = PendingAudit::take(self);
        // PostgreSQL: a read and one statement on one connection unless the STORE is a
        // delegate's (their own \Seen rows) or audited (ADR 0046).
        let runs = uid_runs(uids);
        if self.engine() == Engine::Postgres
            && delegate.is_none()
            && !audit.is_some()
            && !runs.is_empty()
            && runs.len() <= MAX_RUNS
            && let Some(update) = self
                .update_flags_pg(folder_id, &runs, (op, flags), unchanged_since)
                .await?
        {
            if !update.changed.is_empty() {
                self.notify_local(folder_id);
            }
            return Ok(update);
        }
        let write = FlagsWrite {
            folder_id,
            uids: uids.to_vec(),
            op,
            flags: flags.to_vec(),
            unchanged_since,
            delegate: delegate.map(str::to_string),
            audit,
        };
        let changed = |u: &FlagUpdate| match u.changed.is_empty() {
            true => Vec::new(),
            false => vec![folder_id],
        };
        self.write_notifying(write, changed).await
    }

    /// Removes messages from a folder, remembering their UIDs for QRESYNC. Returns the UIDs
    /// actually removed.
    pub async fn expunge(&self, folder_id: i64, uids: &[u32]) -> Result<Vec<u32>> {
        let audit = PendingAudit::take(self);
        if uids.is_empty() && !audit.is_some() {
            return Ok(Vec::new());
        }
        // PostgreSQL: one statement unless an audit entry goes with it (ADR 0046).
        let runs = uid_runs(uids);
        if self.engine() == Engine::Postgres && !audit.is_some() && runs.len() <= MAX_RUNS {
            let removed = self.expunge_pg(folder_id, &runs).await?;
            if !removed.is_empty() {
                self.notify_local(folder_id);
            }
            return Ok(removed);
        }
        let write = CopyWrite {
            from: folder_id,
            uids: uids.to_vec(),
            to: None,
            remove_source: true,
            check_quota: false,
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
        let mode = AppendMode::default();
        self.append_from(folder_id, raw, (flags, internaldate), meta, None, mode)
            .await
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
            reader: None,
        };
        self.append_from(folder_id, raw, flags_and_date, meta, None, mode)
            .await
    }

    /// [`Store::append`] as `mode` says: within the quota, and as a delegate whose `\Seen`
    /// is their own (ADR 0034).
    pub async fn append_with(
        &self,
        folder_id: i64,
        raw: Vec<u8>,
        flags_and_date: (&[String], i64),
        meta: MessageMeta,
        mode: AppendMode<'_>,
    ) -> Result<(u32, u32)> {
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
        }: AppendMode<'_>,
    ) -> Result<(u32, u32)> {
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
            };
            let appended = match audit.is_some() || own_seen.is_some() {
                true => self.append_pg_audited(&append, audit, own_seen).await?,
                false => self.append_pg(&append).await?,
            };
            self.notify_local(folder_id);
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
        let audit = PendingAudit::take(self);
        // PostgreSQL: a COPY is one statement unless an audit entry goes with it (ADR 0046);
        // a MOVE (two folders' rows, in order) keeps the transaction.
        let runs = uid_runs(uids);
        if self.engine() == Engine::Postgres
            && !remove_source
            && !audit.is_some()
            && !runs.is_empty()
            && runs.len() <= MAX_RUNS
        {
            let pairs = self.copy_pg(from, &runs, to).await?;
            self.notify_local(to);
            return Ok(pairs);
        }
        let write = CopyWrite {
            from,
            uids: uids.to_vec(),
            to: Some(to),
            remove_source,
            // A COPY adds to the target BAL's usage (RFC 9208, OVERQUOTA); a MOVE between two
            // folders of one BAL does not.
            check_quota: !remove_source,
            audit,
            engine: self.engine(),
        };
        let changed = |_: &Copied| match remove_source {
            true => vec![to, from],
            false => vec![to],
        };
        Ok(self.write_notifying(write, changed).await?.pairs)
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

/// STORE's write (see [`Store::update_flags_as`]).
struct FlagsWrite {
    folder_id: i64,
    uids: Vec<u32>,
    op: FlagOp,
    flags: Vec<String>,
    unchanged_since: Option<u64>,
    /// A delegate storing: their `\Seen` is their own (ADR 0034).
    delegate: Option<String>,
    audit: PendingAudit,
}

write_by!(FlagsWrite, FlagUpdate, update_flags_in);

/// Reads the messages of the set, computes their new flags, and writes those that changed
/// with one new modseq, one UPDATE per distinct new flag list (a STORE on a range mostly
/// gives every message the same flags). For a delegate, `\Seen` goes to their own row and
/// the shared `\Seen` (the holder's) is kept as it was.
async fn update_flags_in(txn: &mut Txn, w: &FlagsWrite) -> Result<FlagUpdate> {
    let modseq = next_modseq(txn, w.folder_id).await?;
    let mut update = FlagUpdate::default();
    // New flag text -> the UIDs that get it.
    let mut writes: Vec<(String, Vec<u32>)> = Vec::new();
    // The delegate's \Seen: UIDs to set, UIDs to clear.
    let mut seen: (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for (lo, hi) in uid_runs(&w.uids) {
        for (shared, row) in flags_rows(txn, w, lo, hi).await? {
            let uid = shared.uid;
            let current = match &w.delegate {
                Some(_) => as_delegate(shared.clone(), row),
                None => shared.clone(),
            };
            if w.unchanged_since
                .is_some_and(|since| current.modseq > since)
            {
                update.conflicts.push(uid);
                continue;
            }
            let new = apply_flags(&current.flags, w.op, &w.flags);
            let new_shared = match &w.delegate {
                Some(_) => with_seen(&new, has_seen(&shared.flags)),
                None => new.clone(),
            };
            let shared_changed = !same_flags(&new_shared, &shared.flags);
            let seen_changed = w.delegate.is_some() && has_seen(&new) != has_seen(&current.flags);
            if !shared_changed && !seen_changed {
                continue;
            }
            if shared_changed {
                let text = new_shared.join(" ");
                match writes.iter_mut().find(|(t, _)| *t == text) {
                    Some((_, uids)) => uids.push(uid),
                    None => writes.push((text, vec![uid])),
                }
            }
            if seen_changed {
                match has_seen(&new) {
                    true => seen.0.push(uid),
                    false => seen.1.push(uid),
                }
            }
            update.changed.push(MessageRef {
                uid,
                modseq,
                flags: new,
            });
        }
    }
    for (text, uids) in &writes {
        set_flags(txn, w.folder_id, uids, text, modseq).await?;
    }
    if let Some(reader) = &w.delegate {
        set_delegate_seen(txn, w.folder_id, reader, &seen.0, true, modseq).await?;
        set_delegate_seen(txn, w.folder_id, reader, &seen.1, false, modseq).await?;
    }
    let changed: Vec<u32> = update.changed.iter().map(|m| m.uid).collect();
    w.audit.record(txn, &changed).await?;
    Ok(update)
}

/// The messages of one UID run of a STORE: shared, with the delegate's `\Seen` row when the
/// write is a delegate's.
async fn flags_rows(
    txn: &mut Txn,
    w: &FlagsWrite,
    lo: u32,
    hi: u32,
) -> Result<Vec<(MessageRef, Option<(bool, u64)>)>> {
    let Some(reader) = &w.delegate else {
        let rows = sqlx::query("SELECT uid, modseq, flags FROM mailbox_messages WHERE mailbox_id = $1 AND uid >= $2 AND uid <= $3 ORDER BY uid")
            .bind(w.folder_id)
            .bind(lo as i64)
            .bind(hi as i64)
            .fetch_all(&mut **txn)
            .await?;
        return rows.iter().map(|r| Ok((ref_from_row(r)?, None))).collect();
    };
    let sql = format!("{SELECT_AS_DELEGATE} AND mm.uid >= $3 AND mm.uid <= $4 ORDER BY mm.uid");
    // Only the constant text is formatted in; every value is bound.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(w.folder_id)
        .bind(reader.as_str())
        .bind(lo as i64)
        .bind(hi as i64)
        .fetch_all(&mut **txn)
        .await?;
    rows.iter().map(shared_and_delegate).collect()
}

/// The same flags, in any order (flags compare case-insensitively).
pub(crate) fn same_flags(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|f| has_flag(b, f))
}

/// Most UIDs bound in one statement (SQLite's default limit is 32,766 parameters).
const UIDS_PER_STATEMENT: usize = 500;

/// Gives `uids` the flags `text` and the modseq `modseq`.
async fn set_flags(
    txn: &mut Txn,
    folder_id: i64,
    uids: &[u32],
    text: &str,
    modseq: u64,
) -> Result<()> {
    for chunk in uids.chunks(UIDS_PER_STATEMENT) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "UPDATE mailbox_messages SET flags = $1, modseq = $2 WHERE mailbox_id = $3 AND uid IN ({})",
            list.join(", ")
        );
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(text)
            .bind(modseq as i64)
            .bind(folder_id);
        for &uid in chunk {
            q = q.bind(uid as i64);
        }
        q.execute(&mut **txn).await?;
    }
    Ok(())
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
}

write_by!(AppendWrite, (u32, u32), append_in);

async fn append_in(txn: &mut Txn, w: &AppendWrite) -> Result<(u32, u32)> {
    if w.check_quota {
        ensure_room(txn, w.folder_id, w.size).await?;
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
    Ok(appended)
}

/// COPY, MOVE (copy then remove) and EXPUNGE (remove only, `to` is `None`).
struct CopyWrite {
    from: i64,
    uids: Vec<u32>,
    to: Option<i64>,
    remove_source: bool,
    /// Refuse when the copies do not fit in the target BAL's quota.
    check_quota: bool,
    audit: PendingAudit,
    engine: Engine,
}

#[derive(Default)]
struct Copied {
    /// (source uid, new uid), for COPYUID.
    pairs: Vec<(u32, u32)>,
    /// Source UIDs removed, ascending.
    removed: Vec<u32>,
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
    }
    let sources: Vec<u32> = out.pairs.iter().map(|p| p.0).collect();
    if w.remove_source {
        let gone = match w.to {
            Some(_) => &sources,
            None => &w.uids,
        };
        out.removed = expunge_in(txn, w.from, gone).await?;
    }
    // A copy or move is recorded with its source UIDs, an expunge with those it removed.
    let recorded = match w.to {
        Some(_) => &sources,
        None => &out.removed,
    };
    w.audit.record(txn, recorded).await?;
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
        ensure_room(txn, to, bytes).await?;
    }
    let mut pairs = Vec::with_capacity(sources.len());
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
            copy_delegate_seen(txn, (w.from, uid), (to, new_uid)).await?;
        }
        pairs.push((uid as u32, new_uid));
    }
    Ok(pairs)
}

/// Fails with [`StoreError::OverQuota`] when `bytes` more would take the BAL of `folder_id`
/// over its quota (RFC 9208, OVERQUOTA), read in the write's transaction: on SQLite, the single
/// writer makes it exact.
async fn ensure_room(txn: &mut Txn, folder_id: i64, bytes: i64) -> Result<()> {
    let row = sqlx::query(
        "SELECT b.used_bytes, b.quota_bytes FROM mailboxes f JOIN bals b ON b.id = f.bal_id \
         WHERE f.id = $1",
    )
    .bind(folder_id)
    .fetch_optional(&mut **txn)
    .await?
    .ok_or_else(|| StoreError::NotFound("folder".into()))?;
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
    /// Refuse (`StoreError::OverQuota`) when the message does not fit in the BAL's quota.
    pub check_quota: bool,
}

/// How [`Store::append_with`] stores a message, besides its bytes, flags and date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendMode<'a> {
    /// Refuse (`StoreError::OverQuota`) when the message does not fit in the BAL's quota.
    pub check_quota: bool,
    /// A delegate appending to the BAL they act on (ADR 0034): a `\Seen` among the flags is
    /// theirs (their row of `delegate_seen`), not the shared flag the holder sees.
    pub reader: Option<&'a str>,
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
