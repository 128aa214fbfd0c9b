//! LDAP sync (SPEC.md §7): a regional mirror or an establishment's staff directory, read with a
//! simple bind (RFC 4513 §5.2) and a paged search (RFC 2696), mapped to directory rows by
//! configuration, and imported as the `ldap` source through the same generations as the file.
//!
//! The structures (organization entries without `mail`) are read in the same search and joined
//! to the BALs afterwards, so the whole result is held in memory: fine for the directories
//! LDAP serves here (an establishment, a region), not meant for the 535,000-row national file.

use std::collections::HashMap;

use anyhow::{Context, bail};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use mssante_store::{DirectoryRow, Store, directory_sources};

use crate::config::{LdapConfig, LdapMapping};
use crate::extraction::{ReadSummary, check_address};
use crate::import::{Batch, ImportOptions, ImportReport, Progress, import_rows};

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

/// Reads the directory and imports it as the `ldap` source.
pub async fn sync_ldap(
    store: &Store,
    config: &LdapConfig,
    options: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<ImportReport> {
    let entries = search_all(config).await?;
    let rows = entries_to_rows(entries, &config.mapping);
    let origin = format!("{} {}", config.url, config.base);
    import_rows(
        store,
        directory_sources::LDAP,
        &origin,
        options,
        progress,
        move |sink| send_rows(rows, sink),
    )
    .await
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

/// Binds and runs the paged search, returning every entry.
async fn search_all(config: &LdapConfig) -> anyhow::Result<Vec<SearchEntry>> {
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
    ];
    let attributes: Vec<String> = attributes.into_iter().map(str::to_string).collect();
    // RFC 2696: the server returns `page_size` entries at a time with a cookie for the next
    // page, so that a server-side size limit on plain searches does not truncate the result.
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size)),
    ];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            &config.base,
            Scope::Subtree,
            &config.filter,
            attributes,
        )
        .await?;
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await? {
        entries.push(SearchEntry::construct(entry));
    }
    let result = stream.finish().await;
    if result.rc != 0 {
        bail!("LDAP search under {} failed: {result}", config.base);
    }
    ldap.unbind().await.ok();
    tracing::info!(entries = entries.len(), url = %config.url, "LDAP search done");
    Ok(entries)
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
}
