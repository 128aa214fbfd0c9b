//! Reading a BAL for auto-filing: new messages of the INBOX since a cursor with what an LPS
//! needs to file a report without downloading it (sender, subject, `X-MSS-*` headers, the
//! attachments, and from `IHE_XDM.zip` the patient INS and document codes); the raw
//! message or one attachment; flags. The stored message is never altered: flags live
//! beside it (docs/mssante.md §5 for the XDM rules).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mail_parser::{MessageParser, MimeHeaders};
use mssante_store::{Bal, FlagOp, StoredMessage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::{encode_cursor, parse_json};
use super::client::Client;
use super::idempotency::{self, Begin};
use super::keys::{PageQuery, page_query};
use super::xdm::{self, XdmSummary};
use crate::{ApiContext, Problem};

const XDM_NAME: &str = "IHE_XDM.zip";

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentInfo {
    /// Position among the message's attachments, for `…/attachments/{index}`.
    pub index: u32,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSummary {
    /// IMAP UID in the INBOX.
    pub uid: i64,
    /// Unix seconds of arrival.
    pub received_at: i64,
    pub size: i64,
    pub flags: Vec<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// Every `X-MSS-*` header field, by name as written.
    pub x_mss: BTreeMap<String, String>,
    pub attachments: Vec<AttachmentInfo>,
    /// What `IHE_XDM.zip` says, when the message carries one.
    pub xdm: Option<XdmSummary>,
    /// Why an `IHE_XDM.zip` could not be read.
    pub xdm_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<MessageSummary>,
    /// Give it as `cursor` to read what came after; present even on the last page, so that
    /// a reader polls with it for new messages.
    pub next_cursor: String,
}

/// Flags to add and remove (IMAP system flags `\Seen`, `\Flagged`, … or keywords).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagChange {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagState {
    pub uid: i64,
    pub flags: Vec<String>,
}

fn summarise(stored: &StoredMessage, raw: &[u8]) -> MessageSummary {
    let mut summary = MessageSummary {
        uid: stored.uid,
        received_at: stored.internaldate,
        size: stored.size,
        flags: stored
            .flags
            .split(' ')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        from: None,
        subject: None,
        message_id: None,
        x_mss: BTreeMap::new(),
        attachments: Vec::new(),
        xdm: None,
        xdm_error: None,
    };
    let Some(message) = MessageParser::default().parse(raw) else {
        return summary;
    };
    summary.from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    summary.subject = message.subject().map(str::to_string);
    summary.message_id = message.message_id().map(str::to_string);
    for (name, value) in message.headers_raw() {
        if name.len() > 6 && name[..6].eq_ignore_ascii_case("X-MSS-") {
            summary
                .x_mss
                .insert(name.to_string(), value.trim().to_string());
        }
    }
    for (index, part) in message.attachments().enumerate() {
        let filename = part.attachment_name().map(str::to_string);
        if filename
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case(XDM_NAME))
        {
            match xdm::read_xdm_zip(part.contents()) {
                Ok(facts) => summary.xdm = Some(facts),
                Err(e) => summary.xdm_error = Some(e),
            }
        }
        summary.attachments.push(AttachmentInfo {
            index: index as u32,
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{sub}", ct.ctype()),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into()),
            filename,
            size: part.contents().len(),
        });
    }
    summary
}

async fn inbox(ctx: &ApiContext, bal: &Bal) -> Result<i64, Problem> {
    ctx.store
        .folder_summaries(bal.address.as_str())
        .await
        .map_err(Problem::internal)?
        .into_iter()
        .find(|f| f.name == "INBOX")
        .map(|f| f.id)
        .ok_or_else(|| Problem::internal(format!("{} has no INBOX", bal.address)))
}

fn message_not_found(uid: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "message-not-found",
        "Message not found",
        format!("no message with UID {uid} in this BAL's INBOX"),
    )
}

/// The stored message `uid` of the INBOX and its bytes.
async fn one_message(
    ctx: &ApiContext,
    bal: &Bal,
    uid: i64,
) -> Result<(StoredMessage, Vec<u8>), Problem> {
    let folder = inbox(ctx, bal).await?;
    let stored = ctx
        .store
        .folder_page(folder, uid.saturating_sub(1), 1)
        .await
        .map_err(Problem::internal)?
        .into_iter()
        .find(|m| m.uid == uid)
        .ok_or_else(|| message_not_found(uid))?;
    let raw = ctx
        .store
        .read_blob(&stored.blob_hash)
        .await
        .map_err(Problem::internal)?;
    Ok((stored, raw))
}

