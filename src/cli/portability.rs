//! `mssante export` and `mssante import`: moving BALs to and from another instance
//! (ADR 0020, format in docs/export-format.md). The work is in `portability/`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use mssante_portability::{BalOutcome, Progress, Quiet, Scope};
use mssante_store::Store;

#[derive(Args)]
pub struct ExportArgs {
    /// One BAL.
    #[arg(long, conflicts_with_all = ["domain", "all"])]
    bal: Option<String>,
    /// Every BAL of a local domain.
    #[arg(long, conflicts_with = "all")]
    domain: Option<String>,
    /// Every BAL of the instance.
    #[arg(long)]
    all: bool,
    /// Where the archive goes; `-` for standard output.
    #[arg(long, short)]
    output: PathBuf,
    /// Compress with zstd (also chosen by an output name ending in `.zst`).
    #[arg(long)]
    zstd: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// An archive written by `mssante export` (plain tar or zstd).
    archive: PathBuf,
    /// Check the archive and report conflicts without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Print one line on standard output per durable step (archive checked, batch staged,
    /// BAL finished), for scripts and logs.
    #[arg(long)]
    progress: bool,
    /// Messages staged per transaction: what a kill can lose and the re-run redoes.
    #[arg(long, default_value_t = mssante_portability::import::BATCH_MESSAGES)]
    batch: usize,
}

/// `--progress`: one line per step, flushed at once so that a reader sees it as it happens.
struct StepLines;

impl Progress for StepLines {
    fn update(&mut self, _done: u64, _total: u64) {}

    fn step(&mut self, what: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{what}");
        let _ = out.flush();
    }
}

/// A progress line on a terminal, twice a second at most.
struct TerminalProgress {
    verb: &'static str,
    last: Option<Instant>,
}

impl Progress for TerminalProgress {
    fn update(&mut self, done: u64, total: u64) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
        if due || done == total {
            self.last = Some(Instant::now());
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            eprint!("\r{} {done}/{total} messages ({pct}%)", self.verb);
            if done == total {
                eprintln!();
            }
        }
    }
}

fn progress(verb: &'static str) -> Box<dyn Progress + Send> {
    if std::io::stderr().is_terminal() {
        Box::new(TerminalProgress { verb, last: None })
    } else {
        Box::new(Quiet)
    }
}

pub async fn export(store: &Store, args: ExportArgs) -> Result<()> {
    let scope = match (args.bal, args.domain, args.all) {
        (Some(bal), None, false) => Scope::Bal(bal),
        (None, Some(domain), false) => Scope::Domain(domain),
        (None, None, true) => Scope::All,
        _ => bail!("say what to export: --bal ADDRESS, --domain NAME or --all"),
    };
    let to_stdout = args.output.as_os_str() == "-";
    let zstd = args.zstd || args.output.extension().is_some_and(|e| e == "zst");
    let started = Instant::now();
    let store = store.clone();
    let handle = tokio::runtime::Handle::current();
    let output = args.output.clone();
    let summary = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut progress = progress("exported");
        if to_stdout {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            Ok(mssante_portability::export(
                &store,
                &handle,
                &scope,
                out,
                zstd,
                &mut *progress,
            )?)
        } else {
            let file = std::fs::File::create_new(&output).with_context(|| {
                format!("{}: cannot create (it must not exist)", output.display())
            })?;
            let out = std::io::BufWriter::with_capacity(1 << 20, &file);
            let summary =
                mssante_portability::export(&store, &handle, &scope, out, zstd, &mut *progress);
            if summary.is_err() {
                let _ = std::fs::remove_file(&output);
            }
            let summary = summary?;
            file.sync_all()?;
            Ok(summary)
        }
    })
    .await??;
    eprintln!(
        "exported {} BAL(s), {} messages ({} bytes) in {:.1} s; manifest SHA-256 {}",
        summary.bals,
        summary.messages,
        summary.bytes,
        started.elapsed().as_secs_f64(),
        summary.manifest_sha256
    );
    Ok(())
}

pub async fn import(store: &Store, args: ImportArgs) -> Result<()> {
    let started = Instant::now();
    let store = store.clone();
    let handle = tokio::runtime::Handle::current();
    let archive = args.archive.clone();
    let (dry_run, batch) = (args.dry_run, args.batch);
    let steps = args.progress;
    let report = tokio::task::spawn_blocking(move || {
        let mut progress: Box<dyn Progress + Send> = if steps {
            Box::new(StepLines)
        } else {
            progress("imported")
        };
        mssante_portability::import::import_batched(
            &store,
            &handle,
            &archive,
            dry_run,
            batch,
            &mut *progress,
        )
    })
    .await??;
    for outcome in &report.outcomes {
        match outcome {
            BalOutcome::Imported { address, messages } => {
                println!("{address}\timported\t{messages} messages")
            }
            BalOutcome::AlreadyImported { address } => {
                println!("{address}\talready imported from this archive")
            }
            BalOutcome::Conflict { address } => {
                println!("{address}\tCONFLICT: exists on this instance, left unchanged")
            }
            BalOutcome::Valid { address, messages } => {
                println!("{address}\tvalid\t{messages} messages (dry run: nothing written)")
            }
        }
    }
    for d in &report.dropped_seen {
        println!(
            "{}\tdelegate \\Seen of {} not {}: {} entries (neither a grantee of the BAL nor a BAL here)",
            d.address,
            d.reader,
            if dry_run {
                "to be imported"
            } else {
                "imported"
            },
            d.entries
        );
    }
    eprintln!(
        "archive {} (manifest SHA-256 {}) {} in {:.1} s",
        args.archive.display(),
        report.manifest_sha256,
        if dry_run { "checked" } else { "imported" },
        started.elapsed().as_secs_f64()
    );
    let conflicts = report.conflicts();
    if conflicts > 0 {
        bail!("{conflicts} BAL(s) in conflict were not imported");
    }
    Ok(())
}
