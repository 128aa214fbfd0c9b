//! Local copy of the national directory (docs/mssante.md §7): rows of the daily extraction, of
//! LDAP directories and of single FHIR look-ups, the lookups served from them, and the import
//! history.
//!
//! Atomic replacement without one giant transaction (docs/adr/0100-directory-generations.md):
//! an import writes its rows tagged with its own id (a new *generation*) in short write
//! transactions, then one small transaction points its source at that generation. Lookups only
//! read the generation their source points at, so they see yesterday or today, never a mix; an
//! import that fails or is refused never moves the pointer, and its rows are deleted.
//!
//! The files, in the order of a bulk import's life:
//! - `row.rs`: a row of the local copy, its digest, how it is bound and read back;
//! - `name_folding.rs`: the accent- and case-insensitive keys of name searches;
//! - `import.rs`: the life cycle of a bulk import (begin, finish with the drop guard, swap, fail);
//! - `running.rs`: what every phase of a running import shares (its record, the heartbeat that
//!   proves it alive, the phase timings in the log);
//! - `bulk_load.rs`: loading the rows (SQLite by JSON, PostgreSQL by `COPY`);
//! - `indexes.rs`: the loaded table's indexes, built after the load;
//! - `changes.rs`: what an import added, removed and modified;
//! - `history.rs`: the import history and its rejected lines;
//! - `merge.rs`: writes into a served generation without a bulk import (FHIR refresh of one
//!   address, incremental LDAP sync);
//! - `lookup.rs`: lookups by address, national id and name;
//! - `outbox.rs`: the publication of our own BALs to the national directory.

mod bulk_load;
mod changes;
mod history;
mod import;
mod indexes;
mod lookup;
mod merge;
mod name_folding;
mod outbox;
mod row;
mod running;

pub use bulk_load::INSERT_BATCH_ROWS;
pub use changes::ImportChanges;
pub use history::{ImportRecord, ImportStatus, RejectedLine};
pub use import::FinishOptions;
pub use lookup::{DirectoryCount, DirectoryEntry, NameQuery};
pub use name_folding::fold_name;
pub use outbox::OutboxItem;
pub use row::{DirectoryRow, address_key};

/// Where the local copy's rows come from.
pub mod sources {
    /// The national daily file `Extraction_Correspondance_MSSante`.
    pub const EXTRACTION: &str = "extraction";
    /// An LDAP directory (regional mirror, an establishment's staff directory).
    pub const LDAP: &str = "ldap";
    /// Entries refreshed one by one from the FHIR Annuaire Santé API.
    pub const FHIR: &str = "fhir";
}
