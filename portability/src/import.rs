//! `mssante import ARCHIVE`: recreates the BALs of an archive exactly (UIDs, UIDVALIDITY,
//! flags, dates, subscriptions, grants, receipts state).
//!
//! The archive is read twice. The first pass checks it whole (manifest and its SHA-256,
//! every file's size and SHA-256, nothing missing, nothing extra) and writes nothing: a
//! damaged or truncated archive is refused, naming the file, before any row exists. It is
//! all `--dry-run` does, with the conflicts it would meet. The second pass stages each
//! BAL's messages and makes the BAL visible in one commit (store `import.rs`); after a kill
//! it resumes at the first line not staged, and a BAL already imported from the same
//! archive is skipped. A BAL whose address exists otherwise is a conflict: reported, never
//! overwritten.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::Path;

use mssante_store::{ImportRun, StagedMessage, Store};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use crate::format::{self, BalEntry, FileSum, IndexLine, Manifest, ReaderSeen};
use crate::{Error, Progress, Result, convert};

/// Staged per transaction, at most (and at most 16 MiB): each commit rewrites the
/// pages it touched in the bodies' hash-keyed indexes (random keys: a page per message or
/// so), WAL then database, so the fewer commits the fewer rewrites (50,000 messages: 500 a
/// batch wrote 1.05 GB, batch up to 16 MiB 0.87 GB, BENCHMARKS.md). The byte cap keeps
/// memory flat; a kill loses at most one batch, which the re-run stages again.
pub const BATCH_MESSAGES: usize = 5000;
const BATCH_BYTES: usize = 16 << 20;
/// A manifest larger than this is not one of ours (it holds no messages).
const MANIFEST_MAX: u64 = 256 << 20;

/// What became of one BAL of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BalOutcome {
    /// Created now, with this many message placements.
    Imported { address: String, messages: u64 },
    /// Created by an earlier run of this archive.
    AlreadyImported { address: String },
    /// The address exists on this instance: left alone.
    Conflict { address: String },
    /// `--dry-run`: checked, would be created.
    Valid { address: String, messages: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    pub manifest_sha256: String,
    pub outcomes: Vec<BalOutcome>,
    /// Delegates' own `\Seen` (ADR 0034) not imported: the reader is neither a grantee of
    /// the BAL nor a BAL of this instance or of the archive.
    pub dropped_seen: Vec<DroppedSeen>,
}

/// A delegate whose read state on a BAL was left out of the import, and how many entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedSeen {
    pub address: String,
    pub reader: String,
    pub entries: u64,
}

impl ImportReport {
    pub fn conflicts(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, BalOutcome::Conflict { .. }))
            .count()
    }
}

/// What the second pass does with a BAL.
enum Plan {
    Skip,
    /// `readers`: the delegates whose own `\Seen` is imported.
    Stage {
        run_id: i64,
        staged: i64,
        readers: HashSet<String>,
    },
}

/// Checks `archive`, then (unless `dry_run`) imports it. Runs on a blocking thread.
pub fn import(
    store: &Store,
    handle: &Handle,
    archive: &Path,
    dry_run: bool,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    import_batched(store, handle, archive, dry_run, BATCH_MESSAGES, progress)
}

