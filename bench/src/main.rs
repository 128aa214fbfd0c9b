//! mssante-bench: a load generator for SMTP/IMAP servers, ours and the reference stack alike.
//! See bench/README.md.

mod common;
mod http;
mod http_run;
mod imap;
mod imap_args;
mod imap_profile;
mod imap_run;
mod kmem;
mod login;
mod messages;
mod net;
mod pairs;
mod procfs;
mod psc;
mod smtp;
mod smtp_run;
mod stats;
mod summary;
mod wait;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mssante-bench",
    version,
    about = "SMTP/IMAP/HTTP API load generator"
)]
struct Cli {
    /// Write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Server PIDs (comma separated): their process trees' CPU time and memory are measured.
    #[arg(long, global = true, env = "BENCH_SERVER_PIDS")]
    server_pid: Option<String>,
    /// Worker threads of the generator (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Send N messages over C connections; optionally wait until all are delivered.
    Smtp(smtp_run::SmtpArgs),
    /// C HTTP API clients sending N reports in bulk requests of B (issue 13).
    HttpBulk(http_run::HttpBulkArgs),
    /// C HTTP API clients asking the status of random messages of a seeded range.
    HttpStatus(http_run::HttpStatusArgs),
    /// S IMAP sessions running a client mix for a while.
    Imap(imap_args::ImapArgs),
    /// C clients logging in and out in a loop (XOAUTH2 with a PSC token, or PLAIN).
    Login(login::LoginArgs),
    /// A stand-in Pro Santé Connect for `login`: serves its JWKS, writes one token per user.
    PscIssuer(psc::IssuerArgs),
    /// Open K authenticated sessions, hold them in IDLE, report server memory.
    Connections(imap_args::ConnArgs),
    /// Open K bare loopback TCP connections to ourselves: kernel memory per connection end
    /// (the client's share to subtract in `connections --client-kernel-kb`).
    Pairs(pairs::PairsArgs),
    /// The listener of `pairs` (a child process).
    #[command(hide = true)]
    PairsListener,
    /// Medians of the key figures over several --json result files.
    Summary { files: Vec<PathBuf> },
    /// Write one message of a kind (bio, discharge, imaging) to stdout, for inspection.
    Sample {
        #[arg(default_value = "bio")]
        kind: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let pids = match &cli.server_pid {
        Some(s) => common::parse_pids(s)?,
        None => Vec::new(),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build()?;
    let json = cli.json.as_deref();
    rt.block_on(async {
        match cli.mode {
            Mode::Smtp(a) => smtp_run::run(a, &pids, json).await,
            Mode::HttpBulk(a) => http_run::run_bulk(a, &pids, json).await,
            Mode::HttpStatus(a) => http_run::run_status(a, &pids, json).await,
            Mode::Imap(a) => imap_run::run_mix(a, &pids, json).await,
            Mode::Login(a) => login::run(a, &pids, json).await,
            Mode::PscIssuer(a) => psc::run(a).await,
            Mode::Connections(a) => imap_run::run_connections(a, &pids, json).await,
            Mode::Pairs(a) => pairs::run(a, json).await,
            Mode::PairsListener => pairs::listener().await,
            Mode::Sample { kind } => messages::write_sample(&kind),
            Mode::Summary { files } => summary::run(&files),
        }
    })
}
