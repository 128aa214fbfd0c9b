//! `mssante migrate` (ADR 0032, docs/migration.md): copies BALs from another operator's
//! IMAP server (a Postfix + Dovecot installation, typically) into ours.
//!
//! - `wire.rs`: the responses, parsed without I/O; `client.rs`: the connection (TLS first);
//! - `names.rs`: folder names (modified UTF-7, hierarchy delimiter, special use);
//! - `accounts.rs`: the CSV list of accounts;
//! - `folder.rs`: one folder, copied and verified;
//! - `report.rs`: the verification report and the cut-over verdict.
//!
//! Accounts run `jobs` at a time, one connection each; a failing account is reported and
//! the others go on.

pub mod accounts;
pub mod client;
mod folder;
pub mod names;
pub mod report;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use mssante_store::Store;

pub use accounts::{Account, Secret};
pub use client::{Credential, Endpoint, Security, SourceError};
pub use report::{BalReport, FolderReport, Side};

use client::Connection;
use wire::{ListEntry, Untagged};

/// What every account of a run shares.
#[derive(Clone)]
pub struct Options {
    pub source: Endpoint,
    pub tls: Arc<rustls::ClientConfig>,
    /// Accounts migrated at the same time.
    pub jobs: usize,
}

/// Migrates `accounts`, `options.jobs` at a time; `on_report` sees each BAL's report as it
/// is done. Returns the reports in the order of `accounts`.
pub async fn migrate_all(
    store: &Store,
    options: &Options,
    accounts: Vec<Account>,
    mut on_report: impl FnMut(&BalReport),
) -> Vec<BalReport> {
    let limit = Arc::new(tokio::sync::Semaphore::new(options.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let count = accounts.len();
    for (index, account) in accounts.into_iter().enumerate() {
        let (store, options, limit) = (store.clone(), options.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore never closed");
            (index, migrate_account(&store, &options, &account).await)
        });
    }
    let mut reports: Vec<Option<BalReport>> = vec![None; count];
    while let Some(joined) = tasks.join_next().await {
        let (index, report) = joined.expect("a migration task panicked");
        on_report(&report);
        reports[index] = Some(report);
    }
    reports.into_iter().flatten().collect()
}

/// Migrates one account; every failure ends up in the report's `error`.
pub async fn migrate_account(store: &Store, options: &Options, account: &Account) -> BalReport {
    let started = Instant::now();
    let mut report = BalReport {
        origin: account.origin.clone(),
        login: account.login.clone(),
        target: account.target.clone(),
        ..BalReport::default()
    };
    if let Err(e) = run_account(store, options, account, &mut report).await {
        report.error = Some(e.0);
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

fn credential(secret: &Secret) -> Result<Credential, SourceError> {
    match secret {
        Secret::Password(p) => Ok(Credential::Password(p.clone())),
        Secret::TokenFile(path) => {
            let token = std::fs::read_to_string(path).map_err(|e| {
                SourceError(format!(
                    "cannot read the token file {}: {e}",
                    path.display()
                ))
            })?;
            let token = token.trim();
            if token.is_empty() {
                return Err(SourceError(format!(
                    "the token file {} is empty",
                    path.display()
                )));
            }
            Ok(Credential::XOAuth2Token(token.to_string()))
        }
    }
}

fn store_failed(e: mssante_store::StoreError) -> SourceError {
    SourceError(format!("store: {e}"))
}

async fn run_account(
    store: &Store,
    options: &Options,
    account: &Account,
    report: &mut BalReport,
) -> Result<(), SourceError> {
    let bal = store
        .find_bal(&account.target)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            SourceError(format!(
                "the target BAL {} does not exist here (create it first: mssante bal create)",
                account.target
            ))
        })?;
    let credential = credential(&account.secret)?;
    let mut conn = Connection::connect(&options.source, options.tls.clone()).await?;
    conn.authenticate(&account.login, &credential).await?;
    let mailboxes = list(&mut conn).await?;
    let subscribed = subscriptions(&mut conn).await?;
    let special_targets: HashMap<String, String> = store
        .folders(bal.id)
        .await
        .map_err(store_failed)?
        .into_iter()
        .filter_map(|f| Some((f.special_use?.to_ascii_lowercase(), f.name)))
        .collect();
    let mut delimiters = HashMap::new();
    // Source name → ours, for subscriptions (a special-use folder may change name).
    let mut targets: HashMap<String, String> = HashMap::new();
    for entry in &mailboxes {
        let source = names::decode(&entry.name).ok_or_else(|| {
            SourceError(format!(
                "folder name {:?} is neither modified UTF-7 nor UTF-8",
                String::from_utf8_lossy(&entry.name)
            ))
        })?;
        delimiters.insert(source.clone(), entry.delimiter);
        // RFC 9051 §7.3.1: \Noselect and \NonExistent names hold no messages.
        if entry.has_attribute("\\Noselect") || entry.has_attribute("\\NonExistent") {
            continue;
        }
        let special_use = names::special_use(&entry.attributes);
        let target = special_use
            .and_then(|u| special_targets.get(&u.to_ascii_lowercase()).cloned())
            .unwrap_or_else(|| names::translate(&source, entry.delimiter));
        let folder_report = folder::migrate(
            store,
            &mut conn,
            bal.id,
            entry,
            &source,
            &target,
            special_use,
        )
        .await?;
        report.folders.push(folder_report);
        targets.insert(source, target);
    }
    // RFC 9051 §6.3.7: subscriptions are names, kept even for folders that do not exist.
    for name in subscribed {
        let target = targets.get(&name).cloned().unwrap_or_else(|| {
            let delimiter = delimiters.get(&name).copied().flatten();
            names::translate(&name, delimiter.or(conn_delimiter(&mailboxes)))
        });
        store
            .set_subscription(bal.id, &target, true)
            .await
            .map_err(store_failed)?;
        report.subscriptions += 1;
    }
    conn.logout().await;
    Ok(())
}

/// The delimiter of the personal namespace, for subscribed names that LIST did not show.
fn conn_delimiter(mailboxes: &[ListEntry]) -> Option<char> {
    mailboxes.iter().find_map(|m| m.delimiter)
}

/// Every mailbox (RFC 9051 §6.3.9), with the special-use attributes (RFC 6154 §2; LIST
/// RETURN needs LIST-EXTENDED, RFC 5258 §3).
async fn list(conn: &mut Connection) -> Result<Vec<ListEntry>, SourceError> {
    let command = if conn.has_capability("SPECIAL-USE") && conn.has_capability("LIST-EXTENDED") {
        "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
    } else {
        "LIST \"\" \"*\""
    };
    let (untagged, _) = conn.run(command).await?;
    Ok(untagged
        .into_iter()
        .filter_map(|u| match u {
            Untagged::List(entry) => Some(entry),
            _ => None,
        })
        .collect())
}

/// The subscribed names, decoded: LSUB (RFC 3501 §6.3.9; IMAP4rev2 servers answer it too
/// or LIST (SUBSCRIBED), RFC 9051 §6.3.9.1, which is asked when LSUB is refused).
async fn subscriptions(conn: &mut Connection) -> Result<Vec<String>, SourceError> {
    let untagged = match conn.run("LSUB \"\" \"*\"").await {
        Ok((untagged, _)) => untagged,
        Err(_) => conn.run("LIST (SUBSCRIBED) \"\" \"*\"").await?.0,
    };
    Ok(untagged
        .into_iter()
        .filter_map(|u| match u {
            Untagged::Lsub(entry) => Some(entry),
            Untagged::List(entry) if entry.has_attribute("\\Subscribed") => Some(entry),
            _ => None,
        })
        .filter_map(|entry| names::decode(&entry.name))
        .collect())
}
