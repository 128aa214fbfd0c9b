//! Who am I and which BALs may I open (the old Mailiz `listEmails`), and one BAL's
//! information: type, national ids, status, quota and usage, who else may open it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use mssante_store::{Access, AccessGrant, Bal};
use serde::Serialize;
use utoipa::ToSchema;

use super::client::{Client, Principal};
use crate::{ApiContext, Problem};

/// A BAL the caller may open, with its rights.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalAccess {
    pub address: String,
    /// `PER`, `ORG`, `APP` or `CAB`.
    #[serde(rename = "type")]
    pub bal_type: String,
    pub display_name: Option<String>,
    /// `holder`, `habilitation`, `delegation`, or `api-key`.
    pub origin: String,
    /// RFC 4314 rights letters for a PSC identity; the key's scopes for an API key.
    pub rights: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `key:<key id>` or `psc:<hash of the identity>`.
    pub client: String,
    /// `api-key` or `psc`.
    pub kind: String,
    /// The professional's identity (PSC `SubjectNameID`), for a PSC token.
    pub national_id: Option<String>,
    pub scopes: Vec<String>,
    pub bals: Vec<BalAccess>,
}

/// Someone else who may open the BAL.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalGrant {
    pub national_id: String,
    /// `habilitation` or `delegation`.
    pub origin: String,
    pub rights: String,
    /// Unix seconds after which the grant ends; none = until revoked.
    pub not_after: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalInfo {
    pub address: String,
    #[serde(rename = "type")]
    pub bal_type: String,
    pub display_name: Option<String>,
    /// `8`+RPPS or `0`+ADELI of a PER BAL's holder.
    pub national_id: Option<String>,
    pub finess: Option<String>,
    pub siret: Option<String>,
    /// `active`, `suspended` or `closed`.
    pub status: String,
    /// Hidden from the public directory (liste rouge).
    pub liste_rouge: bool,
    pub quota_bytes: Option<u64>,
    pub used_bytes: u64,
    pub created_at: i64,
    pub status_changed_at: i64,
    pub grants: Vec<BalGrant>,
}

fn access_entry(access: &Access) -> BalAccess {
    BalAccess {
        address: access.bal.address.to_string(),
        bal_type: access.bal.bal_type.as_str().into(),
        display_name: access.bal.display_name.clone(),
        origin: access.origin.as_str().into(),
        rights: access.rights.clone(),
    }
}

fn key_entry(bal: &Bal, scopes: &[String]) -> BalAccess {
    BalAccess {
        address: bal.address.to_string(),
        bal_type: bal.bal_type.as_str().into(),
        display_name: bal.display_name.clone(),
        origin: "api-key".into(),
        rights: scopes.join(" "),
    }
}

#[utoipa::path(
    get, path = "/api/v1/me", tag = "identity",
    summary = "Who am I, and which BALs may I open",
    responses(
        (status = 200, description = "The caller and its BALs", body = Me),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn me(State(ctx): State<Arc<ApiContext>>, client: Client) -> Result<Json<Me>, Problem> {
    let scopes = client.scopes();
    let (kind, national_id, bals) = match &client.principal {
        Principal::Psc { national_id, .. } => {
            let accesses = ctx
                .store
                .accesses_of_identity(national_id)
                .await
                .map_err(Problem::internal)?;
            let bals = accesses.iter().map(access_entry).collect();
            ("psc", Some(national_id.clone()), bals)
        }
        Principal::Key(key) => {
            let mut bals: Vec<BalAccess> = Vec::new();
            let domain_bals = match (&key.domain, key.has_scope("admin")) {
                (_, true) => ctx.store.list_bals(None).await,
                (Some(domain), false) => ctx.store.list_bals(Some(domain)).await,
                (None, false) => Ok(Vec::new()),
            }
            .map_err(Problem::internal)?;
            for bal in &domain_bals {
                bals.push(key_entry(bal, &scopes));
            }
            for address in &key.bals {
                if bals.iter().any(|b| b.address.eq_ignore_ascii_case(address)) {
                    continue;
                }
                if let Some(bal) = ctx
                    .store
                    .find_bal(address)
                    .await
                    .map_err(Problem::internal)?
                {
                    bals.push(key_entry(&bal, &scopes));
                }
            }
            ("api-key", None, bals)
        }
    };
    Ok(Json(Me {
        client: client.id.clone(),
        kind: kind.into(),
        national_id,
        scopes,
        bals,
    }))
}

fn grant_entry(grant: AccessGrant) -> BalGrant {
    BalGrant {
        national_id: grant.national_id,
        origin: grant.origin.as_str().into(),
        rights: grant.rights,
        not_after: grant.not_after,
    }
}

#[utoipa::path(
    get, path = "/api/v1/bals/{address}", tag = "identity",
    summary = "One BAL: type, national ids, status, quota and usage, grants",
    params(("address" = String, Path, description = "The BAL")),
    responses(
        (status = 200, description = "The BAL", body = BalInfo),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope or BAL out of reach", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn bal_info(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(address): Path<String>,
) -> Result<Json<BalInfo>, Problem> {
    let bal = client.bal(&ctx, &address, "read").await?;
    let (used_bytes, quota_bytes) = ctx
        .store
        .bal_usage(bal.id)
        .await
        .map_err(Problem::internal)?;
    let grants = ctx
        .store
        .access_grants(Some(bal.address.as_str()), None)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(BalInfo {
        address: bal.address.to_string(),
        bal_type: bal.bal_type.as_str().into(),
        display_name: bal.display_name,
        national_id: bal.national_id,
        finess: bal.finess,
        siret: bal.siret,
        status: bal.status.as_str().into(),
        liste_rouge: bal.liste_rouge,
        quota_bytes,
        used_bytes,
        created_at: bal.created_at,
        status_changed_at: bal.status_changed_at,
        grants: grants.into_iter().map(grant_entry).collect(),
    }))
}
