//! The life cycle of a bulk import (docs/adr/0100-directory-generations.md): begin (take over
//! a crashed run, create the loaded table), finish (drop guard, indexes, changes, swap) or fail.
//! A running import proves itself alive by a heartbeat in every write transaction.

use sqlx::Row;

use super::bulk_load::{CREATE_NEXT_POSTGRES, CREATE_NEXT_SQLITE};
use super::history::{ImportRecord, ImportStatus, RejectedLine, insert_rejects};
use super::row::row_columns;
use super::running::{log_phase, record_running_import, taken_over};
use crate::error::{Result, StoreError};
use crate::{Engine, Store, WriteTxn, now};

/// How an import ends.
#[derive(Clone, Copy, Debug)]
pub struct FinishOptions {
    /// Refuse the generation when its row count is below `(1 - max_drop) ×` the current one.
    pub max_drop: f64,
    /// Apply even when the drop guard would refuse.
    pub force: bool,
}

/// A `running` import whose heartbeat (one per write transaction or phase) is older than this
/// belongs to a process that stopped: the next import takes over.
const STALE_RUNNING_SECS: i64 = 15 * 60;

/// Copies the rows of the other sources' current generations into the loaded table, inside the
/// swap transaction (so that an LDAP sync or a FHIR refresh committed meanwhile is kept).
const COPY_OTHER_SOURCES: &str = concat!(
    "INSERT INTO directory_entries_next (import_id, line, address_key, name_key, first_name_key, \
     row_hash, ",
    row_columns!(""),
    ") SELECT e.import_id, e.line, e.address_key, e.name_key, e.first_name_key, e.row_hash, ",
    row_columns!("e."),
    " FROM directory_entries e JOIN directory_sources s ON s.current_import = e.import_id \
     WHERE s.source <> $1 ORDER BY e.id"
);

impl Store {
    /// Starts a bulk import of `source`: takes over what a crashed import left, creates the
    /// table the rows are loaded into, records the run and returns its id (the generation its
    /// rows are written under). Fails while another bulk import is running.
    pub async fn directory_begin_import(&self, source: &str, origin: &str) -> Result<i64> {
        let t = now();
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE directory_imports SET status = 'failed', finished_at = $1, \
             message = 'abandoned (process stopped during the import)' \
             WHERE status = 'running' AND COALESCE(heartbeat_at, started_at) < $2",
        )
        .bind(t)
        .bind(t - STALE_RUNNING_SECS)
        .execute(&mut *w.txn)
        .await?;
        let running = sqlx::query(
            "SELECT id, source FROM directory_imports WHERE status = 'running' \
             AND id NOT IN (SELECT current_import FROM directory_sources) ORDER BY id LIMIT 1",
        )
        .fetch_optional(&mut *w.txn)
        .await?;
        if let Some(r) = running {
            return Err(StoreError::Invalid(format!(
                "directory import {} ({}) is running; one bulk import at a time",
                r.try_get::<i64, _>("id")?,
                r.try_get::<String, _>("source")?
            )));
        }
        sqlx::query("DROP TABLE IF EXISTS directory_entries_next")
            .execute(&mut *w.txn)
            .await?;
        sqlx::query(match self.engine() {
            Engine::Sqlite => CREATE_NEXT_SQLITE,
            Engine::Postgres => CREATE_NEXT_POSTGRES,
        })
        .execute(&mut *w.txn)
        .await?;
        let id = record_running_import(&mut w, source, origin, t).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Ends a running import: records its rejected lines, applies the drop guard, builds the
    /// indexes of the loaded table, computes what changed against the generation in place,
    /// and swaps the loaded table in, in one short transaction. A refused import leaves the
    /// previous generation in place.
    pub async fn directory_finish_import(
        &self,
        import_id: i64,
        rejects: &[RejectedLine],
        rejected_total: i64,
        options: FinishOptions,
    ) -> Result<ImportRecord> {
        let running = self.directory_import(import_id).await?;
        if running.status != ImportStatus::Running {
            return Err(StoreError::Invalid(format!(
                "import {import_id} is not running"
            )));
        }
        let started = std::time::Instant::now();
        self.directory_record_rejects(import_id, rejects).await?;
        let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM directory_entries_next")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let previous = self.directory_current_import(&running.source).await?;
        if let Some(refusal) = drop_guard(previous.as_ref(), rows, options) {
            let addresses: i64 =
                sqlx::query("SELECT COUNT(DISTINCT address_key) AS a FROM directory_entries_next")
                    .fetch_one(self.pool())
                    .await?
                    .try_get("a")?;
            self.directory_close_import(
                import_id,
                ImportStatus::Refused,
                rows,
                addresses,
                rejected_total,
                &refusal,
            )
            .await?;
            return self.directory_import(import_id).await;
        }
        log_phase(import_id, "count", started);
        self.directory_build_indexes(import_id).await?;
        let started = std::time::Instant::now();
        let addresses: i64 =
            sqlx::query("SELECT COUNT(DISTINCT address_key) AS a FROM directory_entries_next")
                .fetch_one(self.pool())
                .await?
                .try_get("a")?;
        log_phase(import_id, "count addresses", started);
        let started = std::time::Instant::now();
        let counts = match &previous {
            Some(previous) => {
                self.directory_record_changes(import_id, previous.id)
                    .await?
            }
            None => self.directory_record_first(import_id, addresses).await?,
        };
        log_phase(import_id, "changes", started);
        let started = std::time::Instant::now();
        self.directory_swap(
            import_id,
            &running.source,
            [rows, addresses, rejected_total],
            counts,
            options.force,
        )
        .await?;
        log_phase(import_id, "swap", started);
        self.directory_import(import_id).await
    }

