//! Administration (admin scope): the API keys, as a cursor-paginated list.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{decode_cursor, encode_cursor, page_limit};
use super::client::Client;
use crate::{ApiContext, Problem};

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; absent for the first.
    pub cursor: Option<String>,
}

pub fn page_query(query: Result<Query<PageQuery>, QueryRejection>) -> Result<(u32, i64), Problem> {
    let Query(query) =
        query.map_err(|e| Problem::bad_request("bad-query", format!("query string: {e}")))?;
    Ok((
        page_limit(query.limit)?,
        decode_cursor(query.cursor.as_deref())?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyEntry {
    /// The public part of the key (never its secret).
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub domain: Option<String>,
    pub bals: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPage {
    pub items: Vec<KeyEntry>,
    /// Give it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/admin/apikeys", tag = "admin",
    summary = "API keys (admin scope)",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of keys", body = KeyPage),
        (status = 400, description = "Bad cursor or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit out of range", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn list_keys(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<KeyPage>, Problem> {
    client.require_scope("admin")?;
    let (limit, after) = page_query(query)?;
    let keys = ctx.store.api_keys().await.map_err(Problem::internal)?;
    let page: Vec<_> = keys
        .into_iter()
        .filter(|k| k.id > after)
        .take(limit as usize + 1)
        .collect();
    let more = page.len() > limit as usize;
    let page = &page[..page.len().min(limit as usize)];
    Ok(Json(KeyPage {
        next_cursor: more.then(|| encode_cursor(page.last().map_or(after, |k| k.id))),
        items: page
            .iter()
            .map(|k| KeyEntry {
                key_id: k.key_id.clone(),
                name: k.name.clone(),
                scopes: k.scopes.clone(),
                domain: k.domain.clone(),
                bals: k.bals.clone(),
                created_at: k.created_at,
                revoked_at: k.revoked_at,
            })
            .collect(),
    }))
}
