//! Who is calling: an API key (`Authorization: Bearer mss_…`) or a Pro Santé Connect access
//! token (`Authorization: Bearer <JWT>`, checked locally as for IMAP and SMTP logins, ADR
//! 0011); then the per-client rate limit (429 with `Retry-After`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use mssante_store::{Access, AccessOrigin, Address, ApiKey, Bal, Rights, SEND_RIGHT};

use crate::{ApiContext, Problem};

/// Scopes a PSC identity holds: everything on the BALs it may open, never `admin`
/// (`delegation` and `audit` still need the holder's standing, `delegations.rs`).
const PSC_SCOPES: &[&str] = &["send", "read", "status", "directory", "delegation", "audit"];

/// What authenticated the request.
#[derive(Clone, Debug)]
pub enum Principal {
    Key(ApiKey),
    /// A professional's identity (`SubjectNameID`); `log_id` is a hash for logs.
    Psc {
        national_id: String,
        log_id: String,
    },
}

/// The caller of a request, once authenticated and within its rate.
#[derive(Clone, Debug)]
pub struct Client {
    pub principal: Principal,
    /// Stable name of the client: `key:<key id>` or `psc:<hash>`; keys idempotency records,
    /// rate limits and webhooks. Never a secret.
    pub id: String,
}

impl Client {
    pub fn scopes(&self) -> Vec<String> {
        match &self.principal {
            Principal::Key(key) => key.scopes.clone(),
            Principal::Psc { .. } => PSC_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn require_scope(&self, scope: &str) -> Result<(), Problem> {
        let allowed = match &self.principal {
            Principal::Key(key) => key.has_scope(scope),
            Principal::Psc { .. } => PSC_SCOPES.contains(&scope),
        };
        match allowed {
            true => Ok(()),
            false => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "Insufficient scope",
                format!("this request needs the {scope} scope"),
            )),
        }
    }

    /// The BAL `address` if this client may act on it with `scope`. An unknown BAL and a
    /// BAL out of reach get the same answer: a key learns nothing of BALs beyond its reach.
    pub async fn bal(&self, ctx: &ApiContext, address: &str, scope: &str) -> Result<Bal, Problem> {
        self.require_scope(scope)?;
        let out_of_reach = || out_of_scope(address);
        match &self.principal {
            Principal::Key(key) => {
                if !key.covers_bal(address) {
                    return Err(out_of_reach());
                }
                ctx.store
                    .find_bal(address)
                    .await
                    .map_err(Problem::internal)?
                    .ok_or_else(out_of_reach)
            }
            Principal::Psc { national_id, .. } => ctx
                .store
                .access_for_identity(national_id, address)
                .await
                .map_err(Problem::internal)?
                .map(|access: Access| access.bal)
                .map_err(|_| out_of_reach()),
        }
    }
}

/// Someone sending on behalf of a BAL (ADR 0016): named in `Sender:` and in the BAL's
/// audit trail.
#[derive(Clone, Debug)]
pub struct Delegate {
    /// The delegate's own BAL, for `Sender:`.
    pub sender: Address,
    /// Who the audit trail names: the delegate's BAL, or the PSC identity.
    pub author: String,
}

/// The BAL a send goes out from, and the delegate it goes out for, if any.
#[derive(Clone, Debug)]
pub struct SendingBal {
    pub bal: Bal,
    pub delegate: Option<Delegate>,
}

fn send_refused(address: &str, why: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "send-on-behalf-refused",
        "Send on behalf refused",
        format!(
            "this client may not send as {address}: {why} (a delegation with the send right, \
             secretary or manager, is needed; ADR 0016)"
        ),
    )
}

impl Client {
    /// The BAL `address` this client may send from: one it acts on, or one delegated with
    /// the send right (`0`) to a BAL of its key or to its PSC identity. A delegation without
    /// that right is `send-on-behalf-refused`; no delegation at all is `bal-out-of-scope`.
    pub async fn sending_bal(
        &self,
        ctx: &ApiContext,
        address: &str,
    ) -> Result<SendingBal, Problem> {
        self.require_scope("send")?;
        match &self.principal {
            Principal::Key(key) if !key.covers_bal(address) => {
                let Some(bal) = ctx
                    .store
                    .find_bal(address)
                    .await
                    .map_err(Problem::internal)?
                else {
                    return Err(out_of_scope(address));
                };
                key_delegate(ctx, key, &bal).await
            }
            Principal::Key(_) => Ok(SendingBal {
                bal: self.bal(ctx, address, "send").await?,
                delegate: None,
            }),
            Principal::Psc { national_id, .. } => {
                let access = ctx
                    .store
                    .access_for_identity(national_id, address)
                    .await
                    .map_err(Problem::internal)?
                    .map_err(|_| out_of_scope(address))?;
                if access.origin != AccessOrigin::Delegation {
                    return Ok(SendingBal {
                        bal: access.bal,
                        delegate: None,
                    });
                }
                psc_delegate(ctx, national_id, access).await
            }
        }
    }
}

