//! A delegate's STORE, EXPUNGE and COPY on PostgreSQL in one statement each, their audit
//! entry included (ADR 0059). The holder's are one statement already (ADR 0046,
//! `folder_writes_pg.rs`); a delegate's took a transaction of ten to twelve round trips
//! (BEGIN, the folder's modseq, the rows, the writes, the chain's lock, the entry, COMMIT),
//! because the single statements knew neither the reader's own `\Seen` (ADR 0034) nor the
//! audit entry that must commit with the action (issue 14).
//!
//! Here the entry is computed before the statement, chained after the head this process
//! remembers (ADR 0042), and the statement inserts it only if that head is still the
//! chain's last ([`crate::audit::pg_append_ctes`]). Whenever the statement cannot do
//! exactly what the transaction path would (no head remembered, a stale one, a row changed
//! since it was read, a CONDSTORE condition, a folder gone), it writes nothing and the
//! caller takes the transaction path, which decides as before.

use sqlx::Row;

use crate::Store;
use crate::audit::{HintedEntry, PendingAudit, bind_pg_append, pg_append_ctes};
use crate::delegate_seen::{SELECT_AS_DELEGATE, shared_and_delegate};
use crate::error::{Result, StoreError};
use crate::flags::FlagOp;
use crate::folder_flags::{FlagUpdate, RowPlan, plan_row};
use crate::folder_writes_pg::{
    CopiedPairs, bind_copy, bind_runs, copied, copy_sql, expunge_sql, runs_clause,
};
use crate::message_ref::MessageRef;

/// Most messages a delegate's STORE writes in one statement (a few parameters each); a
/// STORE changing more takes the transaction path.
const MAX_WRITES: usize = 500;

/// A delegate's STORE: [`crate::folder_writes_pg`]'s `STORE_FLAGS` with, beside the shared
/// rows (`w`, each written only if its modseq is still the one read), the reader's own
/// `\Seen` rows (`sv`, `$2` the reader) and the audit entry. `{checks}` requires every
/// row written and the entry appended, or the statement fails (division by zero).
const STORE_AS_DELEGATE: &str = "WITH mb AS (UPDATE mailboxes SET highestmodseq = highestmodseq + 1 \
     WHERE id = $1 RETURNING id, highestmodseq){shared}{seen}, {audit} \
     SELECT (SELECT highestmodseq FROM mb) AS modseq, \
     (1 / ({checks})::INT)::BIGINT AS all_written";

/// `w`/`u` of [`STORE_AS_DELEGATE`]: the shared flags of `{values}` (uid, modseq read, flags).
const SHARED_WRITES: &str = ", w (uid, read_modseq, flags) AS (VALUES {values}), \
     u AS (UPDATE mailbox_messages mm SET flags = w.flags, modseq = mb.highestmodseq FROM w, mb \
     WHERE mm.mailbox_id = mb.id AND mm.uid = w.uid AND mm.modseq = w.read_modseq RETURNING mm.uid)";

/// `sv`/`s` of [`STORE_AS_DELEGATE`]: the reader's `\Seen` of `{values}` (uid, seen), at
/// the statement's modseq, as `delegate_seen::set_delegate_seen` writes it.
const SEEN_WRITES: &str = ", sv (uid, seen) AS (VALUES {values}), \
     s AS (INSERT INTO delegate_seen (mailbox_id, uid, reader, seen, modseq) \
     SELECT mb.id, sv.uid, $2, sv.seen, mb.highestmodseq FROM sv, mb \
     ON CONFLICT (mailbox_id, uid, reader) \
     DO UPDATE SET seen = excluded.seen, modseq = excluded.modseq RETURNING uid)";

/// What a delegate's STORE writes: shared flags (uid, modseq read, new flags), the reader's
/// `\Seen` (uid, seen), and what the session is told.
#[derive(Default)]
struct DelegatePlan {
    shared: Vec<(u32, u64, String)>,
    seen: Vec<(u32, bool)>,
    changed: Vec<(u32, Vec<String>)>,
}

