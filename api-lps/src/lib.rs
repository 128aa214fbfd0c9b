//! The HTTP listener (`[listen] http`, `https`): client autoconfiguration today; the API
//! for practice software (LPS), metrics and health later, each area in its own module
//! merged by [`router`].

pub mod autoconfig;
pub mod problem;
mod serve;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri};

pub use problem::Problem;
pub use serve::{bind, serve};
pub use settings::{
    Advertised, ApiSettings, Endpoint, ListenPorts, OAuth2Hints, PublicConfig, is_dns_name,
};

/// What every handler sees: the store and the settings.
pub struct ApiContext {
    pub store: mssante_store::Store,
    pub settings: ApiSettings,
}

/// The routes of every area; an unknown path is a problem document, not an empty 404.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .merge(autoconfig::routes())
        .fallback(not_found)
        .with_state(ctx)
}

async fn not_found(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("no resource at {}", uri.path()),
    )
}
