//! Schema versions: which migrations a database has, which this binary knows, and the one
//! place that applies them. Migrations are an explicit step (`mssante db migrate`,
//! ADR 0021): opening a store never upgrades an existing database behind the operator's back,
//! and no binary works on a schema newer than it knows.

use sqlx::{AnyPool, Row};

use crate::db::Engine;
use crate::error::{Result, StoreError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

fn migrator(engine: Engine) -> &'static sqlx::migrate::Migrator {
    match engine {
        Engine::Sqlite => &SQLITE_MIGRATIONS,
        Engine::Postgres => &POSTGRES_MIGRATIONS,
    }
}

/// What opening a store does about the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaPolicy {
    /// Applies every pending migration (`db migrate`, `restore`, tests).
    MigrateAll,
    /// Creates the schema of an empty database; refuses one with pending migrations
    /// (`serve`, `init` and the administration commands).
    MigrateFresh,
    /// Changes nothing; refuses only a schema newer than this binary (`backup`, `db status`,
    /// `doctor`: they must work on an instance waiting for its migration).
    AsIs,
}

/// Where a database stands against the migrations this binary carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions recorded as applied, ascending.
    pub applied: Vec<i64>,
    /// Versions this binary knows and the database lacks, ascending.
    pub pending: Vec<i64>,
    /// Versions the database has and this binary does not know (a newer binary migrated it).
    pub unknown: Vec<i64>,
    /// A migration that started and did not finish (`success = false`).
    pub failed: Option<i64>,
}

impl SchemaStatus {
    /// No migration applied yet: an empty database.
    pub fn is_fresh(&self) -> bool {
        self.applied.is_empty() && self.failed.is_none()
    }

    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty() && self.failed.is_none()
    }

    /// The newest version this binary knows.
    pub fn latest_known(engine: Engine) -> i64 {
        migrator(engine)
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// The refusal for `policy`, if this state is not one it works on.
    pub fn refusal(&self, policy: SchemaPolicy) -> Option<StoreError> {
        if let Some(version) = self.failed {
            return Some(StoreError::Invalid(format!(
                "database schema: migration {version} started and did not finish; restore the \
                 backup taken before `mssante db migrate` (or repair it by hand), then migrate again"
            )));
        }
        if !self.unknown.is_empty() {
            return Some(StoreError::Invalid(format!(
                "database schema is newer than this binary knows (migrations {} applied by a \
                 newer mssante, this one knows up to {}); run the newer mssante, or restore a \
                 backup taken before its migration",
                join(&self.unknown),
                self.applied
                    .iter()
                    .filter(|v| !self.unknown.contains(v))
                    .max()
                    .map_or("none".into(), |v| v.to_string())
            )));
        }
        let behind = !self.pending.is_empty() && !self.is_fresh();
        if behind && policy == SchemaPolicy::MigrateFresh {
            return Some(StoreError::Invalid(format!(
                "database schema is older than this binary (migrations {} pending): back it up, \
                 then run `mssante db migrate`",
                join(&self.pending)
            )));
        }
        None
    }
}

fn join(versions: &[i64]) -> String {
    versions
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the migration table (absent on an empty database) without writing anything.
pub(crate) async fn status(pool: &AnyPool, engine: Engine) -> Result<SchemaStatus> {
    let table_exists = match engine {
        Engine::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        Engine::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        }
    };
    let exists: i64 = sqlx::query(table_exists) // A read: fine on the pool.
        .fetch_one(pool)
        .await?
        .get(0);
    let rows = match exists {
        0 => Vec::new(),
        _ => {
            sqlx::query(
                "SELECT version, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT) \
                 FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(pool)
            .await?
        }
    };
    let known: Vec<i64> = migrator(engine).iter().map(|m| m.version).collect();
    let mut status = SchemaStatus {
        applied: Vec::new(),
        pending: Vec::new(),
        unknown: Vec::new(),
        failed: None,
    };
    for row in rows {
        let version: i64 = row.get(0);
        if row.get::<i64, _>(1) == 0 {
            status.failed = Some(version);
            continue;
        }
        status.applied.push(version);
        if !known.contains(&version) {
            status.unknown.push(version);
        }
    }
    status.pending = known
        .into_iter()
        .filter(|v| !status.applied.contains(v) && status.failed != Some(*v))
        .collect();
    Ok(status)
}

/// Brings the schema to what `policy` asks, or says why it will not.
pub(crate) async fn prepare(pool: &AnyPool, engine: Engine, policy: SchemaPolicy) -> Result<()> {
    let status = status(pool, engine).await?;
    if let Some(refusal) = status.refusal(policy) {
        return Err(refusal);
    }
    let migrate = match policy {
        SchemaPolicy::MigrateAll => !status.pending.is_empty(),
        SchemaPolicy::MigrateFresh => status.is_fresh(),
        SchemaPolicy::AsIs => false,
    };
    if migrate {
        migrator(engine).run(pool).await?;
    }
    Ok(())
}

/// Applies the pending migrations up to `target` (all when `None`); returns the versions
/// applied, ascending.
pub(crate) async fn migrate(
    pool: &AnyPool,
    engine: Engine,
    target: Option<i64>,
) -> Result<Vec<i64>> {
    let before = status(pool, engine).await?;
    if let Some(refusal) = before.refusal(SchemaPolicy::MigrateAll) {
        return Err(refusal);
    }
    if let Some(target) = target
        && !migrator(engine).version_exists(target)
    {
        return Err(StoreError::Invalid(format!(
            "--to {target}: this binary has no migration {target} (it knows {})",
            join(
                &migrator(engine)
                    .iter()
                    .map(|m| m.version)
                    .collect::<Vec<_>>()
            )
        )));
    }
    match target {
        Some(target) => migrator(engine).run_to(target, pool).await?,
        None => migrator(engine).run(pool).await?,
    }
    let after = status(pool, engine).await?;
    Ok(after
        .applied
        .into_iter()
        .filter(|v| !before.applied.contains(v))
        .collect())
}