impl Store {
    /// A delegate's STORE in one statement (ADR 0059); `None` (nothing written) when the
    /// transaction path must do it.
    pub(crate) async fn update_flags_as_delegate_pg(
        &self,
        folder_id: i64,
        runs: &[(u32, u32)],
        change: (FlagOp, &[String]),
        reader: &str,
        audit: &PendingAudit,
    ) -> Result<Option<FlagUpdate>> {
        let mut conn = self.pool().acquire().await?;
        let read_sql = format!(
            "{SELECT_AS_DELEGATE} AND ({}) ORDER BY mm.uid",
            runs_clause("mm.uid", 3, runs.len())
        );
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(read_sql))
            .bind(folder_id)
            .bind(reader);
        for &(lo, hi) in runs {
            q = q.bind(lo as i64).bind(hi as i64);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        let mut plan = DelegatePlan::default();
        for row in &rows {
            let (shared, own) = shared_and_delegate(row)?;
            if let RowPlan::Changed {
                new,
                shared: s,
                seen,
            } = plan_row(&shared, own, true, change, None)
            {
                if let Some(flags) = s {
                    plan.shared
                        .push((shared.uid, shared.modseq, flags.join(" ")));
                }
                if let Some(seen) = seen {
                    plan.seen.push((shared.uid, seen));
                }
                plan.changed.push((shared.uid, new));
            }
        }
        if plan.changed.is_empty() || plan.changed.len() > MAX_WRITES {
            return Ok(None);
        }
        let uids: Vec<u32> = plan.changed.iter().map(|c| c.0).collect();
        let Some(hinted) = audit.chained_after_hint(&uids) else {
            return Ok(None);
        };
        let Some(modseq) = store_as_delegate(&mut conn, folder_id, reader, &plan, &hinted).await?
        else {
            return Ok(None);
        };
        audit.appended(hinted);
        self.folder_committed(folder_id);
        let changed = plan
            .changed
            .into_iter()
            .map(|(uid, flags)| MessageRef { uid, modseq, flags })
            .collect();
        Ok(Some(FlagUpdate {
            changed,
            conflicts: Vec::new(),
        }))
    }

    /// A delegate's EXPUNGE of `uids` (ascending, distinct) in one statement (ADR 0059):
    /// the UIDs removed, or `None` (nothing written) when the transaction path must do it.
    pub(crate) async fn expunge_as_delegate_pg(
        &self,
        folder_id: i64,
        uids: &[u32],
        audit: &PendingAudit,
    ) -> Result<Option<Vec<u32>>> {
        let runs = crate::folder_messages::uid_runs(uids);
        let Some(hinted) = audit.chained_after_hint(uids) else {
            return Ok(None);
        };
        let sql = expunge_sql(runs.len(), Some(2 + 2 * runs.len()));
        let query = bind_runs(&sql, folder_id, &runs).bind(uids.len() as i64);
        let outcome = bind_pg_append(query, &hinted).fetch_all(self.pool()).await;
        let Some(rows) = fallback_on_refusal(outcome)? else {
            return Ok(None);
        };
        let mut removed = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(uid) = r.try_get::<Option<i64>, _>("uid")? {
                removed.push(uid as u32);
            }
        }
        audit.appended(hinted);
        self.folder_committed(folder_id);
        Ok(Some(removed))
    }

    /// A delegate's COPY of `uids` (ascending, distinct) within one BAL in one statement:
    /// ADR 0046's statement with the entry (ADR 0059), failing unless every message asked
    /// for was copied. `None` (nothing written) when the transaction path must do it,
    /// which then also reports a full quota or a target gone.
    pub(crate) async fn copy_as_delegate_pg(
        &self,
        (from, to): (i64, i64),
        uids: &[u32],
        claim_recent: bool,
        audit: &PendingAudit,
    ) -> Result<Option<CopiedPairs>> {
        let runs = crate::folder_messages::uid_runs(uids);
        let Some(hinted) = audit.chained_after_hint(uids) else {
            return Ok(None);
        };
        let sql = copy_sql(runs.len(), Some(5 + 2 * runs.len()));
        let query = bind_copy(&sql, (from, to), claim_recent, &runs).bind(uids.len() as i64);
        let outcome = bind_pg_append(query, &hinted).fetch_all(self.pool()).await;
        let Some(rows) = fallback_on_refusal(outcome)? else {
            return Ok(None);
        };
        if rows.len() != uids.len() {
            // Nothing matched, so nothing was written (not even the entry).
            return Ok(None);
        }
        let copied = copied(&rows, claim_recent)?;
        audit.appended(hinted);
        self.folder_committed(to);
        Ok(Some(copied))
    }
}

