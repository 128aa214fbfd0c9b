//! STORE on the messages of a folder (RFC 9051 §6.4.6, RFC 7162 §3.1.3): the transaction
//! path of both engines, a delegate's own `\Seen` included (ADR 0034); PostgreSQL's read and
//! checked statement (ADR 0046) is in `folder_writes_pg.rs`. Split from
//! `folder_messages.rs`, which keeps the other IMAP writes.

use crate::audit::PendingAudit;
use crate::delegate_seen::{
    SELECT_AS_DELEGATE, as_delegate, has_seen, set_delegate_seen, shared_and_delegate, with_seen,
};
use crate::error::Result;
use crate::flags::{FlagOp, apply_flags, same_flags};
use crate::folder_messages::{MAX_RUNS, next_modseq, ref_from_row, uid_runs};
use crate::group_commit::{Txn, write_by};
use crate::message_ref::MessageRef;
use crate::{Engine, Store};

/// Result of a STORE: the messages whose flags changed, and those skipped because they
/// changed after UNCHANGEDSINCE (RFC 7162 §3.1.3, reported as MODIFIED).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    pub changed: Vec<MessageRef>,
    pub conflicts: Vec<u32>,
}

impl Store {
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
        // PostgreSQL: a read and one statement on one connection (ADR 0046).
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
                self.folder_committed(folder_id);
            }
            return Ok(update);
        }
        // A delegate's, with their own \Seen and the audit entry, in one statement too
        // (ADR 0059), unless CONDSTORE's condition asks for the transaction's row locks.
        if self.engine() == Engine::Postgres
            && let Some(reader) = delegate
            && unchanged_since.is_none()
            && !runs.is_empty()
            && runs.len() <= MAX_RUNS
            && let Some(update) = self
                .update_flags_as_delegate_pg(folder_id, &runs, (op, flags), reader, &audit)
                .await?
        {
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
            let change = (w.op, w.flags.as_slice());
            let planned = plan_row(
                &shared,
                row,
                w.delegate.is_some(),
                change,
                w.unchanged_since,
            );
            let (new, new_shared, seen_now) = match planned {
                RowPlan::Conflict => {
                    update.conflicts.push(uid);
                    continue;
                }
                RowPlan::Unchanged => continue,
                RowPlan::Changed { new, shared, seen } => (new, shared, seen),
            };
            if let Some(new_shared) = new_shared {
                let text = new_shared.join(" ");
                match writes.iter_mut().find(|(t, _)| *t == text) {
                    Some((_, uids)) => uids.push(uid),
                    None => writes.push((text, vec![uid])),
                }
            }
            match seen_now {
                Some(true) => seen.0.push(uid),
                Some(false) => seen.1.push(uid),
                None => {}
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

/// What a STORE does to one message.
pub(crate) enum RowPlan {
    /// Changed after UNCHANGEDSINCE (RFC 7162 §3.1.3): left as it is, reported MODIFIED.
    Conflict,
    Unchanged,
    Changed {
        /// The flags as the one storing sees them afterwards.
        new: Vec<String>,
        /// The shared flags to write, when they change.
        shared: Option<Vec<String>>,
        /// A delegate's own `\Seen` to write, when it changes.
        seen: Option<bool>,
    },
}

/// The new flags of `shared` (with a delegate's own `\Seen` row `row` when `as_delegate`)
/// after `op` (ADR 0034: a delegate's `\Seen` goes to their row, the shared one stays the
/// holder's). Both engines' transaction path and PostgreSQL's delegate statement
/// (`delegate_writes_pg.rs`) plan with it.
pub(crate) fn plan_row(
    shared: &MessageRef,
    row: Option<(bool, u64)>,
    is_delegate: bool,
    (op, flags): (FlagOp, &[String]),
    unchanged_since: Option<u64>,
) -> RowPlan {
    let current = match is_delegate {
        true => as_delegate(shared.clone(), row),
        false => shared.clone(),
    };
    if unchanged_since.is_some_and(|since| current.modseq > since) {
        return RowPlan::Conflict;
    }
    let new = apply_flags(&current.flags, op, flags);
    let new_shared = match is_delegate {
        true => with_seen(&new, has_seen(&shared.flags)),
        false => new.clone(),
    };
    let shared_changed = !same_flags(&new_shared, &shared.flags);
    let seen_changed = is_delegate && has_seen(&new) != has_seen(&current.flags);
    if !shared_changed && !seen_changed {
        return RowPlan::Unchanged;
    }
    RowPlan::Changed {
        shared: shared_changed.then_some(new_shared),
        seen: seen_changed.then(|| has_seen(&new)),
        new,
    }
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
