//! `PscVerifier`: one access token in, one professional identity or one typed refusal out.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::claims::{ClaimPolicy, parse_claims};
use crate::config::{PscConfig, check_url};
use crate::introspect::Introspector;
use crate::keys::{KeyCache, KeySource};
use crate::refusal::Refusal;
use crate::seen::{self, VerifiedSignatures};
use crate::{http, jws};

/// Who the token says the caller is, once every check passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PscIdentity {
    /// The professional's national identifier (`SubjectNameID`, else `preferred_username`):
    /// an opaque string, matched as is against the access table.
    pub national_id: String,
    pub issuer: String,
    /// The calling software (`azp`, else `client_id`).
    pub party: Option<String>,
    pub acr: Option<String>,
    pub expires_at: i64,
    /// A short hash of `jti` (else `sub`) to correlate log lines; never the token.
    pub log_id: String,
}

pub struct PscVerifier {
    keys: Arc<KeyCache>,
    policy: ClaimPolicy,
    introspector: Option<Introspector>,
    /// Tokens whose signature already held (an LPS logs in many times with one token).
    verified: VerifiedSignatures,
}

impl PscVerifier {
    /// Builds the verifier from a validated `[psc]` section (no network call yet).
    pub fn from_config(config: &PscConfig) -> Result<PscVerifier, String> {
        config.validate()?;
        if !config.is_enabled() {
            return Err("psc: set discovery_url or jwks_url".into());
        }
        let parse = |key: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(check_url)
                .transpose()
                .map_err(|why| format!("psc.{key}: {why}"))
        };
        let source = KeySource {
            discovery_url: parse("discovery_url", &config.discovery_url)?,
            jwks_url: parse("jwks_url", &config.jwks_url)?,
        };
        let introspection_endpoint =
            parse("introspection_endpoint", &config.introspection_endpoint)?;
        let urls: Vec<&reqwest::Url> = [
            &source.discovery_url,
            &source.jwks_url,
            &introspection_endpoint,
        ]
        .into_iter()
        .flatten()
        .collect();
        let client = http::client(
            config.ca_file.as_deref(),
            Duration::from_secs(config.http_timeout_secs),
            &urls,
        )?;
        let introspector = if config.introspect {
            let secret = config.read_client_secret()?.unwrap_or_default();
            let client_id = config.client_id.as_deref().unwrap_or_default();
            Some(Introspector::new(
                client.clone(),
                introspection_endpoint,
                client_id,
                &secret,
            ))
        } else {
            None
        };
        let keys = KeyCache::new(
            source,
            client,
            Duration::from_secs(config.refresh_secs),
            Duration::from_secs(config.unknown_kid_refresh_secs),
        );
        Ok(PscVerifier {
            keys: Arc::new(keys),
            policy: ClaimPolicy::from_config(config),
            introspector,
            verified: VerifiedSignatures::new(seen::DEFAULT_CAPACITY),
        })
    }

    /// The key cache (refresh loop, cached key ids).
    pub fn keys(&self) -> &Arc<KeyCache> {
        &self.keys
    }

    /// Spawns the periodic key refresh (first fetch at once) until `cancel`.
    pub fn spawn_refresh(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Arc::clone(&self.keys).run_refresh_loop(cancel))
    }

    /// Verifies `token` now.
    pub async fn verify(&self, token: &str) -> Result<PscIdentity, Refusal> {
        self.verify_at(token, unix_now()).await
    }

    /// Verifies `token` at the time `now` (seconds since the epoch).
    pub async fn verify_at(&self, token: &str, now: i64) -> Result<PscIdentity, Refusal> {
        let jws = jws::parse(token)?;
        let alg = jws.header.alg;
        // The key is looked up at every login, so that a key the issuer withdrew stops
        // counting at once, also for tokens it verified before.
        let key = self.keys.key_for(jws.header.kid.as_deref(), alg).await?;
        let token_digest = seen::digest(token);
        let verified_before = self.verified.holds(&token_digest, &key, alg);
        if !verified_before {
            key.verify(alg, jws.signing_input, &jws.signature)?;
        }
        // Nothing in the payload is looked at before the signature holds.
        let claims = parse_claims(&jws.payload)?;
        let checked = self.policy.check(&claims, now)?;
        if !verified_before {
            self.verified
                .remember(token_digest, &key, alg, checked.expires_at, now);
        }
        let log_id = short_hash(
            checked
                .jti
                .as_deref()
                .or(checked.subject.as_deref())
                .unwrap_or(token),
        );
        let mut national_id = self.policy.identity_of(&claims);
        if let Some(introspector) = &self.introspector {
            // Without a jti, the token's own hash keys the cache (never stored as is).
            let cache_key = match &checked.jti {
                Some(jti) => format!("jti:{jti}"),
                None => format!("sha256:{}", hex::encode(Sha256::digest(token))),
            };
            let discovered = self.keys.discovered().introspection_endpoint;
            let answer = introspector
                .check(
                    token,
                    &cache_key,
                    checked.expires_at,
                    now,
                    discovered.as_deref(),
                )
                .await?;
            if national_id.is_none() {
                national_id = self.policy.identity_of(&answer);
            }
        }
        let national_id = national_id.ok_or_else(|| self.policy.missing_identity())?;
        Ok(PscIdentity {
            national_id,
            issuer: checked.issuer,
            party: checked.party,
            acr: checked.acr,
            expires_at: checked.expires_at,
            log_id,
        })
    }

    /// How many tokens are remembered as verified (tests and the benchmark look).
    pub fn verified_tokens(&self) -> usize {
        self.verified.len()
    }

    /// The introspector, when configured (tests look at its cache).
    pub fn introspector(&self) -> Option<&Introspector> {
        self.introspector.as_ref()
    }
}

/// The first 12 hex digits of SHA-256: enough to correlate log lines, useless to replay.
pub fn short_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    hex::encode(&digest[..6])
}

/// A log id for a token that may have been refused: the short hash of its `jti` or `sub`
/// when the payload can be read (unverified: for correlation only), else of the whole token.
pub fn token_log_id(token: &str) -> String {
    let unverified = jws::parse(token)
        .ok()
        .and_then(|jws| parse_claims(&jws.payload).ok());
    let member = |name: &str| {
        unverified
            .as_ref()
            .and_then(|claims| claims.get(name))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    short_hash(
        &member("jti")
            .or_else(|| member("sub"))
            .unwrap_or_else(|| token.to_string()),
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_are_short_and_stable() {
        assert_eq!(short_hash("j1").len(), 12);
        assert_eq!(short_hash("j1"), short_hash("j1"));
        assert_ne!(short_hash("j1"), short_hash("j2"));
        assert_eq!(token_log_id("not a token").len(), 12);
        assert!(!token_log_id("abc.def.ghi").contains("abc"));
    }

    #[test]
    fn needs_an_enabled_valid_section() {
        assert!(PscVerifier::from_config(&PscConfig::default()).is_err());
        let no_issuer = PscConfig {
            jwks_url: Some("https://issuer.example/jwks".into()),
            ..PscConfig::default()
        };
        assert!(
            PscVerifier::from_config(&no_issuer)
                .err()
                .unwrap()
                .starts_with("psc.issuers")
        );
    }
}
