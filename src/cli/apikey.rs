//! `mssante apikey …`: keys of the HTTP API for systems without a professional's token
//! (laboratories, hospital software). The secret is printed once and stored hashed.

use anyhow::{Result, anyhow};
use clap::Subcommand;
use mssante_mail::date::iso_date;
use mssante_store::{API_SCOPES, NewApiKey, Store};

#[derive(Subcommand)]
pub enum ApikeyCommand {
    /// Creates a key and prints its secret (shown this once only).
    Create {
        /// What the key is for (e.g. the laboratory system's name).
        #[arg(long)]
        name: String,
        /// send, read, status, directory, delegation, audit or admin; repeat or separate
        /// with commas.
        #[arg(long = "scope", required = true, value_delimiter = ',')]
        scopes: Vec<String>,
        /// The key acts on every BAL of this domain.
        #[arg(long)]
        domain: Option<String>,
        /// The key acts on this BAL; repeat for several.
        #[arg(long = "bal")]
        bals: Vec<String>,
    },
    /// Lists keys (never their secrets).
    List,
    /// Revokes a key by its id (the `mss_<id>_` part); it stops working at once.
    Revoke { key_id: String },
}

pub async fn run(store: &Store, cmd: ApikeyCommand) -> Result<()> {
    match cmd {
        ApikeyCommand::Create {
            name,
            scopes,
            domain,
            bals,
        } => {
            let created = store
                .create_api_key(&NewApiKey {
                    name,
                    scopes,
                    domain,
                    bals,
                })
                .await
                .map_err(|e| anyhow!("{e} (scopes: {})", API_SCOPES.join(", ")))?;
            eprintln!(
                "key {} created; its secret is printed below, this once only: keep it now",
                created.key.key_id
            );
            println!("{}", created.secret);
        }
        ApikeyCommand::List => {
            for key in store.api_keys().await? {
                let reach = match (&key.domain, key.bals.is_empty()) {
                    (Some(domain), _) => format!("domain {domain}"),
                    (None, false) => key.bals.join(","),
                    (None, true) => "all".into(),
                };
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {}", iso_date(at)),
                    None => "active".into(),
                };
                println!(
                    "{}\t{}\t{}\t{}\tcreated {}\t{}",
                    key.key_id,
                    key.name,
                    key.scopes.join(","),
                    reach,
                    iso_date(key.created_at),
                    state
                );
            }
        }
        ApikeyCommand::Revoke { key_id } => {
            let key_id = key_id
                .strip_prefix("mss_")
                .map(|rest| rest.split('_').next().unwrap_or(rest))
                .unwrap_or(&key_id)
                .to_string();
            if !store.revoke_api_key(&key_id).await? {
                return Err(anyhow!(
                    "no active key {key_id} (see `mssante apikey list`)"
                ));
            }
            println!("key {key_id} revoked");
        }
    }
    Ok(())
}
