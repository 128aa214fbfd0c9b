//! Delegations of a BAL over HTTP (issue 14, ADR 0037): list, grant, change, revoke, with
//! the store functions the command line and IMAP ACL use (same validation, same audit
//! entries, revocation effective at the delegate's next IMAP command). The holder and the
//! operator manage every delegation; a delegate holding `a` (manager) only within its own
//! rights (`standing.rs`); other delegates none. Scope `delegation`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mssante_store::{
    AuditAction, AuditQuery, Bal, Delegation, Grantee, NamedRights, NewDelegation, Rights,
    StoreError, now, parse_rights,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::body::{encode_cursor, parse_json};
use super::client::Client;
use super::idempotency::{self, Begin};
use super::keys::{PageQuery, page_query};
use super::standing::{
    Standing, author, client_address, forbidden, may_touch, standing, within_held,
};
use crate::{ApiContext, Problem};

type Peer = Option<axum::Extension<ConnectInfo<SocketAddr>>>;

/// Rights as RFC 4314 letters, with their name when they have one.
#[derive(Debug, Serialize, ToSchema)]
pub struct RightsInfo {
    /// `read`, `secretary` or `manager`; absent for other sets of letters.
    pub name: Option<String>,
    /// RFC 4314 §2.1 letters (`0`: send on behalf of the BAL); empty: no right.
    pub letters: String,
}