#[utoipa::path(
    get, path = "/api/v1/bals/{address}/messages", tag = "read",
    summary = "New messages of a BAL's INBOX since a cursor, with what filing needs",
    params(("address" = String, Path, description = "The BAL"), PageQuery),
    responses(
        (status = 200, description = "One page, in arrival order", body = MessagePage),
        (status = 400, description = "Bad cursor or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope or BAL out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit out of range", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn list_messages(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(address): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<MessagePage>, Problem> {
    let bal = client.bal(&ctx, &address, "read").await?;
    let (limit, after) = page_query(query)?;
    let folder = inbox(&ctx, &bal).await?;
    let page = ctx
        .store
        .folder_page(folder, after, i64::from(limit))
        .await
        .map_err(Problem::internal)?;
    let mut items = Vec::with_capacity(page.len());
    for stored in &page {
        let raw = ctx
            .store
            .read_blob(&stored.blob_hash)
            .await
            .map_err(Problem::internal)?;
        items.push(summarise(stored, &raw));
    }
    let last = page.last().map_or(after, |m| m.uid);
    Ok(Json(MessagePage {
        items,
        next_cursor: encode_cursor(last),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/bals/{address}/messages/{uid}", tag = "read",
    summary = "One message as stored (RFC 5322)",
    params(("address" = String, Path, description = "The BAL"), ("uid" = i64, Path, description = "UID in the INBOX")),
    responses(
        (status = 200, description = "The message", body = String, content_type = "message/rfc822"),
        (status = 400, description = "Bad UID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope or BAL out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn raw_message(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path((address, uid)): Path<(String, i64)>,
) -> Result<Response, Problem> {
    let bal = client.bal(&ctx, &address, "read").await?;
    let (_, raw) = one_message(&ctx, &bal, uid).await?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], raw).into_response())
}

#[utoipa::path(
    get, path = "/api/v1/bals/{address}/messages/{uid}/attachments/{index}", tag = "read",
    summary = "One attachment of a message, decoded",
    params(
        ("address" = String, Path, description = "The BAL"),
        ("uid" = i64, Path, description = "UID in the INBOX"),
        ("index" = u32, Path, description = "`index` from the message summary"),
    ),
    responses(
        (status = 200, description = "The attachment's bytes, with its media type", body = String, content_type = "application/octet-stream"),
        (status = 400, description = "Bad UID or index", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope or BAL out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message or attachment", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn attachment(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path((address, uid, index)): Path<(String, i64, u32)>,
) -> Result<Response, Problem> {
    let bal = client.bal(&ctx, &address, "read").await?;
    let (stored, raw) = one_message(&ctx, &bal, uid).await?;
    let summary = summarise(&stored, &raw);
    let info = summary
        .attachments
        .iter()
        .find(|a| a.index == index)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "message-not-found",
                "Message not found",
                format!("message {uid} has no attachment {index}"),
            )
        })?;
    let message = MessageParser::default()
        .parse(&raw)
        .ok_or_else(|| Problem::internal("stored message does not parse"))?;
    let bytes = message
        .attachment(index)
        .map(|p| p.contents().to_vec())
        .unwrap_or_default();
    let filename = info
        .filename
        .as_deref()
        .unwrap_or("attachment")
        .replace(['"', '\\', '\r', '\n'], "_");
    Ok((
        [
            (header::CONTENT_TYPE, info.content_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(
    post, path = "/api/v1/bals/{address}/messages/{uid}/flags", tag = "read",
    summary = "Add and remove flags (the message itself is never altered)",
    params(
        ("address" = String, Path, description = "The BAL"),
        ("uid" = i64, Path, description = "UID in the INBOX"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer"),
    ),
    request_body(content = FlagChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The flags now", body = FlagState),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope or BAL out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid flag, reused key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn set_flags(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path((address, uid)): Path<(String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let bal = client.bal(&ctx, &address, "read").await?;
    let media = super::body::content_type(&headers);
    if media != "application/json" {
        return Err(super::body::unsupported_media_type(
            &media,
            &["application/json"],
        ));
    }
    let pending = match idempotency::begin(
        &ctx,
        &client,
        &headers,
        &format!("POST /bals/{address}/messages/{uid}/flags"),
        &body,
    )
    .await?
    {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(pending) => pending,
    };
    let change: FlagChange = parse_json(&body)?;
    for flag in change.add.iter().chain(&change.remove) {
        // RFC 9051 §9 flag-keyword is an atom; system flags start with a backslash.
        let atom = flag.strip_prefix('\\').unwrap_or(flag);
        if atom.is_empty()
            || !atom
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
        {
            return Err(Problem::invalid(format!(
                "flag {flag:?} is not an IMAP flag"
            )));
        }
    }
    let (stored, _) = one_message(&ctx, &bal, uid).await?;
    let folder = inbox(&ctx, &bal).await?;
    let uids = [stored.uid as u32];
    for (op, flags) in [(FlagOp::Add, &change.add), (FlagOp::Remove, &change.remove)] {
        if !flags.is_empty() {
            ctx.store
                .update_flags(folder, &uids, op, flags, None)
                .await
                .map_err(Problem::internal)?;
        }
    }
    let (now, _) = one_message(&ctx, &bal, uid).await?;
    let state = FlagState {
        uid,
        flags: now
            .flags
            .split(' ')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
    };
    let body = serde_json::to_string(&state).map_err(Problem::internal)?;
    Ok(pending
        .finish(&ctx, &client, StatusCode::OK, "application/json", body)
        .await)
}
