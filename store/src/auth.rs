//! Password authentication: argon2id hashes and a short-lived cache of verifications.
//!
//! An argon2id verification costs tens of milliseconds on purpose. Clients that log in for
//! every message (practice software does) would make it the bottleneck, so successful
//! verifications are remembered for a few minutes, as Dovecot's auth cache does. A cache
//! entry holds the stored hash it was checked against: a password change replaces that hash
//! and so invalidates the entry; the BAL's status is read from the database at every login.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use crate::Store;
use crate::address::Address;
use crate::bal::{Bal, BalStatus};
use crate::error::{Result, StoreError};

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX_ENTRIES: usize = 100_000;

/// Hashes a password with argon2id (default parameters: m=19 MiB, t=2, p=1).
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt_bytes = [0u8; 16];
    rand::fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| StoreError::Invalid(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(format!("cannot hash password: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Why a login failed. Protocols answer the same to the client for all of them (no user
/// enumeration) but log the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    UnknownAccount,
    BadPassword,
    NoPassword,
    Suspended,
    Closed,
}

struct CacheEntry {
    stored_hash: String,
    password_digest: [u8; 32],
    expires: Instant,
}

pub(crate) struct AuthCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
    /// Per-process secret mixed into the digests so a memory dump does not give
    /// fast-to-test password hashes.
    pepper: [u8; 32],
    /// Bounds concurrent argon2id verifications (see `authenticate`).
    verifications: tokio::sync::Semaphore,
    /// When this process last recorded each BAL's login (`retention.rs`): at most one
    /// write a day per BAL, not one per login.
    pub(crate) recorded_logins: Mutex<HashMap<i64, i64>>,
}

impl Default for AuthCache {
    fn default() -> Self {
        let mut pepper = [0u8; 32];
        rand::fill(&mut pepper);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        AuthCache {
            entries: Mutex::new(HashMap::new()),
            pepper,
            verifications: tokio::sync::Semaphore::new(cores),
            recorded_logins: Mutex::new(HashMap::new()),
        }
    }
}

impl AuthCache {
    fn digest(&self, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.pepper);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn hit(&self, login: &str, stored_hash: &str, password: &str) -> bool {
        let digest = self.digest(password);
        let entries = self.entries.lock().expect("auth cache lock");
        entries.get(login).is_some_and(|e| {
            e.expires > Instant::now()
                && e.stored_hash == stored_hash
                && e.password_digest == digest
        })
    }

    fn remember(&self, login: &str, stored_hash: &str, password: &str) {
        let entry = CacheEntry {
            stored_hash: stored_hash.to_string(),
            password_digest: self.digest(password),
            expires: Instant::now() + CACHE_TTL,
        };
        let mut entries = self.entries.lock().expect("auth cache lock");
        if entries.len() >= CACHE_MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(login.to_string(), entry);
    }

    pub(crate) fn forget(&self, login: &str) {
        self.entries.lock().expect("auth cache lock").remove(login);
    }
}

impl Store {
    pub(crate) fn auth_cache(&self) -> &AuthCache {
        &self.inner.auth_cache
    }

    /// Checks a login (a BAL address) and password. `Ok(Err(_))` is a refused login;
    /// `Err(_)` is a storage failure.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<std::result::Result<Bal, AuthFailure>> {
        let Ok(address) = Address::parse(login) else {
            return Ok(Err(AuthFailure::UnknownAccount));
        };
        let Some((bal, stored_hash)) = self.find_bal_with_hash(&address).await? else {
            return Ok(Err(AuthFailure::UnknownAccount));
        };
        let Some(stored_hash) = stored_hash else {
            return Ok(Err(AuthFailure::NoPassword));
        };
        match bal.status {
            BalStatus::Active => {}
            BalStatus::Suspended => return Ok(Err(AuthFailure::Suspended)),
            BalStatus::Closed => return Ok(Err(AuthFailure::Closed)),
        }
        if self
            .auth_cache()
            .hit(address.as_str(), &stored_hash, password)
        {
            self.record_login(bal.id).await?;
            return Ok(Ok(bal));
        }
        // At most one argon2id verification per core: each takes 19 MiB, and a login storm
        // on more threads than cores is slower and leaves the allocator holding that memory
        // for every thread (measured: 1.6 MB per idle IMAP session after 1,000 logins).
        let _slot = self
            .auth_cache()
            .verifications
            .acquire()
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        let (ok, stored_hash, password) = {
            let password = password.to_string();
            tokio::task::spawn_blocking(move || {
                let ok = verify_password(&password, &stored_hash);
                (ok, stored_hash, password)
            })
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
        };
        if !ok {
            return Ok(Err(AuthFailure::BadPassword));
        }
        self.auth_cache()
            .remember(address.as_str(), &stored_hash, &password);
        self.record_login(bal.id).await?;
        Ok(Ok(bal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn cache_entry_is_bound_to_the_stored_hash() {
        let cache = AuthCache::default();
        cache.remember("a@b.fr", "$hash1", "pw");
        assert!(cache.hit("a@b.fr", "$hash1", "pw"));
        assert!(!cache.hit("a@b.fr", "$hash2", "pw"), "password changed");
        assert!(!cache.hit("a@b.fr", "$hash1", "other"));
        cache.forget("a@b.fr");
        assert!(!cache.hit("a@b.fr", "$hash1", "pw"));
    }
}
