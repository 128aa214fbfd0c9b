//! Export and import as jobs (admin scope, ADR 0039): `POST /api/v1/exports` queues an
//! export (`mssante export` run by the server), its archive is downloaded once done;
//! `POST /api/v1/imports` streams an archive to disk and queues its import (`mssante
//! import`). Each job is a resource to poll (state, progress, result or problem) and to
//! `DELETE` (cancel, or remove with its file). The work is in `job_work.rs`.

use std::io::SeekFrom;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use mssante_portability::Scope;
use mssante_store::{Job, NewJob, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use utoipa::{IntoParams, ToSchema};

use super::body::{content_type, parse_json, too_large, unsupported_media_type};
use super::client::Client;
use super::idempotency::{self, Begin};
use super::job_work::{
    ExportRequest, ExportResult, ImportRequest, ImportResult, JobError, JobProgress, Jobs,
    MAX_ACTIVE,
};
use crate::{ApiContext, Problem};

/// Media types an archive is uploaded as.
const ARCHIVE_TYPES: &[&str] = &[
    "application/x-tar",
    "application/zstd",
    "application/octet-stream",
];

/// An archive's bytes (tar, or tar.zst), in the OpenAPI document.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ArchiveBytes(pub Vec<u8>);

/// What every job says.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobState {
    pub id: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// The node whose data dir holds the job's file (PostgreSQL clusters: download from it).
    pub node: String,
    /// Runs started (more than one after restarts).
    pub attempts: i64,
    pub progress: JobProgress,
    /// Why it failed.
    pub error: Option<JobError>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportJob {
    #[serde(flatten)]
    pub job: JobState,
    pub request: ExportRequest,
    /// Once done: what was written; the archive is at `archive`.
    pub result: Option<ExportResult>,
    /// Where to download the archive once done.
    pub archive: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportJob {
    #[serde(flatten)]
    pub job: JobState,
    pub request: ImportRequest,
    /// Once done: each BAL's outcome and the conflicts.
    pub result: Option<ImportResult>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Check the archive and report conflicts, writing nothing (`true` or `false`).
    #[param(value_type = Option<bool>)]
    pub dry_run: Option<String>,
}

impl ImportQuery {
    /// `dry_run` as written: `true` or `false`, nothing else (not even empty).
    fn dry_run(&self) -> Result<bool, Problem> {
        match self.dry_run.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(Problem::bad_request(
                "bad-query",
                format!("dry_run: true or false, not {other:?}"),
            )),
        }
    }
}

fn jobs(ctx: &ApiContext) -> Result<&Arc<Jobs>, Problem> {
    ctx.jobs.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "jobs-off",
            "Jobs off",
            "this server runs no export or import jobs".into(),
        )
    })
}

fn job_not_found(kind: &str, id: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "job-not-found",
        "Job not found",
        format!("no {kind} job {id}"),
    )
}

fn too_many_jobs(kind: &str) -> Problem {
    let mut problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-jobs",
        "Too many jobs",
        format!("{MAX_ACTIVE} {kind} jobs are queued or running already; retry when one ends"),
    );
    problem.retry_after = Some(60);
    problem
}

fn state(job: &Job) -> JobState {
    JobState {
        id: job.id,
        state: job.state.clone(),
        node: job.node.clone(),
        attempts: job.attempts,
        progress: serde_json::from_str(&job.progress).unwrap_or_default(),
        error: job
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
        created_at: job.created_at,
        updated_at: job.updated_at,
        finished_at: job.finished_at,
    }
}

fn export_job(job: &Job) -> ExportJob {
    ExportJob {
        job: state(job),
        request: serde_json::from_str(&job.request).unwrap_or_default(),
        result: job
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
        archive: format!("/api/v1/exports/{}/archive", job.id),
    }
}

fn import_job(job: &Job) -> ImportJob {
    ImportJob {
        job: state(job),
        request: serde_json::from_str(&job.request).unwrap_or_default(),
        result: job
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
    }
}

