//! The issuer's signing keys, cached: no network call per login.
//!
//! Keys come from a JWKS URL given explicitly or named by a discovery document (PSC publishes
//! a non-standard `…/.well-known/wallet-openid-configuration`, so its URL is a setting).
//! They are refreshed periodically ([`KeyCache::run_refresh_loop`]) and on demand when a token
//! names an unknown `kid` (the issuer rotated its key), at most once per
//! `unknown_kid_refresh_secs` so that tokens with made-up `kid`s cannot make us hammer the
//! issuer. A failed refresh keeps the last good keys: an issuer outage must not stop logins
//! with tokens it signed before.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::http;
use crate::jwk::{Jwk, KeySet, parse_jwks};
use crate::jws::Alg;
use crate::refusal::Refusal;

/// Where the keys come from.
#[derive(Clone, Debug)]
pub struct KeySource {
    pub discovery_url: Option<reqwest::Url>,
    /// Wins over the discovery document's `jwks_uri`.
    pub jwks_url: Option<reqwest::Url>,
}

/// What the discovery document told us last time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub introspection_endpoint: Option<String>,
}

#[derive(Default)]
struct Snapshot {
    keys: Option<Arc<KeySet>>,
    /// Bumped by every successful refresh: a waiter sees whether someone refreshed meanwhile.
    generation: u64,
    discovered: Discovered,
    last_error: Option<String>,
}

/// When the last on-demand refreshes were tried (rate limit).
struct OnDemand {
    last_cold: Option<Instant>,
    last_unknown_kid: Option<Instant>,
}

pub struct KeyCache {
    source: KeySource,
    http: reqwest::Client,
    refresh_every: Duration,
    unknown_kid_every: Duration,
    snapshot: RwLock<Snapshot>,
    /// Serialises refreshes; holds the time of the last on-demand one (rate limit).
    on_demand: tokio::sync::Mutex<OnDemand>,
}

impl KeyCache {
    /// A cache with no keys yet; the first lookup or the refresh loop fetches them.
    pub fn new(
        source: KeySource,
        http: reqwest::Client,
        refresh_every: Duration,
        unknown_kid_every: Duration,
    ) -> KeyCache {
        KeyCache {
            source,
            http,
            refresh_every,
            unknown_kid_every,
            snapshot: RwLock::new(Snapshot::default()),
            on_demand: tokio::sync::Mutex::new(OnDemand {
                last_cold: None,
                last_unknown_kid: None,
            }),
        }
    }

    /// The key for a token header. Fetches the keys when none were ever loaded, refreshes once
    /// (rate limited) for an unknown `kid`.
    pub async fn key_for(&self, kid: Option<&str>, alg: Alg) -> Result<Jwk, Refusal> {
        let (keys, generation) = self.current();
        if let Some(key) = keys.as_ref().and_then(|set| set.find(kid, alg)) {
            return Ok(key.clone());
        }
        let mut on_demand = self.on_demand.lock().await;
        // Someone refreshed while we waited for the lock: look again before asking the issuer.
        let (keys, now_generation) = self.current();
        if now_generation != generation
            && let Some(key) = keys.as_ref().and_then(|set| set.find(kid, alg))
        {
            return Ok(key.clone());
        }
        // A cold cache (never loaded: start-up, or the issuer down since) and an unknown kid
        // are limited separately, so that the first rotation after start is not held back by
        // the initial load.
        let interval = self.unknown_kid_every;
        let last = if keys.is_none() {
            &mut on_demand.last_cold
        } else {
            &mut on_demand.last_unknown_kid
        };
        if now_generation == generation && last.is_none_or(|at| at.elapsed() >= interval) {
            *last = Some(Instant::now());
            if let Err(why) = self.refresh().await {
                tracing::warn!(error = %why, "issuer keys: on-demand refresh failed, keeping the last good keys");
            }
        }
        drop(on_demand);
        let (keys, _) = self.current();
        match keys {
            Some(set) => set
                .find(kid, alg)
                .cloned()
                .ok_or_else(|| Refusal::UnknownKey(kid.unwrap_or("(none)").to_string())),
            None => Err(Refusal::KeysUnavailable(
                self.snapshot
                    .read()
                    .expect("key snapshot lock")
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not fetched yet".into()),
            )),
        }
    }

    fn current(&self) -> (Option<Arc<KeySet>>, u64) {
        let snapshot = self.snapshot.read().expect("key snapshot lock");
        (snapshot.keys.clone(), snapshot.generation)
    }

    /// What the last discovery document said (introspection endpoint, issuer).
    pub fn discovered(&self) -> Discovered {
        self.snapshot
            .read()
            .expect("key snapshot lock")
            .discovered
            .clone()
    }

    /// The key ids currently cached (for logs and tests).
    pub fn cached_kids(&self) -> Vec<String> {
        self.current()
            .0
            .map(|set| set.keys.iter().filter_map(|k| k.kid.clone()).collect())
            .unwrap_or_default()
    }

    /// Fetches discovery (when configured) then the JWKS; on success replaces the keys, on
    /// failure keeps them and records why.
    pub async fn refresh(&self) -> Result<usize, String> {
        let result = self.fetch().await;
        let mut snapshot = self.snapshot.write().expect("key snapshot lock");
        match result {
            Ok((set, discovered)) => {
                let count = set.keys.len();
                if !set.skipped.is_empty() {
                    tracing::debug!(skipped = ?set.skipped, "issuer keys: unusable keys skipped");
                }
                snapshot.keys = Some(Arc::new(set));
                snapshot.generation += 1;
                if let Some(discovered) = discovered {
                    snapshot.discovered = discovered;
                }
                snapshot.last_error = None;
                Ok(count)
            }
            Err(why) => {
                snapshot.last_error = Some(why.clone());
                Err(why)
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Option<Discovered>), String> {
        let discovered = match &self.source.discovery_url {
            Some(url) => Some(self.discover(url).await?),
            None => None,
        };
        let jwks_url = match (&self.source.jwks_url, &discovered) {
            (Some(explicit), _) => explicit.clone(),
            (
                None,
                Some(Discovered {
                    jwks_uri: Some(uri),
                    ..
                }),
            ) => crate::config::check_url(uri)
                .map_err(|why| format!("discovery document: jwks_uri {why}"))?,
            (None, _) => return Err("the discovery document names no jwks_uri".into()),
        };
        let body = http::fetch(self.http.get(jwks_url.clone()))
            .await
            .map_err(|why| format!("{jwks_url}: {why}"))?;
        let set = parse_jwks(&body).map_err(|why| format!("{jwks_url}: {why}"))?;
        Ok((set, discovered))
    }

    async fn discover(&self, url: &reqwest::Url) -> Result<Discovered, String> {
        let body = http::fetch(self.http.get(url.clone()))
            .await
            .map_err(|why| format!("{url}: {why}"))?;
        let document: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
        let member = |name: &str| {
            document
                .get(name)
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        Ok(Discovered {
            issuer: member("issuer"),
            jwks_uri: member("jwks_uri"),
            introspection_endpoint: member("introspection_endpoint"),
        })
    }

    /// Refreshes now, then every `refresh_every` until `cancel`; a zero period refreshes once.
    pub async fn run_refresh_loop(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            match self.refresh().await {
                Ok(count) => tracing::debug!(count, "issuer keys refreshed"),
                Err(why) => {
                    tracing::warn!(error = %why, "issuer keys: refresh failed, keeping the last good keys")
                }
            }
            if self.refresh_every.is_zero() {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.refresh_every) => {}
            }
        }
    }
}
