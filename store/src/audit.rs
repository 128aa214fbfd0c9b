//! The audit trail of a BAL (issue 14, ADR 0016): every grant, change, expiry and revocation,
//! and every action a delegate takes on the BAL, with author, time, message ids, client
//! address and result, never content. Append-only and chained per BAL: each entry's hash
//! covers the previous entry's hash, so `verify_audit` finds the first edited or removed one.
//!
//! Entries about a write are inserted by [`append_in`] inside the transaction of the write
//! itself: the action and its trace commit together or not at all. Entries about a read are
//! queued for the next commit before the reply and not waited for ([`Store::queue_audit`],
//! ADR 0035).

// A group commit's entries inserted together (ADR 0044): a child, so that it may use the
// chain's items here while the group committer calls it.
pub(crate) mod batch;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::group_commit::Txn;
use crate::{Engine, Store, now};

/// The `prev_hash` of a BAL's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. Stored as its `as_str` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    Grant,
    Change,
    Revoke,
    Expire,
    Login,
    Select,
    FetchBody,
    Flags,
    Copy,
    Move,
    /// A delegate's copy into a folder of this BAL from one of another BAL (hers): the new
    /// UIDs here. (A copy out of this BAL, or within it, is `Copy` with the source UIDs.)
    CopyIn,
    /// As `CopyIn`, for a MOVE (the source side's entry, if audited, is `Move`).
    MoveIn,
    Expunge,
    Append,
    Send,
    /// A delegate's command refused for want of a right.
    Refused,
    /// Retention removed the oldest entries; the detail is the anchor the rest chains to.
    Prune,
    /// `bal remove`: the BAL's content and accesses were deleted (ADR 0033); the detail
    /// counts what went.
    Remove,
}

impl AuditAction {
    pub const ALL: [AuditAction; 18] = [
        AuditAction::Grant,
        AuditAction::Change,
        AuditAction::Revoke,
        AuditAction::Expire,
        AuditAction::Login,
        AuditAction::Select,
        AuditAction::FetchBody,
        AuditAction::Flags,
        AuditAction::Copy,
        AuditAction::Move,
        AuditAction::CopyIn,
        AuditAction::MoveIn,
        AuditAction::Expunge,
        AuditAction::Append,
        AuditAction::Send,
        AuditAction::Refused,
        AuditAction::Prune,
        AuditAction::Remove,
    ];

    /// The action named `name` (as [`AuditAction::as_str`] writes it).
    pub fn parse(name: &str) -> Option<AuditAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Grant => "grant",
            AuditAction::Change => "change",
            AuditAction::Revoke => "revoke",
            AuditAction::Expire => "expire",
            AuditAction::Login => "login",
            AuditAction::Select => "select",
            AuditAction::FetchBody => "fetch-body",
            AuditAction::Flags => "flags",
            AuditAction::Copy => "copy",
            AuditAction::Move => "move",
            AuditAction::CopyIn => "copy-in",
            AuditAction::MoveIn => "move-in",
            AuditAction::Expunge => "expunge",
            AuditAction::Append => "append",
            AuditAction::Send => "send",
            AuditAction::Refused => "refused",
            AuditAction::Prune => "prune",
            AuditAction::Remove => "remove",
        }
    }
}

/// An entry to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub bal_id: i64,
    /// Who acted: a BAL address, a PSC identity, or `operator` for the command line.
    pub author: String,
    pub action: AuditAction,
    pub folder: String,
    /// UIDs (`uid:12`) or Message-IDs; never content.
    pub message_ids: Vec<String>,
    /// The client's address (`ip:port`), empty for the command line.
    pub client: String,
    /// `ok`, or `refused: …` / `failed: …`.
    pub result: String,
    /// What changed, e.g. the rights of a grant; never content.
    pub detail: String,
}

impl AuditEvent {
    pub fn new(bal_id: i64, author: &str, action: AuditAction) -> AuditEvent {
        AuditEvent {
            bal_id,
            author: author.to_string(),
            action,
            folder: String::new(),
            message_ids: Vec::new(),
            client: String::new(),
            result: "ok".into(),
            detail: String::new(),
        }
    }
}