    /// Marks a running import failed and drops what it loaded; the previous data stays.
    pub async fn directory_fail_import(&self, import_id: i64, message: &str) -> Result<()> {
        let mut w = self.write_txn().await?;
        let mine = sqlx::query(
            "UPDATE directory_imports SET status = 'failed', finished_at = $2, message = $3 \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(import_id)
        .bind(now())
        .bind(message)
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        // Taken over as abandoned: the loaded table may be the next import's by now.
        if mine == 1 {
            sqlx::query("DROP TABLE IF EXISTS directory_entries_next")
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await
    }

    async fn directory_record_rejects(
        &self,
        import_id: i64,
        rejects: &[RejectedLine],
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        insert_rejects(&mut w, import_id, rejects).await?;
        w.commit().await
    }

    /// The atomic step, one transaction: the other sources' current rows join the loaded
    /// table, which replaces the live one by rename, and the source points at the new
    /// generation. Lookups before the commit read the old table, after it the new one.
    async fn directory_swap(
        &self,
        import_id: i64,
        source: &str,
        [rows, addresses, rejected]: [i64; 3],
        [added, removed, modified]: [i64; 3],
        forced: bool,
    ) -> Result<()> {
        let t = now();
        let mut w = self.write_txn().await?;
        if self.engine() == Engine::Postgres {
            // Writers of other sources (FHIR refresh) wait until the swap, readers do not.
            sqlx::query("LOCK TABLE directory_entries IN EXCLUSIVE MODE")
                .execute(&mut *w.txn)
                .await?;
        }
        let closed = sqlx::query(
            "UPDATE directory_imports SET status = 'ok', forced = $2, finished_at = $3, \
             heartbeat_at = $3, rows_count = $4, addresses = $5, rejected = $6, added = $7, \
             removed = $8, modified = $9 WHERE id = $1 AND status = 'running'",
        )
        .bind(import_id)
        .bind(forced as i64)
        .bind(t)
        .bind(rows)
        .bind(addresses)
        .bind(rejected)
        .bind(added)
        .bind(removed)
        .bind(modified)
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        if closed == 0 {
            return Err(taken_over(import_id));
        }
        // Finding the other sources' rows scans the live table (no index on `import_id`, see
        // the ADR): 0.3 s at national scale, skipped when no other source is served.
        let others: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM directory_sources WHERE source <> $1")
                .bind(source)
                .fetch_one(&mut *w.txn)
                .await?
                .try_get("n")?;
        if others > 0 {
            sqlx::query(COPY_OTHER_SOURCES)
                .bind(source)
                .execute(&mut *w.txn)
                .await?;
        }
        sqlx::query("DROP TABLE directory_entries")
            .execute(&mut *w.txn)
            .await?;
        sqlx::query("ALTER TABLE directory_entries_next RENAME TO directory_entries")
            .execute(&mut *w.txn)
            .await?;
        self.directory_point(&mut w, source, import_id, t).await?;
        w.commit().await
    }

    /// Points `source` at generation `import_id`.
    pub(super) async fn directory_point(
        &self,
        w: &mut WriteTxn<'_>,
        source: &str,
        import_id: i64,
        t: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO directory_sources (source, current_import, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (source) DO UPDATE SET current_import = $2, updated_at = $3",
        )
        .bind(source)
        .bind(import_id)
        .bind(t)
        .execute(&mut *w.txn)
        .await?;
        Ok(())
    }

    async fn directory_close_import(
        &self,
        import_id: i64,
        status: ImportStatus,
        rows: i64,
        addresses: i64,
        rejected: i64,
        message: &str,
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE directory_imports SET status = $2, finished_at = $3, rows_count = $4, \
             addresses = $5, rejected = $6, message = $7 WHERE id = $1",
        )
        .bind(import_id)
        .bind(status.as_str())
        .bind(now())
        .bind(rows)
        .bind(addresses)
        .bind(rejected)
        .bind(message)
        .execute(&mut *w.txn)
        .await?;
        if status != ImportStatus::Ok {
            sqlx::query("DROP TABLE IF EXISTS directory_entries_next")
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await
    }
}

/// RFC-less but essential: a truncated download must not wipe the directory. Returns why the
/// new generation is refused, if it is.
fn drop_guard(
    previous: Option<&ImportRecord>,
    rows: i64,
    options: FinishOptions,
) -> Option<String> {
    let previous = previous?;
    let floor = (previous.rows as f64 * (1.0 - options.max_drop)).ceil() as i64;
    if options.force || rows >= floor {
        return None;
    }
    Some(format!(
        "refused by the drop guard: {rows} rows against {} in import {} (more than {:.0} % fewer); \
         use --force to apply it anyway",
        previous.rows,
        previous.id,
        options.max_drop * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_guard_refuses_large_drops_unless_forced() {
        let previous = ImportRecord {
            id: 1,
            source: "extraction".into(),
            origin: "x".into(),
            status: ImportStatus::Ok,
            forced: false,
            started_at: 0,
            finished_at: None,
            rows: 1000,
            addresses: 1000,
            rejected: 0,
            added: 0,
            removed: 0,
            modified: 0,
            message: None,
        };
        let guard = FinishOptions {
            max_drop: 0.10,
            force: false,
        };
        assert!(drop_guard(Some(&previous), 900, guard).is_none());
        assert!(drop_guard(Some(&previous), 899, guard).is_some());
        assert!(drop_guard(None, 1, guard).is_none());
        assert!(
            drop_guard(
                Some(&previous),
                1,
                FinishOptions {
                    force: true,
                    ..guard
                }
            )
            .is_none()
        );
    }
}
