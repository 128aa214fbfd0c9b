//! Errors of the store, split so that protocol code can map them to replies.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The caller asked for something invalid (bad address, unknown domain, duplicate...).
    /// The message is meant for the operator or the client, as is.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    /// The write would take the BAL over its quota (RFC 9208, OVERQUOTA: nothing was stored).
    #[error("quota exceeded")]
    OverQuota,
    /// Database failure: transient from the client's point of view (SMTP 451, IMAP NO).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Blob store failure (disk full, permissions...): transient as well.
    #[error("blob store error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True when retrying later may succeed (storage trouble, not bad input).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_) | StoreError::Io(_) | StoreError::Migration(_)
        )
    }
}

impl StoreError {
    /// True when PostgreSQL aborted the transaction because it conflicted with a concurrent
    /// one (`deadlock_detected` 40P01, `serialization_failure` 40001): the same write run
    /// again will succeed, so the store retries it instead of failing the client (ADR 0040).
    pub(crate) fn is_write_conflict(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
            }
            _ => false,
        }
    }

    /// True when the failure is a full disk (or quota): SQLite's SQLITE_FULL, PostgreSQL's
    /// `disk_full` (53100), ENOSPC/EDQUOT/EFBIG from the blob store. SMTP answers 452
    /// (RFC 5321 §4.2.2, RFC 3463 X.3.1) instead of a generic 451.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Io(e) => io_is_full(e),
            StoreError::Database(sqlx::Error::Io(e)) => io_is_full(e),
            StoreError::Database(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("13") | Some("53100"))
                    || db.message().contains("database or disk is full")
            }
            _ => false,
        }
    }
}

fn io_is_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EFBIG: i32 = 27;
    const EDQUOT: i32 = 122;
    matches!(e.raw_os_error(), Some(ENOSPC | EFBIG | EDQUOT))
        || e.kind() == std::io::ErrorKind::StorageFull
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Maps a unique-constraint violation to [`StoreError::Duplicate`], on both engines.
pub(crate) fn duplicate_as(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Duplicate(what.to_string())
        }
        _ => StoreError::Database(e),
    }
}
