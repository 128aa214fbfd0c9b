//! `mssante backup DEST` and `mssante restore SRC`: an online copy of a SQLite instance and
//! its return into a new data dir. The consistency argument is in `store/src/backup.rs`;
//! PostgreSQL deployments back up with pg_dump or a base backup (README, "Backups").

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use mssante_store::{FileCopy, SchemaPolicy, Store, copy_new_files};

use crate::config::Config;

/// The database snapshot inside a backup.
const DATABASE: &str = "mssante.db";
/// Written last: a backup without it was interrupted and is refused by restore.
const MANIFEST: &str = "BACKUP";
/// Folders of the data dir copied besides the database: message bodies, the generated
/// certificate, the last good whitelist.
const FOLDERS: [&str; 3] = ["blobs", "tls", "trust"];

pub async fn backup(config: &Config, dest: &Path) -> Result<()> {
    let started = Instant::now();
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
        bail!(
            "{}: not empty; a backup goes into a new folder",
            dest.display()
        );
    }
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    // As it is: a backup is what an operator takes before `db migrate`.
    super::instance_dir(config)?;
    let store = crate::serve::open_store_with(config, SchemaPolicy::AsIs).await?;
    store.snapshot_database(&dest.join(DATABASE)).await?;
    store.close().await;
    // After the snapshot: every body file it refers to already exists (store/src/backup.rs).
    let copied = copy_folders(&config.data_dir, dest)?;
    let copy_url = format!("sqlite://{}", dest.join(DATABASE).display());
    let messages = check_instance(&copy_url, dest, SchemaPolicy::AsIs)
        .await
        .with_context(|| format!("the copy in {} fails its check", dest.display()))?;
    let _ = std::fs::remove_dir(dest.join("tmp")); // made by opening the copy, empty
    std::fs::write(
        dest.join(MANIFEST),
        format!(
            "mssante backup\nversion = {}\ncreated_unix = {}\nmessages = {messages}\nfiles = {}\n",
            env!("CARGO_PKG_VERSION"),
            mssante_store::now(),
            copied.files
        ),
    )?;
    std::fs::File::open(dest)?.sync_all()?;
    println!(
        "backup {}: database snapshot ({messages} messages), {} files ({} bytes), checked, in {:.1} s",
        dest.display(),
        copied.files,
        copied.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn restore(config: &Config, src: &Path) -> Result<()> {
    if !src.join(MANIFEST).is_file() {
        bail!(
            "{}: no {MANIFEST} file: not a complete mssante backup (interrupted?)",
            src.display()
        );
    }
    let database = mssante_store::sqlite_file(&config.database_url).ok_or_else(|| {
        anyhow!("restore is for SQLite; restore PostgreSQL with pg_restore (README, \"Backups\")")
    })?;
    let data_dir = &config.data_dir;
    if database.exists() || data_dir.join("blobs").exists() {
        bail!(
            "data_dir {} already holds an instance; restore into a new data dir (move this one \
             away first)",
            data_dir.display()
        );
    }
    std::fs::create_dir_all(data_dir)?;
    if let Some(parent) = database.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(src.join(DATABASE), &database)
        .with_context(|| format!("cannot copy the database to {}", database.display()))?;
    std::fs::File::open(&database)?.sync_all()?;
    let copied = copy_folders(src, data_dir)?;
    let messages = check_instance(&config.database_url, data_dir, SchemaPolicy::MigrateAll)
        .await
        .context("the restored instance fails its check")?;
    println!(
        "restored {} into {}: {messages} messages, {} files; start the server on it",
        src.display(),
        data_dir.display(),
        copied.files
    );
    Ok(())
}

fn copy_folders(from: &Path, to: &Path) -> Result<FileCopy> {
    let mut total = FileCopy::default();
    for folder in FOLDERS {
        let copied = copy_new_files(&from.join(folder), &to.join(folder))
            .with_context(|| format!("cannot copy {}", from.join(folder).display()))?;
        total.files += copied.files;
        total.bytes += copied.bytes;
    }
    Ok(total)
}

/// Opens an instance (a restored one is migrated if it is older, a backup copy is left as
/// it was taken), checks the database's integrity and that every body file it records is
/// there; returns its number of messages.
async fn check_instance(database_url: &str, data_dir: &Path, policy: SchemaPolicy) -> Result<i64> {
    let store = Store::open_with(database_url, data_dir, policy).await?;
    let problems = store.integrity_problems().await?;
    let missing = store.missing_blob_files().await?;
    let messages = store.message_count().await?;
    store.close().await;
    if !problems.is_empty() {
        bail!("integrity check: {}", problems.join("; "));
    }
    if !missing.is_empty() {
        bail!("{} body files missing, e.g. {}", missing.len(), missing[0]);
    }
    Ok(messages)
}
