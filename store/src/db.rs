//! Connection for both engines (migrations: `schema.rs`).

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor};

use crate::error::{Result, StoreError};

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

/// Opens the pool; on PostgreSQL, `returns` counts the connections it takes back.
pub async fn connect(
    url: &str,
    returns: std::sync::Arc<crate::kept_connections::PoolReturns>,
) -> Result<(AnyPool, Engine)> {
    sqlx::any::install_default_drivers();
    let engine = Engine::from_url(url)?;
    let options = AnyPoolOptions::new().max_connections(match engine {
        Engine::Sqlite => 8,
        Engine::Postgres => 16,
    });
    let options = match engine {
        // A SQLite connection is a thread of this process: there is no peer to have hung
        // up, and sqlx's ping before each acquire was a hand-off to that thread and back
        // for nothing (ADR 0061).
        Engine::Sqlite => options.test_before_acquire(false),
        Engine::Postgres => options
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
            // sqlx pings a connection when it goes back to the pool; pinging it again when
            // it is taken a moment later cost a round trip per statement or transaction.
            .test_before_acquire(false)
            // Every connection taken back is pinged by sqlx after this hook.
            .after_release(move |_conn, _meta| {
                returns.count();
                Box::pin(async { Ok(true) })
            })
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > POSTGRES_TRUSTED_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            }),
    };
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
                // A transaction whose COMMIT failed (SQLITE_FULL, I/O error) may have been
                // rolled back by SQLite itself: sqlx's ROLLBACK then fails and its depth
                // counter stays up, so the next "BEGIN" becomes a SAVEPOINT and the next
                // failure leaves a write transaction open on an idle connection, locking
                // every writer out ("database is locked"). Such a connection is closed
                // instead of going back to the pool (the ping waits for the queued rollback).
                // The depth only goes down when the connection's thread has run that
                // rollback, so a depth of 0 needs no ping: sqlx pings every connection it
                // takes back anyway, which is all a clean release costs (ADR 0061).
                .after_release(|conn, _meta| {
                    Box::pin(async move {
                        if conn.is_in_transaction() {
                            conn.ping().await?;
                        }
                        Ok(!conn.is_in_transaction())
                    })
                })
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
        Engine::Postgres => {
            probe_postgres(url).await?;
            options.connect(url).await?
        }
    };
    Ok((pool, engine))
}

/// During a database outage a session waits this long for a connection, then answers
/// 451 / NO [UNAVAILABLE] (docs/cluster.md §3) instead of holding the client 30 s.
const POSTGRES_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A PostgreSQL connection back in the pool for less than this (checked by sqlx's ping at
/// release) is handed out without another ping; one idle longer is pinged first, so that a
/// database restart while the server was quiet costs no client a failed command. One
/// broken in between fails its command as a transient error, as a ping that raced the
/// failure would have.
const POSTGRES_TRUSTED_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a first connection to PostgreSQL may take before the server gives up.
const POSTGRES_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One direct connection before the pool: the pool retries a failing connect until its
/// acquire timeout (30 s) and then reports only "pool timed out"; the direct attempt fails
/// at once with the cause (refused, unknown host, authentication) or after a bounded wait.
async fn probe_postgres(url: &str) -> Result<()> {
    use sqlx::Connection;
    match tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, sqlx::AnyConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Database(e)),
        Err(_) => Err(StoreError::Invalid(format!(
            "no answer from PostgreSQL within {} s",
            POSTGRES_CONNECT_TIMEOUT.as_secs()
        ))),
    }
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

/// The first row of a statement run on its own (PostgreSQL's implicit transaction), returned
/// only once the database has committed it.
///
/// Never `fetch_one`/`fetch_optional` on the pool for a write: sqlx's `Any` driver returns
/// them at the first `DataRow`, before PostgreSQL has processed the `Sync` that commits the
/// implicit transaction and flushed its WAL. A "250" or "OK" sent on that row can be lost
/// by a database crash an instant later (`tests/outage_e2e.rs` saw one), and an error of
/// the commit itself (a deferred check) is never seen. `fetch_all` reads up to
/// `ReadyForQuery`, which PostgreSQL sends after the commit.
pub(crate) async fn fetch_committed(
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    pool: &AnyPool,
) -> std::result::Result<Option<sqlx::any::AnyRow>, sqlx::Error> {
    Ok(query.fetch_all(pool).await?.into_iter().next())
}