fn accepted(location: String, body: String) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The scope asked, checked against what exists now (the job checks again when it runs).
async fn checked_scope(ctx: &ApiContext, request: &ExportRequest) -> Result<Scope, Problem> {
    let scope = request.scope().ok_or_else(|| {
        Problem::invalid("say what to export: one of bal, domain or all (true)".into())
    })?;
    match &scope {
        Scope::Bal(address) => {
            if ctx.store.find_bal(address).await.ok().flatten().is_none() {
                return Err(Problem::invalid(format!("no BAL {address} here")));
            }
        }
        Scope::Domain(domain) => {
            if !ctx.store.is_local_domain(domain).await.unwrap_or(false) {
                return Err(Problem::invalid(format!("{domain} is not a local domain")));
            }
        }
        Scope::All => {}
    }
    Ok(scope)
}

#[utoipa::path(
    post, path = "/api/v1/exports", tag = "admin",
    summary = "Start an export (admin scope)",
    description = "Queues `mssante export` of one BAL, a domain or every BAL. `202` with the \
        job (also at `Location`); poll it, then download its `archive`. The archive is kept \
        on the node that wrote it until the job is deleted.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer")),
    request_body(content = ExportRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = ExportJob,
            headers(("Location" = String, description = "The job"))),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing or too much to export, unknown BAL or domain", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited, or too many jobs", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Jobs off", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn start_export(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    client.require_scope("admin")?;
    let jobs = jobs(&ctx)?;
    let given = content_type(&headers);
    if given != "application/json" {
        return Err(unsupported_media_type(&given, &["application/json"]));
    }
    let request: ExportRequest = parse_json(&body)?;
    let scope = checked_scope(&ctx, &request).await?;
    let pending = match idempotency::begin(&ctx, &client, &headers, "POST /exports", &body).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(pending) => pending,
    };
    let extension = if request.zstd { ".tar.zst" } else { ".tar" };
    let file = jobs.new_file("export", extension);
    let request = ExportRequest {
        bal: match &scope {
            Scope::Bal(a) => Some(a.clone()),
            _ => None,
        },
        ..request
    };
    let request_doc = serde_json::to_string(&request).map_err(Problem::internal)?;
    let progress = serde_json::to_string(&JobProgress::default()).map_err(Problem::internal)?;
    let job = ctx
        .store
        .create_job(
            &NewJob {
                kind: "export",
                node: &jobs.node,
                client: &client.id,
                request: &request_doc,
                progress: &progress,
                file: Some(&file.to_string_lossy()),
            },
            MAX_ACTIVE,
        )
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| too_many_jobs("export"))?;
    jobs.wake();
    let body = serde_json::to_string(&export_job(&job)).map_err(Problem::internal)?;
    let mut response = pending
        .finish(
            &ctx,
            &client,
            StatusCode::ACCEPTED,
            "application/json",
            body,
        )
        .await;
    if let Ok(value) = HeaderValue::from_str(&format!("/api/v1/exports/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn find_job(ctx: &ApiContext, kind: &str, id: i64) -> Result<Job, Problem> {
    ctx.store
        .job(kind, id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| job_not_found(kind, id))
}

#[utoipa::path(
    get, path = "/api/v1/exports/{id}", tag = "admin",
    summary = "An export job: state, progress, result or problem (admin scope)",
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "The job", body = ExportJob),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn export_status(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    client.require_scope("admin")?;
    let job = find_job(&ctx, "export", id).await?;
    Ok(axum::Json(export_job(&job)).into_response())
}

#[utoipa::path(
    get, path = "/api/v1/imports/{id}", tag = "admin",
    summary = "An import job: state, progress, per-BAL results or problem (admin scope)",
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "The job", body = ImportJob),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn import_status(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    client.require_scope("admin")?;
    let job = find_job(&ctx, "import", id).await?;
    Ok(axum::Json(import_job(&job)).into_response())
}

