//! `mssante access …`: which professional identities may open which ORG/CAB BAL
//! (habilitations; the holder of a PER BAL needs none, delegations come with issue 14).

use anyhow::{Result, anyhow};
use clap::Subcommand;
use mssante_mail::date::{iso_date, parse_iso_date};
use mssante_store::{AccessGrant, Store};

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Lets a professional identity open an ORG or CAB BAL (XOAUTH2 with their PSC token).
    Grant {
        /// The BAL.
        bal: String,
        /// The identity as Pro Santé Connect gives it (SubjectNameID, e.g. 8 + RPPS).
        #[arg(long)]
        national_id: String,
        /// Last day of the habilitation (YYYY-MM-DD, UTC, included); none = until revoked.
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: Option<String>,
    },
    /// Removes a habilitation.
    Revoke {
        bal: String,
        #[arg(long)]
        national_id: String,
    },
    /// Lists habilitations, of one BAL and/or one identity.
    List {
        #[arg(long)]
        bal: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
    },
}

pub async fn run(store: &Store, cmd: AccessCommand) -> Result<()> {
    match cmd {
        AccessCommand::Grant {
            bal,
            national_id,
            until,
        } => {
            let not_after = until.as_deref().map(end_of_day).transpose()?;
            let grant = store
                .grant_habilitation(&bal, &national_id, not_after)
                .await?;
            println!(
                "{} may open {} ({})",
                grant.national_id,
                grant.bal,
                until_text(&grant)
            );
        }
        AccessCommand::Revoke { bal, national_id } => {
            if store.revoke_habilitation(&bal, &national_id).await? {
                println!("{national_id} may no longer open {bal}");
            } else {
                return Err(anyhow!("{national_id} had no habilitation on {bal}"));
            }
        }
        AccessCommand::List { bal, national_id } => {
            for grant in store
                .access_grants(bal.as_deref(), national_id.as_deref())
                .await?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    grant.bal,
                    grant.national_id,
                    grant.origin.as_str(),
                    grant.rights,
                    until_text(&grant)
                );
            }
        }
    }
    Ok(())
}

/// `--until 2027-01-31` keeps the access through that day: it ends at the next midnight UTC.
fn end_of_day(date: &str) -> Result<i64> {
    parse_iso_date(date)
        .map(|midnight| midnight + 86_400)
        .ok_or_else(|| anyhow!("--until: {date:?} is not a date (YYYY-MM-DD)"))
}

fn until_text(grant: &AccessGrant) -> String {
    match grant.not_after {
        Some(end) => format!("until {} included", iso_date(end - 1)),
        None => "until revoked".into(),
    }
}
