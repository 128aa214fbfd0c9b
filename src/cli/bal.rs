//! `mssante bal …`: create, list, show, suspend, close and remove BALs, set passwords and
//! quotas.

use std::io::BufRead;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use mssante_directory::publication::BalChange;
use mssante_store::{Bal, BalStatus, BalType, NewBal, Store, hash_password};

#[derive(Subcommand)]
pub enum BalCommand {
    /// Creates a BAL and its folders (INBOX, Sent, Drafts, Trash).
    Create(CreateBal),
    /// Lists BALs.
    List {
        /// Only the BALs of this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Shows one BAL and its folders.
    Show { address: String },
    /// Suspends a BAL: mail to it is refused, logins too.
    Suspend { address: String },
    /// Reactivates a suspended BAL.
    Reactivate { address: String },
    /// Closes a BAL for good.
    Close { address: String },
    /// Removes a closed BAL (ADR 0033): deletes its folders and messages, aliases, grants,
    /// the delegations it received, its API key and client-certificate bindings; its audit
    /// trail stays (with a `remove` entry), its address stays reserved (550 5.1.1). Without
    /// --yes, says what would go and changes nothing.
    Remove {
        address: String,
        /// Confirm: this cannot be undone (export the BAL first).
        #[arg(long)]
        yes: bool,
    },
    /// Sets a BAL's storage quota (IMAP QUOTA, SMTP 552 5.2.2 when full).
    Quota {
        address: String,
        /// Quota in megabytes (1 MB = 1,048,576 bytes).
        #[arg(long, conflicts_with = "unlimited")]
        megabytes: Option<u64>,
        /// Remove the quota.
        #[arg(long)]
        unlimited: bool,
    },
    /// Gives a BAL a new address; the old one stays an alias (mail to it still arrives)
    /// unless --drop-old-address. Logins use the new address at once.
    Rename {
        address: String,
        new_address: String,
        /// Do not keep the old address as an alias (mail to it is then refused).
        #[arg(long)]
        drop_old_address: bool,
    },
    /// Other addresses of a BAL: mail to an alias is delivered to the BAL.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Sets a BAL's password, read from standard input.
    Passwd {
        address: String,
        /// Read the password from the first line of standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Makes ALIAS (in a local domain, not a BAL) another address of the BAL.
    Add { address: String, alias: String },
    /// Removes an alias: mail to it is refused from then on.
    Remove { alias: String },
    /// Lists the aliases of one BAL, or of all.
    List { address: Option<String> },
}

#[derive(Args)]
pub struct CreateBal {
    address: String,
    /// PER (professional), ORG (structure), APP (software), CAB (practice).
    #[arg(long = "type", value_name = "PER|ORG|APP|CAB")]
    bal_type: String,
    /// RPPS of the holder (PER), 11 digits.
    #[arg(long)]
    rpps: Option<String>,
    /// ADELI of the holder (PER without RPPS), 9 digits.
    #[arg(long)]
    adeli: Option<String>,
    /// FINESS of the structure (ORG, APP, CAB), 9 digits.
    #[arg(long)]
    finess: Option<String>,
    /// SIRET of the structure when it has no FINESS, 14 digits.
    #[arg(long)]
    siret: Option<String>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Not published in the national directory (liste rouge).
    #[arg(long)]
    liste_rouge: bool,
    /// Read a password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

const MIN_PASSWORD_CHARS: usize = 8;

/// First line of stdin, without its line end; refuses short passwords.
fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!(
            "password: at least {MIN_PASSWORD_CHARS} characters are required (read from standard input)"
        );
    }
    Ok(password)
}

/// `publish`: a `[directory.publication]` endpoint is configured, so BAL creations and
/// closures are queued for the national directory (docs/mssante.md §7).
pub async fn run(store: &Store, cmd: BalCommand, publish: bool) -> Result<()> {
    match cmd {
        BalCommand::Create(args) => {
            let bal = create(store, args).await?;
            if publish {
                queue_publication(store, &bal, BalChange::Created).await;
            }
        }
        BalCommand::List { domain } => {
            let bals = store.list_bals(domain.as_deref()).await?;
            println!(
                "{:<45} {:<4} {:<10} {:<13} NAME",
                "ADDRESS", "TYPE", "STATUS", "ID"
            );
            for b in bals {
                println!(
                    "{:<45} {:<4} {:<10} {:<13} {}",
                    b.address.as_str(),
                    b.bal_type.as_str(),
                    b.status.as_str(),
                    b.national_id
                        .as_deref()
                        .or(b.finess.as_deref())
                        .or(b.siret.as_deref())
                        .unwrap_or("-"),
                    b.display_name.as_deref().unwrap_or("")
                );
            }
        }
        BalCommand::Show { address } => show(store, &address).await?,
        BalCommand::Suspend { address } => {
            status(store, &address, BalStatus::Suspended).await?;
        }
        BalCommand::Reactivate { address } => {
            status(store, &address, BalStatus::Active).await?;
        }
        BalCommand::Close { address } => {
            let bal = status(store, &address, BalStatus::Closed).await?;
            if publish {
                queue_publication(store, &bal, BalChange::Closed).await;
            }
        }
        BalCommand::Remove { address, yes } => remove(store, &address, yes).await?,
        BalCommand::Quota {
            address,
            megabytes,
            unlimited,
        } => quota(store, &address, megabytes, unlimited).await?,
        BalCommand::Rename {
            address,
            new_address,
            drop_old_address,
        } => {
            let bal = store
                .rename_bal(&address, &new_address, !drop_old_address)
                .await?;
            let old = address.to_lowercase();
            match drop_old_address {
                true => println!("BAL {old} is now {}", bal.address),
                false => println!("BAL {old} is now {} ({old} stays an alias)", bal.address),
            }
            if publish {
                queue_publication(store, &bal, BalChange::Modified).await;
            }
        }
        BalCommand::Alias(cmd) => alias(store, cmd).await?,
        BalCommand::Passwd {
            address,
            password_stdin,
        } => {
            if !password_stdin {
                bail!(
                    "bal passwd: give --password-stdin and the password on standard input (never on the command line)"
                );
            }
            let hash = hash_password(&read_password()?)?;
            store.set_bal_password(&address, &hash).await?;
            println!("password of {} changed", address.to_lowercase());
        }
    }
    Ok(())
}

async fn create(store: &Store, args: CreateBal) -> Result<Bal> {
    let password_hash = match args.password_stdin {
        true => Some(hash_password(&read_password()?)?),
        false => None,
    };
    let new = NewBal {
        address: args.address,
        bal_type: BalType::parse(&args.bal_type).map_err(|e| anyhow!("--type: {e}"))?,
        rpps: args.rpps,
        adeli: args.adeli,
        finess: args.finess,
        siret: args.siret,
        display_name: args.name,
        password_hash,
        liste_rouge: args.liste_rouge,
    };
    let bal = store.create_bal(&new).await?;
    println!(
        "BAL {} created ({}, {})",
        bal.address,
        bal.bal_type.as_str(),
        describe_login(&bal)
    );
    Ok(bal)
}

fn describe_login(bal: &Bal) -> &'static str {
    if bal.has_password {
        "password login enabled"
    } else {
        "no password: set one with `bal passwd`"
    }
}

