//! One source folder: examined read-only, its new messages copied with their flags and
//! internal dates, the flags of earlier copies brought up to date, and both sides compared.

use std::collections::{HashMap, HashSet};

use mssante_imap::message::datetime::parse_date_time;
use mssante_imap::message::message_meta;
use mssante_store::{FlagOp, Folder, MigratedMessage, SourceMessage, Store, StoreError};
use sha2::{Digest, Sha256};

use super::client::{Connection, SourceError, quote};
use super::report::{FolderReport, Side};
use super::store_failed;
use super::wire::{ListEntry, Response, Status, Untagged};

/// UIDs per UID FETCH of bodies: long enough to keep the source streaming, short enough
/// for the command line (RFC 9051 §4: servers take lines of at least 8000 octets).
const FETCH_CHUNK: usize = 200;

/// What the listing says of one source message.
struct Listed {
    uid: u32,
    flags: Vec<String>,
    internaldate: i64,
    size: u64,
    message_id: Option<String>,
}

pub(super) async fn migrate(
    store: &Store,
    conn: &mut Connection,
    bal_id: i64,
    entry: &ListEntry,
    source: &str,
    target: &str,
    special_use: Option<&str>,
) -> Result<FolderReport, SourceError> {
    let in_folder = |e: SourceError| SourceError(format!("folder {source:?}: {e}"));
    let folder = target_folder(store, bal_id, target, special_use).await?;
    let mailbox = quote(&entry.name).ok_or_else(|| {
        in_folder(SourceError(
            "the name cannot be sent back to the source".into(),
        ))
    })?;
    // RFC 9051 §6.3.3: EXAMINE is read-only, \Seen stays as the owner left it.
    let (untagged, _) = conn
        .run(&format!("EXAMINE {mailbox}"))
        .await
        .map_err(in_folder)?;
    let (uidvalidity, exists) = examined(&untagged)
        .ok_or_else(|| in_folder(SourceError("EXAMINE gave no UIDVALIDITY".into())))?;
    let records = store
        .migrated_messages(bal_id, source)
        .await
        .map_err(store_failed)?;
    // RFC 9051 §2.3.1.1: a new UIDVALIDITY means the old UIDs name nothing any more.
    let revalidated = records.iter().any(|r| r.uidvalidity != uidvalidity);
    let listing = if exists == 0 {
        Vec::new()
    } else {
        list_messages(conn, revalidated).await.map_err(in_folder)?
    };
    let mut known: HashMap<u32, MigratedMessage> = records
        .into_iter()
        .filter(|r| r.uidvalidity == uidvalidity)
        .map(|r| (r.source_uid, r))
        .collect();
    let copied_before: HashSet<u32> = known.keys().copied().collect();
    let mut report = FolderReport {
        source: source.to_string(),
        target: target.to_string(),
        ..FolderReport::default()
    };
    let at = |uid| SourceMessage {
        bal_id,
        folder: source.to_string(),
        uidvalidity,
        uid,
    };
    if revalidated {
        report.matched = match_again(store, &folder, &listing, &mut known, &at).await?;
        store
            .forget_migrated(bal_id, source, uidvalidity)
            .await
            .map_err(store_failed)?;
    }
    let to_copy: Vec<&Listed> = listing
        .iter()
        .filter(|m| !known.contains_key(&m.uid))
        .collect();
    for chunk in to_copy.chunks(FETCH_CHUNK) {
        copy_chunk(store, conn, &folder, chunk, &at, &mut known, &mut report)
            .await
            .map_err(in_folder)?;
    }
    report.flags_updated = update_flags(store, &folder, &listing, &known, &copied_before).await?;
    verify(store, &folder, &listing, &known, &mut report).await?;
    Ok(report)
}

/// Our folder `name`, created (with the source's special use) when missing.
async fn target_folder(
    store: &Store,
    bal_id: i64,
    name: &str,
    special_use: Option<&str>,
) -> Result<Folder, SourceError> {
    if let Some(f) = store.folder(bal_id, name).await.map_err(store_failed)? {
        return Ok(f);
    }
    match store.create_folder(bal_id, name, special_use).await {
        Ok(f) => Ok(f),
        // Created meanwhile by another account of the run going to the same BAL.
        Err(StoreError::Duplicate(_)) => store
            .folder(bal_id, name)
            .await
            .map_err(store_failed)?
            .ok_or_else(|| SourceError(format!("folder {name} vanished"))),
        Err(e) => Err(SourceError(format!("cannot create folder {name:?}: {e}"))),
    }
}

/// UIDVALIDITY (RFC 9051 §7.1, response code) and EXISTS (§7.4.1) of an EXAMINE.
fn examined(untagged: &[Untagged]) -> Option<(u32, u32)> {
    let mut uidvalidity = None;
    let mut exists = 0;
    for u in untagged {
        match u {
            Untagged::Status {
                code: Some(code), ..
            } => {
                if let Some(n) = code.strip_prefix("UIDVALIDITY ") {
                    uidvalidity = n.trim().parse().ok();
                }
            }
            Untagged::Exists(n) => exists = *n,
            _ => {}
        }
    }
    Some((uidvalidity?, exists))
}

