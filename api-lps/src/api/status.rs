//! What became of a message sent from here, per recipient (docs/mssante.md §6): our queue's
//! view (queued, relayed, delivered, failed with the remote reply, delayed when a delay was
//! reported) and what came back, DSNs from peers and MDNs (displayed, deleted, processed,
//! with the MSSanté 900–906 codes), with timestamps.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mssante_store::{RecipientStatus, TrackingEvent, TrackingKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::client::Client;
use crate::{ApiContext, Problem};

/// A report received about one recipient.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReportEvent {
    /// `dsn` or `mdn`.
    pub kind: String,
    /// DSN action (`delivered`, `failed`, `delayed`, `relayed`) or MDN disposition
    /// (`displayed`, `deleted`, `processed`, …).
    pub state: String,
    pub detail: Option<String>,
    /// MDN error codes (MSSanté 900–906).
    pub error_codes: Vec<u16>,
    /// Unix seconds.
    pub received_at: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecipientState {
    pub address: String,
    /// `queued`, `relayed`, `delivered`, `delayed` or `failed`.
    pub state: String,
    /// RFC 3463 status of the last attempt or report.
    pub status: Option<String>,
    /// The remote reply of the last attempt (failed, delayed), or a report's text.
    pub detail: Option<String>,
    pub attempts: i64,
    /// Unix seconds of the last change of our state.
    pub updated_at: i64,
    /// The latest MDN: `displayed`, `deleted`, `processed`, …
    pub disposition: Option<ReportEvent>,
    pub events: Vec<ReportEvent>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageState {
    pub id: i64,
    pub message_id: Option<String>,
    pub from: String,
    pub subject: Option<String>,
    /// Unix seconds when the message was accepted.
    pub accepted_at: i64,
    pub recipients: Vec<RecipientState>,
}

pub(crate) fn report_event(event: &TrackingEvent) -> ReportEvent {
    ReportEvent {
        kind: match event.kind {
            TrackingKind::Dsn => "dsn".into(),
            TrackingKind::Mdn => "mdn".into(),
        },
        state: event.state.clone(),
        detail: event.detail.clone(),
        error_codes: event.error_codes.clone(),
        received_at: event.received_at,
    }
}

/// `delayed`: still queued after a failed attempt (or a peer's `delayed` DSN).
pub(crate) fn recipient_state(r: &RecipientStatus) -> RecipientState {
    RecipientState {
        address: r.address.clone(),
        state: r.reported_state().to_string(),
        status: r.dsn_status.clone(),
        detail: r.detail.clone(),
        attempts: r.attempts,
        updated_at: r.updated_at,
        disposition: r.disposition.as_ref().map(report_event),
        events: r.events.iter().map(report_event).collect(),
    }
}

fn message_not_found(id: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "message-not-found",
        "Message not found",
        format!("no message {id} sent from a BAL this client may act on"),
    )
}

#[utoipa::path(
    get, path = "/api/v1/messages/{id}", tag = "status",
    summary = "Status of a sent message, per recipient",
    params(("id" = i64, Path, description = "The id a send answered")),
    responses(
        (status = 200, description = "The message and each recipient's state", body = MessageState),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message for this client", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn message_status(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Json<MessageState>, Problem> {
    client.require_scope("status")?;
    let status = ctx
        .store
        .message_status_by_id(id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| message_not_found(id))?;
    // Only the sender's side may ask, and a message out of reach is "not found" too.
    if status.mail_from.is_empty() || client.bal(&ctx, &status.mail_from, "status").await.is_err() {
        return Err(message_not_found(id));
    }
    Ok(Json(MessageState {
        id: status.id,
        message_id: status.message_id_hdr,
        from: status.mail_from,
        subject: status.subject,
        accepted_at: status.received_at,
        recipients: status.recipients.iter().map(recipient_state).collect(),
    }))
}
