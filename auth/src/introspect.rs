//! RFC 7662 token introspection, when the operator is a registered PSC client: the only way
//! to see that a token was revoked before its `exp` (and, at PSC, to read `SubjectNameID`).
//!
//! One call per token, not per login: the answer is cached by `jti` until the token expires
//! (PSC tokens live about two minutes and LPS reconnect often). A revocation after the first
//! answer is therefore seen only by tokens introspected after it.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::claims::{Claims, parse_claims};
use crate::http;
use crate::refusal::Refusal;

pub struct Introspector {
    http: reqwest::Client,
    /// Explicit endpoint; else the discovery document's, passed to [`Introspector::check`].
    endpoint: Option<reqwest::Url>,
    /// `Basic base64(client_id:secret)`, built once (RFC 7662 §2.1 lets the server require
    /// client authentication; RFC 6749 §2.3.1 defines Basic for it).
    authorization: String,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Clone)]
struct Cached {
    active: bool,
    claims: Claims,
    expires_at: i64,
}

impl Introspector {
    pub fn new(
        http: reqwest::Client,
        endpoint: Option<reqwest::Url>,
        client_id: &str,
        client_secret: &str,
    ) -> Introspector {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
        let credentials = format!(
            "{}:{}",
            form_urlencode(client_id),
            form_urlencode(client_secret)
        );
        Introspector {
            http,
            endpoint,
            authorization: format!("Basic {}", STANDARD.encode(credentials)),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The introspection answer for `token` (cached under `cache_key` until `expires_at`):
    /// its claims when active, [`Refusal::Inactive`] when not.
    pub async fn check(
        &self,
        token: &str,
        cache_key: &str,
        expires_at: i64,
        now: i64,
        discovered_endpoint: Option<&str>,
    ) -> Result<Claims, Refusal> {
        if let Some(cached) = self.cached(cache_key, now) {
            return answer(cached);
        }
        let endpoint = match (&self.endpoint, discovered_endpoint) {
            (Some(explicit), _) => explicit.clone(),
            (None, Some(found)) => crate::config::check_url(found)
                .map_err(|why| Refusal::IntrospectionUnavailable(format!("endpoint {why}")))?,
            (None, None) => {
                return Err(Refusal::IntrospectionUnavailable(
                    "no introspection endpoint (configured or discovered)".into(),
                ));
            }
        };
        // RFC 7662 §2.1: POST, form-encoded `token` and the optional `token_type_hint`.
        let request = self
            .http
            .post(endpoint.clone())
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        let body = http::fetch(request)
            .await
            .map_err(|why| Refusal::IntrospectionUnavailable(format!("{endpoint}: {why}")))?;
        let claims = parse_claims(&body).map_err(|_| {
            Refusal::IntrospectionUnavailable(format!("{endpoint}: answer is not a JSON object"))
        })?;
        // RFC 7662 §2.2: `active` is REQUIRED and boolean.
        let Some(active) = claims.get("active").and_then(|v| v.as_bool()) else {
            return Err(Refusal::IntrospectionUnavailable(format!(
                "{endpoint}: answer has no boolean \"active\""
            )));
        };
        let entry = Cached {
            active,
            claims,
            expires_at,
        };
        self.remember(cache_key, entry.clone(), now);
        answer(entry)
    }

    fn cached(&self, key: &str, now: i64) -> Option<Cached> {
        let cache = self.cache.lock().expect("introspection cache lock");
        cache.get(key).filter(|c| c.expires_at > now).cloned()
    }

    fn remember(&self, key: &str, entry: Cached, now: i64) {
        let mut cache = self.cache.lock().expect("introspection cache lock");
        // Expired tokens can never be presented again with success: drop them as we go,
        // which bounds the cache by the tokens alive at once.
        cache.retain(|_, c| c.expires_at > now);
        cache.insert(key.to_string(), entry);
    }

    /// How many answers are cached (tests).
    pub fn cached_answers(&self) -> usize {
        self.cache.lock().expect("introspection cache lock").len()
    }
}

fn answer(cached: Cached) -> Result<Claims, Refusal> {
    if cached.active {
        Ok(cached.claims)
    } else {
        Err(Refusal::Inactive)
    }
}

/// `application/x-www-form-urlencoded` of one value (RFC 6749 Appendix B).
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_form_encoded_then_basic() {
        assert_eq!(form_urlencode("op-1_x.y*"), "op-1_x.y*");
        assert_eq!(form_urlencode("a b:c%"), "a+b%3Ac%25");
        let client = reqwest::Client::new();
        let i = Introspector::new(client, None, "op", "s:cret");
        assert_eq!(
            i.authorization,
            format!("Basic {}", STANDARD.encode("op:s%3Acret"))
        );
    }
}
