//! The storage layer of mssante: the only crate that speaks SQL.
//!
//! One [`Store`] serves every protocol crate. It runs on SQLite (embedded default, WAL) and
//! on PostgreSQL through `sqlx::Any`, with one migration folder per engine, and keeps message
//! bytes in a content-addressed [`BlobStore`]. See `docs/adr/0002-store-on-sqlx-any.md`.
//!
//! # Areas
//!
//! The methods of [`Store`] are grouped by area: each area's file holds its types and its own
//! `impl Store` block; the files that only help one (`address.rs`, `db.rs`, `error.rs`,
//! `flags.rs`, `group_commit.rs`) hold none. The test `every_module_is_in_the_table_of_contents`
//! keeps this list complete.
//!
//! - Opening the store, its engine and write transactions: `lib.rs`, with the connection and
//!   errors in `error.rs`; the connection in `db.rs`.
//! - Schema versions (applied, pending, newer than this binary) and `db migrate`: `schema.rs`.
//! - Domains we serve: `domain.rs`.
//! - BALs (the mailboxes of MSSanté): create, find, list, status, password, quota and usage,
//!   send-as: `bal.rs`; the [`Address`] type they are keyed by: `address.rs`; their other
//!   addresses (aliases) and renaming: `alias.rs`; removing a closed BAL (its content and
//!   accesses, the row kept as its audit trail's anchor, ADR 0033): `bal_removal.rs`.
//! - Authentication of a BAL's password (argon2id, with a cache): `auth.rs`.
//! - API keys of the HTTP API and the answers kept for `Idempotency-Key`: `api_keys.rs`.
//! - Webhooks of the HTTP API: followed messages, changes noticed, the outbox:
//!   `api_events.rs`; its export and import jobs (ADR 0039): `jobs.rs`.
//! - Who may open which BAL (PER holders by national id, habilitations, delegations):
//!   `access.rs`; delegations with their per-folder rights and end dates: `delegation.rs`;
//!   what a manager delegate may give or change (no SQL): `delegation_limits.rs`;
//!   RFC 4314 rights, the named rights and grantees (no SQL): `rights.rs`; client
//!   certificates bound to application BALs (SASL EXTERNAL): `client_certs.rs`.
//! - The audit trail of each BAL, hash-chained, written with the action it records:
//!   `audit.rs`; the entries of one SQLite group commit inserted together (ADR 0044):
//!   `audit/` (`audit/batch.rs`).
//! - Accepting a message (SMTP in, `deliver` and its durability contract): `delivery.rs`, with
//!   the shared SQLite commits (deliveries and IMAP writes alike) in `group_commit.rs` and
//!   PostgreSQL's one statement per message in `delivery_pg.rs`, whose connection (and the
//!   RCPT lookup's) is kept between messages without sqlx's ping (ADR 0052):
//!   `kept_connections.rs`.
//! - Message bodies (inline in the database or files of the blob store): `blob.rs`.
//! - Online backup and restore checks (SQLite snapshot, blob files, integrity): `backup.rs`.
//! - Moving BALs between instances (ADR 0020): what an export reads, page by page, in
//!   `export.rs`; staging an import and making the BAL visible in one commit in `import.rs`.
//! - Copying BALs from another operator's IMAP server (ADR 0032): each copy with the source
//!   message it came from, for incremental re-runs and the verification report:
//!   `migration.rs`.
//! - Folders of a BAL (create, delete, rename, subscriptions, status, \\Recent, summaries):
//!   `folder.rs`.
//! - Messages in a folder for IMAP (refs, FETCH metadata, append, copy and move,
//!   expunge): `folder_messages.rs`; STORE of their flags (a delegate's own `\\Seen`
//!   included): `folder_flags.rs`; a folder's counters and messages as one read saw
//!   them, at SELECT and for CONDSTORE/QRESYNC changes: `folder_snapshot.rs`; what a
//!   session keeps per message: `message_ref.rs`; how flags are kept and changed (no
//!   SQL): `flags.rs`; PostgreSQL's one-statement APPEND and \\Recent claim (ADR 0043):
//!   `folder_writes_pg.rs`; the `\\Seen` of each delegate, kept apart from the holder's (ADR
//!   0034): `delegate_seen.rs`; a delegate's STORE, EXPUNGE and COPY on PostgreSQL in one
//!   statement with their audit entry (ADR 0059): `delegate_writes_pg.rs`.
//! - A folder page by page in UID order, for the HTTP API's readers: `folder_pages.rs`.
//! - Change notifications to IMAP sessions (in-process and across nodes): `notify.rs`.
//!   What each session hears (its selected folder, grants, NOTIFY's every folder):
//!   `change_feed.rs`.
//! - Leadership among nodes sharing a database (periodic jobs run once): `leader.rs`.
//! - The outbound queue and the DSNs owed to senders: `queue.rs`.
//! - Tracking what became of the messages we sent: `tracking.rs`; a million tracked
//!   messages seeded for the status benchmark, and the status queries' plans: `bench_seed.rs`.
//! - Figures of a period for the monthly indicators: `report.rs`.
//! - Retention: expiry of traces in batches, audit trails cut at an anchor, last logins and
//!   inactive BALs: `retention.rs`.
//! - Figures for monitoring (counts, queue age, directory freshness, database ping):
//!   `stats.rs`.
//! - The local copy of the national directory (imports, lookups, history, incremental sync,
//!   publication outbox): `directory/`, mapped in `directory/mod.rs`.

