//! `mssante directory …`: import, LDAP sync, lookups and history, for operators and cron jobs
//! (the work itself is the `directory` crate's).

use anyhow::{Context, bail};
use mssante_store::{DirectoryEntry, ImportRecord, NameQuery, Store};

use mssante_directory::ldap::{SyncMode, sync_ldap_with};
use mssante_directory::{
    DirectoryConfig, ImportOptions, ImportReport, Progress, import_extraction,
};

#[derive(clap::Subcommand, Debug, Clone)]
pub enum DirectoryCommand {
    /// Import the national extraction (a .txt or .zip file, or an https:// URL).
    Import {
        /// File or URL; defaults to `[directory] extraction` of the configuration.
        location: Option<String>,
        /// Apply even if the row count dropped by more than `max_drop`.
        #[arg(long)]
        force: bool,
        /// Largest accepted drop in row count, as a fraction (default: configuration, else 0.10).
        #[arg(long)]
        max_drop: Option<f64>,
    },
    /// Sync the LDAP directory of `[directory.ldap]`: only the entries modified since the last
    /// sync (`modifyTimestamp`) when the server gives timestamps, in full every `full_every`
    /// runs (deleted entries are removed only then).
    SyncLdap {
        /// Apply even if the row count dropped by more than `max_drop` (full syncs).
        #[arg(long)]
        force: bool,
        /// Read the whole directory now (removes deleted entries).
        #[arg(long)]
        full: bool,
    },
    /// Look entries up in the local copy (no network).
    Lookup {
        /// An address, a national id / RPPS, or a name prefix.
        query: String,
        /// First-name prefix, for a name search.
        #[arg(long)]
        first_name: Option<String>,
        /// Profession code (TRE_G15, `10`) or label (`médecin`), for a name search.
        #[arg(long)]
        profession: Option<String>,
        /// Postcode prefix, for a name search.
        #[arg(long)]
        postcode: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show the latest imports; with an id, its rejected lines and changed addresses.
    History {
        id: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

pub async fn run(
    cmd: DirectoryCommand,
    store: &Store,
    config: &DirectoryConfig,
) -> anyhow::Result<()> {
    match cmd {
        DirectoryCommand::Import {
            location,
            force,
            max_drop,
        } => {
            let location = location.or_else(|| config.extraction.clone()).context(
                "no extraction given: pass a file or URL, or set [directory] extraction",
            )?;
            let options = ImportOptions {
                max_drop: max_drop.unwrap_or(config.max_drop()),
                force,
            };
            let mut progress = Progress::new("importing the extraction");
            let report = import_extraction(store, &location, options, &mut progress).await?;
            print_report(&report)
        }
        DirectoryCommand::SyncLdap { force, full } => {
            let ldap = config
                .ldap
                .as_ref()
                .context("no [directory.ldap] section in the configuration")?;
            let options = ImportOptions {
                max_drop: config.max_drop(),
                force,
            };
            let mut progress = Progress::new("syncing LDAP");
            let mode = if full { SyncMode::Full } else { SyncMode::Auto };
            let report = sync_ldap_with(store, ldap, options, mode, &mut progress).await?;
            print_report(&report)
        }
        DirectoryCommand::Lookup {
            query,
            first_name,
            profession,
            postcode,
            limit,
        } => {
            let entries = lookup(store, &query, first_name, profession, postcode, limit).await?;
            if entries.is_empty() {
                println!("no entry");
            }
            for entry in &entries {
                println!("{}", entry_line(entry));
            }
            Ok(())
        }
        DirectoryCommand::History { id: Some(id), .. } => print_import_details(store, id).await,
        DirectoryCommand::History { id: None, limit } => {
            for record in store.directory_history(limit).await? {
                println!("{}", record_line(&record));
            }
            Ok(())
        }
    }
}

/// An address when the query has an `@`, a national id when it is an identifier, else a name.
async fn lookup(
    store: &Store,
    query: &str,
    first_name: Option<String>,
    profession: Option<String>,
    postcode: Option<String>,
    limit: i64,
) -> anyhow::Result<Vec<DirectoryEntry>> {
    let query = query.trim();
    if query.contains('@') {
        return Ok(store.directory_by_address(query).await?);
    }
    if query.len() >= 9 && query.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(store.directory_by_national_id(query).await?);
    }
    let name = NameQuery {
        name: query.to_string(),
        first_name,
        profession,
        postcode,
        limit,
    };
    Ok(store.directory_search_name(&name).await?)
}

fn entry_line(entry: &DirectoryEntry) -> String {
    let r = &entry.row;
    let who = format!("{} {} {}", r.civility, r.first_name, r.name)
        .trim()
        .to_string();
    let place = format!(
        "{} {}",
        r.postcode,
        r.addr_l6
            .split_once(' ')
            .map(|(_, city)| city)
            .unwrap_or("")
    );
    format!(
        "{}\t{}\t{}\t{}\t{}\t{} {}\t{}\t[{}]",
        r.address,
        r.bal_type,
        r.national_id,
        who,
        r.profession_label,
        r.structure_id,
        r.structure_name,
        place.trim(),
        entry.source
    )
}

fn record_line(r: &ImportRecord) -> String {
    format!(
        "#{} {} {} {} rows={} addresses={} rejected={} added={} removed={} modified={}{} {}{}",
        r.id,
        r.started_at,
        r.source,
        r.status.as_str(),
        r.rows,
        r.addresses,
        r.rejected,
        r.added,
        r.removed,
        r.modified,
        if r.forced { " forced" } else { "" },
        r.origin,
        r.message
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    )
}

fn print_report(report: &ImportReport) -> anyhow::Result<()> {
    println!("{}", record_line(&report.record));
    for reject in &report.rejects {
        println!(
            "rejected line {}: {} ({})",
            reject.line, reject.kind, reject.detail
        );
    }
    if report.record.status != mssante_store::ImportStatus::Ok {
        bail!(
            "{}",
            report
                .record
                .message
                .as_deref()
                .unwrap_or("import not applied")
        );
    }
    Ok(())
}

async fn print_import_details(store: &Store, id: i64) -> anyhow::Result<()> {
    println!("{}", record_line(&store.directory_import(id).await?));
    for reject in store.directory_import_rejects(id).await? {
        println!(
            "rejected line {}: {} ({})",
            reject.line, reject.kind, reject.detail
        );
    }
    let changes = store.directory_import_changes(id).await?;
    for (what, addresses) in [
        ("added", &changes.added),
        ("removed", &changes.removed),
        ("modified", &changes.modified),
    ] {
        for address in addresses {
            println!("{what} {address}");
        }
    }
    Ok(())
}
