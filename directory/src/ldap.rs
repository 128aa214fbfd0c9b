//! LDAP sync (docs/mssante.md §7): a regional mirror or an establishment's staff directory, read with a
//! simple bind (RFC 4513 §5.2) and a paged search (RFC 2696), mapped to directory rows by
//! configuration, and imported as the `ldap` source through the same generations as the file.
//!
//! The structures (organization entries without `mail`) are read in the same search and joined
//! to the BALs afterwards, so the whole result is held in memory: fine for the directories
//! LDAP serves here (an establishment, a region), not meant for the 535,000-row national file.
//!
//! Incremental runs: a full run remembers the highest `modifyTimestamp` it saw (less the
//! search's duration: an entry changed during the search may have been read before the change),
//! and the next runs ask only for `(&(<filter>)(modifyTimestamp>=T))`, plus the BAL entries of
//! changed structures and the structures of changed BAL entries, and merge their rows into the
//! generation in place (`Store::directory_merge_entries`). A deleted entry (or an address taken
//! off an entry) is not seen that way: it goes at the next full run, which happens every
//! `full_every` runs (default 24), on `sync-ldap --full`, when the configured URL, base or
//! filter changed, and always when the server returns no `modifyTimestamp`.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use anyhow::{Context, bail};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use mssante_mail::date::{UtcDateTime, days_from_civil};
use mssante_store::{DirectoryRow, ImportStatus, Store, directory_sources};

use crate::config::{LdapConfig, LdapMapping};
use crate::extraction::{ReadSummary, check_address};
use crate::import::{Batch, ImportOptions, ImportReport, Progress, import_rows};

/// The operational attribute incremental runs filter on (RFC 4512 §3.4).
const MODIFY_TIMESTAMP: &str = "modifyTimestamp";
/// Structure ids per search when an incremental run looks up related entries.
const IDS_PER_SEARCH: usize = 50;

/// Attributes of one entry, names lower-cased (LDAP attribute names are case-insensitive,
/// RFC 4512 §2.5).
struct Attributes(HashMap<String, Vec<String>>);

impl Attributes {
    fn from_entry(entry: SearchEntry) -> Attributes {
        Attributes(
            entry
                .attrs
                .into_iter()
                .map(|(name, values)| (name.to_ascii_lowercase(), values))
                .collect(),
        )
    }