mod access;
mod address;
mod alias;
mod api_events;
mod api_keys;
mod audit;
mod auth;
mod backup;
mod bal;
mod bal_removal;
mod bench_seed;
mod blob;
mod change_feed;
mod client_certs;
mod db;
mod delegate_seen;
mod delegate_writes_pg;
mod delegation;
pub mod delegation_limits;
mod delivery;
mod delivery_pg;
mod directory;
mod domain;
mod error;
mod export;
mod flags;
mod folder;
mod folder_flags;
mod folder_messages;
mod folder_pages;
mod folder_snapshot;
mod folder_writes_pg;
mod group_commit;
mod import;
mod jobs;
mod kept_connections;
mod leader;
mod message_ref;
mod migration;
mod notify;
mod queue;
mod report;
mod retention;
mod rights;
mod schema;
mod stats;
mod tracking;

/// The transaction a write runs in (`group_commit.rs`; here, so that every module names it
/// without depending on the committer).
pub(crate) type Txn = sqlx::Transaction<'static, sqlx::Any>;
pub use access::{
    Access, AccessGrant, AccessOrigin, AccessRefusal, HABILITATION_RIGHTS, HOLDER_RIGHTS,
};
pub use address::{Address, normalise_domain};
pub use alias::Alias;
pub use api_events::{
    DeliveryState, FOLLOW_FOR_SECS, HookAttempt, RecipientEvent, ScanScope, Webhook,
    WebhookDelivery, WebhookDeliveryRecord, WebhookSummary,
};
pub use api_keys::{API_SCOPES, ApiKey, CreatedApiKey, NewApiKey, StoredResponse};
pub use audit::{
    AuditAction, AuditEntry, AuditEvent, AuditQuery, AuditVerification, GENESIS_HASH, QueuedTrace,
    TraceState, WriteAudit,
};
pub use auth::{AuthFailure, hash_password};
pub use backup::{FileCopy, copy_new_files};
pub use bal::{Bal, BalStatus, BalType, NewBal};
pub use bal_removal::BalRemoval;
pub use bench_seed::SeededRange;
pub use blob::{BlobStore, FsBlobStore, INLINE_BLOB_MAX, blob_hash};
pub use change_feed::{ChangeFeed, FolderChanged};
pub use client_certs::{CertificateBinding, CertificateRefusal};
pub use db::{Engine, sqlite_file};
pub use delegation::{Delegation, FolderRights, NewDelegation};
pub use delivery::{
    DeliveryReceipt, IncomingMessage, MessageMeta, RcptDisposition, RcptLookup, RecipientSpec, Ret,
    Source, accepts_mail,
};
pub use directory::{
    DirectoryCount, DirectoryEntry, DirectoryRow, FinishOptions, INSERT_BATCH_ROWS, ImportChanges,
    ImportRecord, ImportStatus, NameQuery, OutboxItem, RejectedLine, address_key, fold_name,
    sources as directory_sources,
};
pub use domain::Domain;
pub use error::{Result, StoreError};
pub use export::{
    BalRecord, BalSnapshot, DelegateSeenRecord, FolderEntry, FolderRecord, GrantRecord,
    MessageRecord, PublicationRecord, Receipts, RecipientRecord, TrackingRecord,
};
pub use flags::FlagOp;
pub use folder::{Folder, FolderStatus, FolderSummary, RecentClaim, SPECIAL_USES};
pub use folder_flags::FlagUpdate;
pub use folder_messages::{AppendMode, BODY_WITH_INFO_MAX, MessageInfo, StoredMessage};
pub use folder_snapshot::FolderSnapshot;
pub use group_commit::CommitCounts;
pub use import::{ImportRun, StagedMessage};
pub use jobs::{Job, JobEnd, NewJob};
pub use leader::{Leadership, role_key};
pub use message_ref::MessageRef;
pub use migration::{MigratedMessage, SourceMessage, TargetMessage};

