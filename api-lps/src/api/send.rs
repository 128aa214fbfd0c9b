//! Sending from a BAL: one message (JSON built with `mail-builder`, or raw RFC 5322), or
//! many in one NDJSON request for laboratories. Every message takes the submission path of
//! port 587 (`mssante_smtp::submit`: recipient routing, trust space, quota, header facts)
//! and `Store::deliver`; `202` is answered only once it returned, i.e. once the message is
//! durably queued, as SMTP says `250` (docs/adr/0018-http-api.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use mssante_mail::dsn::{Notify, Ret};
use mssante_smtp::submit::{self, Envelope};
use mssante_store::{
    Address, AuditAction, AuditEvent, Bal, RcptDisposition, RecipientSpec, Source,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{content_type, parse_json, too_large, unsupported_media_type};
use super::client::{Client, Delegate, SendingBal};
use super::idempotency::{self, Begin};
use crate::problem::RefusedRecipient;
use crate::{ApiContext, Problem};

/// Messages of one bulk request stored at once (they share SQLite commits).
const BULK_CONCURRENCY: usize = 32;

/// A message to build and send (JSON).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// Recipients' addresses (at least one of `to`, `cc`, `bcc`).
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    /// Recipients not shown in the header.
    #[serde(default)]
    pub bcc: Vec<String>,
    pub subject: String,
    /// Plain text body.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Extra header fields; only `X-MSS-*` names are accepted (docs/mssante.md §5).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Ask recipients' software for a read receipt (MDN, RFC 8098 `Disposition-Notification-To`).
    #[serde(default)]
    pub read_receipt: bool,
    #[serde(flatten)]
    pub dsn: DsnOptions,
}

/// Delivery status notification options (RFC 3461), as on SMTP.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DsnOptions {
    /// `NOTIFY`: `NEVER`, or a comma list of `SUCCESS`, `FAILURE`, `DELAY`.
    #[serde(default)]
    pub notify: Option<String>,
    /// `RET`: `FULL` or `HDRS`.
    #[serde(default)]
    pub ret: Option<String>,
    /// `ENVID`, returned in the DSNs.
    #[serde(default)]
    pub envid: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub filename: String,
    /// e.g. `application/pdf`, `application/zip`.
    pub content_type: String,
    /// The bytes, base64 (RFC 4648 §4).
    pub content_base64: String,
}

/// Query of a raw send: the envelope, since the message's own header does not decide it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    /// Recipients, comma-separated (a raw message only; required then).
    pub rcpt: Option<String>,
    pub notify: Option<String>,
    pub ret: Option<String>,
    pub envid: Option<String>,
}

/// A recipient of an accepted message and where its copy went.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AcceptedRecipient {
    pub address: String,
    /// `delivered` (a BAL of this server) or `queued` (for another operator).
    pub state: String,
}

/// The answer to a send: the message is durably queued.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SendAccepted {
    /// Our number for the message: `GET /api/v1/messages/{id}` tells its fate.
    pub id: i64,
    /// Its `Message-ID` header (without `<>`).
    pub message_id: Option<String>,
    pub recipients: Vec<AcceptedRecipient>,
}