/// An entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub bal: String,
    pub seq: i64,
    pub at: i64,
    pub author: String,
    pub action: String,
    pub folder: String,
    pub message_ids: String,
    pub client: String,
    pub result: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The hash this entry should carry: SHA-256 over the previous hash and every field,
    /// each length-prefixed so that no two entries serialise alike.
    fn expected_hash(&self, bal_id: i64) -> String {
        let seq = self.seq.to_string();
        let at = self.at.to_string();
        let bal = bal_id.to_string();
        let fields = [
            self.prev_hash.as_str(),
            &bal,
            &seq,
            &at,
            &self.author,
            &self.action,
            &self.folder,
            &self.message_ids,
            &self.client,
            &self.result,
            &self.detail,
        ];
        let mut h = Sha256::new();
        for f in fields {
            h.update(f.len().to_string().as_bytes());
            h.update(b":");
            h.update(f.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

/// What `verify_audit` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerification {
    pub entries: u64,
    /// The first entry that does not chain: (BAL, seq, id, why).
    pub first_bad: Option<(String, i64, i64, String)>,
}

/// Filters of `audit_entries`.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub since: Option<i64>,
    pub author: Option<String>,
    /// Only this action (`grant`, `fetch-body`, … as [`AuditAction::as_str`] names it).
    pub action: Option<String>,
    /// Entries after this sequence number (a page's cursor); 0 = from the first.
    pub after_seq: i64,
    /// At most this many entries; `None` = all.
    pub limit: Option<u32>,
}

/// The entries a write records in its own transaction (see [`Store::audited_write`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteAudit {
    /// On the BAL the write acts in: the folder written, or a copy's source (with the UIDs
    /// the write touched there).
    pub at_source: Option<AuditEvent>,
    /// On the BAL a COPY or MOVE puts messages into, when another than the source's (with
    /// the new UIDs): a delegate filing her own message into the holder's folder is an
    /// action on his BAL even though she acts from hers.
    pub at_target: Option<AuditEvent>,
}

impl WriteAudit {
    fn is_some(&self) -> bool {
        self.at_source.is_some() || self.at_target.is_some()
    }
}

tokio::task_local! {
    /// The entries the next write of this task records in its own transaction (see
    /// [`Store::audited_write`]).
    static PENDING: std::cell::RefCell<WriteAudit>;
}

/// Inside [`Store::audited_write`]: the pending entries, taken by the write that records
/// them in its own transaction. Taken in the caller's task, since the write itself may run
/// in the SQLite committer's (ADR 0031). Once per scope; nothing outside one.
pub(crate) struct PendingAudit {
    entries: WriteAudit,
    engine: Engine,
    heads: Arc<ChainHeads>,
}

impl PendingAudit {
    pub(crate) fn take(store: &Store) -> PendingAudit {
        let entries = PENDING
            .try_with(|p| std::mem::take(&mut *p.borrow_mut()))
            .unwrap_or_default();
        PendingAudit {
            entries,
            engine: store.engine(),
            heads: store.chain_heads(),
        }
    }

    pub(crate) fn is_some(&self) -> bool {
        self.entries.is_some()
    }

    /// The entry of a write on one BAL that touched `uids`, chained after the head this
    /// process remembers for its chain (ADR 0042), with that head's sequence number: what a
    /// PostgreSQL statement appends itself ([`pg_append_ctes`], ADR 0059). `None` for a
    /// write with no entry or with two (a COPY to another BAL), or when no head is
    /// remembered yet (the transaction path reads it).
    pub(crate) fn chained_after_hint(&self, uids: &[u32]) -> Option<HintedEntry> {
        if self.entries.at_target.is_some() {
            return None;
        }
        let mut event = self.entries.at_source.clone()?;
        event
            .message_ids
            .extend(uids.iter().map(|u| format!("uid:{u}")));
        let hint = self.heads.get(event.bal_id)?;
        Some(HintedEntry {
            bal_id: event.bal_id,
            prev_seq: hint.0,
            entry: chained_entry(&event, Some(hint)),
        })
    }