/// [`import`] staging `batch_messages` messages per transaction (at most, and at most
/// 16 MiB): each batch is one [`Progress::step`], and what a kill can lose.
pub fn import_batched(
    store: &Store,
    handle: &Handle,
    archive: &Path,
    dry_run: bool,
    batch_messages: usize,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    let (manifest, manifest_sha256) = read_archive(archive, &mut |_, _, _| Ok(()))?;
    progress.step(&format!("checked {manifest_sha256}"));
    let mut outcomes = Vec::new();
    let mut plans = Vec::new();
    let mut dropped_seen = Vec::new();
    for bal in &manifest.bals {
        let (outcome, plan) = plan_bal(store, handle, &manifest_sha256, bal, dry_run)?;
        if let BalOutcome::AlreadyImported { address } | BalOutcome::Conflict { address } = &outcome
        {
            progress.step(&format!("skipped {address}"));
        }
        let mut plan = plan;
        if let BalOutcome::Imported { .. } | BalOutcome::Valid { .. } = &outcome {
            let unknown = unknown_readers(store, handle, &manifest, bal)?;
            if let Plan::Stage { readers, .. } = &mut plan {
                readers.retain(|r| !unknown.iter().any(|d| &d.reader == r));
            }
            dropped_seen.extend(unknown);
        }
        outcomes.push(outcome);
        plans.push(plan);
    }
    if dry_run {
        return Ok(ImportReport {
            manifest_sha256,
            outcomes,
            dropped_seen,
        });
    }
    let total: u64 = manifest.bals.iter().map(|b| b.messages).sum();
    let bal_count = manifest.bals.len() as u64;
    let mut done = 0u64;
    let mut batch: Vec<StagedMessage> = Vec::new();
    let mut batch_bytes = 0usize;
    read_archive(archive, &mut |bal_index, seq, message| {
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        if message.is_some() {
            done += 1;
            progress.update(done, total);
        }
        let Plan::Stage {
            run_id,
            staged,
            ref readers,
        } = plans[bal_index]
        else {
            if message.is_none() {
                progress.bals(bal_index as u64 + 1, bal_count);
            }
            return Ok(());
        };
        let address = &manifest.bals[bal_index].address;
        match message {
            Some((line, raw)) => {
                if seq < staged {
                    return Ok(());
                }
                batch_bytes += raw.len();
                let keep = |reader: &str| readers.contains(reader);
                batch.push(convert::staged_message(seq, line, raw, keep));
                if batch.len() >= batch_messages.max(1) || batch_bytes >= BATCH_BYTES {
                    batch_bytes = 0;
                    stage(store, handle, run_id, &mut batch, address, progress)?;
                }
            }
            None => {
                // The BAL's last file: stage the rest and make it visible.
                if !batch.is_empty() {
                    batch_bytes = 0;
                    stage(store, handle, run_id, &mut batch, address, progress)?;
                }
                let snapshot = convert::bal_snapshot(&manifest.bals[bal_index]);
                handle.block_on(store.finish_import(run_id, &snapshot))?;
                progress.step(&format!("finished {address}"));
                progress.bals(bal_index as u64 + 1, bal_count);
            }
        }
        Ok(())
    })?;
    Ok(ImportReport {
        manifest_sha256,
        outcomes,
        dropped_seen,
    })
}

/// The delegates with a `\Seen` of their own on `bal` whose state has nowhere to go here: not
/// a grantee of the BAL (its grants are imported with it), not a BAL of this instance nor of
/// the archive. Their entries are reported, not imported.
fn unknown_readers(
    store: &Store,
    handle: &Handle,
    manifest: &Manifest,
    bal: &BalEntry,
) -> Result<Vec<DroppedSeen>> {
    let mut dropped = Vec::new();
    for r in &bal.delegate_seen {
        let grantee = bal.grants.iter().any(|g| g.grantee == r.reader);
        let archived = manifest.bals.iter().any(|b| b.address == r.reader);
        let known = grantee
            || archived
            || (r.reader.contains('@') && handle.block_on(store.find_bal(&r.reader))?.is_some());
        if !known {
            dropped.push(DroppedSeen {
                address: bal.address.clone(),
                reader: r.reader.clone(),
                entries: r.entries,
            });
        }
    }
    Ok(dropped)
}

/// Writes `batch` in one transaction, then says so.
fn stage(
    store: &Store,
    handle: &Handle,
    run_id: i64,
    batch: &mut Vec<StagedMessage>,
    address: &str,
    progress: &mut dyn Progress,
) -> Result<()> {
    let last = batch.last().map_or(0, |m| m.seq);
    handle.block_on(store.stage_messages(run_id, std::mem::take(batch)))?;
    progress.step(&format!("staged {address} {}", last + 1));
    Ok(())
}

