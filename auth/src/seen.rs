//! Tokens whose signature already held: an LPS reconnects many times with one PSC access
//! token (it lives about two minutes, docs/mssante.md §4), so the signature check — nearly
//! all of a validation's CPU, 21 µs for RS256 and 53 µs for ES256 — is done once per token,
//! not once per login.
//!
//! What a hit skips is the signature check only. The entry is keyed by the SHA-256 of the
//! whole token, so a token that differs by one byte (a tampered payload, another signature)
//! is a miss. It also records which key verified it: if the issuer no longer publishes that
//! key under that `kid` (rotation, revocation), the entry does not count. Claims (`exp`,
//! `nbf`, `iss`, `azp`, `acr`, identity) are checked again at every login, and introspection,
//! when configured, still runs with its own cache. The memory is bounded: when the table is
//! full, expired entries are dropped, and if it is still full the token is simply not
//! remembered.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::jwk::Jwk;
use crate::jws::Alg;

/// How many tokens are remembered at most (about 56 bytes each).
pub const DEFAULT_CAPACITY: usize = 65_536;

/// The SHA-256 of a token: what the table is keyed by, never the token itself.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// Which key (material, `kid`, `alg`) verified the signature.
    key: u64,
    alg: Alg,
    /// When the entry may be dropped: the token's `exp` (its claims are rechecked anyway).
    expires_at: i64,
}

pub struct VerifiedSignatures {
    entries: Mutex<HashMap<TokenDigest, Entry>>,
    capacity: usize,
}

impl VerifiedSignatures {
    pub fn new(capacity: usize) -> VerifiedSignatures {
        VerifiedSignatures {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Whether this token's signature was verified with `key` for `alg`.
    pub fn holds(&self, token: &TokenDigest, key: &Jwk, alg: Alg) -> bool {
        let entries = self.entries.lock().expect("verified signatures lock");
        entries
            .get(token)
            .is_some_and(|entry| entry.alg == alg && entry.key == fingerprint(key))
    }

    /// Remembers that `key` verified this token's signature for `alg`, until `expires_at`.
    pub fn remember(&self, token: TokenDigest, key: &Jwk, alg: Alg, expires_at: i64, now: i64) {
        let mut entries = self.entries.lock().expect("verified signatures lock");
        if entries.len() >= self.capacity && !entries.contains_key(&token) {
            entries.retain(|_, entry| entry.expires_at >= now);
            if entries.len() >= self.capacity {
                return;
            }
        }
        let key = fingerprint(key);
        entries.insert(
            token,
            Entry {
                key,
                alg,
                expires_at,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("verified signatures lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tells keys apart (an issuer's own JWKS, not attacker input: a 64-bit hash is enough).
fn fingerprint(key: &Jwk) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::PublicKey;

    fn key(kid: &str, n: u8) -> Jwk {
        Jwk {
            kid: Some(kid.into()),
            alg: None,
            key: PublicKey::Rsa {
                n: vec![n; 256],
                e: vec![1, 0, 1],
            },
        }
    }

    #[test]
    fn a_token_holds_only_with_the_key_and_alg_that_verified_it() {
        let seen = VerifiedSignatures::new(8);
        let token = digest("header.payload.signature");
        assert!(!seen.holds(&token, &key("k1", 1), Alg::Rs256));
        seen.remember(token, &key("k1", 1), Alg::Rs256, 100, 0);
        assert!(seen.holds(&token, &key("k1", 1), Alg::Rs256));
        assert!(
            !seen.holds(&token, &key("k1", 2), Alg::Rs256),
            "rotated key material"
        );
        assert!(
            !seen.holds(&token, &key("k2", 1), Alg::Rs256),
            "another kid"
        );
        assert!(
            !seen.holds(&token, &key("k1", 1), Alg::Ps256),
            "another alg"
        );
        let tampered = digest("header.payloaD.signature");
        assert!(!seen.holds(&tampered, &key("k1", 1), Alg::Rs256));
    }

    #[test]
    fn a_full_table_drops_expired_entries_then_stops_remembering() {
        let seen = VerifiedSignatures::new(2);
        let k = key("k", 1);
        seen.remember(digest("a"), &k, Alg::Rs256, 10, 0);
        seen.remember(digest("b"), &k, Alg::Rs256, 50, 0);
        // Full; at now=20 "a" has expired and makes room for "c".
        seen.remember(digest("c"), &k, Alg::Rs256, 60, 20);
        assert_eq!(seen.len(), 2);
        assert!(!seen.holds(&digest("a"), &k, Alg::Rs256));
        assert!(seen.holds(&digest("c"), &k, Alg::Rs256));
        // Full of live entries: "d" is not remembered, nothing live is dropped.
        seen.remember(digest("d"), &k, Alg::Rs256, 60, 20);
        assert!(!seen.holds(&digest("d"), &k, Alg::Rs256));
        assert!(seen.holds(&digest("b"), &k, Alg::Rs256));
    }
}