/// Runs [`STORE_AS_DELEGATE`] for `plan`; the new modseq, or `None` when it wrote nothing.
async fn store_as_delegate(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    folder_id: i64,
    reader: &str,
    plan: &DelegatePlan,
    hinted: &HintedEntry,
) -> Result<Option<u64>> {
    let mut next = 3;
    let mut checks = vec!["(SELECT count(*) FROM a) = 1".to_string()];
    let shared = match plan.shared.is_empty() {
        true => String::new(),
        false => {
            let values = placeholders(&mut next, plan.shared.len(), &["BIGINT", "BIGINT", "TEXT"]);
            checks.push(format!("(SELECT count(*) FROM u) = {}", plan.shared.len()));
            SHARED_WRITES.replace("{values}", &values)
        }
    };
    let seen = match plan.seen.is_empty() {
        true => String::new(),
        false => {
            let values = placeholders(&mut next, plan.seen.len(), &["BIGINT", "BIGINT"]);
            checks.push(format!("(SELECT count(*) FROM s) = {}", plan.seen.len()));
            SEEN_WRITES.replace("{values}", &values)
        }
    };
    let sql = STORE_AS_DELEGATE
        .replace("{shared}", &shared)
        .replace("{seen}", &seen)
        .replace("{audit}", &pg_append_ctes(next, "mb"))
        .replace("{checks}", &checks.join(" AND "));
    // Only placeholders and counts are formatted in; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(folder_id)
        .bind(reader);
    for (uid, read_modseq, flags) in &plan.shared {
        q = q
            .bind(*uid as i64)
            .bind(*read_modseq as i64)
            .bind(flags.as_str());
    }
    for (uid, seen) in &plan.seen {
        q = q.bind(*uid as i64).bind(*seen as i64);
    }
    // `fetch_all` reads up to ReadyForQuery, after the commit (ADR 0048).
    let rows = match fallback_on_refusal(bind_pg_append(q, hinted).fetch_all(&mut **conn).await)? {
        Some(rows) => rows,
        None => return Ok(None),
    };
    let row = rows
        .first()
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
    Ok(Some(row.try_get::<i64, _>("modseq")? as u64))
}

/// `count` rows of `types.len()` placeholders each, cast to those types, numbered from
/// `*next` (which moves past them).
fn placeholders(next: &mut usize, count: usize, types: &[&str]) -> String {
    let rows: Vec<String> = (0..count)
        .map(|_| {
            let cells: Vec<String> = types
                .iter()
                .map(|t| {
                    let cell = format!("${}::{t}", *next);
                    *next += 1;
                    cell
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    rows.join(", ")
}

/// The statement's outcome: its rows, or `None` when it refused to write (a division by
/// zero: a row changed, a message gone, the chain's head moved; a unique violation: the
/// head moved after the statement began; a foreign key violation: a message whose reader's
/// `\Seen` it writes was expunged after the read; a deadlock or serialization failure),
/// which the transaction path then decides.
fn fallback_on_refusal(
    outcome: std::result::Result<Vec<sqlx::any::AnyRow>, sqlx::Error>,
) -> Result<Option<Vec<sqlx::any::AnyRow>>> {
    match outcome {
        Ok(rows) => Ok(Some(rows)),
        Err(sqlx::Error::Database(db))
            if matches!(
                db.code().as_deref(),
                Some("22012") | Some("23503") | Some("23505") | Some("40P01") | Some("40001")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(StoreError::Database(e)),
    }
}