fn plan_bal(
    store: &Store,
    handle: &Handle,
    archive: &str,
    bal: &BalEntry,
    dry_run: bool,
) -> Result<(BalOutcome, Plan)> {
    let address = bal.address.clone();
    let exists = handle.block_on(store.find_bal(&address))?.is_some();
    if exists {
        let ours = handle.block_on(store.import_finished(archive, &address))?;
        let outcome = if ours {
            BalOutcome::AlreadyImported { address }
        } else {
            BalOutcome::Conflict { address }
        };
        return Ok((outcome, Plan::Skip));
    }
    if dry_run {
        let messages = bal.messages;
        return Ok((BalOutcome::Valid { address, messages }, Plan::Skip));
    }
    match handle.block_on(store.import_run(archive, &address))? {
        ImportRun::Staging { run_id, staged } => Ok((
            BalOutcome::Imported {
                address,
                messages: bal.messages,
            },
            Plan::Stage {
                run_id,
                staged,
                readers: bal.delegate_seen.iter().map(|r| r.reader.clone()).collect(),
            },
        )),
        // Done, but the BAL is gone (closed and removed since): do not bring it back.
        ImportRun::Done { .. } => Ok((BalOutcome::AlreadyImported { address }, Plan::Skip)),
    }
}

/// Called for each message of each BAL (its index in the manifest, its line number, the line
/// and its verified bytes), then once with `None` after the BAL's last message.
type OnMessage<'a> = dyn FnMut(usize, i64, Option<(IndexLine, Vec<u8>)>) -> Result<()> + 'a;

/// Reads the whole archive, checking every file against the manifest, and hands each
/// message to `on_message`. Returns the manifest and its SHA-256.
fn read_archive(path: &Path, on_message: &mut OnMessage<'_>) -> Result<(Manifest, String)> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::Usage(format!("{name}: {e}")))?;
    read_stream(BufReader::with_capacity(1 << 20, file), &name, on_message)
}

/// An archive that passed the first pass (what `--dry-run` checks before it asks the store).
#[derive(Debug)]
pub struct Checked {
    pub manifest: Manifest,
    pub manifest_sha256: String,
    /// Every index line, in archive order, with the index of its BAL in the manifest.
    pub lines: Vec<(usize, IndexLine)>,
}

/// The first pass of an import on any byte stream (tar, or zstd-compressed tar), without a
/// store: every check [`import`] makes before it writes, and each message turned into what
/// the store would stage. The fuzz target `export_archive` drives the import through it.
pub fn check(archive: impl Read) -> Result<Checked> {
    let mut lines = Vec::new();
    let (manifest, manifest_sha256) = read_stream(
        BufReader::new(archive),
        "archive",
        &mut |bal, seq, message| {
            if let Some((line, raw)) = message {
                lines.push((bal, line.clone()));
                drop(convert::staged_message(seq, line, raw, |_| true));
            }
            Ok(())
        },
    )?;
    for bal in &manifest.bals {
        drop(convert::bal_snapshot(bal));
    }
    Ok(Checked {
        manifest,
        manifest_sha256,
        lines,
    })
}

