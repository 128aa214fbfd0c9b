//! Errors as RFC 9457 problem details (`application/problem+json`), one stable `type` per
//! kind of error. The types of the API are listed in [`PROBLEM_TYPES`] and in the OpenAPI
//! document; a client may branch on them, so a type is never renamed.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The URI prefix of our problem types; the suffix names the error and never changes.
pub const TYPE_PREFIX: &str = "urn:mssante:problem:";

/// Every problem type the HTTP listener answers, with its status.
pub const PROBLEM_TYPES: &[(&str, u16)] = &[
    ("not-found", 404),
    ("bad-request", 400),
    ("method-not-allowed", 405),
    ("missing-address", 400),
    ("unknown-domain", 404),
    ("no-client-service", 404),
    ("bad-address", 400),
    ("bad-query", 400),
    ("unauthorized", 401),
    ("insufficient-scope", 403),
    ("bal-out-of-scope", 403),
    ("send-on-behalf-refused", 403),
    ("malformed-json", 400),
    ("invalid-request", 422),
    ("unsupported-media-type", 415),
    ("body-too-large", 413),
    ("recipients-refused", 422),
    ("sender-refused", 422),
    ("idempotency-key-reused", 422),
    ("bad-idempotency-key", 400),
    ("bad-cursor", 400),
    ("message-not-found", 404),
    ("webhook-not-found", 404),
    ("bal-not-found", 404),
    ("delegation-not-found", 404),
    ("delegation-forbidden", 403),
    ("rights-beyond-grantor", 403),
    ("audit-forbidden", 403),
    ("delegation-per-folder", 409),
    ("rate-limited", 429),
    ("submission-off", 503),
    ("not-ready", 503),
    ("job-not-found", 404),
    ("job-not-done", 409),
    ("job-on-other-node", 409),
    ("too-many-jobs", 429),
    ("range-not-satisfiable", 416),
    ("jobs-off", 503),
    ("archive-corrupt", 422),
    ("job-failed", 500),
    ("internal", 500),
];

/// A recipient the submission path refused, with the SMTP reply it would have had.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RefusedRecipient {
    pub address: String,
    /// The SMTP reply (code, enhanced status, text) a client on port 587 would read.
    pub reply: String,
}

/// An error answered to an HTTP client (RFC 9457 §3).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:mssante:problem:<name>`, stable per kind of error.
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Recipients refused, for `recipients-refused`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RefusedRecipient>,
    /// Seconds to wait, sent as `Retry-After` (429, 503).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// `name` is the stable part of the type URI (`unknown-domain`).
    pub fn new(status: StatusCode, name: &str, title: &'static str, detail: String) -> Problem {
        debug_assert!(
            PROBLEM_TYPES
                .iter()
                .any(|(n, s)| *n == name && *s == status.as_u16()),
            "problem type {name} ({status}) is not in PROBLEM_TYPES"
        );
        Problem {
            kind: format!("{TYPE_PREFIX}{name}"),
            title,
            status: status.as_u16(),
            detail,
            recipients: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(name: &str, detail: String) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, name, "Bad request", detail)
    }

    pub fn invalid(detail: String) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    /// The store failed: the client learns nothing of it, the log does.
    pub fn internal(error: impl std::fmt::Display) -> Problem {
        tracing::error!("http: store error: {error}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server could not answer; try again later".into(),
        )
    }

    /// The name part of the type (`rate-limited`).
    pub fn name(&self) -> &str {
        self.kind.strip_prefix(TYPE_PREFIX).unwrap_or(&self.kind)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_types_are_unique() {
        let mut names: Vec<_> = PROBLEM_TYPES.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PROBLEM_TYPES.len());
    }
}
