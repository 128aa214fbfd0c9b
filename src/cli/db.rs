//! `mssante db …`: the database schema. Migrations are this explicit step (ADR 0021): the
//! other commands create the schema of an empty database but never upgrade an existing one,
//! and every command refuses a schema newer than the binary.

use anyhow::Result;
use clap::Subcommand;
use mssante_store::{SchemaPolicy, SchemaStatus};

use crate::config::Config;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Applies the migrations this binary carries that the database lacks (back up first).
    Migrate {
        /// Stops after this migration version (a stepwise upgrade); all by default.
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
    },
    /// Applied and pending migrations; exits 1 unless the schema is current.
    Status,
}

pub async fn run(config: &Config, cmd: DbCommand) -> Result<()> {
    super::instance_dir(config)?;
    let store = crate::serve::open_store_with(config, SchemaPolicy::AsIs).await?;
    let result = match cmd {
        DbCommand::Migrate { to } => migrate(&store, to).await,
        DbCommand::Status => status(&store).await,
    };
    store.close().await;
    result
}

async fn migrate(store: &mssante_store::Store, to: Option<i64>) -> Result<()> {
    let applied = store.migrate(to).await?;
    let latest = last_applied(&store.schema_status().await?);
    match applied.as_slice() {
        [] => println!("schema already at migration {latest}: nothing to apply"),
        _ => println!(
            "applied migrations {}; schema now at {latest}",
            applied
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    Ok(())
}

async fn status(store: &mssante_store::Store) -> Result<()> {
    let status = store.schema_status().await?;
    println!("engine      {:?}", store.engine());
    println!(
        "applied     {} (latest {})",
        status.applied.len(),
        last_applied(&status)
    );
    println!(
        "binary      knows up to {}",
        SchemaStatus::latest_known(store.engine())
    );
    if let Some(refusal) = status.refusal(SchemaPolicy::MigrateFresh) {
        anyhow::bail!("{refusal}");
    }
    if !status.pending.is_empty() {
        anyhow::bail!("empty database: `mssante init` creates its schema");
    }
    println!("state       current");
    Ok(())
}

fn last_applied(status: &SchemaStatus) -> String {
    status
        .applied
        .last()
        .map_or("none".into(), |v| v.to_string())
}
