//! Webhooks (ADR 0019): a client registers URLs; every change of a recipient of the messages
//! it sends through the API from then on (queued, relayed, delivered, delayed, failed; MDN
//! displayed, deleted, processed) is POSTed there as JSON, signed with HMAC-SHA256, from an
//! outbox in the database (`webhook_delivery.rs`): retried with growing waits, never lost
//! across a restart, set aside as a dead letter after the last attempt, listed and retried
//! here.
//!
//! Signature: `X-MSS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! over the exact bytes of the body, so that a receiver checks the body and refuses old
//! replays by `t`; `X-MSS-Event-Id` (also `id` in the body) is the same on every attempt.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mssante_store::{DeliveryState, RecipientEvent, StoreError, WebhookDeliveryRecord};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{decode_cursor, encode_cursor, page_limit, parse_json};
use super::client::Client;
use super::idempotency::{self, Begin};
use crate::{ApiContext, Problem};

/// Secrets a client chooses: long enough to resist guessing, short enough for a header.
const SECRET_LENGTHS: std::ops::RangeInclusive<usize> = 16..=256;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://…`, or `http://…` for a receiver on the operator's network.
    pub url: String,
    /// The HMAC key, 16 to 256 characters; generated (and shown once) when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookInfo {
    pub id: i64,
    pub url: String,
    /// The HMAC key: in the answer to the registration only (and its idempotent replay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Events waiting for an attempt.
    pub pending: i64,
    /// Events that failed every attempt: `GET …/deliveries?state=dead`.
    pub dead: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookInfo>,
}

/// The JSON body POSTed for an event.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEvent {
    /// The event id, the same on every attempt (also `X-MSS-Event-Id`): deduplicate by it.
    /// Ids grow in the order changes were noticed: for one recipient, the highest id is
    /// its latest state.
    #[serde(default)]
    pub id: i64,
    /// `recipient.updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The id a send answered (`GET /api/v1/messages/{id}`).
    pub message: i64,
    /// Its `Message-ID` header (without `<>`).
    pub message_id: Option<String>,
    pub recipient: String,
    /// `queued`, `relayed`, `delivered`, `delayed` or `failed`.
    pub state: String,
    /// The latest MDN disposition: `displayed`, `deleted`, `processed`, …
    pub disposition: Option<String>,
    /// The remote reply (failed, delayed) or the MDN's text.
    pub detail: Option<String>,
    /// MDN error codes (MSSanté 900–906).
    pub error_codes: Vec<u16>,
    /// Unix seconds when the change was noticed.
    pub noticed_at: i64,
}

/// An event of the outbox, as the client may inspect it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryInfo {
    /// The event id.
    pub id: i64,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i64,
    /// Why the last attempt failed (connection error, or the receiver's HTTP status).
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub dead_at: Option<i64>,
    pub event: WebhookEvent,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryPage {
    pub items: Vec<WebhookDeliveryInfo>,
    /// Give it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `?state=&limit=&cursor=` of the deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `dead`; all when absent.
    pub state: Option<String>,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; absent for the first.
    pub cursor: Option<String>,
}

/// The stored form of an event (its id is given at delivery).
pub fn render_event(event: &RecipientEvent) -> String {
    serde_json::to_string(&WebhookEvent {
        id: 0,
        kind: "recipient.updated".into(),
        message: event.message_id,
        message_id: event.message_id_hdr.clone(),
        recipient: event.recipient.clone(),
        state: event.state.clone(),
        disposition: event.disposition.clone(),
        detail: event.detail.clone(),
        error_codes: event.error_codes.clone(),
        noticed_at: event.noticed_at,
    })
    .unwrap_or_default()
}

/// A stored event with its id: the body POSTed, the same on every attempt.
pub fn event_with_id(id: i64, payload: &str) -> Option<WebhookEvent> {
    let mut event: WebhookEvent = serde_json::from_str(payload).ok()?;
    event.id = id;
    Some(event)
}

