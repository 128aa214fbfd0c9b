//! Connection and migrations for both engines.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::error::{Result, StoreError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Engine> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(StoreError::Invalid(format!(
                "database_url must start with sqlite:// or postgres:// (got {:?})",
                url.split(':').next().unwrap_or("")
            )))
        }
    }
}

/// Per-connection SQLite settings. WAL lets readers run beside the writer; synchronous=FULL
/// fsyncs the WAL at every commit, which is what "250 OK means durable" requires.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 30000",
];

pub async fn connect(url: &str) -> Result<(AnyPool, Engine)> {
    sqlx::any::install_default_drivers();
    let engine = Engine::from_url(url)?;
    let options = AnyPoolOptions::new().max_connections(match engine {
        Engine::Sqlite => 8,
        Engine::Postgres => 16,
    });
    let pool = match engine {
        Engine::Sqlite => {
            create_sqlite_parent_dir(url)?;
            let url = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            options
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(pragma).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&url)
                .await?
        }
        Engine::Postgres => options.connect(url).await?,
    };
    Ok((pool, engine))
}

/// The file of a `sqlite:` database URL (`sqlite://PATH?params`), `None` for other engines.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or("");
    Some(std::path::PathBuf::from(path))
}

fn create_sqlite_parent_dir(url: &str) -> Result<()> {
    let path = sqlite_file(url).unwrap_or_default();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

pub async fn migrate(pool: &AnyPool, engine: Engine) -> Result<()> {
    match engine {
        Engine::Sqlite => SQLITE_MIGRATIONS.run(pool).await?,
        Engine::Postgres => POSTGRES_MIGRATIONS.run(pool).await?,
    }
    Ok(())
}