async fn alias(store: &Store, cmd: AliasCommand) -> Result<()> {
    match cmd {
        AliasCommand::Add { address, alias } => {
            let added = store.add_alias(&address, &alias).await?;
            println!("{} is now an alias of {}", added.address, added.bal_address);
        }
        AliasCommand::Remove { alias } => {
            let bal = store.remove_alias(&alias).await?;
            println!("alias {} of {bal} removed", alias.to_lowercase());
        }
        AliasCommand::List { address } => {
            for a in store.list_aliases(address.as_deref()).await? {
                println!("{:<45} -> {}", a.address, a.bal_address);
            }
        }
    }
    Ok(())
}

/// `bal remove`: without `--yes`, what would go and the export to make first.
async fn remove(store: &Store, address: &str, yes: bool) -> Result<()> {
    let address = address.to_lowercase();
    if !yes {
        let plan = store.bal_removal_plan(&address).await?;
        println!("removing {address} would delete {}", removal_line(&plan));
        println!(
            "export it first if its mail must be kept: mssante export --bal {address} \
             -o {address}.tar.zst"
        );
        bail!(
            "bal remove: nothing done; run again with --yes to remove {address} (cannot be undone)"
        );
    }
    let done = store.remove_bal(&address, "operator").await?;
    println!("BAL {address} removed: deleted {}", removal_line(&done));
    println!("its audit trail is kept (`mssante audit {address}`); its address stays reserved");
    Ok(())
}

