//! `mssante config …`: the example file and the check of the file in force.

use anyhow::Result;
use clap::Subcommand;

use crate::config::{Config, EXAMPLE};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Prints a complete, commented configuration.
    Example,
    /// Checks the configuration and prints the values in force.
    Check,
}

pub fn example() -> Result<()> {
    print!("{EXAMPLE}");
    Ok(())
}

pub fn run(cmd: ConfigCommand, config: &Config) -> Result<()> {
    match cmd {
        ConfigCommand::Example => example(),
        ConfigCommand::Check => {
            println!("{config:#?}");
            Ok(())
        }
    }
}
