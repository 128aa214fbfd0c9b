//! `mssante doctor`: what breaks in production, checked before opening, one line per check
//! with the reason and the fix (`--json` for machines). Nothing is written: the data dir,
//! database and lock file are only read, the network only asked (DNS through the resolver
//! the relay uses, the PSC keys when `[psc]` is set).
//!
//! - [`local`]: configuration, database and migrations, national directory freshness, data
//!   dir and disk, listeners;
//! - [`certs`]: our certificate (keys, expiry, chain to the IGC-Santé roots), the whitelist
//!   (loaded, fresh) and our DN listed for each local domain;
//! - [`network`]: DNS of the local domains (MX, client SRV records) and of peers, Pro Santé
//!   Connect.

mod certs;
mod local;
mod network;

use std::path::Path;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::config::Config;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// One JSON object on stdout (`{"ok": …, "checks": [{"name", "status", "message",
    /// "fix"}]}`) instead of lines.
    #[arg(long)]
    json: bool,
    /// A peer operator's domain whose MX the relay must resolve (repeatable).
    #[arg(long = "peer", value_name = "DOMAIN")]
    peers: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's verdict. `fix` says what to do when it is not OK.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(name: impl Into<String>, message: impl Into<String>, fix: &str) -> Check {
        Check {
            status: Status::Warn,
            fix: Some(fix.to_string()),
            ..Check::ok(name, message)
        }
    }

    pub fn fail(name: impl Into<String>, message: impl Into<String>, fix: &str) -> Check {
        Check {
            status: Status::Fail,
            fix: Some(fix.to_string()),
            ..Check::ok(name, message)
        }
    }

    /// `OK   name: message`, with `; fix: …` when there is one.
    fn line(&self) -> String {
        let status = match self.status {
            Status::Ok => "OK  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        match &self.fix {
            Some(fix) => format!("{status} {}: {}; fix: {fix}", self.name, self.message),
            None => format!("{status} {}: {}", self.name, self.message),
        }
    }
}

/// Runs every check, prints them, fails (exit 1) when one FAILs.
pub fn run(config_path: Option<&Path>, args: DoctorArgs) -> Result<()> {
    let checks = match Config::load(config_path) {
        Ok(config) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(all_checks(&config, &args.peers))
        }
        Err(e) => vec![local::config_refused(&e)],
    };
    print(&checks, args.json)?;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        bail!("doctor: {failed} check(s) failed");
    }
    Ok(())
}

async fn all_checks(config: &Config, peers: &[String]) -> Vec<Check> {
    let mut checks = vec![local::config_parsed(config)];
    checks.extend(local::data_dir(config));
    let (database, domains) = local::database(config).await;
    checks.extend(database);
    checks.extend(local::listeners(config));
    checks.extend(certs::checks(config, &domains));
    checks.extend(network::dns(config, &domains, peers).await);
    checks.extend(network::psc(config).await);
    checks
}

fn print(checks: &[Check], json: bool) -> Result<()> {
    if json {
        let ok = checks.iter().all(|c| c.status != Status::Fail);
        let doc = serde_json::json!({ "ok": ok, "checks": checks });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for check in checks {
            println!("{}", check.line());
        }
    }
    Ok(())
}

/// Seconds since the epoch, now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