/// Flags to copy: all but \Recent, which no client can set (RFC 3501 §2.3.2; gone from
/// IMAP4rev2, RFC 9051 §E).
fn copied_flags(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect()
}

/// Flags compare case-insensitively (RFC 9051 §2.3.2).
fn same_flags(a: &[String], b: &[String]) -> bool {
    let set = |f: &[String]| -> HashSet<String> {
        copied_flags(f)
            .iter()
            .map(|f| f.to_ascii_lowercase())
            .collect()
    };
    set(a) == set(b)
}

/// UID FETCH 1:* of what the copy and the report need (RFC 9051 §6.4.5, §6.4.9); the
/// Message-ID too when messages must be found again after a UIDVALIDITY change.
async fn list_messages(
    conn: &mut Connection,
    with_message_id: bool,
) -> Result<Vec<Listed>, SourceError> {
    let items = if with_message_id {
        "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
    } else {
        "(UID FLAGS INTERNALDATE RFC822.SIZE)"
    };
    let (untagged, _) = conn.run(&format!("UID FETCH 1:* {items}")).await?;
    let mut listing = Vec::with_capacity(untagged.len());
    for u in untagged {
        let Untagged::Fetch(_, f) = u else { continue };
        // A FETCH without UID is an unsolicited flag update (RFC 9051 §7.5.2): not ours.
        let Some(uid) = f.uid else { continue };
        let (Some(flags), Some(date), Some(size)) = (f.flags, f.internaldate, f.size) else {
            return Err(SourceError(format!(
                "UID {uid}: the source left out FLAGS, INTERNALDATE or RFC822.SIZE"
            )));
        };
        let internaldate = parse_date_time(&date)
            .ok_or_else(|| SourceError(format!("UID {uid}: unreadable INTERNALDATE {date:?}")))?;
        let message_id = f.header_fields.and_then(|h| message_meta(&h).message_id);
        listing.push(Listed {
            uid,
            flags,
            internaldate,
            size,
            message_id,
        });
    }
    listing.sort_by_key(|m| m.uid);
    listing.dedup_by_key(|m| m.uid);
    Ok(listing)
}

/// After a UIDVALIDITY change: the source messages already here, found by Message-ID and
/// size among the copies no current source UID names. Returns how many were found.
async fn match_again(
    store: &Store,
    folder: &Folder,
    listing: &[Listed],
    known: &mut HashMap<u32, MigratedMessage>,
    at: &impl Fn(u32) -> SourceMessage,
) -> Result<u64, SourceError> {
    let named: HashSet<u32> = known.values().map(|r| r.uid).collect();
    let mut candidates: HashMap<(String, u64), Vec<_>> = HashMap::new();
    for t in store
        .target_messages(folder.id)
        .await
        .map_err(store_failed)?
    {
        if let Some(id) = t.message_id.clone()
            && !named.contains(&t.uid)
        {
            candidates.entry((id, t.size as u64)).or_default().push(t);
        }
    }
    let mut matched = 0;
    let unknown: Vec<&Listed> = listing
        .iter()
        .filter(|m| !known.contains_key(&m.uid))
        .collect();
    for m in unknown {
        let Some(id) = &m.message_id else { continue };
        let Some(t) = candidates.get_mut(&(id.clone(), m.size)).and_then(Vec::pop) else {
            continue;
        };
        store
            .remember_migrated(&at(m.uid), folder.id, t.uid, &t.blob_hash, t.size)
            .await
            .map_err(store_failed)?;
        known.insert(
            m.uid,
            MigratedMessage {
                uidvalidity: at(m.uid).uidvalidity,
                source_uid: m.uid,
                mailbox_id: folder.id,
                uid: t.uid,
                sha256: t.blob_hash,
                size: t.size,
            },
        );
        matched += 1;
    }
    Ok(matched)
}