pub use queue::{AttemptOutcome, DueReport, QueueItem, notify_wants};
pub use report::PeriodFigures;
pub use retention::{ExpiredTraces, InactiveBal, PrunedAudit};
pub use rights::{Grantee, KNOWN_RIGHTS, NamedRights, Rights, SEND_RIGHT, parse_rights};
pub use schema::{SchemaPolicy, SchemaStatus};
pub use stats::ServerCounts;
pub use tracking::{MessageStatus, RecipientStatus, TrackingEvent, TrackingKind, TrackingReport};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kept_connections::KeptConnections;

/// Handle on the database and the blob store; cheap to clone, shared by all sessions.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: sqlx::AnyPool,
    engine: Engine,
    blobs: Box<dyn BlobStore>,
    /// SQLite allows one writer at a time; queueing writers here instead of in SQLite's busy
    /// handler keeps write transactions from failing with SQLITE_BUSY under load.
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// SQLite writes (deliveries, IMAP) share commits (`group_commit.rs`); `None` on
    /// PostgreSQL, whose concurrent commits already share WAL flushes.
    group_commit: Option<group_commit::GroupCommit>,
    /// PostgreSQL: the committer of delegates' read traces (ADR 0035), which SQLite's
    /// `group_commit` takes with every other write.
    trace_commit: Option<group_commit::GroupCommit>,
    auth_cache: auth::AuthCache,
    /// The last link of each BAL's audit chain, a checked hint (ADR 0042).
    chain_heads: Arc<audit::ChainHeads>,
    data_dir: PathBuf,
    /// Kept for connections outside the pool (leadership, LISTEN).
    database_url: String,
    /// Folder change notifications for IMAP sessions (see `notify.rs`).
    notifier: notify::Notifier,
    /// PostgreSQL: connections the per-message SMTP statements keep between messages,
    /// without sqlx's ping on each return to the pool (ADR 0052).
    kept: Option<KeptConnections>,
    pool_returns: Arc<kept_connections::PoolReturns>,
}

impl Store {
    /// Opens (and migrates) the database at `database_url` with blobs under `data_dir`.
    pub async fn open(database_url: &str, data_dir: &Path) -> Result<Store> {
        Store::open_with(database_url, data_dir, SchemaPolicy::MigrateAll).await
    }

