//! The work of the export and import jobs (ADR 0039): one worker per kind on each node takes
//! the node's queued jobs from the database in order and runs them through the same
//! functions as `mssante export` and `mssante import` (crate `portability`), with a
//! [`Progress`] that writes the job's row twice a second.
//!
//! Files live in `<data dir>/jobs/` of the node that holds them: exports as written, uploads
//! until their import ends. A job whose row is removed (`DELETE`) stops at its next message.
//! A job left `running` by a server that stopped is queued again when the node starts
//! (an import resumes after its last staged batch, an export starts over), at most
//! [`MAX_ATTEMPTS`] runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mssante_portability::{BalOutcome, Error as PortError, Progress, Scope};
use mssante_store::{Job, JobEnd, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// Jobs of one kind queued or running at once, over every node: more are refused (429).
pub const MAX_ACTIVE: i64 = 4;
/// Runs of a job interrupted by restarts before it is marked failed.
pub const MAX_ATTEMPTS: i64 = 3;
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// This node's job files and identity.
pub struct Jobs {
    /// `<data dir>/jobs`.
    pub dir: PathBuf,
    /// This node's id (`jobs/node-id`, made at first start): names the node whose data dir
    /// holds a job's file.
    pub node: String,
    /// Largest archive an import accepts, in bytes (`[api] max_import_bytes`).
    pub max_import_bytes: u64,
    wake: Notify,
}

impl Jobs {
    /// The jobs folder of `data_dir`, created if needed, with this node's id.
    pub fn open(data_dir: &Path, max_import_bytes: u64) -> std::io::Result<Jobs> {
        let dir = data_dir.join("jobs");
        std::fs::create_dir_all(&dir)?;
        let id_file = dir.join("node-id");
        let node = match std::fs::read_to_string(&id_file) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => {
                let id = format!("node-{}", random_hex(6));
                std::fs::write(&id_file, format!("{id}\n"))?;
                id
            }
        };
        Ok(Jobs {
            dir,
            node,
            max_import_bytes,
            wake: Notify::new(),
        })
    }

    /// Tells the workers a job was queued.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// A new file name in the jobs folder.
    pub fn new_file(&self, kind: &str, extension: &str) -> PathBuf {
        self.dir
            .join(format!("{kind}-{}{extension}", random_hex(12)))
    }
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut buf);
    hex::encode(buf)
}

/// How far a job is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct JobProgress {
    pub bals_done: u64,
    pub bals_total: u64,
    pub messages_done: u64,
    pub messages_total: u64,
    /// Export: archive bytes written so far. Import: the archive's size.
    pub bytes: u64,
    /// The last durable step of an import (`staged ADDRESS N`, `finished ADDRESS`).
    pub step: Option<String>,
}

/// Why a job failed: an RFC 9457 problem, with the archive's file at fault when there is one.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// `urn:mssante:problem:archive-corrupt` or `urn:mssante:problem:job-failed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The file of the archive that is damaged, truncated, missing or unexpected.
    pub file: Option<String>,
}

/// What an export job was asked: one of `bal`, `domain`, `all`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// One BAL.
    #[serde(default)]
    pub bal: Option<String>,
    /// Every BAL of a local domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Every BAL of the instance.
    #[serde(default)]
    pub all: bool,
    /// Compress the archive with zstd.
    #[serde(default)]
    pub zstd: bool,
}

impl ExportRequest {
    pub fn scope(&self) -> Option<Scope> {
        match (&self.bal, &self.domain, self.all) {
            (Some(bal), None, false) => Some(Scope::Bal(bal.clone())),
            (None, Some(domain), false) => Some(Scope::Domain(domain.clone())),
            (None, None, true) => Some(Scope::All),
            _ => None,
        }
    }
}

/// What an import job was given.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ImportRequest {
    /// Check the archive and report conflicts, writing nothing.
    pub dry_run: bool,
    /// The archive's size as uploaded.
    pub size: u64,
    /// SHA-256 of the archive as uploaded.
    pub sha256: String,
}

/// What a finished export wrote.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ExportResult {
    pub bals: u64,
    pub messages: u64,
    /// Bytes of the messages (the archive's size is `archive_size`).
    pub message_bytes: u64,
    pub manifest_sha256: String,
    pub archive_size: u64,
    /// SHA-256 of the archive file, also in the download's `Repr-Digest`.
    pub archive_sha256: String,
}

/// What became of one BAL of an imported archive (as `mssante import` prints it).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BalResult {
    pub address: String,
    /// `imported`, `already-imported` (by an earlier run of this archive), `conflict` (the
    /// address exists here: left unchanged) or `valid` (dry run).
    pub outcome: String,
    pub messages: Option<u64>,
}

