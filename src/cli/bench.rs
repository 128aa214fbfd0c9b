//! `mssante bench-seed` (hidden): fills the tracking tables with many messages "sent from
//! here" in large transactions, for the status-lookup benchmark of the HTTP API
//! (bench/README.md, `http-status`), and prints the query plans of the status lookup. Not for
//! production instances: the rows are fake traces of sends that never happened.

use anyhow::{Result, bail};
use clap::Args;
use mssante_store::{Address, Store};

#[derive(Args)]
pub struct BenchSeedArgs {
    /// The sending BAL the messages are tracked for (it must exist).
    #[arg(long)]
    pub from: String,
    /// Messages to insert.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: i64,
    /// Recipients are user1..userN@DOMAIN (another operator's).
    #[arg(long, default_value = "peer.invalid")]
    pub rcpt_domain: String,
    #[arg(long, default_value_t = 1000)]
    pub users: i64,
    /// Messages per transaction.
    #[arg(long, default_value_t = 100_000)]
    pub batch: i64,
    /// Write `FIRST LAST` (the seeded message ids) to this file.
    #[arg(long)]
    pub ids_file: Option<std::path::PathBuf>,
}

pub async fn seed(store: &Store, args: BenchSeedArgs) -> Result<()> {
    if args.count < 1 || args.batch < 1 {
        bail!("bench-seed: --count and --batch must be positive");
    }
    let from = Address::parse(&args.from)
        .map_err(|e| anyhow::anyhow!("bench-seed: --from {:?}: {e}", args.from))?;
    let started = std::time::Instant::now();
    let range = store
        .seed_tracked_messages(&from, &args.rcpt_domain, args.users, args.count, args.batch)
        .await?;
    eprintln!(
        "seeded {} tracked messages (ids {}..={}) in {:.1} s",
        range.last_id - range.first_id + 1,
        range.first_id,
        range.last_id,
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.ids_file {
        std::fs::write(path, format!("{} {}\n", range.first_id, range.last_id))?;
    }
    for plan in store.status_query_plans(range.last_id).await? {
        println!("{plan}");
    }
    Ok(())
}
