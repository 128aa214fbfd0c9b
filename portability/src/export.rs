//! `mssante export`: BALs to a tar stream (format in `format.rs`), in constant memory.
//!
//! Two passes. The first reads each BAL's metadata and its folders page by page and spools
//! the index and the Maildir side files to temporary files (hashing them as they are
//! written), so that the manifest, which lists their SHA-256, can come first in the archive.
//! The second writes the manifest, then each BAL's spooled files and its messages, read from
//! the store one by one by the SHA-256 the index names: bodies are immutable and never
//! deleted, so the messages written are exactly those the index was built from, even while
//! the server keeps running.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use mssante_store::{BalSnapshot, FolderEntry as StoredEntry, Store};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use crate::format::{self, BalEntry, FileSum, FolderEntry, IndexLine, Manifest, ReaderSeen};
use crate::maildir::{self, Keywords};
use crate::{Error, Progress, Result, convert};

/// Messages read per query while indexing a folder.
const PAGE: i64 = 1000;

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Bal(String),
    Domain(String),
    All,
}

impl Scope {
    fn describe(&self) -> String {
        match self {
            Scope::Bal(a) => format!("bal {a}"),
            Scope::Domain(d) => format!("domain {d}"),
            Scope::All => "all".into(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub bals: u64,
    pub messages: u64,
    pub bytes: u64,
    pub manifest_sha256: String,
}

/// A temporary file written once, hashed as it is written.
struct Spool {
    writer: BufWriter<File>,
    hasher: Sha256,
    size: u64,
}

impl Spool {
    fn new(dir: &std::path::Path) -> Result<Spool> {
        Ok(Spool {
            writer: BufWriter::new(tempfile::tempfile_in(dir)?),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// The file rewound for reading, and its sum under `path`.
    fn finish(self, path: String) -> Result<(File, FileSum)> {
        let mut file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        let sum = FileSum {
            path,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        };
        Ok((file, sum))
    }
}

/// A BAL after the first pass: its manifest entry and its spooled files.
struct SpooledBal {
    entry: BalEntry,
    index: File,
    side_files: Vec<(File, FileSum)>,
}

/// Writes the archive of `scope` to `out` (plain tar, or zstd when `zstd` is set). Runs on a
/// blocking thread; `handle` runs the store's queries.
pub fn export(
    store: &Store,
    handle: &Handle,
    scope: &Scope,
    out: impl Write,
    zstd: bool,
    progress: &mut dyn Progress,
) -> Result<ExportSummary> {
    let addresses = match scope {
        Scope::Bal(address) => vec![handle.block_on(store.bal(address))?.address.to_string()],
        Scope::Domain(domain) => {
            if !handle.block_on(store.is_local_domain(domain))? {
                return Err(Error::Usage(format!("{domain} is not a local domain")));
            }
            handle.block_on(store.bal_addresses(Some(domain)))?
        }
        Scope::All => handle.block_on(store.bal_addresses(None))?,
    };
    let spool_dir = tempfile::tempdir()?;
    let mut spooled = Vec::with_capacity(addresses.len());
    for address in &addresses {
        spooled.push(spool_bal(store, handle, address, spool_dir.path())?);
    }
    let manifest = Manifest {
        format: format::FORMAT.into(),
        version: format::VERSION,
        created_at: mssante_store::now(),
        producer: format!("mssante {}", env!("CARGO_PKG_VERSION")),
        source_engine: format!("{:?}", store.engine()).to_lowercase(),
        scope: scope.describe(),
        bals: spooled.iter().map(|s| s.entry.clone()).collect(),
    };
    if zstd {
        let mut encoder = zstd::Encoder::new(out, 3)?;
        let summary = write_archive(store, handle, &manifest, spooled, &mut encoder, progress)?;
        encoder.finish()?.flush()?;
        Ok(summary)
    } else {
        let mut out = out;
        let summary = write_archive(store, handle, &manifest, spooled, &mut out, progress)?;
        out.flush()?;
        Ok(summary)
    }
}

fn spool_bal(
    store: &Store,
    handle: &Handle,
    address: &str,
    dir: &std::path::Path,
) -> Result<SpooledBal> {
    let (bal_id, snapshot) = handle.block_on(store.bal_snapshot(address))?;
    let bal_dir = format::bal_dir(&snapshot.bal.address);
    let mut index = Spool::new(dir)?;
    let mut side_files = Vec::new();
    let mut folders = Vec::with_capacity(snapshot.folders.len());
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut readers: BTreeMap<String, u64> = BTreeMap::new();
    for folder in &snapshot.folders {
        let fdir = maildir::folder_dir(&folder.name);
        let root = format!("{bal_dir}/Maildir/{fdir}");
        let root = root.trim_end_matches('/').to_string();
        let mut keywords = Keywords::default();
        let mut uidlist = Spool::new(dir)?;
        uidlist.write(maildir::uidlist_header(folder.uidvalidity, folder.uidnext).as_bytes())?;
        let mut count = 0u64;
        let mut after = 0;
        loop {
            let page =
                handle.block_on(store.folder_entries_page(bal_id, folder.id, after, PAGE))?;
            let Some(last) = page.last() else { break };
            after = last.uid;
            for stored in &page {
                let line = index_line(store, handle, &folder.name, &root, stored, &mut keywords)?;
                let base = line.path.rsplit('/').next().unwrap_or_default();
                let base = base.split(':').next().unwrap_or_default();
                uidlist.write(maildir::uidlist_line(line.uid, base).as_bytes())?;
                for d in &line.delegate_seen {
                    *readers.entry(d.reader.clone()).or_default() += 1;
                }
                let mut json = serde_json::to_vec(&line)?;
                json.push(b'\n');
                index.write(&json)?;
                count += 1;
                bytes += line.size;
            }
        }
        messages += count;
        side_files.push(uidlist.finish(format!("{root}/dovecot-uidlist"))?);
        if !keywords.names().is_empty() {
            let mut file = Spool::new(dir)?;
            file.write(keywords.file().as_bytes())?;
            side_files.push(file.finish(format!("{root}/dovecot-keywords"))?);
        }
        folders.push(convert::folder_entry(folder, fdir, keywords.names(), count));
    }
    let (sent, sent_bytes) = spool_sent(store, handle, bal_id, &bal_dir, &mut index)?;
    messages += sent;
    bytes += sent_bytes;
    let mut subscriptions = Spool::new(dir)?;
    subscriptions.write(subscriptions_file(&snapshot.subscriptions).as_bytes())?;
    side_files.push(subscriptions.finish(format!("{bal_dir}/Maildir/subscriptions"))?);
    let (index, index_sum) = index.finish(format!("{bal_dir}/index.jsonl"))?;
    let mut entry = bal_entry(&snapshot, folders, messages, bytes, index_sum, &side_files);
    entry.source_bal_id = bal_id;
    entry.delegate_seen = readers
        .into_iter()
        .map(|(reader, entries)| ReaderSeen { reader, entries })
        .collect();
    Ok(SpooledBal {
        entry,
        index,
        side_files,
    })
}

fn bal_entry(
    snapshot: &BalSnapshot,
    folders: Vec<FolderEntry>,
    messages: u64,
    bytes: u64,
    index: FileSum,
    side_files: &[(File, FileSum)],
) -> BalEntry {
    let mut entry = convert::bal_entry(snapshot, folders);
    entry.messages = messages;
    entry.bytes = bytes;
    entry.index = index;
    entry.files = side_files.iter().map(|(_, sum)| sum.clone()).collect();
    entry
}

/// Index lines for the messages the BAL sent that none of its folders holds (folder `""`):
/// they carry its receipts state. Returns how many, and their bytes.
fn spool_sent(
    store: &Store,
    handle: &Handle,
    bal_id: i64,
    bal_dir: &str,
    index: &mut Spool,
) -> Result<(u64, u64)> {
    let (mut count, mut bytes, mut after) = (0u64, 0u64, 0i64);
    loop {
        let page = handle.block_on(store.sent_entries_page(bal_id, after, PAGE))?;
        let Some(last) = page.last() else { break };
        after = last.message_number;
        for stored in &page {
            let receipts = handle.block_on(store.receipts_of(stored.message_number))?;
            let path = format!("{bal_dir}/sent/{}.eml", stored.message_number);
            let line = convert::index_line(
                "",
                stored,
                Vec::new(),
                path,
                Some(convert::receipts_entry(&receipts)),
            );
            let mut json = serde_json::to_vec(&line)?;
            json.push(b'\n');
            index.write(&json)?;
            count += 1;
            bytes += line.size;
        }
    }
    Ok((count, bytes))
}

/// Dovecot's subscriptions file (version 2): names with the hierarchy delimiter as a tab.
fn subscriptions_file(names: &[String]) -> String {
    let mut out = String::from("V\t2\n\n");
    for name in names {
        out.push_str(&name.replace('/', "\t"));
        out.push('\n');
    }
    out
}

fn index_line(
    store: &Store,
    handle: &Handle,
    folder: &str,
    root: &str,
    stored: &StoredEntry,
    keywords: &mut Keywords,
) -> Result<IndexLine> {
    let flags: Vec<String> = stored
        .flags
        .split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let suffix = maildir::info_suffix(&flags, keywords);
    let size = stored.size as u64;
    let base = maildir::base_name(stored.internaldate, stored.uid, &stored.blob_hash, size);
    let receipts = if stored.message.sent_by_bal {
        let receipts = handle.block_on(store.receipts_of(stored.message_number))?;
        Some(convert::receipts_entry(&receipts))
    } else {
        None
    };
    Ok(convert::index_line(
        folder,
        stored,
        flags,
        format!("{root}/cur/{base}:{suffix}"),
        receipts,
    ))
}

fn write_archive(
    store: &Store,
    handle: &Handle,
    manifest: &Manifest,
    spooled: Vec<SpooledBal>,
    out: &mut dyn Write,
    progress: &mut dyn Progress,
) -> Result<ExportSummary> {
    let mut tar = tar::Builder::new(out);
    let manifest_bytes = serde_json::to_vec_pretty(manifest)?;
    let manifest_sha256 = format::sha256_hex(&manifest_bytes);
    append(
        &mut tar,
        format::MANIFEST,
        &manifest_bytes,
        manifest.created_at,
    )?;
    let sum_line = format!("{manifest_sha256}  {}\n", format::MANIFEST);
    append(
        &mut tar,
        format::MANIFEST_SUM,
        sum_line.as_bytes(),
        manifest.created_at,
    )?;
    let total: u64 = manifest.bals.iter().map(|b| b.messages).sum();
    let mut summary = ExportSummary {
        bals: spooled.len() as u64,
        manifest_sha256,
        ..ExportSummary::default()
    };
    let bal_count = spooled.len() as u64;
    for (written, bal) in spooled.into_iter().enumerate() {
        append_file(
            &mut tar,
            &bal.entry.index,
            bal.index.try_clone()?,
            manifest.created_at,
        )?;
        for (file, sum) in &bal.side_files {
            append_file(&mut tar, sum, file.try_clone()?, manifest.created_at)?;
        }
        let mut index = bal.index;
        index.rewind()?;
        for line in BufReader::new(index).lines() {
            let line: IndexLine = serde_json::from_str(&line?)?;
            let raw = handle.block_on(store.read_blob(&line.sha256))?;
            if format::sha256_hex(&raw) != line.sha256 {
                return Err(Error::Corrupt {
                    file: line.path.clone(),
                    problem: "the stored body does not match its SHA-256".into(),
                });
            }
            append(&mut tar, &line.path, &raw, line.internaldate)?;
            summary.messages += 1;
            summary.bytes += raw.len() as u64;
            progress.update(summary.messages, total);
            if progress.cancelled() {
                return Err(Error::Cancelled);
            }
        }
        progress.bals(written as u64 + 1, bal_count);
    }
    tar.finish()?;
    Ok(summary)
}

fn header(size: u64, mtime: i64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime.max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append(
    tar: &mut tar::Builder<&mut dyn Write>,
    path: &str,
    bytes: &[u8],
    mtime: i64,
) -> Result<()> {
    let mut h = header(bytes.len() as u64, mtime);
    tar.append_data(&mut h, path, bytes)?;
    Ok(())
}

fn append_file(
    tar: &mut tar::Builder<&mut dyn Write>,
    sum: &FileSum,
    file: File,
    mtime: i64,
) -> Result<()> {
    let mut h = header(sum.size, mtime);
    let mut file = file;
    file.rewind()?;
    tar.append_data(&mut h, &sum.path, file)?;
    Ok(())
}
