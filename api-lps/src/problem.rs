//! Errors as RFC 9457 problem details (`application/problem+json`), one stable `type` per
//! kind of error.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The URI prefix of our problem types; the suffix names the error and never changes.
const TYPE_PREFIX: &str = "urn:mssante:problem:";

/// An error answered to an HTTP client.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    /// `name` is the stable part of the type URI (`unknown-domain`).
    pub fn new(status: StatusCode, name: &str, title: &'static str, detail: String) -> Problem {
        Problem {
            kind: format!("{TYPE_PREFIX}{name}"),
            title,
            status: status.as_u16(),
            detail,
        }
    }

    pub fn bad_request(name: &str, detail: String) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, name, "Bad request", detail)
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
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