/// A write transaction. On SQLite it takes the database's write lock at BEGIN (IMMEDIATE):
/// a transaction begun deferred whose first statements read fails at its first write with
/// "database is locked", whatever the busy timeout, when another process (the command line
/// beside the server) committed in between; IMMEDIATE waits for the lock instead (ADR 0056,
/// and the red `rights_matrix` of delegation_e2e before it).
pub(crate) async fn begin_write(pool: &AnyPool, engine: Engine) -> Result<crate::Txn> {
    Ok(match engine {
        Engine::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Engine::Postgres => pool.begin().await?,
    })
}

#[cfg(test)]
mod tests {
    /// Every `fetch_one` / `fetch_optional` straight on the pool in this crate runs a read:
    /// a write there would answer before its commit (see [`super::fetch_committed`]).
    /// Scans the sources: the statement text between a `query` call and its fetch, and the
    /// `const` a `query(NAME)` names, must be a SELECT
    /// (or say `// A read`).
    #[test]
    fn no_write_is_fetched_before_its_commit() {
        let mut offenders = Vec::new();
        for path in rust_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(".fetch_o") {
                let argument: String = text[at..]
                    .chars()
                    .skip_while(|c| *c != '(')
                    .take_while(|c| *c != ';')
                    .collect();
                if !argument.split(')').next().unwrap_or("").contains("pool") {
                    continue;
                }
                let start = text[..at].rfind("query").unwrap_or(0);
                let statement = with_named_consts(&text, &text[start..at]);
                // A statement built elsewhere (no SELECT in sight) counts as a write unless
                // a `// A read` comment says otherwise.
                let writes = ["INSERT ", "UPDATE ", "DELETE ", "pg_notify", "nextval("]
                    .iter()
                    .any(|w| statement.contains(w));
                let read = statement.contains("SELECT") || statement.contains("// A read");
                if writes || !read {
                    let line = text[..at].lines().count();
                    offenders.push(format!("{}:{line}", path.display()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "writes fetched on the pool (use db::fetch_committed): {offenders:?}"
        );
    }

    /// ADR 0049: no trigger counts a new copy in its BAL's usage any more; the statement or
    /// function that inserts into `mailbox_messages` must add the bytes itself. Scans the
    /// sources: every item (`fn` or `const`) holding such an insert must also hold the
    /// counter's `UPDATE`, so a new writer that forgets it fails here (the behaviour of each
    /// writer is checked on both engines in `store/tests/usage_counter.rs`).
    #[test]
    fn every_insert_into_mailbox_messages_counts_its_bytes() {
        let insert = ["INSERT INTO", "mailbox_messages"].join(" ");
        let counter = "UPDATE bals SET used_bytes = used_bytes +";
        let (mut writers, mut offenders) = (0, Vec::new());
        for path in rust_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(&insert) {
                writers += 1;
                let (start, end) = enclosing_item(&text, at);
                if !text[start..end].contains(counter) {
                    let line = text[..at].lines().count();
                    offenders.push(format!("{}:{line}", path.display()));
                }
            }
        }
        assert!(writers >= 6, "the scan found only {writers} writers");
        assert!(
            offenders.is_empty(),
            "copies inserted without counting their bytes in bals.used_bytes (ADR 0049): {offenders:?}"
        );
    }

    /// The byte range of the `fn` or `const` around `at`: from the line that opens it to the
    /// line that opens the next one.
    fn enclosing_item(text: &str, at: usize) -> (usize, usize) {
        let opens = |line: &str| {
            let line = line.trim_start();
            let line = line
                .strip_prefix("pub(crate) ")
                .or_else(|| line.strip_prefix("pub "))
                .unwrap_or(line);
            let line = line.strip_prefix("async ").unwrap_or(line);
            line.starts_with("fn ") || line.starts_with("const ")
        };
        let mut starts = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            if opens(line) {
                starts.push(offset);
            }
            offset += line.len();
        }
        let start = starts
            .iter()
            .rev()
            .find(|&&s| s <= at)
            .copied()
            .unwrap_or(0);
        let end = starts
            .iter()
            .find(|&&s| s > at)
            .copied()
            .unwrap_or(text.len());
        (start, end)
    }

    /// `span` followed by the text of every `const NAME: &str` of `file` it names.
    fn with_named_consts(file: &str, span: &str) -> String {
        let mut all = span.to_string();
        for word in span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let is_const =
                word.len() > 2 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            if let Some(at) = is_const
                .then(|| file.find(&format!("const {word}: &str")))
                .flatten()
            {
                all.push_str(file[at..].split("\";").next().unwrap_or(""));
            }
        }
        all
    }

    fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        assert!(files.iter().any(|f| f.ends_with("delivery_pg.rs")) || !dir.ends_with("src"));
        files
    }
}