/// `t=…,v1=…` for `body` at `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// Addresses a webhook may not name unless `[api] webhook_private_targets` allows it: the
/// server's own loopback, private networks, link-local (cloud metadata services).
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // fc00::/7, RFC 4193
                || (first & 0xffc0) == 0xfe80 // fe80::/10
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

fn check_url(url: &str, private_allowed: bool) -> Result<(), Problem> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Problem::invalid(format!("url: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
        return Err(Problem::invalid("url: an http(s) URL with a host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Problem::invalid(
            "url: no user or password in the URL (the signature authenticates us)".into(),
        ));
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let private = match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => is_private(ip),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    };
    if private && !private_allowed {
        return Err(Problem::invalid(
            "url: a loopback, private or link-local address ([api] webhook_private_targets is off)"
                .into(),
        ));
    }
    Ok(())
}

fn new_secret(chosen: Option<String>) -> Result<String, Problem> {
    match chosen {
        Some(s) if SECRET_LENGTHS.contains(&s.chars().count()) => Ok(s),
        Some(_) => Err(Problem::invalid("secret: 16 to 256 characters".into())),
        None => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            Ok(hex::encode(bytes))
        }
    }
}

fn webhook_not_found(id: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "webhook-not-found",
        "Webhook not found",
        format!("this client has no webhook {id}"),
    )
}

#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "status",
    summary = "Register a webhook for the fate of the messages this client sends",
    description = "Messages this client sends through the API from now on are followed: every \
        change of a recipient's state is POSTed to the URL as a `WebhookEvent`, signed \
        (`X-MSS-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>`), at least \
        once: deduplicate by `id` (`X-MSS-Event-Id`). A `2xx` answer delivers it; anything \
        else is retried with doubling waits, then kept as a dead letter.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body(content = NewWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the secret is shown this once", body = WebhookInfo),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL or secret, reused key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    client.require_scope("status")?;
    let media = super::body::content_type(&headers);
    if media != "application/json" {
        return Err(super::body::unsupported_media_type(
            &media,
            &["application/json"],
        ));
    }
    let new: NewWebhook = parse_json(&body)?;
    check_url(&new.url, ctx.settings.limits.webhook_private_targets)?;
    let pending = match idempotency::begin(&ctx, &client, &headers, "POST /webhooks", &body).await?
    {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(pending) => pending,
    };
    let secret = new_secret(new.secret)?;
    let hook = ctx
        .store
        .create_webhook(&client.id, &new.url, &secret)
        .await
        .map_err(Problem::internal)?;
    tracing::info!(client = %client.id, webhook = hook.id, "http api: webhook registered");
    let info = WebhookInfo {
        id: hook.id,
        url: hook.url,
        secret: Some(secret),
        created_at: hook.created_at,
        pending: 0,
        dead: 0,
    };
    let body = serde_json::to_string(&info).map_err(Problem::internal)?;
    Ok(pending
        .finish(&ctx, &client, StatusCode::CREATED, "application/json", body)
        .await)
}