    /// Opens the database, doing about its schema what `policy` says (ADR 0021).
    pub async fn open_with(
        database_url: &str,
        data_dir: &Path,
        policy: SchemaPolicy,
    ) -> Result<Store> {
        std::fs::create_dir_all(data_dir)?;
        let pool_returns = Arc::new(kept_connections::PoolReturns::default());
        let (pool, engine) = db::connect(database_url, pool_returns.clone()).await?;
        if let Err(e) = schema::prepare(&pool, engine, policy).await {
            pool.close().await;
            return Err(e);
        }
        let blobs = Box::new(FsBlobStore::new(data_dir)?);
        let sqlite_writer = Arc::new(tokio::sync::Mutex::new(()));
        let group_commit = (engine == Engine::Sqlite)
            .then(|| group_commit::GroupCommit::start(pool.clone(), sqlite_writer.clone(), engine));
        let trace_commit = (engine == Engine::Postgres).then(|| {
            let own_slot = Arc::new(tokio::sync::Mutex::new(()));
            group_commit::GroupCommit::start(pool.clone(), own_slot, engine)
        });
        // Before any session reads its access: grant changes after this are the poll's to see.
        let access_changes = match engine {
            Engine::Sqlite => delegation::access_changes(&pool).await,
            Engine::Postgres => None,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                engine,
                blobs,
                sqlite_writer,
                group_commit,
                trace_commit,
                auth_cache: auth::AuthCache::default(),
                chain_heads: Arc::default(),
                data_dir: data_dir.to_path_buf(),
                database_url: database_url.to_string(),
                notifier: notify::Notifier::new(database_url, access_changes),
                kept: (engine == Engine::Postgres).then(KeptConnections::default),
                pool_returns,
            }),
        })
    }

    pub fn engine(&self) -> Engine {
        self.inner.engine
    }

    /// The schema's migrations: applied, pending, unknown to this binary.
    pub async fn schema_status(&self) -> Result<SchemaStatus> {
        schema::status(self.pool(), self.engine()).await
    }

    /// Applies pending migrations up to `target` (all when `None`); returns those applied.
    pub async fn migrate(&self, target: Option<i64>) -> Result<Vec<i64>> {
        schema::migrate(self.pool(), self.engine(), target).await
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub(crate) fn database_url(&self) -> &str {
        &self.inner.database_url
    }

    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.inner.pool
    }

    /// Runs a statement to its end (its commit included) on a connection that, on
    /// PostgreSQL, is kept for the next one instead of going back to the pool (ADR 0052).
    /// For the statements every message runs; anything else uses the pool.
    pub(crate) async fn fetch_all_kept(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> std::result::Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
        match &self.inner.kept {
            Some(kept) => kept.fetch_all(self.pool(), query).await,
            None => query.fetch_all(self.pool()).await,
        }
    }

    /// How many connections the pool has taken back since the store was opened (each one
    /// pinged by sqlx on PostgreSQL; not counted on SQLite): what ADR 0052 saves per message.
    pub fn pool_returns(&self) -> u64 {
        self.inner.pool_returns.total()
    }

    /// Starts a write transaction; on SQLite, waits for the single writer slot first, and
    /// takes the database's write lock at `BEGIN` ([`db::begin_write`]).
    pub(crate) async fn write_txn(&self) -> Result<WriteTxn<'_>> {
        let guard = match self.inner.engine {
            Engine::Sqlite => Some(self.inner.sqlite_writer.lock().await),
            Engine::Postgres => None,
        };
        let txn = db::begin_write(&self.inner.pool, self.inner.engine).await?;
        Ok(WriteTxn { txn, _guard: guard })
    }

    /// Runs `write` in a transaction and returns its output once committed. On SQLite it
    /// shares the commit (and its fsync) with the writes of other sessions arriving at the
    /// same time (`group_commit.rs`, ADR 0031); on PostgreSQL, whose concurrent commits
    /// already share WAL flushes, it has a transaction of its own.
    pub(crate) async fn write<W: group_commit::Write>(&self, write: W) -> Result<W::Output> {
        self.write_notifying(write, |_| Vec::new()).await
    }

    /// [`Store::write`], then tells sessions that the folders `changed(output)` names have
    /// changed: this node's at once, other nodes' (PostgreSQL) through the node's outbox,
    /// after the commit (ADR 0054: a NOTIFY inside the transaction would hold PostgreSQL's
    /// NOTIFY lock through its commit).
    pub(crate) async fn write_notifying<W: group_commit::Write>(
        &self,
        write: W,
        changed: impl Fn(&W::Output) -> Vec<i64>,
    ) -> Result<W::Output> {
        let output = match &self.inner.group_commit {
            Some(group) => group.submit(write).await?,
            None => self.write_retrying(&write).await?,
        };
        for folder_id in changed(&output) {
            self.folder_committed(folder_id);
        }
        Ok(output)
    }

    /// PostgreSQL: runs `write` again after a deadlock or serialization failure (ADR 0040).
    async fn write_retrying<W: group_commit::Write>(&self, write: &W) -> Result<W::Output> {
        retrying_conflicts(|| self.write_once(write)).await
    }

    /// `write` in a transaction of its own (rolled back when dropped on error).
    async fn write_once<W: group_commit::Write>(&self, write: &W) -> Result<W::Output> {
        let mut w = self.write_txn().await?;
        let output = write.run(&mut w.txn).await?;
        w.commit().await?;
        Ok(output)
    }

    /// The committer a delegate's read trace is queued to (ADR 0035): SQLite's shared one,
    /// in order with every write; on PostgreSQL one of its own.
    pub(crate) fn chain_heads(&self) -> Arc<audit::ChainHeads> {
        self.inner.chain_heads.clone()
    }

    pub(crate) fn trace_committer(&self) -> &group_commit::GroupCommit {
        let inner = &self.inner;
        inner
            .group_commit
            .as_ref()
            .or(inner.trace_commit.as_ref())
            .expect("one committer per engine")
    }

    /// How many writes the SQLite committer took and in how many commits (`None` on
    /// PostgreSQL): what group commit saves, for tests and benchmarks.
    pub fn shared_commits(&self) -> Option<CommitCounts> {
        self.inner.group_commit.as_ref().map(|g| g.counts())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        // Marks the pool closed at once, then waits for every connection: the kept ones
        // (ADR 0052) must go back first, and none is kept after this mark.
        let closing = self.inner.pool.close();
        if let Some(kept) = &self.inner.kept {
            kept.release_all();
        }
        closing.await;
    }
}