    fn all(&self, name: &str) -> &[String] {
        self.0
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn first(&self, name: &str) -> String {
        self.all(name)
            .first()
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    }

    /// `key=value;key=value` items of the detail attribute that carry `key`.
    fn details(&self, mapping: &LdapMapping, key: &str) -> Vec<HashMap<String, String>> {
        self.all(&mapping.row_details)
            .iter()
            .map(|value| parse_details(value))
            .filter(|details| details.contains_key(key))
            .collect()
    }
}

/// Parses `bal=a@b.fr;structure=1;service=;demat=N` (the fixtures' convention for pairing each
/// address of a person with its structure, since `mail` and `o` are unordered sets).
fn parse_details(value: &str) -> HashMap<String, String> {
    value
        .split(';')
        .filter_map(|item| item.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// What an organization entry tells about a structure.
#[derive(Clone, Default)]
struct Structure {
    name: String,
    postcode: String,
    department: String,
    street: String,
}

/// Whether a sync may be incremental.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Incremental when a valid watermark exists and fewer than `full_every` incremental runs
    /// followed the last full one; full otherwise.
    Auto,
    /// Read everything and replace the source's generation (removes deleted entries).
    Full,
}

/// Reads the directory and imports it as the `ldap` source: incrementally when it can (see the
/// module documentation), else in full.
pub async fn sync_ldap(
    store: &Store,
    config: &LdapConfig,
    options: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<ImportReport> {
    sync_ldap_with(store, config, options, SyncMode::Auto, progress).await
}

/// [`sync_ldap`] with an explicit [`SyncMode`].
pub async fn sync_ldap_with(
    store: &Store,
    config: &LdapConfig,
    options: ImportOptions,
    mode: SyncMode,
    progress: &mut Progress,
) -> anyhow::Result<ImportReport> {
    let state_key = sync_state_key(config);
    if mode == SyncMode::Auto
        && config.full_every > 0
        && let Some((watermark, runs)) = store
            .directory_sync_watermark(directory_sources::LDAP, &state_key)
            .await?
        && runs < i64::from(config.full_every)
    {
        match sync_incremental(store, config, &state_key, watermark).await {
            Ok(Some(report)) => return Ok(report),
            Ok(None) => tracing::info!("LDAP watermark no longer valid: full sync"),
            Err(error) => {
                tracing::warn!("incremental LDAP sync failed ({error:#}); trying a full sync")
            }
        }
    }
    sync_full(store, config, &state_key, options, progress).await
}

/// What the incremental state is keyed by: the same server, base and filter.
fn sync_state_key(config: &LdapConfig) -> String {
    format!("{} {} {}", config.url, config.base, config.filter)
}

/// The configured filter, parenthesised so that it can be combined.
fn base_filter(config: &LdapConfig) -> String {
    let filter = config.filter.trim();
    if filter.starts_with('(') {
        filter.to_string()
    } else {
        format!("({filter})")
    }
}

async fn sync_full(
    store: &Store,
    config: &LdapConfig,
    state_key: &str,
    options: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let mut ldap = connect(config).await?;
    let entries = search(&mut ldap, config, &base_filter(config)).await?;
    ldap.unbind().await.ok();
    let watermark = watermark_of(&entries, started);
    let rows = entries_to_rows(entries, &config.mapping);
    let origin = format!("{} {}", config.url, config.base);
    let report = import_rows(
        store,
        directory_sources::LDAP,
        &origin,
        options,
        progress,
        move |sink| send_rows(rows, sink),
    )
    .await?;
    if report.record.status == ImportStatus::Ok {
        store
            .directory_set_sync_watermark(
                directory_sources::LDAP,
                state_key,
                report.record.id,
                watermark,
            )
            .await?;
    }
    Ok(report)
}

/// Where the next incremental run starts after a search that began at `started`: the highest
/// `modifyTimestamp` seen, less the search's duration (rounded up, plus a second for the
/// timestamps' granularity). `None` when no entry carried one.
fn watermark_of(entries: &[SearchEntry], started: Instant) -> Option<i64> {
    let highest = entries
        .iter()
        .filter_map(|e| {
            e.attrs
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(MODIFY_TIMESTAMP))
        })
        .filter_map(|(_, values)| values.first())
        .filter_map(|v| parse_generalized_time(v))
        .max()?;
    Some(highest - started.elapsed().as_secs() as i64 - 1)
}

/// The entries changed since `watermark` and those their rows depend on, merged into the
/// generation the LDAP source serves. `None` if the store no longer accepts the watermark.
async fn sync_incremental(
    store: &Store,
    config: &LdapConfig,
    state_key: &str,
    watermark: i64,
) -> anyhow::Result<Option<ImportReport>> {
    let started = Instant::now();
    let since = format_generalized_time(watermark);
    let mut ldap = connect(config).await?;
    let filter = format!("(&{}({MODIFY_TIMESTAMP}>={since}))", base_filter(config));
    let changed = search(&mut ldap, config, &filter).await?;
    let new_watermark = watermark_of(&changed, started).unwrap_or(watermark);
    let entries = with_related_entries(&mut ldap, config, changed).await?;
    ldap.unbind().await.ok();
    let rows = entries_to_rows(entries, &config.mapping);
    let mut accepted = Vec::with_capacity(rows.len());
    let mut rejects = Vec::new();
    for (rank, row) in rows.into_iter().enumerate() {
        let line = rank as i64 + 1;
        match check_address(&row.address) {
            Ok(()) => accepted.push((line, row)),
            Err(error) => rejects.push(error.at(line)),
        }
    }
    let history_origin = format!("{} {} (incremental since {since})", config.url, config.base);
    let rejected = rejects.len() as i64;
    let Some(record) = store
        .directory_merge_entries(
            directory_sources::LDAP,
            state_key,
            &history_origin,
            &accepted,
            &rejects,
            rejected,
            new_watermark,
        )
        .await?
    else {
        return Ok(None);
    };
    tracing::info!(
        import_id = record.id,
        since,
        entries = record.rows,
        added = record.added,
        modified = record.modified,
        "incremental LDAP sync merged"
    );
    let changes = store.directory_import_changes(record.id).await?;
    Ok(Some(ImportReport {
        record,
        rejects,
        changes,
    }))
}

/// Adds to the changed entries what their rows depend on: the BAL entries of changed
/// structures (their rows carry the structure's name and address) and the structures the
/// BAL entries refer to.
async fn with_related_entries(
    ldap: &mut Ldap,
    config: &LdapConfig,
    changed: Vec<SearchEntry>,
) -> anyhow::Result<Vec<SearchEntry>> {
    let m = &config.mapping;
    let mut entries = changed;
    let mut seen: BTreeSet<String> = entries.iter().map(|e| e.dn.clone()).collect();
    let is_bal = |e: &SearchEntry| attr(e, &m.mail).is_some_and(|v| !v.is_empty());
    let changed_structures: Vec<String> = entries
        .iter()
        .filter(|e| !is_bal(e))
        .filter_map(|e| attr(e, &m.structure_name).and_then(|v| v.first().cloned()))
        .collect();
    for ids in changed_structures.chunks(IDS_PER_SEARCH) {
        let any = ids
            .iter()
            .map(|id| {
                let id = ldap_escape(id.trim());
                format!(
                    "({}={id})({}=*structure={id}*)",
                    m.structure_id, m.row_details
                )
            })
            .collect::<String>();
        let filter = format!("(&{}(|{any}))", base_filter(config));
        for entry in search(ldap, config, &filter).await? {
            if is_bal(&entry) && seen.insert(entry.dn.clone()) {
                entries.push(entry);
            }
        }
    }
    let known: BTreeSet<String> = entries
        .iter()
        .filter(|e| !is_bal(e))
        .filter_map(|e| attr(e, &m.structure_name).and_then(|v| v.first().cloned()))
        .map(|id| id.trim().to_string())
        .collect();
    let mut wanted = BTreeSet::new();
    for entry in entries.iter().filter(|e| is_bal(e)) {
        for id in attr(entry, &m.structure_id).unwrap_or_default() {
            wanted.insert(id.trim().to_string());
        }
        for detail in attr(entry, &m.row_details).unwrap_or_default() {
            if let Some(id) = parse_details(detail).get("structure") {
                wanted.insert(id.clone());
            }
        }
    }
    let wanted: Vec<String> = wanted
        .into_iter()
        .filter(|id| !id.is_empty() && !known.contains(id))
        .collect();
    for ids in wanted.chunks(IDS_PER_SEARCH) {
        let any = ids
            .iter()
            .map(|id| format!("({}={})", m.structure_name, ldap_escape(id)))
            .collect::<String>();
        let filter = format!("(&{}(|{any}))", base_filter(config));
        for entry in search(ldap, config, &filter).await? {
            if !is_bal(&entry) && seen.insert(entry.dn.clone()) {
                entries.push(entry);
            }
        }
    }
    Ok(entries)
}

/// The values of an attribute, whatever the case of its name.
fn attr<'e>(entry: &'e SearchEntry, name: &str) -> Option<&'e [String]> {
    entry
        .attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, values)| values.as_slice())
}

