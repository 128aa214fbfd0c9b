//! Moving BALs between operators (docs/mssante.md §10, issue 15, ADR 0020):
//!
//! - `format.rs`: the archive format (tar of Maildirs plus a versioned manifest),
//!   documented for other tools in `docs/export-format.md`;
//! - `maildir.rs`: Maildir++ names, flag letters, `dovecot-keywords` and `dovecot-uidlist`;
//! - `export.rs`: `mssante export`, in constant memory;
//! - `import.rs`: `mssante import`, verified first, staged, resumable, one commit per BAL;
//! - `convert.rs`: store records to archive records and back;
//! - `migrate/`: `mssante migrate`, BALs copied from another operator's IMAP server (ADR 0032).
//!
//! The work runs on a blocking thread (tar and zstd are synchronous) and reaches the store
//! through a tokio [`Handle`](tokio::runtime::Handle).

mod convert;
pub mod export;
pub mod format;
pub mod import;
pub mod maildir;
pub mod migrate;

pub use export::{ExportSummary, Scope, export};
pub use import::{BalOutcome, DroppedSeen, ImportReport, import};

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command was asked something impossible (unknown domain…).
    #[error("{0}")]
    Usage(String),
    /// The archive is damaged, truncated or not ours: names the file concerned.
    #[error("archive refused: {file}: {problem}")]
    Corrupt { file: String, problem: String },
    #[error(transparent)]
    Store(#[from] mssante_store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// [`Progress::cancelled`] said to stop.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

/// Told how far a long run is (a progress bar on a terminal, nothing otherwise; a job's row
/// for the HTTP API, ADR 0039).
pub trait Progress {
    /// Messages written or read so far, of `total`.
    fn update(&mut self, done: u64, total: u64);
    /// A step made durable: the archive checked, a batch staged, a BAL finished (what
    /// `mssante import --progress` prints, one line each).
    fn step(&mut self, _what: &str) {}
    /// BALs finished (written, imported or skipped) so far, of `total`.
    fn bals(&mut self, _done: u64, _total: u64) {}
    /// Asked between messages: true stops the run with [`Error::Cancelled`] (an import
    /// stopped so resumes like a killed one).
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// No progress shown.
pub struct Quiet;

impl Progress for Quiet {
    fn update(&mut self, _done: u64, _total: u64) {}
}
