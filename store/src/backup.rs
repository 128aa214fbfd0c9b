//! Online backup of a SQLite instance (`mssante backup`, `mssante restore`): a snapshot of
//! the database taken in one read transaction while mail keeps flowing, then the blob files.
//!
//! Why this order is consistent: a large body is written and fsynced as a file *before* the
//! transaction that records it commits (ADR 0009), and blob files are never deleted, so every
//! file the snapshot refers to already exists when the snapshot is taken and is still there
//! when the files are copied after it. Files of messages accepted after the snapshot may be
//! copied too; they are unreferenced and harmless. PostgreSQL deployments use pg_dump or a
//! base backup instead (README, "Backups").

use std::path::Path;

use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::{Engine, Store};

impl Store {
    /// Writes a consistent copy of the SQLite database to `dest` (which must not exist) with
    /// `VACUUM INTO`: one read transaction, so writers go on (WAL) and the copy holds every
    /// transaction committed before it started and none after.
    pub async fn snapshot_database(&self, dest: &Path) -> Result<()> {
        self.require_sqlite("a database snapshot")?;
        if dest.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already exists; a snapshot is never written over a file",
                dest.display()
            )));
        }
        let dest = dest.to_str().ok_or_else(|| {
            StoreError::Invalid(format!("{} is not a UTF-8 path", dest.display()))
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: the problems SQLite finds, empty when the database is sound.
    pub async fn integrity_problems(&self) -> Result<Vec<String>> {
        self.require_sqlite("an integrity check")?;
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(self.pool())
            .await?;
        let mut problems = Vec::new();
        for row in rows {
            let line: String = row.try_get(0)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        Ok(problems)
    }

    /// Bodies the database records as files (not inline) that the blob store lacks.
    pub async fn missing_blob_files(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT b.hash FROM blobs b WHERE NOT EXISTS \
             (SELECT 1 FROM blob_data d WHERE d.hash = b.hash) ORDER BY b.hash",
        )
        .fetch_all(self.pool())
        .await?;
        let mut missing = Vec::new();
        for row in rows {
            let hash: String = row.try_get("hash")?;
            if !self.has_blob_file(&hash)? {
                missing.push(hash);
            }
        }
        Ok(missing)
    }

    fn require_sqlite(&self, what: &str) -> Result<()> {
        match self.engine() {
            Engine::Sqlite => Ok(()),
            Engine::Postgres => Err(StoreError::Invalid(format!(
                "{what} is for SQLite; back up PostgreSQL with pg_dump or a base backup \
                 (README, \"Backups\")"
            ))),
        }
    }
}

/// What [`copy_new_files`] copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileCopy {
    pub files: u64,
    pub bytes: u64,
}

/// Copies the files of the folder `from` into `to`, sub-folders included, each fsynced and
/// with its permissions; files already in `to` are kept. Made for blob files, which are
/// immutable and named by their content, so a copied file never needs updating.
pub fn copy_new_files(from: &Path, to: &Path) -> std::io::Result<FileCopy> {
    let mut copied = FileCopy::default();
    if from.is_dir() {
        copy_tree(from, to, &mut copied)?;
    }
    Ok(copied)
}

fn copy_tree(from: &Path, to: &Path, copied: &mut FileCopy) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target, copied)?;
        } else if !target.exists() {
            copied.bytes += std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
            copied.files += 1;
        }
    }
    std::fs::File::open(to)?.sync_all()
}
