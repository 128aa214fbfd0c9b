//! The HTTP listener (`[listen] http`, `https`): client autoconfiguration, the API for
//! software (`api/`, OpenAPI, ADR 0018), metrics and health (`ops.rs`), each area in its
//! own module merged by [`router`].

pub mod api;
pub mod autoconfig;
pub mod ops;
pub mod problem;
mod serve;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

pub use api::client::RateLimiter;
pub use problem::Problem;
pub use serve::{bind, serve};
pub use settings::{
    Advertised, ApiLimits, ApiSettings, Endpoint, ListenPorts, OAuth2Hints, PublicConfig,
    is_dns_name,
};

/// What every handler sees: the store, the settings, and what the API shares with the
/// other protocols.
pub struct ApiContext {
    pub store: mssante_store::Store,
    pub settings: ApiSettings,
    /// The submission path of SMTP (routing, trust space, limits); `None`: no sending.
    pub submission: Option<mssante_smtp::Context>,
    /// Pro Santé Connect token checks; `None` when `[psc]` is off.
    pub psc: Option<Arc<mssante_auth::PscVerifier>>,
    pub limiter: RateLimiter,
    /// Export and import jobs (ADR 0039); `None`: not offered.
    pub jobs: Option<Arc<api::job_work::Jobs>>,
}

impl ApiContext {
    pub fn new(store: mssante_store::Store, settings: ApiSettings) -> ApiContext {
        let limiter = RateLimiter::new(settings.limits.rate_per_sec, settings.limits.burst);
        ApiContext {
            store,
            settings,
            submission: None,
            psc: None,
            limiter,
            jobs: None,
        }
    }
}

/// The routes of every area; an unknown path is a problem document, not an empty 404, and
/// the framework's own refusals (body too large, bad path parameter) are problems too.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    let max_message = ctx
        .submission
        .as_ref()
        .map_or(50 * 1024 * 1024, |s| s.config.max_message_size);
    Router::new()
        .merge(autoconfig::routes())
        .merge(api::routes(max_message, ctx.settings.limits.max_bulk_bytes))
        .fallback(not_found)
        .layer(axum::middleware::map_response(rejection_as_problem))
        .with_state(ctx)
}

/// axum answers some refusals itself in plain text; clients get a problem document instead.
async fn rejection_as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error()) {
        return response;
    }
    let is_plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| t.starts_with("text/plain"));
    if !is_plain {
        return response;
    }
    let (name, title) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "Body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid-request", "Invalid request"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        _ => ("bad-request", "Bad request"),
    };
    let status = match name {
        "bad-request" => StatusCode::BAD_REQUEST,
        _ => status,
    };
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut problem = Problem::new(
        status,
        name,
        title,
        String::from_utf8_lossy(&text).into_owned(),
    );
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        let mut response = problem.into_response();
        response.headers_mut().insert(header::ALLOW, allow.clone());
        return response;
    }
    problem.retry_after = None;
    problem.into_response()
}

async fn not_found(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("no resource at {}", uri.path()),
    )
}
