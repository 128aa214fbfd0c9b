//! Retention: traces that expire and BALs nobody logs into (README "Retention").
//!
//! Traces are the delivery history kept after a message is handled: `recipients` rows that
//! are no longer in the queue and owe no report, and the DSN/MDN `tracking_events`. They are
//! deleted by age in bounded batches, each its own short transaction, so that a first run
//! on years of history does not hold the SQLite writer for minutes. Messages themselves
//! stay in their folders: only the trace of who sent what to whom expires.
//!
//! Audit trails (ADR 0016) lose their entries older than their own period, one BAL's chain
//! per transaction: the removal is itself an entry of the chain, naming the anchor (the
//! last removed entry's hash) that the first remaining entry chains to, so that `audit
//! verify` still proves that what remains was not edited.
//!
//! Inactivity is measured from the last login (password or Pro Santé Connect), or from the
//! creation of a BAL never logged into; the policy (warn, then suspend or close) is the
//! caller's, this module lists and records.

use sqlx::Row;

use crate::audit::{AuditAction, AuditEvent, anchor_detail, append_after, last_link, lock_chain};
use crate::bal::Bal;
use crate::error::Result;
use crate::{Store, now};

/// A day, the granularity of login recording.
const DAY: i64 = 86_400;

/// What one expiry run deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiredTraces {
    pub recipients: u64,
    pub tracking_events: u64,
    /// Delete statements run (each at most one batch of rows, each its own transaction).
    pub batches: u64,
}

/// What one audit pruning removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrunedAudit {
    /// BAL chains that lost entries (each gained a `prune` entry).
    pub chains: u64,
    pub entries: u64,
}

/// An active BAL without a login since the cutoff.
#[derive(Clone, Debug)]
pub struct InactiveBal {
    pub bal: Bal,
    /// The last recorded login; `None` for a BAL never logged into (inactive since creation).
    pub last_login_at: Option<i64>,
    /// When its holder was warned, if they were since their last login.
    pub warned_at: Option<i64>,
}

/// Finished recipient rows: out of the queue and owing no delivery report.
const EXPIRE_RECIPIENTS: &str = "DELETE FROM recipients WHERE id IN (SELECT id FROM recipients \
     WHERE updated_at < $1 AND status <> 'queued' AND report_due IS NULL LIMIT $2)";
const EXPIRE_TRACKING: &str = "DELETE FROM tracking_events WHERE id IN \
     (SELECT id FROM tracking_events WHERE received_at < $1 LIMIT $2)";

impl Store {
    /// Deletes traces last changed before `cutoff` (unix seconds), `batch` rows at a time.
    pub async fn expire_traces(&self, cutoff: i64, batch: i64) -> Result<ExpiredTraces> {
        let mut done = ExpiredTraces::default();
        done.recipients = self
            .delete_in_batches(EXPIRE_RECIPIENTS, cutoff, batch, &mut done.batches)
            .await?;
        done.tracking_events = self
            .delete_in_batches(EXPIRE_TRACKING, cutoff, batch, &mut done.batches)
            .await?;
        Ok(done)
    }

    async fn delete_in_batches(
        &self,
        statement: &'static str,
        cutoff: i64,
        batch: i64,
        batches: &mut u64,
    ) -> Result<u64> {
        let batch = batch.max(1);
        let mut deleted = 0;
        loop {
            let mut w = self.write_txn().await?;
            let n = sqlx::query(statement)
                .bind(cutoff)
                .bind(batch)
                .execute(&mut *w.txn)
                .await?
                .rows_affected();
            w.commit().await?;
            *batches += 1;
            deleted += n;
            if n < batch as u64 {
                return Ok(deleted);
            }
        }
    }

    /// Active BALs whose last login (or creation, if never logged into) is before `cutoff`,
    /// ordered by address.
    pub async fn inactive_bals(&self, cutoff: i64) -> Result<Vec<InactiveBal>> {
        let rows = sqlx::query(
            "SELECT address, last_login_at, inactivity_warned_at FROM bals \
             WHERE status = 'active' AND COALESCE(last_login_at, created_at) < $1 \
             ORDER BY address",
        )
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        let mut inactive = Vec::with_capacity(rows.len());
        for row in rows {
            let address: String = row.try_get("address")?;
            inactive.push(InactiveBal {
                bal: self.bal(&address).await?,
                last_login_at: row.try_get("last_login_at")?,
                warned_at: row.try_get("inactivity_warned_at")?,
            });
        }
        Ok(inactive)
    }

