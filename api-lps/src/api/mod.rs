//! The HTTP API for software (`/api/v1`, ADR 0018): vendors' practice software (LPS) with
//! a Pro Santé Connect token, laboratory systems with an API key. The OpenAPI 3.1 document
//! is generated from the handlers' annotations ([`openapi_json`]), served at
//! `/api/v1/openapi.json` and committed as `docs/openapi.json` (a test compares them).
//!
//! One file per area: `client` (authentication, scopes, rate limit), `body` (strict JSON,
//! cursors), `idempotency`, `bals` (who am I, BAL information), `send` (single and bulk),
//! `status` (per-recipient fate), `read` (auto-filing: new messages, raw, attachments,
//! flags) with `xdm` (IHE_XDM.zip metadata), `directory` (search), `keys` (administration),
//! `webhooks` (signed events from an outbox, ADR 0019) with `webhook_delivery` (the task
//! that scans and delivers them), `delegations` and `audit` (a BAL's delegations and audit
//! trail, ADR 0037) with `standing` (holder, manager or delegate), `jobs` (export and import
//! jobs, ADR 0039) with `job_work` (the workers that run them).

pub mod audit;
pub mod bals;
pub mod body;
pub mod client;
pub mod delegations;
pub mod directory;
pub mod idempotency;
pub mod job_work;
pub mod jobs;
pub mod keys;
pub mod read;
pub mod send;
pub mod standing;
pub mod status;
pub mod webhook_delivery;
pub mod webhooks;
pub mod xdm;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{ApiContext, Problem, ops};

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mssante HTTP API",
        description = "The API of an MSSanté operator for practice software (Pro Santé Connect \
            token) and laboratory systems (API key): BALs one may open, sending, per-recipient \
            status, operations. Errors are RFC 9457 problem documents with a stable `type` \
            (`urn:mssante:problem:<name>`); lists use cursors; writes accept `Idempotency-Key`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        bals::me,
        bals::bal_info,
        send::send,
        send::send_bulk,
        status::message_status,
        read::list_messages,
        read::raw_message,
        read::attachment,
        read::set_flags,
        directory::search,
        webhooks::create,
        webhooks::list,
        webhooks::delete,
        webhooks::deliveries,
        webhooks::retry,
        keys::list_keys,
        delegations::list,
        delegations::grant,
        delegations::change,
        delegations::revoke,
        audit::list,
        audit::verify,
        jobs::start_export,
        jobs::export_status,
        jobs::download,
        jobs::delete_export,
        jobs::start_import,
        jobs::import_status,
        jobs::delete_import,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    components(schemas(Problem, send::SendRequest, send::Attachment, send::BulkItemResult, webhooks::WebhookEvent)),
    modifiers(&BearerAuth),
    tags(
        (name = "identity", description = "Who am I, which BALs may I open"),
        (name = "send", description = "Sending, with the durability of SMTP"),
        (name = "status", description = "What became of a sent message"),
        (name = "read", description = "Reading a BAL for auto-filing"),
        (name = "directory", description = "The national directory"),
        (name = "delegation", description = "A BAL's delegations and audit trail (delegation and audit scopes)"),
        (name = "admin", description = "Administration (admin scope)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut types = String::from("\n\nProblem types (`urn:mssante:problem:` then):");
        for (name, status) in crate::problem::PROBLEM_TYPES {
            types.push_str(&format!(" `{name}` ({status}),"));
        }
        types.pop();
        types.push('.');
        if let Some(description) = openapi.info.description.as_mut() {
            description.push_str(&types);
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`mss_…`, `mssante apikey create`) or a Pro Santé Connect access token",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, as served and as committed in `docs/openapi.json`.
pub fn openapi_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        text.push('\n');
        text
    })
}

async fn openapi_document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

/// The API's routes, with their body limits.
pub fn routes(max_message: usize, max_bulk: usize) -> Router<Arc<ApiContext>> {
    // A message in JSON is base64 (4/3) plus its fields.
    let single = max_message / 3 * 4 + 1024 * 1024;
    Router::new()
        .route(OPENAPI_PATH, get(openapi_document))
        .route("/api/v1/me", get(bals::me))
        .route("/api/v1/bals/{address}", get(bals::bal_info))
        .route(
            "/api/v1/bals/{address}/messages",
            post(send::send)
                .layer(DefaultBodyLimit::max(single))
                .get(read::list_messages),
        )
        .route(
            "/api/v1/bals/{address}/messages/{uid}",
            get(read::raw_message),
        )
        .route(
            "/api/v1/bals/{address}/messages/{uid}/attachments/{index}",
            get(read::attachment),
        )
        .route(
            "/api/v1/bals/{address}/messages/{uid}/flags",
            post(read::set_flags),
        )
        .route("/api/v1/directory", get(directory::search))
        .route(
            "/api/v1/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route("/api/v1/webhooks/{id}", delete(webhooks::delete))
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries/{event}/retry",
            post(webhooks::retry),
        )
        .route(
            "/api/v1/bals/{address}/messages/bulk",
            post(send::send_bulk).layer(DefaultBodyLimit::max(max_bulk)),
        )
        .route("/api/v1/messages/{id}", get(status::message_status))
        .route("/api/v1/admin/apikeys", get(keys::list_keys))
        .route(
            "/api/v1/bals/{address}/delegations",
            get(delegations::list).post(delegations::grant),
        )
        .route(
            "/api/v1/bals/{address}/delegations/{grantee}",
            patch(delegations::change).delete(delegations::revoke),
        )
        .route("/api/v1/bals/{address}/audit", get(audit::list))
        .route("/api/v1/bals/{address}/audit/verify", get(audit::verify))
        .route("/api/v1/exports", post(jobs::start_export))
        .route(
            "/api/v1/exports/{id}",
            get(jobs::export_status).delete(jobs::delete_export),
        )
        .route("/api/v1/exports/{id}/archive", get(jobs::download))
        .route(
            "/api/v1/imports",
            post(jobs::start_import).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/imports/{id}",
            get(jobs::import_status).delete(jobs::delete_import),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is the document the code generates; regenerate it with
    /// `MSSANTE_WRITE_OPENAPI=1 cargo test -p mssante-api-lps committed_openapi`.
    #[test]
    fn committed_openapi_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        if std::env::var_os("MSSANTE_WRITE_OPENAPI").is_some() {
            std::fs::write(path, openapi_json()).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == openapi_json(),
            "docs/openapi.json differs from the generated document: run \
             MSSANTE_WRITE_OPENAPI=1 cargo test -p mssante-api-lps committed_openapi"
        );
    }

    #[test]
    fn every_problem_type_is_documented() {
        let doc = openapi_json();
        assert!(doc.contains("\"openapi\": \"3.1.0\""));
        for (name, status) in crate::problem::PROBLEM_TYPES {
            assert!(doc.contains(&format!("`{name}` ({status})")), "{name}");
        }
    }
}