/// Removes a job of `kind` and its file (when this node holds it; a running job stops at
/// its next message, on whatever node).
async fn remove(
    ctx: &ApiContext,
    client: &Client,
    kind: &str,
    id: i64,
) -> Result<Response, Problem> {
    client.require_scope("admin")?;
    let job = find_job(ctx, kind, id).await?;
    let here = jobs(ctx)?;
    if job.node != here.node && (job.state == "done" || job.state == "queued") {
        // Its file is in another node's data dir: that node removes both.
        return Err(on_other_node(kind, id, &job.node, &here.node));
    }
    match ctx.store.remove_job(kind, id).await {
        Ok(true) => {}
        Ok(false) | Err(StoreError::NotFound(_)) => return Err(job_not_found(kind, id)),
        Err(e) => return Err(Problem::internal(e)),
    }
    if let Some(file) = &job.file
        && job.node == here.node
        && job.state != "running"
    {
        let _ = tokio::fs::remove_file(file).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete, path = "/api/v1/exports/{id}", tag = "admin",
    summary = "Cancel or remove an export job and its archive (admin scope)",
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 204, description = "Removed (a running job stops)"),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its file is on another node", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn delete_export(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    remove(&ctx, &client, "export", id).await
}

#[utoipa::path(
    delete, path = "/api/v1/imports/{id}", tag = "admin",
    summary = "Cancel or remove an import job (admin scope)",
    description = "A running import stops at its next message; what it staged stays invisible, \
        and a new import of the same archive resumes from it.",
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 204, description = "Removed (a running job stops)"),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its file is on another node", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn delete_import(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    remove(&ctx, &client, "import", id).await
}

/// A single byte range (RFC 9110 §14.1.2) of a representation of `size` bytes: `Ok(None)`
/// for none asked or one this server ignores (several ranges), `Err` for one outside it.
fn byte_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        // A suffix: the last N bytes.
        let n: u64 = last.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = match last {
            "" => size.saturating_sub(1),
            l => l
                .parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1)),
        };
        (start, end)
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn on_other_node(kind: &str, id: i64, node: &str, here: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "job-on-other-node",
        "Job file on another node",
        format!(
            "{kind} job {id}'s file is in the data dir of node {node}; this is node {here}: \
             ask that node (ADR 0039)"
        ),
    )
}

fn job_not_done(id: i64, state: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "job-not-done",
        "Job not done",
        format!("export job {id} is {state}: its archive is ready once it is done"),
    )
}

#[utoipa::path(
    get, path = "/api/v1/exports/{id}/archive", tag = "admin",
    summary = "Download an export's archive (admin scope)",
    description = "The tar (or tar.zst) archive, streamed, with `Content-Length` and its \
        SHA-256 in `Repr-Digest` (RFC 9530) and `X-Archive-SHA256` (hex). One byte range \
        (`Range: bytes=N-`) resumes a download. Served by the node that wrote it only.",
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "The archive", body = ArchiveBytes, content_type = "application/octet-stream",
            headers(("Repr-Digest" = String, description = "sha-256 of the whole archive (RFC 9530)"),
                    ("X-Archive-SHA256" = String, description = "sha-256 of the whole archive, hex"))),
        (status = 206, description = "The range asked", body = ArchiveBytes, content_type = "application/octet-stream"),
        (status = 400, description = "Bad id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not done yet, or the archive is on another node", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "Range outside the archive", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub async fn download(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    client.require_scope("admin")?;
    let jobs = jobs(&ctx)?;
    let job = find_job(&ctx, "export", id).await?;
    if job.state != "done" {
        return Err(job_not_done(id, &job.state));
    }
    if job.node != jobs.node {
        return Err(on_other_node("export", id, &job.node, &jobs.node));
    }
    let path = job.file.clone().unwrap_or_default();
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(Problem::internal)?;
    let size = file.metadata().await.map_err(Problem::internal)?.len();
    let sha = job.file_sha256.clone().unwrap_or_default();
    let range = byte_range(&headers, size).map_err(|()| {
        Problem::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range-not-satisfiable",
            "Range not satisfiable",
            format!("the archive has {size} bytes"),
        )
    });
    let range = match range {
        Ok(r) => r,
        Err(p) => {
            let mut response = p.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };
    let (status, start, length) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(Problem::internal)?;
    let mut response = Response::new(Body::from_stream(file_stream(file, length)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(bytes) = hex::decode(&sha) {
        let digest = base64::engine::general_purpose::STANDARD.encode(bytes);
        if let Ok(v) = HeaderValue::from_str(&format!("sha-256=:{digest}:")) {
            h.insert("repr-digest", v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&sha) {
        h.insert("x-archive-sha256", v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + length - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    let name = std::path::Path::new(&path)
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .replace("export-", &format!("mssante-export-{id}-"))
        })
        .unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `length` bytes of `file` from where it stands, 64 KiB at a time.
fn file_stream(
    file: tokio::fs::File,
    length: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::try_unfold((file, length), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; (64 * 1024).min(left as usize)];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "archive shorter than recorded",
            ));
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, left - n as u64))))
    })
}

