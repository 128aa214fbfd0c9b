//! `mssante dns records DOMAIN`: the zone lines an operator publishes for a local domain.

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum DnsCommand {
    /// Prints the MX, SRV (RFC 6186, RFC 8314) and autoconfig records of a local domain,
    /// from the advertised names and ports ([public]).
    Records {
        /// A local domain (`mssante domain add`).
        domain: String,
    },
}

pub async fn run(store: &mssante_store::Store, config: &Config, cmd: DnsCommand) -> Result<()> {
    let DnsCommand::Records { domain } = cmd;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !store.is_local_domain(&domain).await? {
        bail!("{domain} is not a local domain (add it with: mssante domain add {domain})");
    }
    print!(
        "{}",
        mssante_api_lps::autoconfig::dns::zone_lines(&domain, &config.public)
    );
    Ok(())
}