/// How many times a PostgreSQL write aborted by a deadlock or a serialization failure is
/// run in all (ADR 0040): writes take their rows in one order, so conflicts are rare and a
/// second run almost always succeeds; the bound keeps a pathological case from looping.
const WRITE_ATTEMPTS: u32 = 5;

/// Runs `run` again after a deadlock or serialization failure (ADR 0040), at most
/// [`WRITE_ATTEMPTS`] times in all.
pub(crate) async fn retrying_conflicts<T, F, Fut>(mut run: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match run().await {
            Err(e) if e.is_write_conflict() && attempt < WRITE_ATTEMPTS => {
                tracing::debug!(attempt, "write conflict, running the write again: {e}");
                tokio::time::sleep(conflict_backoff(attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A short, growing, jittered pause before running a conflicting write again, so that the
/// writers that collided do not collide again in step.
fn conflict_backoff(attempt: u32) -> std::time::Duration {
    let jitter = u64::from(rand::random::<u8>() % 8);
    std::time::Duration::from_millis(u64::from(attempt) * 5 + jitter)
}

/// A write transaction plus, on SQLite, the writer slot it holds until commit or drop.
pub(crate) struct WriteTxn<'a> {
    pub txn: sqlx::Transaction<'static, sqlx::Any>,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTxn<'_> {
    pub async fn commit(self) -> Result<()> {
        self.txn.commit().await?;
        Ok(())
    }
}

/// Seconds since the Unix epoch: the one time type of the schema.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    /// The table of contents at the top of this file names every module of the crate, so that
    /// a new area (or a renamed file) cannot go unlisted.
    #[test]
    fn every_module_is_in_the_table_of_contents() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let toc: String = lib
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if entry.file_type().unwrap().is_dir() {
                names.push(format!("`{name}/`"));
            } else if name.ends_with(".rs") {
                names.push(format!("`{name}`"));
            }
        }
        assert!(names.len() > 10, "read {names:?}");
        let missing: Vec<_> = names.iter().filter(|n| !toc.contains(n.as_str())).collect();
        assert!(
            missing.is_empty(),
            "not in the table of contents of lib.rs: {missing:?}"
        );
    }
}