fn send_rows(
    rows: Vec<DirectoryRow>,
    sink: tokio::sync::mpsc::Sender<Batch>,
) -> anyhow::Result<ReadSummary> {
    let mut summary = ReadSummary::default();
    let mut batch: Batch = Vec::new();
    for (rank, row) in rows.into_iter().enumerate() {
        let line = rank as i64 + 1;
        summary.lines = line;
        if let Err(error) = check_address(&row.address) {
            summary.rejected_total += 1;
            summary.rejects.push(error.at(line));
            continue;
        }
        summary.rows += 1;
        batch.push((line, row));
        if batch.len() == 2048 {
            sink.blocking_send(std::mem::take(&mut batch))
                .context("the import writer stopped")?;
        }
    }
    if !batch.is_empty() {
        sink.blocking_send(batch)
            .context("the import writer stopped")?;
    }
    Ok(summary)
}

/// Connects (StartTLS if configured) and binds.
async fn connect(config: &LdapConfig) -> anyhow::Result<Ldap> {
    let settings = LdapConnSettings::new()
        .set_starttls(config.starttls)
        .set_conn_timeout(std::time::Duration::from_secs(20));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
        .await
        .with_context(|| format!("cannot connect to {}", config.url))?;
    ldap3::drive!(conn);
    if let Some(dn) = &config.bind_dn {
        let password = config.bind_password.as_deref().unwrap_or("");
        ldap.simple_bind(dn, password)
            .await?
            .success()
            .with_context(|| format!("LDAP bind as {dn} refused"))?;
    }
    Ok(ldap)
}

