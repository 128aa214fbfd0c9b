//! The indexes of the loaded table, built after the load (one sorted build each), under the
//! name set the live table does not use.

use sqlx::Row;

use super::running::{log_phase, taken_over};
use crate::error::Result;
use crate::{Engine, Store};

/// Index names live in one namespace per schema and a rename keeps them, so the loaded table
/// takes whichever of two name sets the live table does not use. Built after the load (one
/// sorted build each instead of 535,000 random inserts).
///
/// The name searches read a prefix range in `(key, id)` order and stop at the limit: the index
/// must hold that order. SQLite's does by itself (every index ends with the rowid, which `id`
/// is); PostgreSQL's needs `id` as a second column, else it fetches and sorts the whole
/// prefix range (10 ms at 535,000 rows for a three-letter prefix, migration 0007).
const INDEXES_A_SQLITE: [&str; 4] = [
    "CREATE INDEX directory_entries_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_name ON directory_entries_next(name_key)",
    "CREATE INDEX directory_entries_first_name ON directory_entries_next(first_name_key)",
];
const INDEXES_B_SQLITE: [&str; 4] = [
    "CREATE INDEX directory_entries_b_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_b_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_b_name ON directory_entries_next(name_key)",
    "CREATE INDEX directory_entries_b_first_name ON directory_entries_next(first_name_key)",
];
const INDEXES_A_POSTGRES: [&str; 4] = [
    "CREATE INDEX directory_entries_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_name ON directory_entries_next(name_key, id)",
    "CREATE INDEX directory_entries_first_name ON directory_entries_next(first_name_key, id)",
];
const INDEXES_B_POSTGRES: [&str; 4] = [
    "CREATE INDEX directory_entries_b_address ON directory_entries_next(address_key, import_id, row_hash)",
    "CREATE INDEX directory_entries_b_national_id ON directory_entries_next(national_id)",
    "CREATE INDEX directory_entries_b_name ON directory_entries_next(name_key, id)",
    "CREATE INDEX directory_entries_b_first_name ON directory_entries_next(first_name_key, id)",
];
/// Statistics for the columns lookups filter or join on: a fresh table has none and the
/// planner would guess. Only those (the sample is read anyway, but each column's statistics
/// cost a sort of it): 0.2 s instead of 0.65 s at national scale.
const ANALYZE_NEXT: &str = "ANALYZE directory_entries_next (import_id, address_key, national_id, \
     name_key, first_name_key, postcode, profession_code)";

/// Whether the live table uses the A names (then the loaded table takes the B names).
const LIVE_USES_A_SQLITE: &str = "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' \
     AND name = 'directory_entries_address' AND tbl_name = 'directory_entries'";
const LIVE_USES_A_POSTGRES: &str = "SELECT COUNT(*) AS n FROM pg_indexes \
     WHERE schemaname = current_schema() AND indexname = 'directory_entries_address' \
     AND tablename = 'directory_entries'";

/// Page cache for the connection that builds indexes and compares generations (SQLite's
/// default is 2 MB): the sorts of `CREATE INDEX` and the probes of the comparison stay in
/// memory. Negative = KiB. Restored to the default afterwards (connections are pooled).
pub(super) const SQLITE_BIG_CACHE: &str = "PRAGMA cache_size = -16384";
pub(super) const SQLITE_DEFAULT_CACHE: &str = "PRAGMA cache_size = -2000";

impl Store {
    /// Builds the loaded table's indexes, one write transaction each (on SQLite each holds
    /// the writer slot for the time of one sorted build, about a second at national scale).
    pub(super) async fn directory_build_indexes(&self, import_id: i64) -> Result<()> {
        let live_uses_a: i64 = sqlx::query(match self.engine() {
            Engine::Sqlite => LIVE_USES_A_SQLITE,
            Engine::Postgres => LIVE_USES_A_POSTGRES,
        })
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        let indexes = match (self.engine(), live_uses_a > 0) {
            (Engine::Sqlite, true) => INDEXES_B_SQLITE,
            (Engine::Sqlite, false) => INDEXES_A_SQLITE,
            (Engine::Postgres, true) => INDEXES_B_POSTGRES,
            (Engine::Postgres, false) => INDEXES_A_POSTGRES,
        };
        match self.engine() {
            Engine::Sqlite => {
                for index in indexes {
                    let started = std::time::Instant::now();
                    let mut w = self.write_txn().await?;
                    self.directory_heartbeat(&mut w, import_id).await?;
                    sqlx::query(SQLITE_BIG_CACHE).execute(&mut *w.txn).await?;
                    let built = sqlx::query(index).execute(&mut *w.txn).await;
                    sqlx::query(SQLITE_DEFAULT_CACHE)
                        .execute(&mut *w.txn)
                        .await?;
                    built?;
                    w.commit().await?;
                    log_phase(import_id, index_phase(index), started);
                }
            }
            Engine::Postgres => {
                // The four at once, one transaction each (`CREATE INDEX` takes a SHARE lock,
                // which does not exclude another): the sorts use both cores.
                let mut w = self.write_txn().await?;
                self.directory_heartbeat(&mut w, import_id).await?;
                w.commit().await?;
                let [a, b, c, d] = indexes.map(|index| self.postgres_build_index(import_id, index));
                let (a, b, c, d) = tokio::join!(a, b, c, d);
                a.and(b).and(c).and(d)?;
            }
        }
        if self.engine() == Engine::Postgres {
            // Fresh table, no statistics yet: without them the planner guesses.
            let started = std::time::Instant::now();
            sqlx::query(ANALYZE_NEXT).execute(self.pool()).await?;
            log_phase(import_id, "analyze", started);
        }
        Ok(())
    }

    /// Builds one index of the loaded table on PostgreSQL, in its own transaction, if the
    /// import is still running (checked under a share lock: index builds run side by side, and
    /// the heartbeat's update would make them wait for each other).
    async fn postgres_build_index(&self, import_id: i64, index: &'static str) -> Result<()> {
        let started = std::time::Instant::now();
        let mut w = self.write_txn().await?;
        let alive = sqlx::query(
            "SELECT id FROM directory_imports WHERE id = $1 AND status = 'running' FOR SHARE",
        )
        .bind(import_id)
        .fetch_optional(&mut *w.txn)
        .await?;
        if alive.is_none() {
            return Err(taken_over(import_id));
        }
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
            .execute(&mut *w.txn)
            .await?;
        sqlx::query(index).execute(&mut *w.txn).await?;
        w.commit().await?;
        log_phase(import_id, index_phase(index), started);
        Ok(())
    }
}

/// The index name of a `CREATE INDEX` statement, for [`log_phase`].
fn index_phase(sql: &'static str) -> &'static str {
    sql.split_whitespace().nth(2).unwrap_or("index")
}
