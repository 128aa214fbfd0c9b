//! A running import: its record in the history, the heartbeat that proves it alive (it fails
//! once the import was taken over as abandoned), and the timings of its phases in the log.

use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::{Store, WriteTxn, now};

/// Adds a `running` import to the history; its id is the generation its rows carry.
pub(super) async fn record_running_import(
    w: &mut WriteTxn<'_>,
    source: &str,
    origin: &str,
    t: i64,
) -> Result<i64> {
    Ok(sqlx::query(
        "INSERT INTO directory_imports (source, origin, status, started_at, heartbeat_at) \
         VALUES ($1, $2, 'running', $3, $3) RETURNING id",
    )
    .bind(source)
    .bind(origin)
    .bind(t)
    .fetch_one(&mut *w.txn)
    .await?
    .try_get("id")?)
}

/// The error of a phase whose import was taken over (marked failed as abandoned) meanwhile.
pub(super) fn taken_over(import_id: i64) -> StoreError {
    StoreError::Invalid(format!(
        "directory import {import_id} is no longer running (taken over as abandoned)"
    ))
}

/// Logs how long a phase of an import took (`directory_bench` prints these).
pub(super) fn log_phase(import_id: i64, phase: &'static str, started: std::time::Instant) {
    tracing::info!(
        import_id,
        phase,
        ms = started.elapsed().as_millis() as u64,
        "directory import phase"
    );
}

impl Store {
    /// Records an import run without a loaded table (the standing generation of a source
    /// refreshed entry by entry).
    pub(super) async fn directory_new_import(&self, source: &str, origin: &str) -> Result<i64> {
        let mut w = self.write_txn().await?;
        let id = record_running_import(&mut w, source, origin, now()).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Proves a running import alive; fails if it was taken over (marked failed) meanwhile.
    pub(super) async fn directory_heartbeat(
        &self,
        w: &mut WriteTxn<'_>,
        import_id: i64,
    ) -> Result<()> {
        let alive = sqlx::query(
            "UPDATE directory_imports SET heartbeat_at = $2 WHERE id = $1 AND status = 'running'",
        )
        .bind(import_id)
        .bind(now())
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        if alive == 0 {
            return Err(taken_over(import_id));
        }
        Ok(())
    }
}