    /// Records that the holder of `bal_id` was warned of its inactivity at `at`.
    pub async fn mark_inactivity_warned(&self, bal_id: i64, at: i64) -> Result<()> {
        let mut w = self.write_txn().await?;
        sqlx::query("UPDATE bals SET inactivity_warned_at = $1 WHERE id = $2")
            .bind(at)
            .bind(bal_id)
            .execute(&mut *w.txn)
            .await?;
        w.commit().await
    }

    /// The last login of a BAL as recorded (at most a day late).
    pub async fn last_login(&self, bal_id: i64) -> Result<Option<i64>> {
        Ok(sqlx::query("SELECT last_login_at FROM bals WHERE id = $1")
            .bind(bal_id)
            .fetch_one(self.pool())
            .await?
            .try_get(0)?)
    }

    /// Notes a successful login: once a day per BAL and process, so that a login storm
    /// does not become a write storm. A login clears an inactivity warning.
    pub(crate) async fn record_login(&self, bal_id: i64) -> Result<()> {
        let t = now();
        {
            let mut recorded = self
                .auth_cache()
                .recorded_logins
                .lock()
                .expect("login record lock");
            if recorded.get(&bal_id).is_some_and(|at| t - at < DAY) {
                return Ok(());
            }
            recorded.insert(bal_id, t);
        }
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE bals SET last_login_at = $1, inactivity_warned_at = NULL WHERE id = $2",
        )
        .bind(t)
        .bind(bal_id)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await
    }

    /// Removes the audit entries older than `cutoff` (unix seconds), each BAL's in one
    /// transaction that also appends a `prune` entry to the chain naming the anchor: the hash
    /// of the last entry removed, which the first remaining one carries as `prev_hash`.
    /// Entries are removed up to the newest one older than `cutoff`, by sequence (an entry in
    /// between written under a clock set back goes with them).
    pub async fn prune_audit(&self, cutoff: i64) -> Result<PrunedAudit> {
        // One pass over the old entries by the time index (ADR 0055), every BAL at once.
        let chains = sqlx::query(
            "SELECT bal_id, MAX(seq) AS upto FROM audit_log WHERE at < $1 GROUP BY bal_id",
        )
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        let mut pruned = PrunedAudit::default();
        for row in chains {
            let removed = self
                .prune_chain(row.try_get("bal_id")?, row.try_get("upto")?, cutoff)
                .await?;
            if removed > 0 {
                pruned.chains += 1;
                pruned.entries += removed;
            }
        }
        Ok(pruned)
    }

    /// Removes `bal_id`'s entries up to `upto`, the newest older than `cutoff` when
    /// [`Store::prune_audit`] looked (entries written since then are newer).
    async fn prune_chain(&self, bal_id: i64, upto: i64, cutoff: i64) -> Result<u64> {
        let mut w = self.write_txn().await?;
        lock_chain(&mut w.txn, self.engine(), bal_id).await?;
        let last = last_link(&mut w.txn, bal_id).await?;
        // Both by the (bal_id, seq) index; none when another prune removed them meanwhile.
        let first: Option<i64> =
            sqlx::query("SELECT MIN(seq) AS first FROM audit_log WHERE bal_id = $1 AND seq <= $2")
                .bind(bal_id)
                .bind(upto)
                .fetch_one(&mut *w.txn)
                .await?
                .try_get("first")?;
        let anchor = sqlx::query("SELECT hash FROM audit_log WHERE bal_id = $1 AND seq = $2")
            .bind(bal_id)
            .bind(upto)
            .fetch_optional(&mut *w.txn)
            .await?;
        let (Some(first), Some(anchor)) = (first, anchor) else {
            return Ok(0);
        };
        let anchor: String = anchor.try_get("hash")?;
        let removed = sqlx::query("DELETE FROM audit_log WHERE bal_id = $1 AND seq <= $2")
            .bind(bal_id)
            .bind(upto)
            .execute(&mut *w.txn)
            .await?
            .rows_affected();
        let mut event = AuditEvent::new(bal_id, "operator", AuditAction::Prune);
        event.detail = anchor_detail(first, upto, cutoff, &anchor);
        append_after(&mut w.txn, &event, last).await?;
        w.commit().await?;
        Ok(removed)
    }
}
