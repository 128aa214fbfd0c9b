//! Content-addressed blob store. A message's bytes are written once, named by their
//! SHA-256, and referenced by every mailbox and queue row that needs them.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Hex SHA-256 of a message's bytes: the blob's name. ring's assembly (SHA extensions or
/// AVX2 where the CPU has them) rather than a portable implementation: every accepted byte
/// goes through it.
pub fn blob_hash(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Where message bytes live. The filesystem implementation is the default; the trait leaves
/// room for an S3-compatible store (ARCHITECTURE.md, storage engines).
pub trait BlobStore: Send + Sync + 'static {
    /// Writes `bytes` under `hash` and makes them durable before returning.
    fn put(&self, hash: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn get(&self, hash: &str) -> std::io::Result<Vec<u8>>;
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