/// Runs a paged search under the base, returning every entry.
async fn search(
    ldap: &mut Ldap,
    config: &LdapConfig,
    filter: &str,
) -> anyhow::Result<Vec<SearchEntry>> {
    let m = &config.mapping;
    let attributes = vec![
        "objectClass",
        &m.mail,
        &m.pp_id,
        &m.pp_id_kind,
        &m.profession,
        &m.bal_type,
        &m.name,
        &m.first_name,
        &m.structure_name,
        &m.structure_id,
        &m.service,
        &m.postcode,
        &m.department,
        &m.row_details,
        "street",
        // Operational: returned only when asked for.
        MODIFY_TIMESTAMP,
    ];
    let attributes: Vec<String> = attributes.into_iter().map(str::to_string).collect();
    // RFC 2696: the server returns `page_size` entries at a time with a cookie for the next
    // page, so that a server-side size limit on plain searches does not truncate the result.
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size)),
    ];
    let mut stream = ldap
        .streaming_search_with(adapters, &config.base, Scope::Subtree, filter, attributes)
        .await?;
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await? {
        entries.push(SearchEntry::construct(entry));
    }
    let result = stream.finish().await;
    if result.rc != 0 {
        bail!(
            "LDAP search {filter} under {} failed: {result}",
            config.base
        );
    }
    tracing::info!(entries = entries.len(), url = %config.url, filter, "LDAP search done");
    Ok(entries)
}

/// Seconds since the Unix epoch of an RFC 4517 §3.3.13 GeneralizedTime
/// (`YYYYMMDDHHMMSS[.fraction](Z|±HHMM)`; minutes and seconds may be absent, a missing zone
/// is taken as UTC). Fractions are dropped.
pub fn parse_generalized_time(value: &str) -> Option<i64> {
    let value = value.trim();
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    if !matches!(digits, 10 | 12 | 14) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| value[range].parse::<i64>().ok();
    let (year, month, day, hour) = (num(0..4)?, num(4..6)?, num(6..8)?, num(8..10)?);
    let minute = if digits >= 12 { num(10..12)? } else { 0 };
    let second = if digits >= 14 { num(12..14)? } else { 0 };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &value[digits..];
    if let Some(fraction) = rest.strip_prefix(['.', ',']) {
        rest = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "" | "Z" => 0,
        // `get`, not slicing: the zone may hold multi-byte characters (fuzzing found a BOM).
        zone if zone.len() == 5 && (zone.starts_with('+') || zone.starts_with('-')) => {
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone.get(3..5)?.parse().ok()?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year as i32, month as u32, day as u32);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset)
}

