//! `Idempotency-Key` on writes (draft-ietf-httpapi-idempotency-key-header): the first
//! successful answer to a key is kept and replayed as it was; the same key with another
//! request (method, path or body) is refused with `idempotency-key-reused` and nothing is
//! done. Failures are not kept: the client may correct its request and retry the key.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mssante_store::StoredResponse;
use sha2::{Digest, Sha256};

use super::client::Client;
use crate::{ApiContext, Problem};

pub const HEADER: &str = "idempotency-key";

/// A request that may have to record its answer.
pub struct Pending {
    key: Option<String>,
    request_hash: String,
}

pub enum Begin {
    Fresh(Pending),
    /// The kept answer of an earlier identical request.
    Replay(Response),
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(v) if (1..=255).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(v.to_string()))
        }
        _ => Err(Problem::bad_request(
            "bad-idempotency-key",
            "Idempotency-Key: 1 to 255 printable ASCII characters".into(),
        )),
    }
}

pub async fn begin(
    ctx: &ApiContext,
    client: &Client,
    headers: &HeaderMap,
    method_and_path: &str,
    body: &[u8],
) -> Result<Begin, Problem> {
    let key = idempotency_key(headers)?;
    let mut hasher = Sha256::new();
    hasher.update(method_and_path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    let request_hash = hex::encode(hasher.finalize());
    if let Some(key) = &key {
        let kept = ctx
            .store
            .idempotent_response(&client.id, key)
            .await
            .map_err(Problem::internal)?;
        if let Some(kept) = kept {
            if kept.request_hash != request_hash {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    format!("Idempotency-Key {key:?} was used for another request"),
                ));
            }
            return Ok(Begin::Replay(kept_response(kept)));
        }
    }
    Ok(Begin::Fresh(Pending { key, request_hash }))
}

/// The kept answer: its media type on the first line, then the body as sent.
fn kept_response(kept: StoredResponse) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let (content_type, body) = kept
        .body
        .split_once('\n')
        .map(|(t, b)| (t.to_string(), b.to_string()))
        .unwrap_or_else(|| ("application/json".into(), kept.body.clone()));
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

impl Pending {
    /// Keeps a successful answer under the key (if one was given) and returns it.
    pub async fn finish(
        self,
        ctx: &ApiContext,
        client: &Client,
        status: StatusCode,
        content_type: &'static str,
        body: String,
    ) -> Response {
        if let Some(key) = &self.key {
            let kept = StoredResponse {
                request_hash: self.request_hash,
                status: status.as_u16(),
                body: format!("{content_type}\n{body}"),
            };
            if let Err(e) = ctx
                .store
                .keep_idempotent_response(&client.id, key, &kept)
                .await
            {
                // The write is done: say so, and log that a retry would repeat it.
                tracing::error!(client = %client.id, "idempotency record not kept: {e}");
            }
        }
        (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
    }
}