/// What a finished import did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub manifest_sha256: String,
    pub bals: Vec<BalResult>,
    /// BALs not imported because their address exists on this instance.
    pub conflicts: u64,
    /// Delegates' own `\Seen` left out (ADR 0034): the reader is neither a grantee of the BAL
    /// nor a BAL of this instance or of the archive, as `mssante import` reports them.
    #[serde(default)]
    pub dropped_seen: Vec<DroppedSeenResult>,
}

/// A reader whose `\Seen` on a BAL was not imported, and how many entries it had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DroppedSeenResult {
    /// The BAL.
    pub address: String,
    /// The reader (an address or a PSC identity) unknown on this instance.
    pub reader: String,
    pub entries: u64,
}

/// The workers of this node, until `shutdown`. Jobs left running by a stopped server are
/// queued again first.
pub async fn run(store: Store, jobs: Arc<Jobs>, shutdown: CancellationToken) {
    let interrupted = serde_json::to_string(&job_error(&PortError::Usage(format!(
        "interrupted {MAX_ATTEMPTS} times by a server stop; POST the job again (an import \
         resumes where it stopped)"
    ))))
    .unwrap_or_default();
    match store
        .requeue_interrupted_jobs(&jobs.node, MAX_ATTEMPTS, &interrupted)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!("jobs: {n} job(s) interrupted by the last stop queued again"),
        Err(e) => tracing::error!("jobs: cannot queue interrupted jobs again: {e}"),
    }
    let export = tokio::spawn(worker(
        store.clone(),
        jobs.clone(),
        "export",
        shutdown.clone(),
    ));
    let import = tokio::spawn(worker(store, jobs, "import", shutdown));
    let _ = tokio::join!(export, import);
}

async fn worker(store: Store, jobs: Arc<Jobs>, kind: &'static str, shutdown: CancellationToken) {
    loop {
        let woken = jobs.wake.notified();
        match store.claim_job(&jobs.node, kind).await {
            Ok(Some(job)) => {
                let id = job.id;
                let store = store.clone();
                let handle = Handle::current();
                let ran = tokio::task::spawn_blocking(move || run_job(&store, &handle, job)).await;
                if let Err(e) = ran {
                    tracing::error!("jobs: {kind} job {id} panicked: {e}");
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!("jobs: cannot take a {kind} job: {e}"),
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The job's row as the work goes: written at most twice a second, and at the end.
struct RowProgress<'a> {
    store: &'a Store,
    handle: &'a Handle,
    id: i64,
    doc: JobProgress,
    /// Archive bytes written (export), shared with the writer.
    written: Arc<AtomicU64>,
    last_write: Option<Instant>,
    removed: bool,
}

impl RowProgress<'_> {
    fn save(&mut self, force: bool) {
        if !force
            && self
                .last_write
                .is_some_and(|t| t.elapsed() < PROGRESS_EVERY)
        {
            return;
        }
        self.last_write = Some(Instant::now());
        let written = self.written.load(Ordering::Relaxed);
        if written > 0 {
            self.doc.bytes = written;
        }
        let doc = serde_json::to_string(&self.doc).unwrap_or_default();
        match self.handle.block_on(self.store.job_progress(self.id, &doc)) {
            Ok(present) => self.removed = !present,
            Err(e) => tracing::warn!("jobs: progress of job {} not saved: {e}", self.id),
        }
    }

    fn doc(&self) -> String {
        serde_json::to_string(&self.doc).unwrap_or_default()
    }
}

impl Progress for RowProgress<'_> {
    fn update(&mut self, done: u64, total: u64) {
        self.doc.messages_done = done;
        self.doc.messages_total = total;
        self.save(false);
    }

    fn step(&mut self, what: &str) {
        self.doc.step = Some(what.to_string());
        self.save(false);
    }

    fn bals(&mut self, done: u64, total: u64) {
        self.doc.bals_done = done;
        self.doc.bals_total = total;
        self.save(false);
    }

    fn cancelled(&mut self) -> bool {
        self.removed
    }
}

fn run_job(store: &Store, handle: &Handle, job: Job) {
    let mut progress = RowProgress {
        store,
        handle,
        id: job.id,
        doc: serde_json::from_str(&job.progress).unwrap_or_default(),
        written: Arc::new(AtomicU64::new(0)),
        last_write: None,
        removed: false,
    };
    tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempts, "jobs: started");
    let end = match job.kind.as_str() {
        "export" => run_export(store, handle, &job, &mut progress),
        _ => run_import(store, handle, &job, &mut progress),
    };
    let end = match end {
        Ok(end) => end,
        Err(PortError::Cancelled) => {
            tracing::info!(job = job.id, "jobs: removed while running, stopped");
            if let Some(file) = &job.file {
                let _ = std::fs::remove_file(file);
            }
            return;
        }
        Err(e) => {
            tracing::warn!(job = job.id, "jobs: failed: {e}");
            JobEnd {
                failed: true,
                error: serde_json::to_string(&job_error(&e)).ok(),
                ..JobEnd::default()
            }
        }
    };
    if job.kind == "import"
        && let Some(file) = &job.file
    {
        // The upload served its purpose; a re-POST of the same archive resumes.
        let _ = std::fs::remove_file(file);
    }
    if end.failed
        && job.kind == "export"
        && let Some(file) = &job.file
    {
        let _ = std::fs::remove_file(file);
    }
    match handle.block_on(store.finish_job(job.id, &progress.doc(), &end)) {
        Ok(true) => tracing::info!(job = job.id, failed = end.failed, "jobs: ended"),
        Ok(false) => {
            // Removed at the last moment: its file goes too.
            if let Some(file) = &job.file {
                let _ = std::fs::remove_file(file);
            }
        }
        Err(e) => tracing::error!(job = job.id, "jobs: end not recorded: {e}"),
    }
}

pub fn job_error(error: &PortError) -> JobError {
    match error {
        PortError::Corrupt { file, problem } => JobError {
            kind: format!("{}archive-corrupt", crate::problem::TYPE_PREFIX),
            title: "Archive refused".into(),
            status: 422,
            detail: format!("{file}: {problem}"),
            file: Some(file.clone()),
        },
        other => JobError {
            kind: format!("{}job-failed", crate::problem::TYPE_PREFIX),
            title: "Job failed".into(),
            status: 500,
            detail: other.to_string(),
            file: None,
        },
    }
}

/// Writes to a file, counting and hashing what it writes.
struct HashingWriter {
    file: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
    written: Arc<AtomicU64>,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn run_export(
    store: &Store,
    handle: &Handle,
    job: &Job,
    progress: &mut RowProgress<'_>,
) -> Result<JobEnd, PortError> {
    let request: ExportRequest = serde_json::from_str(&job.request)?;
    let scope = request
        .scope()
        .ok_or_else(|| PortError::Usage("say one of bal, domain or all".into()))?;
    let file = PathBuf::from(job.file.as_deref().unwrap_or_default());
    let part = file.with_extension("part");
    let written = progress.written.clone();
    written.store(0, Ordering::Relaxed);
    let mut out = HashingWriter {
        file: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&part)?),
        hasher: Sha256::new(),
        written: written.clone(),
    };
    let summary =
        mssante_portability::export(store, handle, &scope, &mut out, request.zstd, progress);
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    out.flush()?;
    let HashingWriter {
        file: buffered,
        hasher,
        ..
    } = out;
    let written_file = buffered.into_inner().map_err(|e| e.into_error())?;
    written_file.sync_all()?;
    std::fs::rename(&part, &file)?;
    let size = written.load(Ordering::Relaxed);
    progress.doc.bytes = size;
    let result = ExportResult {
        bals: summary.bals,
        messages: summary.messages,
        message_bytes: summary.bytes,
        manifest_sha256: summary.manifest_sha256,
        archive_size: size,
        archive_sha256: hex::encode(hasher.finalize()),
    };
    Ok(JobEnd {
        failed: false,
        file_size: Some(size as i64),
        file_sha256: Some(result.archive_sha256.clone()),
        result: Some(serde_json::to_string(&result)?),
        error: None,
    })
}