    /// After the statement that appended `hinted` committed: its chain's head is now it.
    pub(crate) fn appended(&self, hinted: HintedEntry) {
        let HintedEntry { bal_id, entry, .. } = hinted;
        self.heads.set(bal_id, (entry.seq, entry.hash));
    }

    /// Appends the entry, with the UIDs the write touched, to the write's transaction; again
    /// if the write runs again (its group commit rolled back).
    pub(crate) async fn record(
        &self,
        txn: &mut sqlx::Transaction<'static, sqlx::Any>,
        uids: &[u32],
    ) -> Result<()> {
        self.record_copy(txn, uids, &[]).await
    }

    /// [`PendingAudit::record`] for a COPY or MOVE: the source's entry with `sources`, the
    /// target's (another BAL's) with `copies`. Appended in the order of their BALs' ids, so
    /// that two such writes in opposite directions take PostgreSQL's chain locks in the
    /// same order (no deadlock).
    pub(crate) async fn record_copy(
        &self,
        txn: &mut sqlx::Transaction<'static, sqlx::Any>,
        sources: &[u32],
        copies: &[u32],
    ) -> Result<()> {
        let mut entries: Vec<(&AuditEvent, &[u32])> = [
            (self.entries.at_source.as_ref(), sources),
            (self.entries.at_target.as_ref(), copies),
        ]
        .into_iter()
        .filter_map(|(event, uids)| Some((event?, uids)))
        .collect();
        entries.sort_by_key(|(event, _)| event.bal_id);
        for (event, uids) in entries {
            let mut event = event.clone();
            event
                .message_ids
                .extend(uids.iter().map(|u| format!("uid:{u}")));
            if !batch::add(&self.heads, &event) {
                append_hinted(txn, self.engine, &self.heads, &event).await?;
            }
        }
        Ok(())
    }
}

/// A read's trace queued by [`Store::queue_audit`], not yet known to be durable.
pub struct QueuedTrace {
    done: tokio::sync::oneshot::Receiver<Result<()>>,
    orders_writes: bool,
}

/// Where a [`QueuedTrace`] is.
#[derive(Debug)]
pub enum TraceState {
    Pending,
    Committed,
    /// Not recorded: the session that read must not go on as if it were.
    Failed(crate::StoreError),
}

impl QueuedTrace {
    /// Where the trace is, without waiting.
    pub fn state(&mut self) -> TraceState {
        use tokio::sync::oneshot::error::TryRecvError;
        match self.done.try_recv() {
            Ok(Ok(())) => TraceState::Committed,
            Ok(Err(e)) => TraceState::Failed(e),
            Err(TryRecvError::Empty) => TraceState::Pending,
            Err(TryRecvError::Closed) => TraceState::Failed(crate::group_commit::stopped()),
        }
    }

    /// Waits until the trace is committed (or failed).
    pub async fn settled(self) -> Result<()> {
        self.done
            .await
            .map_err(|_| crate::group_commit::stopped())?
    }

    /// Whether the session's next write must wait for this trace to keep the BAL's chain in
    /// the order things happened: on PostgreSQL, where the session's writes do not go
    /// through the traces' committer. (On SQLite they follow it in the same queue.)
    pub fn orders_writes(&self) -> bool {
        self.orders_writes
    }
}

/// An audit entry that is the whole write: appended after the chain's last link as read
/// inside the (possibly shared) transaction, so a re-run after a group's rollback links
/// again from what is really there.
struct RecordAudit {
    event: AuditEvent,
    engine: Engine,
    heads: Arc<ChainHeads>,
}

async fn run_record_audit(txn: &mut Txn, write: &RecordAudit) -> Result<()> {
    if batch::add(&write.heads, &write.event) {
        return Ok(());
    }
    append_hinted(txn, write.engine, &write.heads, &write.event).await
}

crate::group_commit::write_by!(RecordAudit, (), run_record_audit);