fn read_stream<'a>(
    archive: impl BufRead + 'a,
    name: &str,
    on_message: &mut OnMessage<'_>,
) -> Result<(Manifest, String)> {
    let mut tar = tar::Archive::new(decompressed(archive, name)?);
    let mut entries = tar.entries().map_err(|e| corrupt(name, e))?;
    let mut next = |expected: &str| -> Result<tar::Entry<'_, Box<dyn Read + 'a>>> {
        match entries.next() {
            Some(Ok(entry)) => {
                let path = entry.path().map_err(|e| corrupt(expected, e))?;
                let path = path.to_string_lossy().to_string();
                if path != expected {
                    return Err(Error::Corrupt {
                        file: path,
                        problem: format!("found where {expected} was expected"),
                    });
                }
                Ok(entry)
            }
            Some(Err(e)) => Err(corrupt(expected, e)),
            None => Err(Error::Corrupt {
                file: expected.to_string(),
                problem: "missing: the archive ends before it (truncated?)".into(),
            }),
        }
    };
    let manifest_bytes = read_limited(next(format::MANIFEST)?, format::MANIFEST, MANIFEST_MAX)?;
    let manifest_sha256 = format::sha256_hex(&manifest_bytes);
    let sum = read_limited(next(format::MANIFEST_SUM)?, format::MANIFEST_SUM, 1024)?;
    let sum = String::from_utf8_lossy(&sum);
    if sum.split_whitespace().next() != Some(manifest_sha256.as_str()) {
        return Err(Error::Corrupt {
            file: format::MANIFEST.into(),
            problem: format!("its SHA-256 is not the one in {}", format::MANIFEST_SUM),
        });
    }
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| Error::Corrupt {
            file: format::MANIFEST.into(),
            problem: e.to_string(),
        })?;
    check_version(&manifest)?;
    for bal in &manifest.bals {
        check_readers(&bal.delegate_seen)?;
    }
    for (i, bal) in manifest.bals.iter().enumerate() {
        within_bal(bal, &bal.index.path)?;
        let index = spool_checked(next(&bal.index.path)?, &bal.index)?;
        for side in &bal.files {
            within_bal(bal, &side.path)?;
            spool_checked(next(&side.path)?, side)?;
        }
        let mut seen_check = SeenCheck::new(bal);
        let mut seq = 0i64;
        for line in BufReader::new(index).lines() {
            let line = line?;
            let line: IndexLine = serde_json::from_str(&line).map_err(|e| Error::Corrupt {
                file: bal.index.path.clone(),
                problem: format!("line {}: {e}", seq + 1),
            })?;
            seen_check.line(&line).map_err(|problem| Error::Corrupt {
                file: bal.index.path.clone(),
                problem: format!("line {}: {problem}", seq + 1),
            })?;
            within_bal(bal, &line.path)?;
            let raw = read_message(next(&line.path)?, &line)?;
            on_message(i, seq, Some((line, raw)))?;
            seq += 1;
        }
        if seq as u64 != bal.messages {
            return Err(Error::Corrupt {
                file: bal.index.path.clone(),
                problem: format!("{seq} lines, the manifest says {}", bal.messages),
            });
        }
        seen_check.finish().map_err(|problem| Error::Corrupt {
            file: bal.index.path.clone(),
            problem,
        })?;
        on_message(i, seq, None)?;
    }
    if let Some(extra) = entries.next() {
        let file = extra
            .ok()
            .and_then(|e| e.path().ok().map(|p| p.to_string_lossy().to_string()))
            .unwrap_or_else(|| "(unreadable entry)".into());
        return Err(Error::Corrupt {
            file,
            problem: "not listed in the manifest".into(),
        });
    }
    Ok((manifest, manifest_sha256))
}

/// Refuses a file the manifest names outside its BAL's folder (or with `.`, `..` or empty
/// steps): nothing reads those paths as files today, but another tool extracting an archive
/// we accepted must not write outside the BAL either.
fn within_bal(bal: &BalEntry, path: &str) -> Result<()> {
    if format::within_bal(&bal.address, path) {
        return Ok(());
    }
    Err(Error::Corrupt {
        file: path.to_string(),
        problem: format!("outside {}/", format::bal_dir(&bal.address)),
    })
}

fn corrupt(file: &str, e: std::io::Error) -> Error {
    Error::Corrupt {
        file: file.to_string(),
        problem: e.to_string(),
    }
}

/// The archive's bytes, decompressed when they start with the zstd magic number.
fn decompressed<'a>(mut archive: impl BufRead + 'a, name: &str) -> Result<Box<dyn Read + 'a>> {
    let magic = archive.fill_buf()?;
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::Decoder::with_buffer(archive).map_err(|e| corrupt(name, e))?;
        Ok(Box::new(decoder))
    } else {
        Ok(Box::new(archive))
    }
}

/// The manifest's list of a BAL's delegates with a `\Seen` of their own: each named once.
fn check_readers(readers: &[ReaderSeen]) -> Result<()> {
    let mut names = HashSet::new();
    for r in readers {
        if r.reader.trim().is_empty() || !names.insert(r.reader.as_str()) {
            return Err(Error::Corrupt {
                file: format::MANIFEST.into(),
                problem: format!("delegate_seen: reader {:?} empty or listed twice", r.reader),
            });
        }
    }
    Ok(())
}

/// Checks the delegates' `\Seen` of a BAL's index lines (format version 2) against its
/// manifest entry: a listed reader, once per line, on a placement in a known folder, a
/// modseq the folder has reached; and as many entries per reader as the manifest says.
struct SeenCheck<'a> {
    /// Folder name → its HIGHESTMODSEQ.
    folders: HashMap<&'a str, i64>,
    /// Reader → (entries the manifest announces, entries met).
    readers: HashMap<&'a str, (u64, u64)>,
}

