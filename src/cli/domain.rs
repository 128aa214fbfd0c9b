//! `mssante domain …`: the local domains BALs are created in.

use anyhow::Result;
use clap::Subcommand;
use mssante_store::Store;

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Adds a local domain (BALs can then be created in it).
    Add { name: String },
    /// Lists local domains.
    List,
}

pub async fn run(store: &Store, cmd: DomainCommand) -> Result<()> {
    match cmd {
        DomainCommand::Add { name } => {
            let d = store.add_domain(&name).await?;
            println!("domain {} added", d.name);
        }
        DomainCommand::List => {
            for d in store.list_domains().await? {
                println!("{}", d.name);
            }
        }
    }
    Ok(())
}
