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