impl<'a> SeenCheck<'a> {
    fn new(bal: &'a BalEntry) -> SeenCheck<'a> {
        SeenCheck {
            folders: bal
                .folders
                .iter()
                .map(|f| (f.name.as_str(), f.highestmodseq))
                .collect(),
            readers: bal
                .delegate_seen
                .iter()
                .map(|r| (r.reader.as_str(), (r.entries, 0)))
                .collect(),
        }
    }

    fn line(&mut self, line: &IndexLine) -> std::result::Result<(), String> {
        if line.delegate_seen.is_empty() {
            return Ok(());
        }
        let Some(&highest) = self.folders.get(line.folder.as_str()) else {
            return Err(format!(
                "delegate_seen on a placement in no folder of the BAL ({:?})",
                line.folder
            ));
        };
        for (n, d) in line.delegate_seen.iter().enumerate() {
            let Some(count) = self.readers.get_mut(d.reader.as_str()) else {
                return Err(format!(
                    "delegate_seen: reader {:?} is not in the manifest",
                    d.reader
                ));
            };
            count.1 += 1;
            if line.delegate_seen[..n].iter().any(|o| o.reader == d.reader) {
                return Err(format!("delegate_seen: reader {:?} twice", d.reader));
            }
            if d.modseq < 0 || d.modseq > highest {
                return Err(format!(
                    "delegate_seen: modseq {} of {:?} outside 0..={highest} (the folder's HIGHESTMODSEQ)",
                    d.modseq, d.reader
                ));
            }
        }
        Ok(())
    }

    fn finish(self) -> std::result::Result<(), String> {
        for (reader, (announced, met)) in self.readers {
            if announced != met {
                return Err(format!(
                    "delegate_seen: {met} entries for {reader:?}, the manifest says {announced}"
                ));
            }
        }
        Ok(())
    }
}

fn check_version(manifest: &Manifest) -> Result<()> {
    let known = format::OLDEST_READ_VERSION..=format::VERSION;
    if manifest.format != format::FORMAT || !known.contains(&manifest.version) {
        return Err(Error::Corrupt {
            file: format::MANIFEST.into(),
            problem: format!(
                "format {:?} version {}: this mssante reads {:?} versions {} to {}",
                manifest.format,
                manifest.version,
                format::FORMAT,
                format::OLDEST_READ_VERSION,
                format::VERSION
            ),
        });
    }
    Ok(())
}

fn read_limited(entry: impl Read, file: &str, max: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt(file, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::Corrupt {
            file: file.into(),
            problem: format!("larger than {max} bytes"),
        });
    }
    Ok(bytes)
}

/// Copies an entry to a temporary file, checking its size and SHA-256.
fn spool_checked(mut entry: impl Read, sum: &FileSum) -> Result<File> {
    let mut file = tempfile::tempfile()?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = entry.read(&mut buf).map_err(|e| corrupt(&sum.path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        size += n as u64;
    }
    check_sum(
        &sum.path,
        size,
        &hex::encode(hasher.finalize()),
        sum.size,
        &sum.sha256,
    )?;
    file.rewind()?;
    Ok(file)
}

fn read_message(entry: impl Read, line: &IndexLine) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(line.size.min(64 << 20) as usize);
    entry
        .take(line.size + 1)
        .read_to_end(&mut raw)
        .map_err(|e| corrupt(&line.path, e))?;
    let sha = format::sha256_hex(&raw);
    check_sum(&line.path, raw.len() as u64, &sha, line.size, &line.sha256)?;
    Ok(raw)
}

fn check_sum(file: &str, size: u64, sha: &str, want_size: u64, want_sha: &str) -> Result<()> {
    if size != want_size {
        return Err(Error::Corrupt {
            file: file.into(),
            problem: format!("{size} bytes, {want_size} expected (truncated?)"),
        });
    }
    if sha != want_sha {
        return Err(Error::Corrupt {
            file: file.into(),
            problem: "its SHA-256 does not match the manifest".into(),
        });
    }
    Ok(())
}
