//! Writes into the generation a source serves, without a bulk import: one address refreshed
//! (FHIR), and the entries an incremental LDAP run found changed.

use sqlx::Row;

use super::changes::MAX_KEPT_CHANGES;
use super::history::{ImportRecord, RejectedLine, insert_rejects};
use super::row::{DirectoryRow, INSERT_ONE, address_key, bind_row};
use super::running::record_running_import;
use crate::error::Result;
use crate::{Store, now};

/// The incremental sync state of source `$1` if it belongs to origin `$2` and to the
/// generation the source serves now.
const SYNC_STATE: &str = "SELECT st.generation, st.watermark, st.incremental_runs \
     FROM directory_sync_state st \
     JOIN directory_sources s ON s.source = st.source AND s.current_import = st.generation \
     WHERE st.source = $1 AND st.origin = $2";

impl Store {
    /// Replaces the rows of one address in a source that is refreshed entry by entry (FHIR),
    /// creating the source's standing generation on first use.
    pub async fn directory_refresh_entry(
        &self,
        source: &str,
        address: &str,
        rows: &[DirectoryRow],
    ) -> Result<()> {
        let import_id = match self.directory_current_import(source).await? {
            Some(current) => current.id,
            None => {
                let id = self
                    .directory_new_import(source, "entries refreshed one by one")
                    .await?;
                let t = now();
                let mut w = self.write_txn().await?;
                sqlx::query(
                    "UPDATE directory_imports SET status = 'ok', finished_at = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(t)
                .execute(&mut *w.txn)
                .await?;
                self.directory_point(&mut w, source, id, t).await?;
                w.commit().await?;
                id
            }
        };
        let mut w = self.write_txn().await?;
        sqlx::query("DELETE FROM directory_entries WHERE import_id = $1 AND address_key = $2")
            .bind(import_id)
            .bind(address_key(address))
            .execute(&mut *w.txn)
            .await?;
        for (rank, row) in rows.iter().enumerate() {
            bind_row(
                sqlx::query(INSERT_ONE.as_str()),
                import_id,
                rank as i64 + 1,
                row,
            )
            .execute(&mut *w.txn)
            .await?;
        }
        w.commit().await
    }
}

/// Incremental sync of a bulk source (LDAP by `modifyTimestamp`, migration 0007): the changed
/// entries' rows are merged into the generation the source serves, without a new generation.
impl Store {
    /// Where the next incremental run of `source` starts: the watermark (Unix seconds) and the
    /// number of incremental runs since the last full one. `None` when a full run is due: no
    /// watermark, or one saved for another origin (URL, base, filter) or for a generation the
    /// source no longer serves.
    pub async fn directory_sync_watermark(
        &self,
        source: &str,
        origin: &str,
    ) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query(SYNC_STATE)
            .bind(source)
            .bind(origin)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(Some((
                r.try_get("watermark")?,
                r.try_get("incremental_runs")?,
            ))),
            None => Ok(None),
        }
    }

    /// After a full run of `source` that the source now serves as `generation`: saves where
    /// the next incremental run starts, or forgets it (`None`: the server gave no timestamps,
    /// so every run stays full).
    pub async fn directory_set_sync_watermark(
        &self,
        source: &str,
        origin: &str,
        generation: i64,
        watermark: Option<i64>,
    ) -> Result<()> {
        let mut w = self.write_txn().await?;
        sqlx::query("DELETE FROM directory_sync_state WHERE source = $1")
            .bind(source)
            .execute(&mut *w.txn)
            .await?;
        if let Some(watermark) = watermark {
            sqlx::query(
                "INSERT INTO directory_sync_state (source, origin, generation, watermark, \
                 incremental_runs, updated_at) VALUES ($1, $2, $3, $4, 0, $5)",
            )
            .bind(source)
            .bind(origin)
            .bind(generation)
            .bind(watermark)
            .bind(now())
            .execute(&mut *w.txn)
            .await?;
        }
        w.commit().await
    }

    /// Merges the rows of the entries an incremental run found changed into the generation
    /// `source` serves, in one write transaction: each address they carry gets exactly their
    /// rows (added if the generation lacked it, modified if its rows differ). Addresses the
    /// run did not see stay as they are: deleted entries wait for the next full run. The run
    /// is recorded in the history (status `ok`, its own id, rows under the served generation)
    /// and the watermark moves to `watermark` if that is later. `None` if the watermark is no
    /// longer valid (see [`Store::directory_sync_watermark`]): a full run is due instead.
    /// `rows` carry their rank in the run.
    #[allow(clippy::too_many_arguments)]
    pub async fn directory_merge_entries(
        &self,
        source: &str,
        origin: &str,
        history_origin: &str,
        rows: &[(i64, DirectoryRow)],
        rejects: &[RejectedLine],
        rejected_total: i64,
        watermark: i64,
    ) -> Result<Option<ImportRecord>> {
        let t = now();
        let mut w = self.write_txn().await?;
        let Some(state) = sqlx::query(SYNC_STATE)
            .bind(source)
            .bind(origin)
            .fetch_optional(&mut *w.txn)
            .await?
        else {
            return Ok(None);
        };
        let generation: i64 = state.try_get("generation")?;
        let previous_watermark: i64 = state.try_get("watermark")?;
        let id = record_running_import(&mut w, source, history_origin, t).await?;
        let mut by_address: std::collections::BTreeMap<String, Vec<&(i64, DirectoryRow)>> =
            Default::default();
        for row in rows {
            by_address.entry(row.1.address_key()).or_default().push(row);
        }
        let (mut added, mut modified) = (0i64, 0i64);
        for (address, new_rows) in &by_address {
            let mut before: Vec<i64> = sqlx::query(
                "SELECT row_hash FROM directory_entries WHERE address_key = $1 AND import_id = $2",
            )
            .bind(address.as_str())
            .bind(generation)
            .fetch_all(&mut *w.txn)
            .await?
            .iter()
            .map(|r| r.try_get("row_hash"))
            .collect::<std::result::Result<_, _>>()?;
            let mut after: Vec<i64> = new_rows.iter().map(|(_, row)| row.digest()).collect();
            before.sort_unstable();
            after.sort_unstable();
            if before == after {
                continue;
            }
            let change = if before.is_empty() {
                added += 1;
                (added <= MAX_KEPT_CHANGES).then_some("added")
            } else {
                modified += 1;
                (modified <= MAX_KEPT_CHANGES).then_some("modified")
            };
            if let Some(change) = change {
                sqlx::query(
                    "INSERT INTO directory_import_changes (import_id, address_key, change) \
                     VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(address.as_str())
                .bind(change)
                .execute(&mut *w.txn)
                .await?;
            }
            sqlx::query("DELETE FROM directory_entries WHERE address_key = $1 AND import_id = $2")
                .bind(address.as_str())
                .bind(generation)
                .execute(&mut *w.txn)
                .await?;
            for (line, row) in new_rows {
                bind_row(sqlx::query(INSERT_ONE.as_str()), generation, *line, row)
                    .execute(&mut *w.txn)
                    .await?;
            }
        }
        insert_rejects(&mut w, id, rejects).await?;
        sqlx::query(
            "UPDATE directory_imports SET status = 'ok', finished_at = $2, heartbeat_at = $2, \
             rows_count = $3, addresses = $4, rejected = $5, added = $6, modified = $7 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(t)
        .bind(rows.len() as i64)
        .bind(by_address.len() as i64)
        .bind(rejected_total)
        .bind(added)
        .bind(modified)
        .execute(&mut *w.txn)
        .await?;
        sqlx::query(
            "UPDATE directory_sync_state SET watermark = $2, \
             incremental_runs = incremental_runs + 1, updated_at = $3 WHERE source = $1",
        )
        .bind(source)
        .bind(watermark.max(previous_watermark))
        .bind(t)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        self.directory_import(id).await.map(Some)
    }
}