/// `YYYYMMDDHHMMSSZ` of a Unix time, for filters.
pub fn format_generalized_time(unix: i64) -> String {
    let t = UtcDateTime::from_unix(unix);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Maps entries to rows: entries with a mail are BALs, organization entries without one are
/// structures whose name and postcode the BAL rows take by structure id.
fn entries_to_rows(entries: Vec<SearchEntry>, mapping: &LdapMapping) -> Vec<DirectoryRow> {
    let entries: Vec<Attributes> = entries.into_iter().map(Attributes::from_entry).collect();
    let structures: HashMap<String, Structure> = entries
        .iter()
        .filter(|e| e.all(&mapping.mail).is_empty() && !e.all(&mapping.structure_name).is_empty())
        .map(|e| structure_of(e, mapping))
        .collect();
    let mut rows = Vec::new();
    for entry in entries.iter().filter(|e| !e.all(&mapping.mail).is_empty()) {
        let bal_type = match entry.first(&mapping.bal_type).to_ascii_uppercase().as_str() {
            t @ ("PER" | "ORG" | "APP" | "CAB") => t.to_string(),
            _ if entry.first(&mapping.pp_id).is_empty() => "ORG".to_string(),
            _ => "PER".to_string(),
        };
        rows.extend(bal_rows(entry, &bal_type, mapping, &structures));
    }
    rows
}

/// An organization entry: the structure id is its first `o`, the name the next one.
fn structure_of(entry: &Attributes, mapping: &LdapMapping) -> (String, Structure) {
    let names = entry.all(&mapping.structure_name);
    let id = names[0].trim().to_string();
    let structure = Structure {
        name: names.get(1).unwrap_or(&names[0]).trim().to_string(),
        postcode: entry.first(&mapping.postcode),
        department: entry.first(&mapping.department),
        street: entry.first("street"),
    };
    (id, structure)
}

/// The rows of one BAL entry: one per `bal=` detail when present (each address of a person
/// with its own structure), else one per mail with the entry's first structure.
fn bal_rows(
    entry: &Attributes,
    bal_type: &str,
    mapping: &LdapMapping,
    structures: &HashMap<String, Structure>,
) -> Vec<DirectoryRow> {
    let person = person_fields(entry, bal_type, mapping);
    let demat = entry
        .details(mapping, "demat")
        .first()
        .and_then(|d| d.get("demat").cloned());
    let placements: Vec<(String, String, String, String)> = match entry.details(mapping, "bal") {
        details if !details.is_empty() && bal_type != "ORG" => details
            .iter()
            .map(|d| {
                let get = |k: &str| d.get(k).cloned().unwrap_or_default();
                (get("bal"), get("structure"), get("service"), get("demat"))
            })
            .collect(),
        _ => entry
            .all(&mapping.mail)
            .iter()
            .map(|mail| {
                let demat = demat.clone().unwrap_or_default();
                (
                    mail.trim().to_string(),
                    entry.first(&mapping.structure_id),
                    entry.first(&mapping.service),
                    demat,
                )
            })
            .collect(),
    };
    placements
        .into_iter()
        .map(|(address, structure_id, service, demat)| {
            let structure = structures
                .get(&structure_id)
                .cloned()
                .unwrap_or_else(|| Structure {
                    name: entry.first(&mapping.structure_name),
                    ..Structure::default()
                });
            DirectoryRow {
                address,
                structure_id_type: structure_id_type(&structure_id),
                structure_name: if structure_id.is_empty() {
                    String::new()
                } else {
                    structure.name
                },
                structure_id,
                service,
                dematerialisation: demat,
                postcode: structure.postcode,
                department: structure.department,
                addr_street: structure.street,
                ..person.clone()
            }
        })
        .collect()
}

/// The identity part of a row: type, professional, profession.
fn person_fields(entry: &Attributes, bal_type: &str, mapping: &LdapMapping) -> DirectoryRow {
    let pp_id = entry.first(&mapping.pp_id);
    let pp_id_type = match (
        pp_id.is_empty(),
        entry
            .first(&mapping.pp_id_kind)
            .to_ascii_uppercase()
            .as_str(),
    ) {
        (true, _) => String::new(),
        (false, "ADELI") => "0".to_string(),
        (false, _) => "8".to_string(),
    };
    let profession = entry
        .details(mapping, "profession")
        .into_iter()
        .next()
        .unwrap_or_default();
    let detail = |k: &str| profession.get(k).cloned().unwrap_or_default();
    let is_person = bal_type != "ORG";
    DirectoryRow {
        bal_type: bal_type.to_string(),
        national_id: if pp_id.is_empty() {
            String::new()
        } else {
            format!("{pp_id_type}{pp_id}")
        },
        pp_id_type,
        pp_id,
        name: if is_person {
            entry.first(&mapping.name)
        } else {
            String::new()
        },
        first_name: if is_person {
            entry.first(&mapping.first_name)
        } else {
            String::new()
        },
        profession_label: entry.first(&mapping.profession),
        profession_code: detail("profession"),
        profession_category: detail("categorie"),
        civility: detail("civilite"),
        skill_code: detail("savoirFaire"),
        ..DirectoryRow::default()
    }
}

/// The extraction's `Type identifiant structure` from the id's prefix (`1` FINESS, `3` SIRET,
/// `4` RPPS rang): the id is the type digit followed by the number.
fn structure_id_type(structure_id: &str) -> String {
    structure_id
        .chars()
        .next()
        .map(String::from)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_key_value_pairs() {
        let d = parse_details("bal=a@b.fr;structure=1234;service=;demat=N");
        assert_eq!(d["bal"], "a@b.fr");
        assert_eq!(d["structure"], "1234");
        assert_eq!(d["service"], "");
        assert_eq!(structure_id_type("337124155593549"), "3");
    }

    #[test]
    fn generalized_times_parse_and_format() {
        assert_eq!(parse_generalized_time("19700101000000Z"), Some(0));
        assert_eq!(
            parse_generalized_time("20260101000000Z"),
            Some(1_767_225_600)
        );
        assert_eq!(
            parse_generalized_time("20260101000000.123456Z"),
            Some(1_767_225_600)
        );
        assert_eq!(
            parse_generalized_time("202601010100+0100"),
            Some(1_767_225_600)
        );
        assert_eq!(parse_generalized_time("2026010100Z"), Some(1_767_225_600));
        assert_eq!(
            parse_generalized_time("20240229235959Z"),
            Some(1_709_251_199)
        );
        assert_eq!(parse_generalized_time("2026-01-01"), None);
        assert_eq!(parse_generalized_time("20261301000000Z"), None);
        // A five-byte zone with a multi-byte character (fuzzing, crash-generalized-time-bom).
        assert_eq!(parse_generalized_time("2026120600-0\u{feff}"), None);
        for t in [0, 951_782_400, 1_709_251_199, 1_767_225_600, 4_102_444_800] {
            assert_eq!(parse_generalized_time(&format_generalized_time(t)), Some(t));
        }
        assert_eq!(format_generalized_time(1_767_225_600), "20260101000000Z");
    }
}
