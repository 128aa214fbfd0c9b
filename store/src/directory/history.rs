//! The import history: one record per run (bulk import, incremental sync, FHIR standing
//! generation), the lines it rejected, and which run each source serves.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Result, StoreError};
use crate::{Store, WriteTxn};

/// Status of an import run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportStatus {
    Running,
    /// Applied: its source now serves this generation.
    Ok,
    /// Refused by the drop guard: the previous generation stays.
    Refused,
    /// Failed part way: the previous generation stays.
    Failed,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Ok => "ok",
            ImportStatus::Refused => "refused",
            ImportStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<ImportStatus> {
        match s {
            "running" => Ok(ImportStatus::Running),
            "ok" => Ok(ImportStatus::Ok),
            "refused" => Ok(ImportStatus::Refused),
            "failed" => Ok(ImportStatus::Failed),
            _ => Err(StoreError::Invalid(format!(
                "unknown import status {s:?} in database"
            ))),
        }
    }
}

/// One line of the import history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecord {
    pub id: i64,
    pub source: String,
    pub origin: String,
    pub status: ImportStatus,
    pub forced: bool,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub rows: i64,
    pub addresses: i64,
    pub rejected: i64,
    pub added: i64,
    pub removed: i64,
    pub modified: i64,
    pub message: Option<String>,
}

/// A line an import rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    /// Where in the source: a 1-based line number of a file, or the entry's rank for LDAP.
    pub line: i64,
    /// Why, as the source's reader names it (`too_few_columns`, `invalid_utf8`...).
    pub kind: String,
    pub detail: String,
}

fn import_from_row(r: &AnyRow) -> Result<ImportRecord> {
    Ok(ImportRecord {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        origin: r.try_get("origin")?,
        status: ImportStatus::parse(&r.try_get::<String, _>("status")?)?,
        forced: r.try_get::<i64, _>("forced")? != 0,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        rows: r.try_get("rows_count")?,
        addresses: r.try_get("addresses")?,
        rejected: r.try_get("rejected")?,
        added: r.try_get("added")?,
        removed: r.try_get("removed")?,
        modified: r.try_get("modified")?,
        message: r.try_get("message")?,
    })
}

/// Records the lines an import rejected, inside the caller's transaction.
pub(super) async fn insert_rejects(
    w: &mut WriteTxn<'_>,
    import_id: i64,
    rejects: &[RejectedLine],
) -> Result<()> {
    for reject in rejects {
        sqlx::query(
            "INSERT INTO directory_import_rejects (import_id, line, kind, detail) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(import_id)
        .bind(reject.line)
        .bind(reject.kind.as_str())
        .bind(reject.detail.as_str())
        .execute(&mut *w.txn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// The import a source currently serves, if any.
    pub async fn directory_current_import(&self, source: &str) -> Result<Option<ImportRecord>> {
        let row = sqlx::query("SELECT current_import FROM directory_sources WHERE source = $1")
            .bind(source)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(Some(
                self.directory_import(r.try_get("current_import")?).await?,
            )),
            None => Ok(None),
        }
    }

    /// One import of the history.
    pub async fn directory_import(&self, import_id: i64) -> Result<ImportRecord> {
        let row = sqlx::query(
            "SELECT id, source, origin, status, forced, started_at, finished_at, rows_count, \
             addresses, rejected, added, removed, modified, message \
             FROM directory_imports WHERE id = $1",
        )
        .bind(import_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("directory import {import_id}")))?;
        import_from_row(&row)
    }

    /// The latest imports, newest first.
    pub async fn directory_history(&self, limit: i64) -> Result<Vec<ImportRecord>> {
        let rows = sqlx::query(
            "SELECT id, source, origin, status, forced, started_at, finished_at, rows_count, \
             addresses, rejected, added, removed, modified, message \
             FROM directory_imports ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(import_from_row).collect()
    }

    /// The lines an import rejected, in line order.
    pub async fn directory_import_rejects(&self, import_id: i64) -> Result<Vec<RejectedLine>> {
        let rows = sqlx::query(
            "SELECT line, kind, detail FROM directory_import_rejects WHERE import_id = $1 ORDER BY line",
        )
        .bind(import_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RejectedLine {
                    line: r.try_get("line")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
