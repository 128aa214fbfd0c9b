//! Message bodies. A message's bytes are stored once, named by their SHA-256, and referenced
//! by every folder and queue row that needs them: small ones inline in the database, in the
//! transaction that records the message (`blobs` and `blob_data`), larger ones as files of a
//! content-addressed [`BlobStore`] made durable before that transaction (ADR 0009).

use std::io::Write;
use std::path::{Path, PathBuf};

use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::{Store, now};

/// Hex SHA-256 of a message's bytes: the blob's name. ring's assembly (SHA extensions or
/// AVX2 where the CPU has them) rather than a portable implementation: every accepted byte
/// goes through it.
pub fn blob_hash(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Where message bytes live. The filesystem implementation is the default; the trait leaves
/// room for an S3-compatible store (docs/architecture.md §5).
pub trait BlobStore: Send + Sync + 'static {
    /// Writes `bytes` under `hash` and makes them durable before returning.
    fn put(&self, hash: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn get(&self, hash: &str) -> std::io::Result<Vec<u8>>;
    /// Whether `hash` is stored (backup and restore checks).
    fn contains(&self, hash: &str) -> std::io::Result<bool>;
}

/// Blobs as files `blobs/ab/cd/abcd…` under the data directory.
pub struct FsBlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl FsBlobStore {
    pub fn new(data_dir: &Path) -> std::io::Result<FsBlobStore> {
        let root = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(FsBlobStore { root, tmp })
    }

    fn path_of(&self, hash: &str) -> std::io::Result<PathBuf> {
        let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid blob name {hash:?}"),
            ));
        }
        Ok(self.root.join(&hash[0..2]).join(&hash[2..4]).join(hash))
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl BlobStore for FsBlobStore {
    fn put(&self, hash: &str, bytes: &[u8]) -> std::io::Result<()> {
        let final_path = self.path_of(hash)?;
        if final_path.exists() {
            // Same name, same content: already durable from an earlier write.
            return Ok(());
        }
        let dir = final_path.parent().expect("blob path has a parent");
        std::fs::create_dir_all(dir)?;
        // Write to a temporary name, fsync, then rename: a crash leaves either no blob or a
        // whole one, never a truncated file under the final name.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&final_path).map_err(|e| e.error)?;
        fsync_dir(dir)?;
        Ok(())
    }

    fn get(&self, hash: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path_of(hash)?)
    }

    fn contains(&self, hash: &str) -> std::io::Result<bool> {
        Ok(self.path_of(hash)?.is_file())
    }
}

/// Message bodies up to this size are stored in the database, inside the transaction that
/// accepts the message: one durable commit per message instead of three fsyncs (file,
/// directory, WAL). Larger ones (imaging, big attachments) go to the blob store. ADR 0009.
pub const INLINE_BLOB_MAX: usize = 256 * 1024;

/// Where a body goes, decided by [`Store::prepare_blob`].
pub(crate) enum PreparedBlob {
    /// Written with the transaction's rows.
    Inline(Vec<u8>),
    /// Already durable in the blob store.
    File,
}

/// Records a blob (once per content: `ON CONFLICT`, which SQLite and PostgreSQL both accept).
pub(crate) async fn record_blob(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    hash: &str,
    size: i64,
    blob: &PreparedBlob,
) -> Result<()> {
    sqlx::query("INSERT INTO blobs (hash, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING")
        .bind(hash)
        .bind(size)
        .bind(now())
        .execute(&mut **txn)
        .await?;
    if let PreparedBlob::Inline(bytes) = blob {
        sqlx::query(
            "INSERT INTO blob_data (hash, data) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(bytes.as_slice())
        .execute(&mut **txn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Whether the blob store holds the file of `hash`.
    pub(crate) fn has_blob_file(&self, hash: &str) -> Result<bool> {
        Ok(self.inner.blobs.contains(hash)?)
    }

    /// Makes a message body ready to be recorded: a small one is kept for the
    /// transaction; a large one is written (and fsynced) as a file first. On PostgreSQL
    /// every body stays in the database, whatever its size: nodes sharing the database keep
    /// no state of their own (ADR 0023).
    pub(crate) async fn prepare_blob(&self, hash: &str, raw: Vec<u8>) -> Result<PreparedBlob> {
        if raw.len() <= INLINE_BLOB_MAX || self.engine() == crate::Engine::Postgres {
            return Ok(PreparedBlob::Inline(raw));
        }
        let store = self.clone();
        let hash = hash.to_string();
        tokio::task::spawn_blocking(move || store.inner.blobs.put(&hash, &raw))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        Ok(PreparedBlob::File)
    }

    /// The bytes of a stored message: from the database when it is small (ADR 0009),
    /// from the blob store otherwise.
    pub async fn read_blob(&self, hash: &str) -> Result<Vec<u8>> {
        let inline = sqlx::query("SELECT data FROM blob_data WHERE hash = $1")
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = inline {
            return Ok(row.try_get::<Vec<u8>, _>("data")?);
        }
        let store = self.clone();
        let hash = hash.to_string();
        tokio::task::spawn_blocking(move || store.inner.blobs.get(&hash))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
            .map_err(StoreError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_get_round_trips_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path()).unwrap();
        let bytes = b"Subject: x\r\n\r\nbody\r\n";
        let hash = blob_hash(bytes);
        store.put(&hash, bytes).unwrap();
        store.put(&hash, bytes).unwrap();
        assert_eq!(store.get(&hash).unwrap(), bytes);
        let on_disk = dir
            .path()
            .join("blobs")
            .join(&hash[0..2])
            .join(&hash[2..4])
            .join(&hash);
        assert!(on_disk.is_file());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn refuses_names_that_are_not_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path()).unwrap();
        assert!(store.put("../../etc/passwd", b"x").is_err());
        assert!(store.get("abc").is_err());
    }
}
