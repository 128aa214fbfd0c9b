//! A BAL's audit trail over HTTP (issue 14, ADR 0037): the entries (who, what, when, which
//! messages, from where, with what result; never content), filtered and paged, and the
//! verification of the hash chain. Read-only: the API writes entries only as the trace of
//! the actions it performs (delegations, sends on behalf). Only the holder and the
//! operator read it (scope `audit`): the trail is how the holder watches the delegates, so
//! no delegate reads it, a manager included.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use mssante_store::{AuditAction, AuditEntry, AuditQuery, Bal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{decode_cursor, encode_cursor, page_limit};
use super::client::Client;
use super::standing::{Standing, forbidden, standing};
use crate::{ApiContext, Problem};

/// `?since=&author=&action=&limit=&cursor=` of the trail.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditListQuery {
    /// Entries at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only what this author did (a BAL address, a national id, `operator`, `key:<key id>`).
    pub author: Option<String>,
    /// Only this action: `grant`, `change`, `revoke`, `expire`, `login`, `select`,
    /// `fetch-body`, `flags`, `copy`, `move`, `copy-in`, `move-in`, `expunge`, `append`,
    /// `send`, `refused`, `prune`, `remove`.
    pub action: Option<String>,
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; absent for the first.
    pub cursor: Option<String>,
}

/// One entry of the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryInfo {
    /// Position in the BAL's chain (1, 2, …).
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who acted: a BAL address, a national id, `operator` (command line), `key:<key id>`.
    pub author: String,
    pub action: String,
    /// The folder acted on, when there is one.
    pub folder: Option<String>,
    /// UIDs (`uid:12`) and Message-IDs.
    pub message_ids: Vec<String>,
    /// The client's address (`ip:port`); absent for the command line.
    pub client: Option<String>,
    /// `ok`, or `refused: …` / `failed: …`.
    pub result: String,
    /// What changed (a grant's grantee and rights); never content.
    pub detail: Option<String>,
    /// SHA-256 chaining this entry to the previous one.
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryInfo>,
    /// Give it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The first entry that does not follow from the previous one.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrokenEntry {
    pub seq: i64,
    /// The entry's row number in the database, for the operator.
    pub row_id: i64,
    /// Why: edited, removed or inserted entries.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerificationInfo {
    pub bal: String,
    /// True when every entry chains to the previous one.
    pub intact: bool,
    /// Entries checked.
    pub entries: u64,
    /// Absent when intact.
    pub first_bad: Option<BrokenEntry>,
}

/// The BAL, if this caller may read its trail: its holder or the operator.
async fn trail_of(ctx: &ApiContext, client: &Client, address: &str) -> Result<Bal, Problem> {
    client.require_scope("audit")?;
    match standing(ctx, client, address).await? {
        (bal, Standing::Holder) => Ok(bal),
        _ => Err(forbidden(
            "audit-forbidden",
            "Audit trail forbidden",
            format!(
                "only the holder of {address} and the operator read its audit trail, not its \
                 delegates"
            ),
        )),
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn entry_info(e: AuditEntry) -> AuditEntryInfo {
    AuditEntryInfo {
        seq: e.seq,
        at: e.at,
        author: e.author,
        action: e.action,
        folder: non_empty(&e.folder),
        message_ids: e.message_ids.split_whitespace().map(String::from).collect(),
        client: non_empty(&e.client),
        result: e.result,
        detail: non_empty(&e.detail),
        hash: e.hash,
    }
}

#[utoipa::path(
    get, path = "/api/v1/bals/{address}/audit", tag = "delegation",
    summary = "The audit trail of a BAL, oldest first (holder or operator)",
    params(("address" = String, Path, description = "The BAL"), AuditListQuery),
    responses(
        (status = 200, description = "One page of entries", body = AuditPage),
        (status = 400, description = "Bad cursor or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Out of scope, or a delegate", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such BAL", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown action, limit out of range", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(address): Path<String>,
    query: Result<Query<AuditListQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, Problem> {
    let bal = trail_of(&ctx, &client, &address).await?;
    let Query(query) =
        query.map_err(|e| Problem::bad_request("bad-query", format!("query string: {e}")))?;
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    if let Some(action) = query.action.as_deref()
        && AuditAction::parse(action).is_none()
    {
        return Err(Problem::invalid(format!(
            "action: {action:?} is not an audited action"
        )));
    }
    let filter = AuditQuery {
        since: query.since,
        author: query.author,
        action: query.action,
        after_seq: after,
        limit: Some(limit + 1),
    };
    let mut entries = ctx
        .store
        .audit_entries(bal.address.as_str(), &filter)
        .await
        .map_err(Problem::internal)?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    Ok(Json(AuditPage {
        next_cursor: more.then(|| encode_cursor(entries.last().map_or(after, |e| e.seq))),
        items: entries.into_iter().map(entry_info).collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/bals/{address}/audit/verify", tag = "delegation",
    summary = "Verify the hash chain of a BAL's audit trail (holder or operator)",
    description = "As `mssante audit verify BAL`: `intact`, or the first entry that does not \
        follow from the previous one (edited, removed or inserted).",
    params(("address" = String, Path, description = "The BAL")),
    responses(
        (status = 200, description = "The verification's result", body = AuditVerificationInfo),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Out of scope, or a delegate", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such BAL", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn verify(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(address): Path<String>,
) -> Result<Json<AuditVerificationInfo>, Problem> {
    let bal = trail_of(&ctx, &client, &address).await?;
    let v = ctx
        .store
        .verify_audit(Some(bal.address.as_str()))
        .await
        .map_err(Problem::internal)?;
    Ok(Json(AuditVerificationInfo {
        bal: bal.address.to_string(),
        intact: v.first_bad.is_none(),
        entries: v.entries,
        first_bad: v.first_bad.map(|(_, seq, row_id, reason)| BrokenEntry {
            seq,
            row_id,
            reason,
        }),
    }))
}
