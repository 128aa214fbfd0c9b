//! Directory search over the imported national directory (docs/mssante.md §7): by address,
//! by RPPS or national id, or by name (accent- and case-insensitive prefixes) with profession
//! and postcode filters.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use mssante_store::{DirectoryEntry, NameQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::client::Client;
use crate::{ApiContext, Problem};

const MAX_RESULTS: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DirectoryQuery {
    /// A mail address, exactly.
    pub address: Option<String>,
    /// An RPPS number (11 digits).
    pub rpps: Option<String>,
    /// A national id as the directory holds it (`8`+RPPS, `0`+ADELI, …).
    pub national_id: Option<String>,
    /// Prefix of the name or first name.
    pub name: Option<String>,
    /// Prefix of the first name, with `name`.
    pub first_name: Option<String>,
    /// Profession code (TRE_G15, e.g. `10`) or label, with `name`.
    pub profession: Option<String>,
    /// Postcode prefix, with `name`.
    pub postcode: Option<String>,
    /// At most this many results (1 to 100, default 20).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryItem {
    pub address: String,
    /// `PER`, `ORG`, `APP`, `CAB`.
    #[serde(rename = "type")]
    pub bal_type: String,
    pub national_id: String,
    pub name: String,
    pub first_name: String,
    pub profession: String,
    pub skill: String,
    pub structure: String,
    pub postcode: String,
    pub city: String,
    /// Which import the entry comes from.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryResults {
    pub items: Vec<DirectoryItem>,
}

fn item(entry: DirectoryEntry) -> DirectoryItem {
    let r = entry.row;
    DirectoryItem {
        address: r.address,
        bal_type: r.bal_type,
        national_id: r.national_id,
        name: r.name,
        first_name: r.first_name,
        profession: r.profession_label,
        skill: r.skill_label,
        structure: r.structure_name,
        postcode: r.postcode,
        city: r.addr_l6,
        source: entry.source,
    }
}

#[utoipa::path(
    get, path = "/api/v1/directory", tag = "directory",
    summary = "Search the national directory",
    params(DirectoryQuery),
    responses(
        (status = 200, description = "Matching entries", body = DirectoryResults),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing to search by, or a bad value", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    query: Result<Query<DirectoryQuery>, QueryRejection>,
) -> Result<Json<DirectoryResults>, Problem> {
    client.require_scope("directory")?;
    let Query(q) =
        query.map_err(|e| Problem::bad_request("bad-query", format!("query string: {e}")))?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_RESULTS).contains(&limit) {
        return Err(Problem::invalid(format!("limit: 1 to {MAX_RESULTS}")));
    }
    let store = &ctx.store;
    let found = if let Some(address) = &q.address {
        store.directory_by_address(address).await
    } else if let Some(rpps) = &q.rpps {
        if rpps.len() != 11 || !rpps.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::invalid("rpps: 11 digits".into()));
        }
        store.directory_by_national_id(&format!("8{rpps}")).await
    } else if let Some(id) = &q.national_id {
        store.directory_by_national_id(id).await
    } else if let Some(name) = &q.name {
        store
            .directory_search_name(&NameQuery {
                name: name.clone(),
                first_name: q.first_name.clone(),
                profession: q.profession.clone(),
                postcode: q.postcode.clone(),
                limit: i64::from(limit),
            })
            .await
    } else {
        return Err(Problem::invalid(
            "search by address, rpps, national_id or name".into(),
        ));
    };
    let entries = found.map_err(|e| match e {
        mssante_store::StoreError::Invalid(why) => Problem::invalid(why),
        other => Problem::internal(other),
    })?;
    Ok(Json(DirectoryResults {
        items: entries.into_iter().take(limit as usize).map(item).collect(),
    }))
}