pub(crate) fn out_of_scope(address: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "bal-out-of-scope",
        "BAL out of scope",
        format!("this client may not act on {address}"),
    )
}

/// A BAL of `key` holding a delegation on `bal`: the first, by address, with the send right.
async fn key_delegate(ctx: &ApiContext, key: &ApiKey, bal: &Bal) -> Result<SendingBal, Problem> {
    let mut delegated_without_send = false;
    let mut own: Vec<&String> = key.bals.iter().collect();
    own.sort();
    for address in own {
        let Some(delegate) = ctx
            .store
            .find_bal(address)
            .await
            .map_err(Problem::internal)?
        else {
            continue;
        };
        match ctx
            .store
            .delegated_rights(&delegate, bal.id)
            .await
            .map_err(Problem::internal)?
        {
            Some(rights) if rights.has(SEND_RIGHT) => {
                return Ok(SendingBal {
                    bal: bal.clone(),
                    delegate: Some(Delegate {
                        author: delegate.address.to_string(),
                        sender: delegate.address,
                    }),
                });
            }
            Some(_) => delegated_without_send = true,
            None => {}
        }
    }
    match delegated_without_send {
        true => Err(send_refused(
            bal.address.as_str(),
            "its delegation has no send right",
        )),
        false => Err(out_of_scope(bal.address.as_str())),
    }
}

/// A PSC identity holding a delegation on the BAL: with the send right, and a PER BAL of
/// its own to name in `Sender:`.
async fn psc_delegate(
    ctx: &ApiContext,
    national_id: &str,
    access: Access,
) -> Result<SendingBal, Problem> {
    let address = access.bal.address.to_string();
    if !Rights::from_stored(&access.rights).has(SEND_RIGHT) {
        return Err(send_refused(&address, "the delegation has no send right"));
    }
    let held = ctx
        .store
        .accesses_of_identity(national_id)
        .await
        .map_err(Problem::internal)?
        .into_iter()
        .find(|a| a.origin == AccessOrigin::Holder);
    let Some(held) = held else {
        return Err(send_refused(
            &address,
            "this identity holds no BAL here to name in Sender:",
        ));
    };
    Ok(SendingBal {
        bal: access.bal,
        delegate: Some(Delegate {
            sender: held.bal.address,
            author: national_id.to_string(),
        }),
    })
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail.into(),
    )
}

impl FromRequestParts<Arc<ApiContext>> for Client {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<ApiContext>,
    ) -> Result<Client, Problem> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                unauthorized("give an API key or an access token: Authorization: Bearer …")
            })?;
        let client = authenticate(ctx, token).await?;
        if let Err(wait) = ctx.limiter.admit(&client.id) {
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("this client's rate is exceeded; retry in {wait} s"),
            );
            problem.retry_after = Some(wait);
            return Err(problem);
        }
        Ok(client)
    }
}

async fn authenticate(ctx: &ApiContext, token: &str) -> Result<Client, Problem> {
    if token.starts_with("mss_") {
        let key = ctx
            .store
            .api_key_for_secret(token)
            .await
            .map_err(Problem::internal)?
            .ok_or_else(|| {
                tracing::info!("http api: unknown or revoked API key");
                unauthorized("invalid credentials")
            })?;
        return Ok(Client {
            id: format!("key:{}", key.key_id),
            principal: Principal::Key(key),
        });
    }
    let Some(verifier) = &ctx.psc else {
        return Err(unauthorized("invalid credentials"));
    };
    match verifier.verify(token).await {
        Ok(identity) => Ok(Client {
            id: format!("psc:{}", mssante_auth::short_hash(&identity.national_id)),
            principal: Principal::Psc {
                national_id: identity.national_id,
                log_id: identity.log_id,
            },
        }),
        Err(refusal) => {
            // The log says why; the client hears only that its credentials are invalid.
            tracing::info!(
                token = %mssante_auth::token_log_id(token),
                "http api: token refused: {refusal}"
            );
            Err(unauthorized("invalid credentials"))
        }
    }
}

/// A token bucket per client: `rate` requests a second on average, bursts up to `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate_per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`, or says how many seconds to wait (RFC 9110 §10.2.3).
    pub fn admit(&self, client: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets
            .entry(client.to_string())
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
    }
}

/// The `Retry-After` header of a 429.
pub fn retry_after(seconds: u64) -> HeaderValue {
    HeaderValue::from(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_past_the_burst_then_says_when() {
        let limiter = RateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.admit("a").is_ok());
        }
        assert_eq!(limiter.admit("a"), Err(1));
        // Another client has its own bucket.
        assert!(limiter.admit("b").is_ok());
    }
}