#[utoipa::path(
    post, path = "/api/v1/imports", tag = "admin",
    summary = "Start an import of an archive (admin scope)",
    description = "The body is an archive of `mssante export` (tar or tar.zst), streamed to \
        disk (at most `[api] max_import_bytes`), then imported as `mssante import` does: \
        checked whole first (a damaged archive fails the job naming the file, nothing \
        written), each BAL visible only once complete, conflicts reported and left alone. \
        Importing the same archive again is a no-op, or resumes an interrupted import.",
    params(ImportQuery),
    request_body(content = ArchiveBytes, content_type = "application/x-tar"),
    responses(
        (status = 202, description = "Uploaded and queued", body = ImportJob,
            headers(("Location" = String, description = "The job"))),
        (status = 400, description = "Bad query, or the upload broke off", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than max_import_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not an archive media type", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited, or too many jobs", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Jobs off", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn start_import(
    State(ctx): State<Arc<ApiContext>>,
    client: Client,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    client.require_scope("admin")?;
    let jobs = jobs(&ctx)?.clone();
    let Query(query) =
        query.map_err(|e| Problem::bad_request("bad-query", format!("query string: {e}")))?;
    let dry_run = query.dry_run()?;
    let given = content_type(&headers);
    if !ARCHIVE_TYPES.contains(&given.as_str()) {
        return Err(unsupported_media_type(&given, ARCHIVE_TYPES));
    }
    let limit = jobs.max_import_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit as usize));
    }
    let file = jobs.new_file("import", ".archive");
    let (size, sha256) = match receive(body, &file, limit).await {
        Ok(received) => received,
        Err(problem) => {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(problem);
        }
    };
    let request = ImportRequest {
        dry_run,
        size,
        sha256,
    };
    let request_doc = serde_json::to_string(&request).map_err(Problem::internal)?;
    let progress = serde_json::to_string(&JobProgress {
        bytes: size,
        ..JobProgress::default()
    })
    .map_err(Problem::internal)?;
    let created = ctx
        .store
        .create_job(
            &NewJob {
                kind: "import",
                node: &jobs.node,
                client: &client.id,
                request: &request_doc,
                progress: &progress,
                file: Some(&file.to_string_lossy()),
            },
            MAX_ACTIVE,
        )
        .await;
    let job = match created {
        Ok(Some(job)) => job,
        other => {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(match other {
                Err(e) => Problem::internal(e),
                _ => too_many_jobs("import"),
            });
        }
    };
    jobs.wake();
    let body = serde_json::to_string(&import_job(&job)).map_err(Problem::internal)?;
    Ok(accepted(format!("/api/v1/imports/{}", job.id), body))
}

/// Streams the request body to `path` (fsynced), at most `limit` bytes: its size and SHA-256.
async fn receive(body: Body, path: &std::path::Path, limit: u64) -> Result<(u64, String), Problem> {
    let mut out = tokio::fs::File::create(path)
        .await
        .map_err(Problem::internal)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::bad_request("bad-request", format!("the upload broke off: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit as usize));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(Problem::internal)?;
    }
    out.sync_all().await.map_err(Problem::internal)?;
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        byte_range(&headers, size)
    }

    #[test]
    fn byte_ranges_as_rfc_9110_says() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=9-3", 100), Err(()));
        assert_eq!(range("bytes=x-", 100), Err(()));
        assert_eq!(byte_range(&HeaderMap::new(), 100), Ok(None));
    }
}
