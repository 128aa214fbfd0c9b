//! Lookups in the data the sources serve now: by address, by national id, by name prefix, and
//! the counts per source.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::name_folding::{fold_name, prefix_upper_bound};
use super::row::{DirectoryRow, address_key, row_columns};
use crate::error::{Result, StoreError};
use crate::{Engine, Store};

/// A row of the current local copy with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub source: String,
    /// Line of the source file (or rank of the LDAP entry) the row came from.
    pub line: i64,
    pub row: DirectoryRow,
}

/// How much a source serves, per BAL type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryCount {
    pub source: String,
    pub bal_type: String,
    pub rows: i64,
    pub addresses: i64,
}

/// A name search: accent- and case-insensitive prefix on name or first name.
#[derive(Clone, Debug, Default)]
pub struct NameQuery {
    /// Prefix matched against the name and against the first name.
    pub name: String,
    /// Optional second prefix, matched against the first name only (`MARTIN Jean`).
    pub first_name: Option<String>,
    /// TRE_G15 code (`10`) or label (`Médecin`, accent- and case-insensitive).
    pub profession: Option<String>,
    /// Postcode prefix (`75` for Paris, `69003`).
    pub postcode: Option<String>,
    pub limit: i64,
}

fn entry_from_row(r: &AnyRow) -> Result<DirectoryEntry> {
    Ok(DirectoryEntry {
        source: r.try_get("source")?,
        line: r.try_get("line")?,
        row: DirectoryRow::from_db(r)?,
    })
}

/// Rows of the generations sources currently serve; lookups append their condition.
macro_rules! current_entries {
    ($where:literal) => {
        concat!(
            "SELECT s.source, e.line, e.id, ",
            row_columns!("e."),
            " FROM directory_entries e JOIN directory_sources s ON s.current_import = e.import_id \
             WHERE ",
            $where
        )
    };
}

/// A name search on one key column: an index range scan in index order, with the optional
/// filters as `($n = '' OR …)` so that one static statement serves every combination.
macro_rules! name_search {
    ($key:literal) => {
        concat!(
            current_entries!(""),
            "e.",
            $key,
            " >= $1 AND e.",
            $key,
            " < $2 \
             AND ($3 = '' OR (e.first_name_key >= $3 AND e.first_name_key < $4)) \
             AND ($5 = '' OR (e.postcode >= $5 AND e.postcode < $6)) \
             AND ($7 = '' OR e.profession_code = $7) \
             ORDER BY e.",
            $key,
            ", e.id LIMIT $8"
        )
    };
}
/// Both range scans (name, then first name: an `OR` would serve neither from an index in
/// order) in one statement, so that both read the same snapshot: during an import the answer
/// is yesterday's or today's, never half of each. Merged and deduplicated in Rust.
const NAME_SEARCH: &str = concat!(
    "SELECT * FROM (",
    name_search!("name_key"),
    ") by_name UNION ALL SELECT * FROM (",
    name_search!("first_name_key"),
    ") by_first_name"
);

/// Starts the read-only transaction of a PostgreSQL name search (one round trip).
const GENERIC_PLAN_TXN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

impl Store {
    /// Rows for an address, case-insensitive (one per structure the BAL is attached to).
    pub async fn directory_by_address(&self, address: &str) -> Result<Vec<DirectoryEntry>> {
        let rows = sqlx::query(concat!(
            current_entries!("e.address_key = $1"),
            " ORDER BY s.source, e.line"
        ))
        .bind(address_key(address))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Rows of a professional: `id` is a national id (`8` + RPPS, `0` + ADELI) or a bare
    /// RPPS (11 digits).
    pub async fn directory_by_national_id(&self, id: &str) -> Result<Vec<DirectoryEntry>> {
        let id = id.trim();
        let national_id = if id.len() == 11 && id.bytes().all(|b| b.is_ascii_digit()) {
            format!("8{id}")
        } else {
            id.to_string()
        };
        let rows = sqlx::query(concat!(
            current_entries!("e.national_id = $1"),
            " ORDER BY s.source, e.line"
        ))
        .bind(national_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Accent- and case-insensitive prefix search on name or first name, with filters.
    pub async fn directory_search_name(&self, query: &NameQuery) -> Result<Vec<DirectoryEntry>> {
        let prefix = fold_name(&query.name);
        if prefix.is_empty() {
            return Err(StoreError::Invalid(
                "a name search needs at least one letter".into(),
            ));
        }
        let first = query
            .first_name
            .as_deref()
            .map(fold_name)
            .unwrap_or_default();
        let profession = query.profession.as_deref().unwrap_or("").trim().to_string();
        let postcode = query.postcode.as_deref().unwrap_or("").trim().to_string();
        // A TRE_G15 code filters in SQL; a label (`Médecin`, any accents or case) is compared
        // folded in Rust, so the SQL LIMIT only applies without one.
        let is_code = profession.bytes().all(|b| b.is_ascii_digit());
        let code = if is_code {
            profession.clone()
        } else {
            String::new()
        };
        let label = if is_code {
            String::new()
        } else {
            fold_name(&profession)
        };
        let sql_limit = if query.limit > 0 && label.is_empty() {
            query.limit
        } else {
            i64::MAX
        };
        let statement = sqlx::query(NAME_SEARCH)
            .bind(prefix.clone())
            .bind(prefix_upper_bound(&prefix))
            .bind(first.clone())
            .bind(prefix_upper_bound(&first))
            .bind(postcode.clone())
            .bind(prefix_upper_bound(&postcode))
            .bind(code)
            .bind(sql_limit);
        let fetched = match self.engine() {
            Engine::Sqlite => statement.fetch_all(self.pool()).await?,
            Engine::Postgres => {
                // A generic plan: PostgreSQL otherwise re-plans this statement at every
                // execution (its generic estimate, blind to the empty filters, looks worse
                // than the custom one), and planning costs more than running it (0.4 ms
                // against 0.1 ms). `SET LOCAL` needs a transaction; sent with the `BEGIN`.
                let mut txn = self.pool().begin_with(GENERIC_PLAN_TXN).await?;
                let fetched = statement.fetch_all(&mut *txn).await?;
                txn.commit().await?;
                fetched
            }
        };
        let mut rows = Vec::with_capacity(fetched.len());
        for r in &fetched {
            rows.push(entry_from_row(r)?);
        }
        rows.sort_by_cached_key(|e| {
            (
                fold_name(&e.row.name),
                fold_name(&e.row.first_name),
                e.row.address_key(),
                e.source.clone(),
                e.line,
            )
        });
        rows.dedup_by(|a, b| a.source == b.source && a.line == b.line);
        let mut entries = Vec::new();
        for entry in rows {
            if !label.is_empty() && fold_name(&entry.row.profession_label) != label {
                continue;
            }
            entries.push(entry);
            if query.limit > 0 && entries.len() as i64 >= query.limit {
                break;
            }
        }
        Ok(entries)
    }

    /// Rows and distinct addresses per source and BAL type, of the data served now.
    pub async fn directory_counts(&self) -> Result<Vec<DirectoryCount>> {
        let rows = sqlx::query(
            "SELECT s.source, e.bal_type, COUNT(*) AS n, COUNT(DISTINCT e.address_key) AS a \
             FROM directory_entries e JOIN directory_sources s ON s.current_import = e.import_id \
             GROUP BY s.source, e.bal_type ORDER BY s.source, e.bal_type",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DirectoryCount {
                    source: r.try_get("source")?,
                    bal_type: r.try_get("bal_type")?,
                    rows: r.try_get("n")?,
                    addresses: r.try_get("a")?,
                })
            })
            .collect()
    }
}
