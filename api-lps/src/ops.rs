//! Operations: `/healthz` (the process answers), `/readyz` (the database answers and the
//! MSSanté whitelist is fresh, when the trust space is enforced) and `/metrics` in the
//! Prometheus text format (version 0.0.4).

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{ApiContext, Problem};

/// A whitelist older than this (or than four refresh periods) makes the server not ready:
/// peers would be judged on a stale list.
const WHITELIST_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok`.
    pub database: String,
    /// `fresh`, or `not-enforced` when the trust space is off.
    pub whitelist: String,
}

#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    summary = "The process is alive",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "ok\n").into_response()
}

fn not_ready(detail: String) -> Problem {
    let mut problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-ready",
        "Not ready",
        detail,
    );
    problem.retry_after = Some(10);
    problem
}

fn seconds_since(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The whitelist's age in seconds, when the trust space is in use.
fn whitelist_age(ctx: &ApiContext) -> Option<Option<u64>> {
    let smtp = ctx.submission.as_ref()?;
    let trust = smtp.trust.list.as_ref()?;
    Some(trust.last_sync().map(seconds_since))
}

/// Per CA, the seconds left before the CRL in force passes its nextUpdate (negative once
/// it has: later revocations are unknown, ADR 0041), and the count of CAs with a CRL.
fn crl_gauges(ctx: &ApiContext, out: &mut String) {
    let Some(revocation) = ctx
        .submission
        .as_ref()
        .and_then(|smtp| smtp.trust.revocation.as_ref())
    else {
        return;
    };
    let crls = revocation.snapshot();
    family(
        out,
        "mssante_crl_in_force",
        "gauge",
        "CAs with a CRL in force (0: revoked peer certificates are not refused).",
    );
    let _ = writeln!(out, "mssante_crl_in_force {}", crls.len());
    family(
        out,
        "mssante_crl_next_update_seconds",
        "gauge",
        "Seconds until the nextUpdate of each CA's CRL in force; negative: stale.",
    );
    let now = mssante_store::now();
    for crl in crls.iter() {
        if let Some(next) = crl.next_update {
            let _ = writeln!(
                out,
                "mssante_crl_next_update_seconds{{ca=\"{}\"}} {}",
                label(&crl.issuer),
                next - now
            );
        }
    }
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    summary = "Ready to serve: database reachable, whitelist fresh",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn readyz(State(ctx): State<Arc<ApiContext>>) -> Result<Json<Readiness>, Problem> {
    if let Err(e) = ctx.store.ping().await {
        tracing::warn!("readyz: database: {e}");
        return Err(not_ready("the database does not answer".into()));
    }
    let enforced = ctx.submission.as_ref().is_some_and(|s| s.trust.enforce);
    let whitelist = match (enforced, whitelist_age(&ctx)) {
        (false, _) => "not-enforced",
        (true, Some(Some(age))) => {
            let refresh = ctx
                .submission
                .as_ref()
                .and_then(|s| s.trust.list.as_ref())
                .map_or(0, |t| t.config().refresh_secs);
            let limit = WHITELIST_MAX_AGE.as_secs().max(refresh.saturating_mul(4));
            if age > limit {
                return Err(not_ready(format!(
                    "the MSSanté whitelist is {age} s old (limit {limit} s)"
                )));
            }
            "fresh"
        }
        (true, _) => return Err(not_ready("no MSSanté whitelist was ever loaded".into())),
    };
    Ok(Json(Readiness {
        database: "ok".into(),
        whitelist: whitelist.into(),
    }))
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(ctx): State<Arc<ApiContext>>) -> Result<Response, Problem> {
    let counts = ctx.store.server_counts().await.map_err(Problem::internal)?;
    let nil = ctx
        .store
        .x_mss_nil_counts()
        .await
        .map_err(Problem::internal)?;
    let now = mssante_store::now();
    let mut out = String::new();
    family(
        &mut out,
        "mssante_messages_total",
        "counter",
        "Messages accepted, by source (mx: in from operators, submission: out from our users, report: DSNs we wrote).",
    );
    for (source, n) in &counts.messages_by_source {
        let _ = writeln!(
            out,
            "mssante_messages_total{{source=\"{}\"}} {n}",
            label(source)
        );
    }
    family(
        &mut out,
        "mssante_recipients",
        "gauge",
        "Recipients of stored messages, by state (delivered locally, queued, relayed, failed = bounced).",
    );
    for (status, n) in &counts.recipients_by_status {
        let _ = writeln!(out, "mssante_recipients{{state=\"{}\"}} {n}", label(status));
    }
    family(
        &mut out,
        "mssante_queue_depth",
        "gauge",
        "Recipients waiting in the outbound queue.",
    );
    let _ = writeln!(out, "mssante_queue_depth {}", counts.queue_depth);
    family(
        &mut out,
        "mssante_queue_oldest_age_seconds",
        "gauge",
        "Age of the oldest queued message (0 when the queue is empty).",
    );
    let _ = writeln!(
        out,
        "mssante_queue_oldest_age_seconds {}",
        counts.queue_oldest.map_or(0, |t| (now - t).max(0))
    );
    if let Some(at) = counts.directory_imported_at {
        family(
            &mut out,
            "mssante_directory_age_seconds",
            "gauge",
            "Age of the last finished national directory import.",
        );
        let _ = writeln!(out, "mssante_directory_age_seconds {}", (now - at).max(0));
    }
    if let Some(Some(age)) = whitelist_age(&ctx) {
        family(
            &mut out,
            "mssante_whitelist_age_seconds",
            "gauge",
            "Age of the MSSanté whitelist in use.",
        );
        let _ = writeln!(out, "mssante_whitelist_age_seconds {age}");
    }
    crl_gauges(&ctx, &mut out);
    family(
        &mut out,
        "mssante_x_mss_nil_messages_total",
        "counter",
        "Messages sent with an X-MSS-NIL header, by its value (the sending software).",
    );
    for (software, n) in &nil {
        let _ = writeln!(
            out,
            "mssante_x_mss_nil_messages_total{{software=\"{}\"}} {n}",
            label(software)
        );
    }
    let (pending, dead) = ctx
        .store
        .webhook_backlog()
        .await
        .map_err(Problem::internal)?;
    family(
        &mut out,
        "mssante_webhook_events",
        "gauge",
        "Events of active webhooks not delivered: pending (waiting for an attempt) or dead (every attempt failed).",
    );
    let _ = writeln!(out, "mssante_webhook_events{{state=\"pending\"}} {pending}");
    let _ = writeln!(out, "mssante_webhook_events{{state=\"dead\"}} {dead}");
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