fn removal_line(r: &mssante_store::BalRemoval) -> String {
    format!(
        "{} folders with {} messages, {} aliases, {} grants, {} delegations it received, \
         {} API key bindings ({} keys revoked), {} client certificates; {} queued messages \
         it sent are kept for delivery",
        r.folders,
        r.messages,
        r.aliases,
        r.grants,
        r.delegations_received,
        r.api_key_bindings,
        r.api_keys_revoked,
        r.client_certificates,
        r.queued_kept
    )
}

async fn quota(
    store: &Store,
    address: &str,
    megabytes: Option<u64>,
    unlimited: bool,
) -> Result<()> {
    let bytes = match (megabytes, unlimited) {
        (Some(mb), false) => Some(mb * 1024 * 1024),
        (None, true) => None,
        _ => bail!("bal quota: give --megabytes N or --unlimited"),
    };
    let bal = store.set_bal_quota(address, bytes).await?;
    match megabytes {
        Some(mb) => println!("quota of {} set to {mb} MB", bal.address),
        None => println!("quota of {} removed", bal.address),
    }
    Ok(())
}

async fn status(store: &Store, address: &str, to: BalStatus) -> Result<Bal> {
    let bal = store.set_bal_status(address, to).await?;
    println!("BAL {} is now {}", bal.address, bal.status.as_str());
    Ok(bal)
}

/// Queues the change for the national directory; a BAL the directory cannot represent yet
/// (no national or structure id) is reported, and the local change stands.
async fn queue_publication(store: &Store, bal: &Bal, change: BalChange) {
    match mssante_directory::publication::enqueue(store, bal, change, None).await {
        Ok(_) => println!("queued for publication in the national directory"),
        Err(e) => eprintln!(
            "warning: {} not queued for the national directory: {e:#}",
            bal.address
        ),
    }
}

async fn show(store: &Store, address: &str) -> Result<()> {
    let b = store.bal(address).await?;
    println!("address:      {}", b.address);
    println!("type:         {}", b.bal_type.as_str());
    println!("status:       {}", b.status.as_str());
    if let Some(at) = store.bal_removed_at(b.id).await? {
        println!("removed at:   {at} (content and accesses deleted, `bal remove`)");
    }
    for (label, value) in [
        ("national id:", &b.national_id),
        ("finess:", &b.finess),
        ("siret:", &b.siret),
        ("name:", &b.display_name),
    ] {
        if let Some(v) = value {
            println!("{label:<13} {v}");
        }
    }
    println!("liste rouge:  {}", if b.liste_rouge { "yes" } else { "no" });
    println!(
        "password:     {}",
        if b.has_password { "set" } else { "not set" }
    );
    let (used, quota) = store.bal_usage(b.id).await?;
    let quota = quota.map_or_else(
        || "unlimited".to_string(),
        |q| format!("{} MB", q / (1024 * 1024)),
    );
    println!("storage:      {} KB used, quota {quota}", used / 1024);
    println!("folders:");
    for f in store.folder_summaries(address).await? {
        println!(
            "  {:<10} {:>8} messages  uidvalidity {} uidnext {} highestmodseq {}",
            f.name, f.messages, f.uidvalidity, f.uidnext, f.highestmodseq
        );
    }
    Ok(())
}