/// One line of a bulk answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BulkItemResult {
    /// 1-based line number of the request.
    pub line: usize,
    /// 202 when stored, else the status of the problem.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<SendAccepted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[utoipa::path(
    post, path = "/api/v1/bals/{address}/messages", tag = "send",
    summary = "Send a message from a BAL",
    description = "JSON (built here) or `message/rfc822` (sent as is, envelope in the query). \
        `202` once the message is durably queued, exactly as SMTP's `250`.",
    params(
        ("address" = String, Path, description = "The sending BAL"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer"),
        RawQuery,
    ),
    request_body(content(
        (SendRequest = "application/json"),
        (String = "message/rfc822"),
    )),
    responses(
        (status = 202, description = "Durably queued", body = SendAccepted),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope or BAL out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused recipients, invalid request, reused key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Submission is off", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn send(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(address): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Problem> {
    let sending = client.sending_bal(&ctx, &address).await?;
    let begun = idempotency::begin(&ctx, &client, &headers, &format!("POST {uri}"), &body).await?;
    let pending = match begun {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(pending) => pending,
    };
    let accepted = match content_type(&headers).as_str() {
        "application/json" => {
            let request: SendRequest = parse_json(&body)?;
            send_json(&ctx, &client, &sending, request).await?
        }
        "message/rfc822" => {
            let Query(query) = Query::<RawQuery>::try_from_uri(&uri).map_err(|e| {
                Problem::invalid(format!(
                    "a raw message needs its envelope in the query, ?rcpt=a@x,b@y: {e}"
                ))
            })?;
            let rcpt = query.rcpt.unwrap_or_default();
            let rcpts = rcpt.split(',').map(str::trim).filter(|r| !r.is_empty());
            let dsn = DsnOptions {
                notify: query.notify,
                ret: query.ret,
                envid: query.envid,
            };
            let rcpts: Vec<String> = rcpts.map(str::to_string).collect();
            submit_raw(&ctx, &client, &sending, body.to_vec(), &rcpts, &dsn).await?
        }
        other => {
            return Err(unsupported_media_type(
                other,
                &["application/json", "message/rfc822"],
            ));
        }
    };
    follow(&ctx, &client, &[accepted.id]).await;
    let body = serde_json::to_string(&accepted).map_err(Problem::internal)?;
    Ok(pending
        .finish(
            &ctx,
            &client,
            StatusCode::ACCEPTED,
            "application/json",
            body,
        )
        .await)
}

#[utoipa::path(
    post, path = "/api/v1/bals/{address}/messages/bulk", tag = "send",
    summary = "Send many messages from a BAL (laboratories)",
    description = "One JSON `SendRequest` per line (NDJSON). The answer has one line per \
        request line, in order: `202` with the message when it is durably queued, or its problem. \
        A line refused for what it asks does not stop the others; a line that is not a \
        `SendRequest` refuses the whole request (`422`, naming the line) and nothing is sent.",
    params(
        ("address" = String, Path, description = "The sending BAL"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer"),
    ),
    request_body(content((String = "application/x-ndjson"))),
    responses(
        (status = 200, description = "One result per line", body = BulkItemResult, content_type = "application/x-ndjson"),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope or BAL out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A line that is not a `SendRequest`, or a reused idempotency key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Submission is off", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn send_bulk(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let sending = client.sending_bal(&ctx, &address).await?;
    let media = content_type(&headers);
    if media != "application/x-ndjson" {
        return Err(unsupported_media_type(&media, &["application/x-ndjson"]));
    }
    // Bad input changes nothing: every line must be a `SendRequest` before any is sent.
    let requests = parse_bulk(&body)?;
    let begun = idempotency::begin(
        &ctx,
        &client,
        &headers,
        &format!("POST /bals/{address}/messages/bulk"),
        &body,
    )
    .await?;
    let pending = match begun {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(pending) => pending,
    };
    let (ctx_ref, client_ref, sending_ref) = (&ctx, &client, &sending);
    let results: Vec<BulkItemResult> = futures_util::stream::iter(requests)
        .map(|(line, request): (usize, SendRequest)| async move {
            match send_json(ctx_ref, client_ref, sending_ref, request).await {
                Ok(accepted) => BulkItemResult {
                    line,
                    status: 202,
                    accepted: Some(accepted),
                    problem: None,
                },
                Err(problem) => BulkItemResult {
                    line,
                    status: problem.status,
                    accepted: None,
                    problem: Some(problem),
                },
            }
        })
        .buffered(BULK_CONCURRENCY)
        .collect()
        .await;
    let ids: Vec<i64> = results
        .iter()
        .filter_map(|r| r.accepted.as_ref().map(|a| a.id))
        .collect();
    follow(&ctx, &client, &ids).await;
    let mut out = String::new();
    for result in &results {
        out.push_str(&serde_json::to_string(result).map_err(Problem::internal)?);
        out.push('\n');
    }
    Ok(pending
        .finish(&ctx, &client, StatusCode::OK, "application/x-ndjson", out)
        .await)
}

/// Every line of a bulk body as a `SendRequest`, or the problem of the first line that is
/// not one, with its number.
fn parse_bulk(body: &Bytes) -> Result<Vec<(usize, SendRequest)>, Problem> {
    ndjson_lines(body)
        .into_iter()
        .map(|(line, bytes)| match parse_json::<SendRequest>(&bytes) {
            Ok(request) => Ok((line, request)),
            Err(mut problem) => {
                problem.detail = format!("line {line}: {}", problem.detail);
                Err(problem)
            }
        })
        .collect()
}

/// Messages of a client with webhooks are followed for them (ADR 0019); the message is
/// already durable, so a failure here costs events, not mail, and is logged.
async fn follow(ctx: &ApiContext, client: &Client, ids: &[i64]) {
    let followed = match ctx.store.has_webhooks(&client.id).await {
        Ok(false) => Ok(()),
        Ok(true) => ctx.store.follow_for_webhooks(ids, &client.id).await,
        Err(e) => Err(e),
    };
    if let Err(e) = followed {
        tracing::error!(client = %client.id, "webhooks: messages not followed: {e}");
    }
}

/// The non-empty lines of an NDJSON body, numbered from 1, as shared slices of it.
fn ndjson_lines(body: &Bytes) -> Vec<(usize, Bytes)> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (number, piece) in body.split(|b| *b == b'\n').enumerate() {
        let end = start + piece.len();
        if !piece.trim_ascii().is_empty() {
            lines.push((number + 1, body.slice(start..end)));
        }
        start = end + 1;
    }
    lines
}

fn parse_address(text: &str) -> Result<Address, Problem> {
    Address::parse(text.trim()).map_err(|e| Problem::invalid(format!("address {text:?}: {e}")))
}

/// Header names a client may add: MSSanté's own (docs/mssante.md §5).
fn check_extra_header(name: &str, value: &str) -> Result<(), Problem> {
    let ok_name = name.len() > 6
        && name[..6].eq_ignore_ascii_case("X-MSS-")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !ok_name {
        return Err(Problem::invalid(format!(
            "headers: {name:?} is not accepted (only X-MSS-* fields)"
        )));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(Problem::invalid(format!(
            "headers: {name}: control characters"
        )));
    }
    Ok(())
}

async fn send_json(
    ctx: &ApiContext,
    client: &Client,
    sending: &SendingBal,
    request: SendRequest,
) -> Result<SendAccepted, Problem> {
    let bal = &sending.bal;
    for list in [&request.to, &request.cc, &request.bcc] {
        for address in list {
            parse_address(address)?;
        }
    }
    let from = bal.address.to_string();
    let mut builder = MessageBuilder::new()
        .from(match &bal.display_name {
            Some(name) => mail_builder::headers::address::Address::new_address(
                Some(name.clone()),
                from.clone(),
            ),
            None => {
                mail_builder::headers::address::Address::new_address(None::<String>, from.clone())
            }
        })
        .subject(request.subject.clone())
        .message_id(format!(
            "{}.{}@{}",
            submit::trace_id(),
            rand::random::<u32>(),
            bal.address.domain()
        ));
    if !request.to.is_empty() {
        builder = builder.to(request.to.clone());
    }
    if !request.cc.is_empty() {
        builder = builder.cc(request.cc.clone());
    }
    if let Some(text) = &request.text {
        builder = builder.text_body(text.clone());
    }
    if let Some(html) = &request.html {
        builder = builder.html_body(html.clone());
    }
    if request.text.is_none() && request.html.is_none() {
        builder = builder.text_body(String::new());
    }
    for (name, value) in &request.headers {
        check_extra_header(name, value)?;
        builder = builder.header(name.clone(), Raw::new(value.clone()));
    }
    if request.read_receipt {
        builder = builder.header("Disposition-Notification-To", Raw::new(format!("<{from}>")));
    }
    for attachment in &request.attachments {
        let bytes = STANDARD
            .decode(attachment.content_base64.as_bytes())
            .map_err(|e| {
                Problem::invalid(format!("attachment {:?}: base64: {e}", attachment.filename))
            })?;
        if attachment.content_type.split('/').count() != 2 {
            return Err(Problem::invalid(format!(
                "attachment {:?}: content_type {:?} is not a media type",
                attachment.filename, attachment.content_type
            )));
        }
        builder = builder.attachment(
            attachment.content_type.clone(),
            attachment.filename.clone(),
            bytes,
        );
    }
    let raw = builder.write_to_vec().map_err(Problem::internal)?;
    let rcpts: Vec<String> = request
        .to
        .iter()
        .chain(&request.cc)
        .chain(&request.bcc)
        .cloned()
        .collect();
    submit_raw(ctx, client, sending, raw, &rcpts, &request.dsn).await
}

/// RFC 5322 §2.2: lines end in CRLF. A lone LF (files written on Unix) becomes CRLF; over
/// HTTP there is no SMTP dialogue to smuggle into, so nothing is refused for it (ADR 0018).
/// A lone CR is refused: no reading of it is safe.
fn crlf_lines(raw: Vec<u8>) -> Result<Vec<u8>, Problem> {
    if !raw.contains(&b'\n') && !raw.contains(&b'\r') {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' => return Err(Problem::invalid("message: a CR not followed by LF".into())),
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

/// NOTIFY, RET and ENVID checked (RFC 3461 §4).
type DsnParameters = (Option<Notify>, Option<Ret>, Option<String>);

fn dsn_parameters(dsn: &DsnOptions) -> Result<DsnParameters, Problem> {
    let notify = dsn
        .notify
        .as_deref()
        .map(|n| Notify::parse(n).map_err(|e| Problem::invalid(format!("notify: {e}"))))
        .transpose()?;
    let ret = dsn
        .ret
        .as_deref()
        .map(|r| {
            Ret::parse(r).ok_or_else(|| Problem::invalid(format!("ret: {r:?} is not FULL or HDRS")))
        })
        .transpose()?;
    // RFC 3461 §4.4: ENVID is up to 100 characters of printable ASCII.
    if let Some(envid) = &dsn.envid
        && (envid.is_empty() || envid.len() > 100 || !envid.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Problem::invalid(
            "envid: 1 to 100 printable ASCII characters".into(),
        ));
    }
    Ok((notify, ret, dsn.envid.clone()))
}

/// The submission path for one message: every recipient routed as on port 587, all
/// accepted or none (the problem lists the refused ones with their SMTP reply), then
/// `Store::deliver`.
async fn submit_raw(
    ctx: &ApiContext,
    client: &Client,
    sending: &SendingBal,
    raw: Vec<u8>,
    rcpts: &[String],
    dsn: &DsnOptions,
) -> Result<SendAccepted, Problem> {
    let bal = &sending.bal;
    let Some(smtp) = &ctx.submission else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "submission-off",
            "Submission is off",
            "this server does not accept messages over HTTP".into(),
        ));
    };
    let mut raw = crlf_lines(raw)?;
    if let Some(delegate) = &sending.delegate {
        raw = submit::with_sender(raw, delegate.sender.as_str());
    }
    if raw.len() > smtp.config.max_message_size {
        return Err(too_large(smtp.config.max_message_size));
    }
    let (notify, ret, envid) = dsn_parameters(dsn)?;
    let mut specs: Vec<RecipientSpec> = Vec::new();
    let mut refused = Vec::new();
    for text in rcpts {
        let address = parse_address(text)?;
        if specs.iter().any(|s| s.address == address) {
            continue;
        }
        match submit::route_recipient(smtp, &address, true).await {
            Ok(disposition) => specs.push(RecipientSpec {
                address,
                orcpt: None,
                notify,
                disposition,
            }),
            Err(reply) if reply.is_permanent() => refused.push(RefusedRecipient {
                address: address.to_string(),
                reply: reply.text(),
            }),
            Err(reply) => {
                return Err(Problem::internal(format!(
                    "recipient routing: {}",
                    reply.text()
                )));
            }
        }
    }
    if specs.len() + refused.len() > smtp.config.max_recipients {
        return Err(Problem::invalid(format!(
            "at most {} recipients per message",
            smtp.config.max_recipients
        )));
    }
    if !refused.is_empty() {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipients-refused",
            "Recipients refused",
            format!("{} recipient(s) refused; nothing was sent", refused.len()),
        );
        problem.recipients = refused;
        return Err(problem);
    }
    if specs.is_empty() {
        return Err(Problem::invalid(
            "a message needs at least one recipient".into(),
        ));
    }
    if let Some(reply) = submit::sender_refusal(smtp, bal, Some(&bal.address)).await {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sender-refused",
            "Sender refused",
            reply.text(),
        ));
    }
    let trace_id = submit::trace_id();
    let for_rcpt = match specs.as_slice() {
        [only] => Some(only.address.to_string()),
        _ => None,
    };
    let mut stored = submit::http_received_header(
        &smtp.config.hostname,
        &client.id,
        &trace_id,
        for_rcpt.as_deref(),
    );
    stored.extend_from_slice(&raw);
    let recipients: Vec<AcceptedRecipient> = specs
        .iter()
        .map(|s| AcceptedRecipient {
            address: s.address.to_string(),
            state: match s.disposition {
                RcptDisposition::Local { .. } => "delivered".into(),
                RcptDisposition::Remote => "queued".into(),
            },
        })
        .collect();
    let incoming = submit::incoming_message(
        stored,
        Envelope {
            from: Some(&bal.address),
            envid,
            ret,
            source: Source::Submission,
            auth_bal_id: Some(bal.id),
            recipients: specs,
        },
    );
    let message_id = incoming.meta.message_id.clone();
    let receipt = ctx
        .store
        .deliver(incoming)
        .await
        .map_err(Problem::internal)?;
    tracing::info!(
        client = %client.id, id = %trace_id, db_id = receipt.message_id,
        local = receipt.delivered_local, queued = receipt.queued_remote, "http api: message accepted"
    );
    if let Some(delegate) = &sending.delegate {
        audit_send(
            ctx,
            client,
            bal,
            delegate,
            message_id.as_deref().unwrap_or(&trace_id),
        )
        .await;
    }
    Ok(SendAccepted {
        id: receipt.message_id,
        message_id,
        recipients,
    })
}

/// The BAL's audit trail records a send on its behalf (never the content), as SMTP does; the
/// message is durable already, so a failure here is logged, not answered.
async fn audit_send(ctx: &ApiContext, client: &Client, bal: &Bal, delegate: &Delegate, id: &str) {
    let mut event = AuditEvent::new(bal.id, &delegate.author, AuditAction::Send);
    event.message_ids = vec![id.to_string()];
    event.client = format!("http api {}", client.id);
    if let Err(e) = ctx.store.record_audit(&event).await {
        tracing::error!(client = %client.id, bal = %bal.address, "audit trail write failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_lf_becomes_crlf_and_lone_cr_is_refused() {
        assert_eq!(
            crlf_lines(b"a\nb\r\nc\n".to_vec()).unwrap(),
            b"a\r\nb\r\nc\r\n"
        );
        assert!(crlf_lines(b"a\rb".to_vec()).is_err());
    }

    #[test]
    fn only_mss_headers_are_added() {
        assert!(check_extra_header("X-MSS-NIL", "lps").is_ok());
        assert!(check_extra_header("Bcc", "x@y").is_err());
        assert!(check_extra_header("X-MSS-A", "a\r\nBcc: x").is_err());
    }
}