#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "status",
    summary = "This client's webhooks, with their pending and dead events",
    responses(
        (status = 200, description = "The webhooks (without secrets)", body = WebhookList),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
) -> Result<Json<WebhookList>, Problem> {
    client.require_scope("status")?;
    let hooks = ctx
        .store
        .webhooks(&client.id)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(WebhookList {
        items: hooks
            .into_iter()
            .map(|h| WebhookInfo {
                id: h.webhook.id,
                url: h.webhook.url,
                secret: None,
                created_at: h.webhook.created_at,
                pending: h.pending,
                dead: h.dead,
            })
            .collect(),
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "status",
    summary = "Stop a webhook (its undelivered events go with it)",
    params(("id" = i64, Path, description = "The webhook")),
    responses(
        (status = 204, description = "Stopped"),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this client", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    client.require_scope("status")?;
    match ctx.store.delete_webhook(&client.id, id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(StoreError::NotFound(_)) => Err(webhook_not_found(id)),
        Err(e) => Err(Problem::internal(e)),
    }
}

fn delivery_info(record: WebhookDeliveryRecord) -> WebhookDeliveryInfo {
    let event = event_with_id(record.id, &record.payload).unwrap_or_else(|| WebhookEvent {
        id: record.id,
        kind: "unreadable".into(),
        message: 0,
        message_id: None,
        recipient: String::new(),
        state: String::new(),
        disposition: None,
        detail: None,
        error_codes: Vec::new(),
        noticed_at: record.created_at,
    });
    WebhookDeliveryInfo {
        id: record.id,
        state: record.state.as_str().into(),
        attempts: record.attempts,
        last_error: record.last_error,
        created_at: record.created_at,
        next_attempt_at: record.next_attempt_at,
        delivered_at: record.delivered_at,
        dead_at: record.dead_at,
        event,
    }
}

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "status",
    summary = "The events of a webhook: pending, delivered, or dead letters",
    params(("id" = i64, Path, description = "The webhook"), DeliveryQuery),
    responses(
        (status = 200, description = "One page, oldest first", body = WebhookDeliveryPage),
        (status = 400, description = "Bad id, cursor or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this client", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown state, limit out of range", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn deliveries(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
    query: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<WebhookDeliveryPage>, Problem> {
    client.require_scope("status")?;
    let Query(query) =
        query.map_err(|e| Problem::bad_request("bad-query", format!("query string: {e}")))?;
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let state = query
        .state
        .as_deref()
        .map(|s| {
            DeliveryState::parse(s).ok_or_else(|| {
                Problem::invalid(format!("state: {s:?} is not pending, delivered or dead"))
            })
        })
        .transpose()?;
    let mut page = match ctx
        .store
        .webhook_deliveries(&client.id, id, state, after, i64::from(limit) + 1)
        .await
    {
        Ok(page) => page,
        Err(StoreError::NotFound(_)) => return Err(webhook_not_found(id)),
        Err(e) => return Err(Problem::internal(e)),
    };
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    Ok(Json(WebhookDeliveryPage {
        next_cursor: more.then(|| encode_cursor(page.last().map_or(after, |d| d.id))),
        items: page.into_iter().map(delivery_info).collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{event}/retry", tag = "status",
    summary = "Put a dead letter back in the outbox, due now",
    params(
        ("id" = i64, Path, description = "The webhook"),
        ("event" = i64, Path, description = "The dead event"),
    ),
    responses(
        (status = 202, description = "Pending again, with a fresh count of attempts"),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook, or no such dead event of it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path((id, event)): Path<(i64, i64)>,
) -> Result<Response, Problem> {
    client.require_scope("status")?;
    match ctx
        .store
        .retry_webhook_delivery(&client.id, id, event)
        .await
    {
        Ok(()) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(StoreError::NotFound(what)) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "webhook-not-found",
            "Webhook not found",
            format!("this client has no {what} (webhook {id}, event {event})"),
        )),
        Err(e) => Err(Problem::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_recipe() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed with Python's hmac module.
        assert_eq!(
            signature("secret", 1_700_000_000, b"{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fd00::1]/hook",
            "http://localhost/hook",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("https://lab.example.fr/hook", false).is_ok());
        assert!(check_url("ftp://lab.example.fr/hook", true).is_err());
        assert!(check_url("https://user:pw@lab.example.fr/hook", true).is_err());
    }

    #[test]
    fn events_keep_their_id_on_every_attempt() {
        let stored = render_event(&RecipientEvent {
            message_id: 7,
            message_id_hdr: Some("a@b".into()),
            recipient: "dr@x.fr".into(),
            state: "delivered".into(),
            disposition: None,
            detail: None,
            error_codes: vec![],
            noticed_at: 1,
        });
        let first = serde_json::to_string(&event_with_id(42, &stored).unwrap()).unwrap();
        let again = serde_json::to_string(&event_with_id(42, &stored).unwrap()).unwrap();
        assert_eq!(first, again);
        assert!(first.contains("\"id\":42"), "{first}");
    }
}