impl RightsInfo {
    fn of(rights: Rights) -> RightsInfo {
        RightsInfo {
            name: NamedRights::of(rights).map(|n| n.name().to_string()),
            letters: rights.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FolderGrant {
    /// The folder (and its subfolders without a grant of their own).
    pub folder: String,
    pub rights: RightsInfo,
}

/// One delegation of the BAL.
#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationInfo {
    /// The grant's number (a replaced delegation gets a new one).
    pub id: i64,
    /// A BAL address (its account, or the members of an ORG/CAB BAL) or a national id.
    pub grantee: String,
    /// `bal` or `national_id`.
    pub grantee_kind: String,
    /// Rights on every folder not in `folders`; no letters when only `folders` open.
    pub rights: RightsInfo,
    pub folders: Vec<FolderGrant>,
    /// Unix seconds after which the delegation ends; absent: until revoked.
    pub not_after: Option<i64>,
    /// False once `not_after` has passed (the next expiry run removes it, into the trail).
    pub active: bool,
    /// Unix seconds of the grant (or of its last replacement).
    pub created_at: i64,
    /// Who granted or last changed it, as the audit trail names them (`operator`, a BAL,
    /// a national id, `key:<key id>`); absent when the trail no longer says.
    pub granted_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationPage {
    pub items: Vec<DelegationInfo>,
    /// Give it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A delegation to give (or to give again, replacing the grantee's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// A BAL address or a national identifier (PSC `SubjectNameID`).
    pub grantee: String,
    /// `read` (l r s), `secretary` (read + w i x t e + send on behalf), `manager`
    /// (secretary + a), or RFC 4314 letters.
    pub rights: String,
    /// Only these folders and their subfolders; absent or empty: every folder.
    #[serde(default)]
    pub folders: Vec<String>,
    /// Unix seconds after which the delegation ends (in the future); absent: until revoked.
    #[serde(default)]
    pub not_after: Option<i64>,
}

/// A change of a delegation: the fields given replace the delegation's, the others stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// As in a grant.
    #[serde(default)]
    pub rights: Option<String>,
    /// As in a grant; `[]`: every folder.
    #[serde(default)]
    pub folders: Option<Vec<String>>,
    /// Unix seconds; `null`: until revoked.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub not_after: Option<Option<i64>>,
}

/// A field given (even as `null`) is `Some`, an absent one `None` (serde's default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

fn delegation_not_found(bal: &str, grantee: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "delegation-not-found",
        "Delegation not found",
        format!("{grantee} holds no delegation on {bal}"),
    )
}

/// The caller's standing for managing the delegations of `address`: holder or manager.
async fn manager_or_holder(
    ctx: &ApiContext,
    client: &Client,
    address: &str,
) -> Result<(Bal, Standing), Problem> {
    client.require_scope("delegation")?;
    let (bal, standing) = standing(ctx, client, address).await?;
    if let Standing::Delegate = standing {
        return Err(forbidden(
            "delegation-forbidden",
            "Delegation forbidden",
            format!(
                "this client's delegation on {address} has no `a` (manager) right: only the \
                 holder, a manager or the operator manage its delegations"
            ),
        ));
    }
    Ok((bal, standing))
}

/// Who granted each grantee's delegation last, from the trail's grant and change entries
/// (their detail starts with the grantee).
async fn granters(ctx: &ApiContext, bal: &str) -> Result<Vec<(String, String)>, Problem> {
    let mut entries = Vec::new();
    for action in [AuditAction::Grant, AuditAction::Change] {
        let query = AuditQuery {
            action: Some(action.as_str().into()),
            ..AuditQuery::default()
        };
        entries.extend(
            ctx.store
                .audit_entries(bal, &query)
                .await
                .map_err(Problem::internal)?,
        );
    }
    entries.sort_by_key(|e| e.seq);
    Ok(entries
        .into_iter()
        .map(|e| {
            let grantee = e.detail.split(' ').next().unwrap_or_default().to_string();
            (grantee, e.author)
        })
        .collect())
}

fn info(d: &Delegation, granters: &[(String, String)]) -> DelegationInfo {
    let grantee = d.grantee.id().to_string();
    DelegationInfo {
        id: d.grant_id,
        granted_by: granters
            .iter()
            .rev()
            .find(|(g, _)| *g == grantee)
            .map(|(_, a)| a.clone()),
        grantee,
        grantee_kind: d.grantee.kind().into(),
        rights: RightsInfo::of(d.rights),
        folders: d
            .folders
            .iter()
            .map(|f| FolderGrant {
                folder: f.folder.clone(),
                rights: RightsInfo::of(f.rights),
            })
            .collect(),
        not_after: d.not_after,
        active: d.is_active(now()),
        created_at: d.created_at,
    }
}

#[utoipa::path(
    get, path = "/api/v1/bals/{address}/delegations", tag = "delegation",
    summary = "The delegations of a BAL (holder, manager or operator)",
    params(("address" = String, Path, description = "The BAL"), PageQuery),
    responses(
        (status = 200, description = "One page of delegations, by grant number", body = DelegationPage),
        (status = 400, description = "Bad cursor or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Out of scope, or a delegate without the manager right", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such BAL", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limit out of range", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(address): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<DelegationPage>, Problem> {
    let (bal, _) = manager_or_holder(&ctx, &client, &address).await?;
    let (limit, after) = page_query(query)?;
    let mut all = ctx
        .store
        .delegations(Some(bal.address.as_str()), None)
        .await
        .map_err(Problem::internal)?;
    all.sort_by_key(|d| d.grant_id);
    let page: Vec<_> = all
        .into_iter()
        .filter(|d| d.grant_id > after)
        .take(limit as usize + 1)
        .collect();
    let more = page.len() > limit as usize;
    let page = &page[..page.len().min(limit as usize)];
    let granters = granters(&ctx, bal.address.as_str()).await?;
    Ok(Json(DelegationPage {
        next_cursor: more.then(|| encode_cursor(page.last().map_or(after, |d| d.grant_id))),
        items: page.iter().map(|d| info(d, &granters)).collect(),
    }))
}

/// A write's body, once its media type is checked.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Problem> {
    let media = super::body::content_type(headers);
    if media != "application/json" {
        return Err(super::body::unsupported_media_type(
            &media,
            &["application/json"],
        ));
    }
    parse_json(body)
}

/// What a grant or change gives, checked as the command line checks it (the store then
/// checks the BAL and the grantee).
struct Given {
    rights: Rights,
    folders: Vec<String>,
    not_after: Option<i64>,
}

fn check_rights(text: &str) -> Result<Rights, Problem> {
    let rights = parse_rights(text).map_err(|e| Problem::invalid(format!("rights: {e}")))?;
    if rights.is_empty() {
        return Err(Problem::invalid("rights: at least one right".into()));
    }
    Ok(rights)
}

fn check_folders(folders: Vec<String>) -> Result<Vec<String>, Problem> {
    let mut out: Vec<String> = Vec::with_capacity(folders.len());
    for folder in folders {
        let bad = folder.is_empty()
            || folder.len() > 1024
            || folder.chars().any(char::is_control)
            || folder.starts_with('/')
            || folder.ends_with('/');
        if bad {
            return Err(Problem::invalid(format!(
                "folders: {folder:?} is not a folder name (`INBOX`, `INBOX/Labs`)"
            )));
        }
        if !out.contains(&folder) {
            out.push(folder);
        }
    }
    Ok(out)
}

fn check_end(not_after: Option<i64>) -> Result<Option<i64>, Problem> {
    match not_after {
        Some(t) if t <= now() => Err(Problem::invalid(format!(
            "not_after: {t} is not in the future (revoke the delegation to end it now)"
        ))),
        other => Ok(other),
    }
}

fn check_grantee(text: &str) -> Result<Grantee, Problem> {
    Grantee::parse(text).map_err(|e| Problem::invalid(format!("grantee: {e}")))
}

/// A store refusal of a grant, as a problem naming the field: the store's refusals of the
/// BAL itself (closed, APP) start with its address.
fn grant_refused(error: StoreError, bal: &Bal, grantee: &Grantee) -> Problem {
    match error {
        StoreError::Invalid(why)
            if why.starts_with(bal.address.as_str()) && grantee.id() != bal.address.as_str() =>
        {
            Problem::invalid(format!("address: {why}"))
        }
        StoreError::Invalid(why) => Problem::invalid(format!("grantee: {why}")),
        StoreError::NotFound(what) => {
            Problem::invalid(format!("grantee: {what} not found (no such BAL)"))
        }
        other => Problem::internal(other),
    }
}

/// Refuses a manager touching its own delegation (it may only give it up, by DELETE).
async fn not_own(
    ctx: &ApiContext,
    client: &Client,
    standing: &Standing,
    grantee: &Grantee,
) -> Result<(), Problem> {
    if let Standing::Manager(_) = standing
        && super::standing::is_callers(ctx, client, grantee).await?
    {
        return Err(forbidden(
            "delegation-forbidden",
            "Delegation forbidden",
            format!(
                "grantee: {grantee} is this client: a delegate cannot change its own delegation"
            ),
        ));
    }
    Ok(())
}

/// Grants (or replaces) through the store's one grant function, audited with this client
/// as author and its address.
async fn record(
    ctx: &ApiContext,
    client: &Client,
    peer: &str,
    bal: &Bal,
    standing: &Standing,
    grantee: &Grantee,
    given: &Given,
) -> Result<Delegation, Problem> {
    if let Standing::Manager(held) = standing {
        within_held(held, given.rights, &given.folders, given.not_after)?;
    }
    let author = author(client);
    ctx.store
        .grant_delegation(&NewDelegation {
            bal: bal.address.as_str(),
            grantee,
            rights: given.rights,
            folders: &given.folders,
            not_after: given.not_after,
            author: &author,
            client: peer,
        })
        .await
        .map_err(|e| grant_refused(e, bal, grantee))
}

async fn current(
    ctx: &ApiContext,
    bal: &Bal,
    grantee: &Grantee,
) -> Result<Option<Delegation>, Problem> {
    Ok(ctx
        .store
        .delegations(Some(bal.address.as_str()), Some(grantee))
        .await
        .map_err(Problem::internal)?
        .into_iter()
        .next())
}

fn answer(
    status: StatusCode,
    d: &Delegation,
    granted_by: &str,
) -> Result<(StatusCode, String), Problem> {
    let info = info(d, &[(d.grantee.id().to_string(), granted_by.to_string())]);
    Ok((
        status,
        serde_json::to_string(&info).map_err(Problem::internal)?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/bals/{address}/delegations", tag = "delegation",
    summary = "Delegate the BAL (or replace the grantee's delegation)",
    description = "The same grant as `mssante delegation grant`: audited (`grant`, or `change` \
        when the grantee had one) with this client as author and its address. A manager \
        delegate gives at most its own rights, on folders where it holds `a`, ending no later \
        than its own delegation.",
    params(
        ("address" = String, Path, description = "The BAL"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer"),
    ),
    request_body(content = GrantRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Delegated", body = DelegationInfo,
            headers(("Location" = String, description = "The delegation"))),
        (status = 200, description = "The grantee's delegation replaced", body = DelegationInfo),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Out of scope, not a manager, or beyond the manager's rights", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such BAL", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (named), reused key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn grant(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    peer: Peer,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let (bal, standing) = manager_or_holder(&ctx, &client, &address).await?;
    let request: GrantRequest = json_body(&headers, &body)?;
    let grantee = check_grantee(&request.grantee)?;
    let given = Given {
        rights: check_rights(&request.rights)?,
        folders: check_folders(request.folders)?,
        not_after: check_end(request.not_after)?,
    };
    not_own(&ctx, &client, &standing, &grantee).await?;
    let path = format!("POST /bals/{}/delegations", bal.address);
    let pending = match idempotency::begin(&ctx, &client, &headers, &path, &body).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(pending) => pending,
    };
    let before = current(&ctx, &bal, &grantee).await?;
    if let (Standing::Manager(held), Some(old)) = (&standing, &before) {
        may_touch(held, old)?;
    }
    let peer = client_address(peer);
    let d = record(&ctx, &client, &peer, &bal, &standing, &grantee, &given).await?;
    tracing::info!(client = %client.id, bal = %bal.address, grantee = %grantee, "http api: delegation granted");
    let status = match before {
        Some(_) => StatusCode::OK,
        None => StatusCode::CREATED,
    };
    let (status, text) = answer(status, &d, &author(&client))?;
    let mut response = pending
        .finish(&ctx, &client, status, "application/json", text)
        .await;
    let location = format!("/api/v1/bals/{}/delegations/{}", bal.address, grantee.id());
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[utoipa::path(
    patch, path = "/api/v1/bals/{address}/delegations/{grantee}", tag = "delegation",
    summary = "Change a delegation's rights, folders or end date",
    description = "The fields given replace the delegation's; audited as `change`. A delegation \
        given different rights per folder (IMAP SETACL) is changed by giving `rights` and \
        `folders` together.",
    params(
        ("address" = String, Path, description = "The BAL"),
        ("grantee" = String, Path, description = "The grantee: a BAL address or a national id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer"),
    ),
    request_body(content = ChangeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = DelegationInfo),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Out of scope, not a manager, or beyond the manager's rights", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such BAL or delegation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Per-folder rights: give rights and folders together", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (named), reused key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn change(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    peer: Peer,
    Path((address, grantee)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let (bal, standing) = manager_or_holder(&ctx, &client, &address).await?;
    let request: ChangeRequest = json_body(&headers, &body)?;
    if request.rights.is_none() && request.folders.is_none() && request.not_after.is_none() {
        return Err(Problem::invalid(
            "request body: give rights, folders or not_after".into(),
        ));
    }
    let grantee = check_grantee(&grantee)?;
    let rights = request.rights.as_deref().map(check_rights).transpose()?;
    let folders = request.folders.map(check_folders).transpose()?;
    let not_after = request.not_after.map(check_end).transpose()?;
    not_own(&ctx, &client, &standing, &grantee).await?;
    let path = format!("PATCH /bals/{}/delegations/{}", bal.address, grantee.id());
    let pending = match idempotency::begin(&ctx, &client, &headers, &path, &body).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(pending) => pending,
    };
    let old = current(&ctx, &bal, &grantee)
        .await?
        .ok_or_else(|| delegation_not_found(bal.address.as_str(), grantee.id()))?;
    if let Standing::Manager(held) = &standing {
        may_touch(held, &old)?;
    }
    let (old_rights, old_folders) = match uniform(&old) {
        Some(u) => (Some(u.0), Some(u.1)),
        None => (None, None),
    };
    let given = match (rights.or(old_rights), folders.or(old_folders)) {
        (Some(rights), Some(folders)) => Given {
            rights,
            folders,
            not_after: not_after.unwrap_or(old.not_after),
        },
        _ => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "delegation-per-folder",
                "Delegation with per-folder rights",
                format!(
                    "{grantee} holds different rights per folder on {} ({}): give rights and \
                     folders together to replace them",
                    bal.address,
                    old.rights_text()
                ),
            ));
        }
    };
    let peer = client_address(peer);
    let d = record(&ctx, &client, &peer, &bal, &standing, &grantee, &given).await?;
    tracing::info!(client = %client.id, bal = %bal.address, grantee = %grantee, "http api: delegation changed");
    let (status, text) = answer(StatusCode::OK, &d, &author(&client))?;
    Ok(pending
        .finish(&ctx, &client, status, "application/json", text)
        .await)
}

/// The rights and folders a grant would give to make `d` again: one set of rights, on every
/// folder or on the listed ones; `None` when its folders differ.
fn uniform(d: &Delegation) -> Option<(Rights, Vec<String>)> {
    if d.folders.is_empty() {
        return Some((d.rights, Vec::new()));
    }
    let first = d.folders[0].rights;
    let same = d.rights.is_empty() && d.folders.iter().all(|f| f.rights == first);
    same.then(|| (first, d.folders.iter().map(|f| f.folder.clone()).collect()))
}

#[utoipa::path(
    delete, path = "/api/v1/bals/{address}/delegations/{grantee}", tag = "delegation",
    summary = "Revoke a delegation now",
    description = "As `mssante delegation revoke`: the grantee's open IMAP sessions lose the \
        BAL at their next command (IDLE included), further sends on behalf are refused; \
        audited as `revoke`. A manager may also give up its own delegation.",
    params(
        ("address" = String, Path, description = "The BAL"),
        ("grantee" = String, Path, description = "The grantee: a BAL address or a national id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Out of scope, not a manager, or beyond the manager's rights", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such BAL or delegation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a grantee", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    peer: Peer,
    Path((address, grantee)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (bal, standing) = manager_or_holder(&ctx, &client, &address).await?;
    let grantee = check_grantee(&grantee)?;
    let missing = || delegation_not_found(bal.address.as_str(), grantee.id());
    let old = current(&ctx, &bal, &grantee).await?.ok_or_else(missing)?;
    if let Standing::Manager(held) = &standing
        && !super::standing::is_callers(&ctx, &client, &grantee).await?
    {
        may_touch(held, &old)?;
    }
    let revoked = ctx
        .store
        .revoke_delegation(
            bal.address.as_str(),
            &grantee,
            &author(&client),
            &client_address(peer),
        )
        .await
        .map_err(Problem::internal)?;
    if !revoked {
        return Err(missing());
    }
    tracing::info!(client = %client.id, bal = %bal.address, grantee = %grantee, "http api: delegation revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