fn run_import(
    store: &Store,
    handle: &Handle,
    job: &Job,
    progress: &mut RowProgress<'_>,
) -> Result<JobEnd, PortError> {
    let request: ImportRequest = serde_json::from_str(&job.request)?;
    let file = PathBuf::from(job.file.as_deref().unwrap_or_default());
    progress.doc.bytes = request.size;
    let report = mssante_portability::import::import_batched(
        store,
        handle,
        &file,
        request.dry_run,
        mssante_portability::import::BATCH_MESSAGES,
        progress,
    )?;
    let result = ImportResult {
        manifest_sha256: report.manifest_sha256.clone(),
        conflicts: report.conflicts() as u64,
        bals: report.outcomes.iter().map(bal_result).collect(),
        dropped_seen: report
            .dropped_seen
            .iter()
            .map(|d| DroppedSeenResult {
                address: d.address.clone(),
                reader: d.reader.clone(),
                entries: d.entries,
            })
            .collect(),
    };
    Ok(JobEnd {
        failed: false,
        result: Some(serde_json::to_string(&result)?),
        ..JobEnd::default()
    })
}

fn bal_result(outcome: &BalOutcome) -> BalResult {
    let (address, outcome, messages) = match outcome {
        BalOutcome::Imported { address, messages } => (address, "imported", Some(*messages)),
        BalOutcome::AlreadyImported { address } => (address, "already-imported", None),
        BalOutcome::Conflict { address } => (address, "conflict", None),
        BalOutcome::Valid { address, messages } => (address, "valid", Some(*messages)),
    };
    BalResult {
        address: address.clone(),
        outcome: outcome.into(),
        messages,
    }
}
