//! `mssante access …`: which professional identities may open which ORG/CAB BAL
//! (habilitations; the holder of a PER BAL needs none), and `mssante delegation …`: who
//! works in a BAL on its holder's behalf, with which rights (ADR 0016). One access model,
//! one file: both are rows of `access_grants`.

use anyhow::{Result, anyhow};
use clap::Subcommand;
use mssante_mail::date::{iso_date, parse_iso_date};
use mssante_store::{Delegation, Grantee, NewDelegation, Store, parse_rights};

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
                until_text(grant.not_after)
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
                    until_text(grant.not_after)
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

fn until_text(not_after: Option<i64>) -> String {
    match not_after {
        Some(end) => format!("until {} included", iso_date(end - 1)),
        None => "until revoked".into(),
    }
}

#[derive(Subcommand)]
pub enum DelegationCommand {
    /// Lets a grantee work in a BAL: a local account (its address), the members of an ORG or
    /// CAB BAL (its address) or a PSC identity (its national id). Granting again replaces
    /// the rights, folders and end date.
    Grant {
        /// The delegated BAL.
        bal: String,
        /// Who receives it: a BAL address or a national identifier.
        #[arg(long)]
        to: String,
        /// `read` (l r s), `secretary` (read + w i x t e + send), `manager` (secretary + a),
        /// or RFC 4314 letters (`0` is send on behalf).
        #[arg(long, default_value = "secretary")]
        rights: String,
        /// Only this folder and its subfolders (repeat for several); default: every folder.
        #[arg(long = "folder", value_name = "FOLDER")]
        folders: Vec<String>,
        /// Last day of the delegation (YYYY-MM-DD, UTC, included); none = until revoked.
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: Option<String>,
    },
    /// Ends a delegation now: the grantee's open sessions lose the BAL at their next command.
    Revoke {
        bal: String,
        #[arg(long)]
        to: String,
    },
    /// Lists delegations, of one BAL and/or to one grantee (ended ones are removed first,
    /// into the audit trail).
    List {
        #[arg(long)]
        bal: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

pub async fn run_delegation(store: &Store, cmd: DelegationCommand) -> Result<()> {
    match cmd {
        DelegationCommand::Grant {
            bal,
            to,
            rights,
            folders,
            until,
        } => {
            let grantee = Grantee::parse(&to)?;
            let rights = parse_rights(&rights).map_err(|e| anyhow!("--rights: {e}"))?;
            let not_after = until.as_deref().map(end_of_day).transpose()?;
            let d = store
                .grant_delegation(&NewDelegation {
                    bal: &bal,
                    grantee: &grantee,
                    rights,
                    folders: &folders,
                    not_after,
                    author: "operator",
                    client: "",
                })
                .await?;
            println!("{}", delegation_line(&d));
        }
        DelegationCommand::Revoke { bal, to } => {
            let grantee = Grantee::parse(&to)?;
            if !store
                .revoke_delegation(&bal, &grantee, "operator", "")
                .await?
            {
                return Err(anyhow!("{to} had no delegation on {bal}"));
            }
            println!("{grantee} may no longer work in {bal}");
        }
        DelegationCommand::List { bal, to } => {
            store.expire_delegations().await?;
            let grantee = to.as_deref().map(Grantee::parse).transpose()?;
            for d in store.delegations(bal.as_deref(), grantee.as_ref()).await? {
                println!("{}", delegation_line(&d));
            }
        }
    }
    Ok(())
}

/// `BAL  grantee  kind  rights  until …`, tab-separated like `access list`.
fn delegation_line(d: &Delegation) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        d.bal,
        d.grantee,
        d.grantee.kind(),
        d.rights_text(),
        until_text(d.not_after)
    )
}
