//! Bulk import of a source into the local copy: rows stream from a reader thread to the store
//! in batches, the store applies the new generation atomically at the end (or refuses it).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mssante_store::{
    DirectoryRow, FinishOptions, INSERT_BATCH_ROWS, ImportChanges, ImportRecord, RejectedLine,
    Store, directory_sources,
};
use tokio::sync::mpsc;

use crate::extraction::{ReadSummary, read_extraction};

/// Rows per store write transaction. The rows go to a table without indexes (built once at
/// the end, docs/adr/0100-directory-generations.md), so a transaction of 8,192 rows holds the
/// SQLite writer slot for tens of milliseconds, and 66 commits load the national file.
const ROWS_PER_TRANSACTION: usize = INSERT_BATCH_ROWS * 128;
/// Batches in flight between the reader thread and the writer (bounds memory: ~3 batches).
const CHANNEL_BATCHES: usize = 2;

/// What an import is allowed to do.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    /// Largest drop in row count (fraction) accepted without `force`.
    pub max_drop: f64,
    pub force: bool,
}

/// The import report: the history record plus the details behind its counts.
#[derive(Debug)]
pub struct ImportReport {
    pub record: ImportRecord,
    /// Rejected lines (at most [`crate::extraction::MAX_KEPT_REJECTS`]).
    pub rejects: Vec<RejectedLine>,
    /// Changed addresses, at most 10,000 per kind (the store keeps no more; the counts in
    /// `record` are exact).
    pub changes: ImportChanges,
}

pub type Batch = Vec<(i64, DirectoryRow)>;

/// Progress of a long import: a bar on a terminal, a log line every 100,000 rows otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    logged: u64,
}

impl Progress {
    pub fn new(what: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg}: {pos} rows ({per_sec}, {elapsed})",
                )
                .expect("static template"),
            );
            bar.set_message(what.to_string());
            bar
        });
        Progress { bar, logged: 0 }
    }

    /// No output at all (tests, library callers).
    pub fn hidden() -> Progress {
        Progress {
            bar: Some(indicatif::ProgressBar::hidden()),
            logged: 0,
        }
    }

    fn advance(&mut self, rows: u64) {
        match &self.bar {
            Some(bar) => bar.inc(rows),
            None => {
                self.logged += rows;
                if self.logged / 100_000 != (self.logged - rows) / 100_000 {
                    tracing::info!(rows = self.logged, "directory import in progress");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Imports the national extraction from a file path or an `http(s)://` URL.
pub async fn import_extraction(
    store: &Store,
    location: &str,
    options: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<ImportReport> {
    let downloaded;
    let path: PathBuf = if location.starts_with("https://") || location.starts_with("http://") {
        downloaded = crate::download::download_to_temp(location).await?;
        downloaded.to_path_buf()
    } else {
        PathBuf::from(location)
    };
    let path_for_reader = path.clone();
    import_rows(
        store,
        directory_sources::EXTRACTION,
        location,
        options,
        progress,
        move |sink| read_file_into(&path_for_reader, sink),
    )
    .await
}

/// Reads the file on the calling (blocking) thread, sending full batches to the writer.
fn read_file_into(path: &Path, sink: mpsc::Sender<Batch>) -> anyhow::Result<ReadSummary> {
    let mut batch = Vec::with_capacity(ROWS_PER_TRANSACTION);
    let mut summary = read_extraction(path, |line, row| {
        batch.push((line, row));
        if batch.len() == ROWS_PER_TRANSACTION {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(ROWS_PER_TRANSACTION));
            sink.blocking_send(full)
                .context("the import writer stopped")?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        sink.blocking_send(batch)
            .context("the import writer stopped")?;
    }
    summary.rejects.sort_by_key(|r| r.line);
    Ok(summary)
}

/// Runs `produce` on a blocking thread; its batches are written under a new generation of
/// `source`, which is applied at the end unless the drop guard refuses it. Any error fails
/// the import and leaves the previous generation in place.
pub async fn import_rows(
    store: &Store,
    source: &str,
    origin: &str,
    options: ImportOptions,
    progress: &mut Progress,
    produce: impl FnOnce(mpsc::Sender<Batch>) -> anyhow::Result<ReadSummary> + Send + 'static,
) -> anyhow::Result<ImportReport> {
    let import_id = store.directory_begin_import(source, origin).await?;
    tracing::info!(import_id, source, origin, "directory import started");
    let result = write_generation(store, import_id, options, progress, produce).await;
    progress.finish();
    match result {
        Ok(report) => {
            log_outcome(&report.record);
            Ok(report)
        }
        Err(error) => {
            let message = format!("{error:#}");
            tracing::error!(import_id, %message, "directory import failed; the previous data stays");
            store.directory_fail_import(import_id, &message).await?;
            Err(error)
        }
    }
}

async fn write_generation(
    store: &Store,
    import_id: i64,
    options: ImportOptions,
    progress: &mut Progress,
    produce: impl FnOnce(mpsc::Sender<Batch>) -> anyhow::Result<ReadSummary> + Send + 'static,
) -> anyhow::Result<ImportReport> {
    let started = std::time::Instant::now();
    let (sink, mut batches) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
    let reader = tokio::task::spawn_blocking(move || produce(sink));
    // On error `batches` is dropped, the reader's next send fails and it stops.
    store
        .directory_load(import_id, &mut batches, |rows| {
            progress.advance(rows as u64)
        })
        .await?;
    let summary = reader.await.context("the import reader panicked")??;
    tracing::info!(
        import_id,
        phase = "load",
        ms = started.elapsed().as_millis() as u64,
        "directory import phase"
    );
    let finish = FinishOptions {
        max_drop: options.max_drop,
        force: options.force,
    };
    let record = store
        .directory_finish_import(import_id, &summary.rejects, summary.rejected_total, finish)
        .await?;
    let changes = store.directory_import_changes(import_id).await?;
    Ok(ImportReport {
        record,
        rejects: summary.rejects,
        changes,
    })
}

fn log_outcome(record: &ImportRecord) {
    tracing::info!(
        import_id = record.id,
        status = record.status.as_str(),
        rows = record.rows,
        addresses = record.addresses,
        rejected = record.rejected,
        added = record.added,
        removed = record.removed,
        modified = record.modified,
        message = record.message.as_deref().unwrap_or(""),
        "directory import finished"
    );
}