/// Appends `event` inside the caller's transaction (which commits the action with it).
pub(crate) async fn append_in(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    engine: Engine,
    event: &AuditEvent,
) -> Result<()> {
    lock_chain(txn, engine, event.bal_id).await?;
    let last = last_link(txn, event.bal_id).await?;
    append_after(txn, event, last).await
}

/// The last link (sequence, hash) of each BAL's chain as this process last appended or
/// read it (ADR 0042): a hint that spares the read of the chain's head before each append of
/// a delegate's action, the hot path. Never trusted: [`append_hinted`] inserts only if the
/// hint is still the chain's last entry, and reads the head otherwise (another process or
/// node appended, a group commit rolled back, retention pruned).
#[derive(Default)]
pub(crate) struct ChainHeads(std::sync::Mutex<HashMap<i64, (i64, String)>>);

impl ChainHeads {
    pub(crate) fn get(&self, bal_id: i64) -> Option<(i64, String)> {
        self.lock().get(&bal_id).cloned()
    }

    pub(crate) fn set(&self, bal_id: i64, link: (i64, String)) {
        self.lock().insert(bal_id, link);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (i64, String)>> {
        // A panic while holding it left at worst a stale hint, which is checked anyway.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// [`append_in`] with the chain's head taken from `heads` when it is still right: one
/// statement (the conditional insert) instead of two, plus PostgreSQL's lock. When the hint
/// is missing or stale, reads the head and appends as [`append_in`] does.
pub(crate) async fn append_hinted(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    engine: Engine,
    heads: &ChainHeads,
    event: &AuditEvent,
) -> Result<()> {
    lock_chain(txn, engine, event.bal_id).await?;
    if let Some(hint) = heads.get(event.bal_id) {
        let entry = chained_entry(event, Some(hint.clone()));
        if insert_if_last(txn, event.bal_id, &entry, hint.0).await? {
            heads.set(event.bal_id, (entry.seq, entry.hash));
            return Ok(());
        }
    }
    let last = last_link(txn, event.bal_id).await?;
    let entry = chained_entry(event, last);
    insert_entry(txn, event.bal_id, &entry).await?;
    heads.set(event.bal_id, (entry.seq, entry.hash));
    Ok(())
}

/// Inserts `entry` only if the chain's last entry is `prev_seq` with the hash `entry`
/// chains to; false (nothing inserted) otherwise. Both conditions are lookups in the
/// `(bal_id, seq)` index, in the insert's own statement.
async fn insert_if_last(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    entry: &AuditEntry,
    prev_seq: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO audit_log (bal_id, seq, at, author, action, folder, message_ids, client, \
         result, detail, prev_hash, hash) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
         WHERE EXISTS (SELECT 1 FROM audit_log WHERE bal_id = $1 AND seq = $13 AND hash = $11) \
         AND NOT EXISTS (SELECT 1 FROM audit_log WHERE bal_id = $1 AND seq > $13)",
    );
    let done = bind_entry(done, bal_id, entry)
        .bind(prev_seq)
        .execute(&mut **txn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// An entry chained after a remembered head (see [`PendingAudit::chained_after_hint`]).
pub(crate) struct HintedEntry {
    pub(crate) bal_id: i64,
    /// The sequence number of the head it follows.
    pub(crate) prev_seq: i64,
    pub(crate) entry: AuditEntry,
}

/// PostgreSQL: the CTEs `lk` and `a` of a write's statement that append its audit entry
/// (ADR 0059), placeholders from `$first` bound by [`bind_pg_append`]. The chain's lock is
/// taken once `after` (the CTE that locked the folder row) has run, the order of the
/// transaction path (folder row, then chain, [`lock_chain`]). `a` inserts the entry only
/// if the head it follows is still the chain's last; the statement must then fail unless
/// `a` inserted its row (its caller's final SELECT divides by that). A head appended after
/// the statement's snapshot was taken makes the insert break `UNIQUE (bal_id, seq)`
/// instead: never a fork either way, and the caller takes the transaction path.
pub(crate) fn pg_append_ctes(first: usize, after: &str) -> String {
    let p = |i: usize| format!("${}", first + i);
    let values: Vec<String> = (0..12).map(p).collect();
    format!(
        "lk AS (SELECT pg_advisory_xact_lock(1096107076, CAST({bal} AS INTEGER)) FROM {after}), \
         a AS (INSERT INTO audit_log (bal_id, seq, at, author, action, folder, message_ids, \
         client, result, detail, prev_hash, hash) SELECT {values} FROM lk \
         WHERE EXISTS (SELECT 1 FROM audit_log WHERE bal_id = {bal} AND seq = {prev_seq} \
         AND hash = {prev_hash}) \
         AND NOT EXISTS (SELECT 1 FROM audit_log WHERE bal_id = {bal} AND seq > {prev_seq}) \
         RETURNING 1)",
        bal = p(0),
        values = values.join(", "),
        prev_hash = p(10),
        prev_seq = p(12),
    )
}

/// Binds the placeholders of [`pg_append_ctes`] (13, in their order).
pub(crate) fn bind_pg_append<'q>(query: AnyQuery<'q>, hinted: &'q HintedEntry) -> AnyQuery<'q> {
    bind_entry(query, hinted.bal_id, &hinted.entry).bind(hinted.prev_seq)
}

/// One writer per BAL chain at a time on PostgreSQL; taken last in the transaction, released
/// at commit. (SQLite has a single writer already.)
pub(crate) async fn lock_chain(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    engine: Engine,
    bal_id: i64,
) -> Result<()> {
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(1096107076, CAST($1 AS INTEGER))")
            .bind(bal_id)
            .execute(&mut **txn)
            .await?;
    }
    Ok(())
}

/// The sequence number and hash of the chain's last entry; `None` for an empty chain.
pub(crate) async fn last_link(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
) -> Result<Option<(i64, String)>> {
    let last =
        sqlx::query("SELECT seq, hash FROM audit_log WHERE bal_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(bal_id)
            .fetch_optional(&mut **txn)
            .await?;
    Ok(match last {
        Some(r) => Some((r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?)),
        None => None,
    })
}

/// Appends `event` after the entry `last` (sequence, hash), or first in its chain.
pub(crate) async fn append_after(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    event: &AuditEvent,
    last: Option<(i64, String)>,
) -> Result<()> {
    insert_entry(txn, event.bal_id, &chained_entry(event, last)).await
}

/// `event` as the entry that follows `last` (sequence, hash), or first in its chain.
pub(crate) fn chained_entry(event: &AuditEvent, last: Option<(i64, String)>) -> AuditEntry {
    let (prev_seq, prev_hash) = last.unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
    let mut entry = AuditEntry {
        id: 0,
        bal: String::new(),
        seq: prev_seq + 1,
        at: now(),
        author: event.author.clone(),
        action: event.action.as_str().into(),
        folder: event.folder.clone(),
        message_ids: event.message_ids.join(" "),
        client: event.client.clone(),
        result: event.result.clone(),
        detail: event.detail.clone(),
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry.expected_hash(event.bal_id);
    entry
}

/// Stores one chained entry of `bal_id`'s trail.
async fn insert_entry(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    entry: &AuditEntry,
) -> Result<()> {
    let insert = sqlx::query(
        "INSERT INTO audit_log (bal_id, seq, at, author, action, folder, message_ids, client, \
         result, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    );
    bind_entry(insert, bal_id, entry)
        .execute(&mut **txn)
        .await?;
    Ok(())
}

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds $1 to $12 of an insert of `entry` (the columns in their table order).
pub(crate) fn bind_entry<'q>(
    query: AnyQuery<'q>,
    bal_id: i64,
    entry: &'q AuditEntry,
) -> AnyQuery<'q> {
    query
        .bind(bal_id)
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.author)
        .bind(&entry.action)
        .bind(&entry.folder)
        .bind(&entry.message_ids)
        .bind(&entry.client)
        .bind(&entry.result)
        .bind(&entry.detail)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
}

/// Writes an imported trail for the BAL `bal_id` (ADR 0020): same entries in the same order,
/// chained again from the genesis hash, since each hash covers the BAL's id on the instance
/// that wrote it. The archive keeps the original chain.
pub(crate) async fn insert_imported_trail(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    bal_id: i64,
    entries: &[AuditEntry],
) -> Result<()> {
    let mut prev_hash = GENESIS_HASH.to_string();
    for original in entries {
        let mut entry = original.clone();
        entry.prev_hash = prev_hash;
        entry.hash = entry.expected_hash(bal_id);
        insert_entry(txn, bal_id, &entry).await?;
        prev_hash = entry.hash;
    }
    Ok(())
}

/// `SELECT` of trail entries with their BAL's address, then the rest of the query.
macro_rules! select_entries {
    ($($rest:literal),*) => {
        concat!(
            "SELECT a.id, a.bal_id, b.address, a.seq, a.at, a.author, a.action, a.folder, ",
            "a.message_ids, a.client, a.result, a.detail, a.prev_hash, a.hash ",
            "FROM audit_log a JOIN bals b ON b.id = a.bal_id ",
            $($rest),*
        )
    };
}

fn entry_from_row(r: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        bal: r.try_get("address")?,
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        author: r.try_get("author")?,
        action: r.try_get("action")?,
        folder: r.try_get("folder")?,
        message_ids: r.try_get("message_ids")?,
        client: r.try_get("client")?,
        result: r.try_get("result")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Store {
    /// Runs `work` so that the first write it makes (flags, expunge, copy or move, append)
    /// records `event` in the same transaction: the action and its trace commit together.
    /// `None` runs `work` as it is.
    pub async fn audited<F: std::future::Future>(event: Option<AuditEvent>, work: F) -> F::Output {
        let write = WriteAudit {
            at_source: event,
            at_target: None,
        };
        Self::audited_write(write, work).await
    }

    /// [`Store::audited`] with the entries of a COPY or MOVE that may concern two BALs.
    pub async fn audited_write<F: std::future::Future>(write: WriteAudit, work: F) -> F::Output {
        match write.is_some() {
            true => PENDING.scope(std::cell::RefCell::new(write), work).await,
            false => work.await,
        }
    }

    /// Records an action that wrote nothing else (a login, a SELECT, a body read, a refusal).
    /// It goes through the shared committer like any other write (ADR 0031): a delegate's
    /// reads then wait for a group's fsync, not for one of their own behind every other
    /// write (issue 14's benchmark: 30 ms per SELECT and body FETCH before). Still durable
    /// before the caller answers.
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        self.write(RecordAudit {
            event: event.clone(),
            engine: self.engine(),
            heads: self.chain_heads(),
        })
        .await
    }

    /// Queues the trace of a delegate's read (a login, a SELECT, a body read, a refusal) for
    /// the next commit and returns without waiting for it (ADR 0035): the caller answers its
    /// client while the group's fsync runs. Queued in order with every write queued after it
    /// (on SQLite the same committer as the session's later writes; on PostgreSQL see
    /// [`QueuedTrace::orders_writes`]). A crash before that commit loses the traces of reads
    /// answered meanwhile, never a write's (its trace is in its own transaction). The caller
    /// must look at the returned trace ([`QueuedTrace::state`]) and stop if it failed.
    pub fn queue_audit(&self, event: &AuditEvent) -> QueuedTrace {
        let write = RecordAudit {
            event: event.clone(),
            engine: self.engine(),
            heads: self.chain_heads(),
        };
        QueuedTrace {
            done: self.trace_committer().queue(write),
            orders_writes: self.engine() == Engine::Postgres,
        }
    }

    /// The trail of one BAL, oldest first.
    pub async fn audit_entries(
        &self,
        address: &str,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>> {
        let bal = self.bal(address).await?;
        let sql = select_entries!(
            "WHERE a.bal_id = $1 AND ($2 IS NULL OR a.at >= $2) ",
            "AND ($3 IS NULL OR a.author = $3) AND ($4 IS NULL OR a.action = $4) ",
            "AND a.seq > $5 ORDER BY a.seq LIMIT $6"
        );
        let rows = sqlx::query(sql)
            .bind(bal.id)
            .bind(query.since)
            .bind(query.author.as_deref())
            .bind(query.action.as_deref())
            .bind(query.after_seq)
            .bind(query.limit.map_or(i64::MAX, i64::from))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Walks every chain (or one BAL's) and names the first entry that does not follow from
    /// the previous one: a changed field, a removed or inserted entry. A chain whose oldest
    /// entries retention removed starts from the anchor its `prune` entry records.
    pub async fn verify_audit(&self, address: Option<&str>) -> Result<AuditVerification> {
        let bal_id = match address {
            Some(a) => Some(self.bal(a).await?.id),
            None => None,
        };
        let sql = select_entries!("WHERE ($1 IS NULL OR a.bal_id = $1) ORDER BY a.bal_id, a.seq");
        let rows = sqlx::query(sql).bind(bal_id).fetch_all(self.pool()).await?;
        let mut verification = AuditVerification {
            entries: rows.len() as u64,
            first_bad: None,
        };
        let mut chain: Vec<AuditEntry> = Vec::new();
        let mut chain_bal = None;
        for r in &rows {
            let entry_bal: i64 = r.try_get("bal_id")?;
            if chain_bal != Some(entry_bal) {
                if let Some(bad) = chain_bal.and_then(|b| first_bad_in_chain(b, &chain)) {
                    verification.first_bad = Some(bad);
                    return Ok(verification);
                }
                chain.clear();
                chain_bal = Some(entry_bal);
            }
            chain.push(entry_from_row(r)?);
        }
        verification.first_bad = chain_bal.and_then(|b| first_bad_in_chain(b, &chain));
        Ok(verification)
    }
}

/// What a `prune` entry says: the entries removed and the anchor the chain resumes from
/// (`verify_audit` reads it back with [`resumes_at`]).
pub(crate) fn anchor_detail(first: i64, last: i64, cutoff: i64, last_hash: &str) -> String {
    format!(
        "retention: entries {first} to {last} (older than {cutoff}) removed; \
         the chain resumes at entry {} after hash {last_hash}",
        last + 1
    )
}

/// The (sequence, previous hash) a `prune` entry's detail names as the chain's new start.
fn resumes_at(detail: &str) -> Option<(i64, &str)> {
    let rest = detail.split_once("the chain resumes at entry ")?.1;
    let (seq, hash) = rest.split_once(" after hash ")?;
    Some((seq.parse().ok()?, hash))
}

/// The first entry of one BAL's chain (oldest first) that does not follow: (BAL, seq, row
/// id, why). The chain starts at entry 1 from the genesis hash, or at the entry a `prune`
/// entry of the same chain names, from the hash it names; that `prune` entry is itself
/// checked as a link of the chain, so an anchor cannot be moved without it showing.
fn first_bad_in_chain(bal_id: i64, chain: &[AuditEntry]) -> Option<(String, i64, i64, String)> {
    let first = chain.first()?;
    let bad = |e: &AuditEntry, why: String| Some((e.bal.clone(), e.seq, e.id, why));
    let mut want_seq = first.seq;
    let mut want_prev = if first.seq == 1 {
        GENESIS_HASH.to_string()
    } else {
        let anchor = chain
            .iter()
            .filter(|e| e.action == AuditAction::Prune.as_str())
            .filter_map(|e| resumes_at(&e.detail))
            .find(|(seq, _)| *seq == first.seq);
        match anchor {
            Some((_, hash)) => hash.to_string(),
            None => {
                return bad(
                    first,
                    format!(
                        "the chain starts at entry {} but no retention entry records the \
                         removal of those before it (entries removed)",
                        first.seq
                    ),
                );
            }
        }
    };
    for entry in chain {
        let why = if entry.seq != want_seq {
            Some(format!(
                "sequence {} where {want_seq} was due (an entry removed or inserted)",
                entry.seq
            ))
        } else if entry.prev_hash != want_prev {
            Some("does not chain to the previous entry".to_string())
        } else if entry.hash != entry.expected_hash(bal_id) {
            Some("content does not match its hash (edited)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return bad(entry, why);
        }
        want_seq = entry.seq + 1;
        want_prev = entry.hash.clone();
    }
    None
}
