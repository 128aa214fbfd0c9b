//! The national directory of mssante (docs/mssante.md §7, issue #6): a local, always-available copy of
//! the Annuaire Santé fed by the daily extraction file and by LDAP directories, single-entry
//! refreshes from the FHIR API, lookups served from the local copy only, and the publication
//! of our own BALs through an outbox. The `mssante directory` subcommands live in the binary
//! (`src/cli/directory.rs`).

pub mod config;
pub mod download;
pub mod extraction;
pub mod fhir;
pub mod import;
pub mod ldap;
pub mod publication;

pub use config::DirectoryConfig;
pub use import::{ImportOptions, ImportReport, Progress, import_extraction};
