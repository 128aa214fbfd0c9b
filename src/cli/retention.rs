//! `mssante retention …`: the retention policy of `[retention]`, run now (the server runs it
//! daily too). Every deletion and every BAL warned, suspended or closed is printed.

use anyhow::Result;
use clap::Subcommand;
use mssante_store::Store;

use crate::config::Config;

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Deletes expired traces and warns, suspends or closes inactive BALs by policy.
    Run {
        /// Says what would be done, changes nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(store: &Store, config: &Config, cmd: RetentionCommand) -> Result<()> {
    let RetentionCommand::Run { dry_run } = cmd;
    for line in crate::retention::run(store, &config.retention, &config.hostname, dry_run).await? {
        println!("{line}");
    }
    Ok(())
}