/// `1:5,7,9:10` (RFC 9051 §9 `sequence-set`) of ascending UIDs.
fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for u in uids {
        match runs.last_mut() {
            Some((_, end)) if u == *end + 1 => *end = u,
            _ => runs.push((u, u)),
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Fetches the bodies of `chunk` (BODY.PEEK[], RFC 9051 §6.4.5: \Seen untouched) and
/// stores each one as it arrives: one message in memory at a time.
async fn copy_chunk(
    store: &Store,
    conn: &mut Connection,
    folder: &Folder,
    chunk: &[&Listed],
    at: &impl Fn(u32) -> SourceMessage,
    known: &mut HashMap<u32, MigratedMessage>,
    report: &mut FolderReport,
) -> Result<(), SourceError> {
    let by_uid: HashMap<u32, &Listed> = chunk.iter().map(|m| (m.uid, *m)).collect();
    let tag = conn
        .start(&format!(
            "UID FETCH {} (UID BODY.PEEK[])",
            uid_set(chunk.iter().map(|m| m.uid))
        ))
        .await?;
    loop {
        match conn.read().await? {
            Response::Tagged(t) if t.tag == tag => {
                if t.status != Status::Ok {
                    return Err(SourceError(format!(
                        "the source refused UID FETCH: {}",
                        t.text
                    )));
                }
                return Ok(());
            }
            Response::Untagged(Untagged::Fetch(_, f)) => {
                let (Some(uid), Some(body)) = (f.uid, f.body) else {
                    continue;
                };
                let Some(listed) = by_uid.get(&uid) else {
                    continue;
                };
                if known.contains_key(&uid) {
                    continue;
                }
                let sha256 = hex::encode(Sha256::digest(&body));
                let size = body.len() as i64;
                let meta = message_meta(&body);
                let copy = store
                    .append_migrated(
                        folder.id,
                        body,
                        &copied_flags(&listed.flags),
                        listed.internaldate,
                        meta,
                        &at(uid),
                    )
                    .await
                    .map_err(store_failed)?;
                report.copied += 1;
                report.copied_bytes += size as u64;
                known.insert(
                    uid,
                    MigratedMessage {
                        uidvalidity: at(uid).uidvalidity,
                        source_uid: uid,
                        mailbox_id: folder.id,
                        uid: copy,
                        sha256,
                        size,
                    },
                );
            }
            Response::Untagged(Untagged::Status { status, text, .. }) if status == "BYE" => {
                return Err(SourceError(format!(
                    "the source closed the session: {text}"
                )));
            }
            _ => {}
        }
    }
}

/// Copies made by earlier runs take the source's flags as they are now (the source is the
/// reference until the cut-over). Returns how many changed.
async fn update_flags(
    store: &Store,
    folder: &Folder,
    listing: &[Listed],
    known: &HashMap<u32, MigratedMessage>,
    copied_before: &HashSet<u32>,
) -> Result<u64, SourceError> {
    let targets: HashMap<u32, Vec<String>> = store
        .target_messages(folder.id)
        .await
        .map_err(store_failed)?
        .into_iter()
        .map(|t| (t.uid, t.flags))
        .collect();
    let mut updated = 0;
    for m in listing.iter().filter(|m| copied_before.contains(&m.uid)) {
        let Some(copy) = known.get(&m.uid) else {
            continue;
        };
        let Some(flags) = targets.get(&copy.uid) else {
            continue;
        };
        if !same_flags(flags, &m.flags) {
            store
                .update_flags(
                    folder.id,
                    &[copy.uid],
                    FlagOp::Replace,
                    &copied_flags(&m.flags),
                    None,
                )
                .await
                .map_err(store_failed)?;
            updated += 1;
        }
    }
    Ok(updated)
}

/// Both sides of the folder: the source's messages (sizes as it states them, SHA-256 of the
/// bytes it sent) and their copies here (sizes and SHA-256 of the stored bytes).
async fn verify(
    store: &Store,
    folder: &Folder,
    listing: &[Listed],
    known: &HashMap<u32, MigratedMessage>,
    report: &mut FolderReport,
) -> Result<(), SourceError> {
    let targets: HashMap<u32, _> = store
        .target_messages(folder.id)
        .await
        .map_err(store_failed)?
        .into_iter()
        .map(|t| (t.uid, t))
        .collect();
    let mut source_side = Vec::with_capacity(listing.len());
    let mut target_side = Vec::with_capacity(listing.len());
    for m in listing {
        let copy = known
            .get(&m.uid)
            .and_then(|r| Some((r, targets.get(&r.uid)?)));
        match copy {
            Some((record, target)) => {
                source_side.push((m.size, record.sha256.clone()));
                target_side.push((target.size as u64, target.blob_hash.clone()));
                if !same_flags(&target.flags, &m.flags) || target.internaldate != m.internaldate {
                    report.metadata_differences += 1;
                }
            }
            None => {
                source_side.push((m.size, format!("not copied: UID {}", m.uid)));
                report.missing += 1;
            }
        }
    }
    report.source_side = Side::of(source_side.into_iter());
    report.target_side = Side::of(target_side.into_iter());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set([1, 2, 3, 5, 7, 8].into_iter()), "1:3,5,7:8");
        assert_eq!(uid_set(std::iter::once(9)), "9");
    }

    #[test]
    fn flags_compare_without_recent_and_case() {
        let a = vec![
            "\\Seen".to_string(),
            "\\Recent".to_string(),
            "$Label1".to_string(),
        ];
        let b = vec!["$label1".to_string(), "\\SEEN".to_string()];
        assert!(same_flags(&a, &b));
        assert!(!same_flags(&a, &["\\Seen".to_string()]));
        assert_eq!(
            copied_flags(&a),
            vec!["\\Seen".to_string(), "$Label1".to_string()]
        );
    }

    #[test]
    fn examine_answers() {
        let untagged = vec![
            Untagged::Exists(3),
            Untagged::Status {
                status: "OK".into(),
                code: Some("UIDVALIDITY 1700000001".into()),
                text: "UIDs valid".into(),
            },
        ];
        assert_eq!(examined(&untagged), Some((1_700_000_001, 3)));
        assert_eq!(examined(&[Untagged::Exists(1)]), None);
    }
}
