//! FHIR Annuaire Santé client (docs/mssante.md §7): single lookups by address (`mailbox-mss` search
//! parameter), used to refresh one entry of the local copy on demand. Never on the hot path:
//! lookups are served from the local copy only.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mssante_store::{DirectoryRow, Store, directory_sources};
use serde_json::Value;

use crate::config::FhirConfig;

/// Identifier system of national ids of professionals (`8` + RPPS, `0` + ADELI).
pub const NATIONAL_ID_SYSTEM: &str = "urn:oid:1.2.250.1.71.4.2.1";
/// Identifier system of FINESS numbers.
pub const FINESS_SYSTEM: &str = "https://finess.esante.gouv.fr";
/// The MSSanté mailbox extension on a `telecom` ContactPoint.
pub const MAILBOX_EXTENSION: &str = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata";

/// Spaces requests so that at most `rate` start per second (the API allows 17/s).
struct RateLimiter {
    interval: Duration,
    next_slot: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / f64::from(rate.max(1))),
            next_slot: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let mut next = self.next_slot.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

pub struct FhirClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    limiter: RateLimiter,
}

impl FhirClient {
    pub fn new(config: &FhirConfig) -> anyhow::Result<FhirClient> {
        Ok(FhirClient {
            http: crate::download::http_client()?,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_key: config.api_key.clone(),
            limiter: RateLimiter::new(config.requests_per_second),
        })
    }

    /// `GET [base]/{resource}?mailbox-mss={address}`: the search Bundle.
    async fn search(&self, resource: &str, address: &str) -> anyhow::Result<Value> {
        self.limiter.wait().await;
        let mut request = self
            .http
            .get(format!("{}/{resource}", self.base_url))
            .query(&[("mailbox-mss", address)])
            .header("Accept", "application/fhir+json");
        if let Some(key) = &self.api_key {
            request = request.header("ESANTE-API-KEY", key);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("FHIR search of {resource} failed"))?;
        if !response.status().is_success() {
            bail!("FHIR search of {resource} answered {}", response.status());
        }
        Ok(response.json().await?)
    }

    /// The directory rows the API holds for an address (Practitioner and Organization).
    pub async fn lookup_address(&self, address: &str) -> anyhow::Result<Vec<DirectoryRow>> {
        let mut rows = Vec::new();
        for resource in ["Practitioner", "Organization"] {
            let bundle = self.search(resource, address).await?;
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                rows.extend(rows_of_resource(&entry["resource"], address));
            }
        }
        Ok(rows)
    }
}

/// Refreshes one address of the local copy from the API (source `fhir`); returns its rows.
pub async fn refresh_address(
    store: &Store,
    client: &FhirClient,
    address: &str,
) -> anyhow::Result<Vec<DirectoryRow>> {
    let rows = client.lookup_address(address).await?;
    store
        .directory_refresh_entry(directory_sources::FHIR, address, &rows)
        .await?;
    Ok(rows)
}

/// The rows of a Practitioner or Organization for the telecoms matching `address`.
fn rows_of_resource(resource: &Value, address: &str) -> Vec<DirectoryRow> {
    let kind = resource["resourceType"].as_str().unwrap_or("");
    let identifier = |system: &str| {
        resource["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["system"] == system)
            .and_then(|i| i["value"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut base = DirectoryRow::default();
    match kind {
        "Practitioner" => {
            let national_id = identifier(NATIONAL_ID_SYSTEM);
            let name = &resource["name"][0];
            base.bal_type = "PER".into();
            base.pp_id_type = national_id
                .chars()
                .next()
                .map(String::from)
                .unwrap_or_default();
            base.pp_id = national_id.chars().skip(1).collect();
            base.national_id = national_id;
            base.name = name["family"].as_str().unwrap_or("").to_string();
            base.first_name = name["given"][0].as_str().unwrap_or("").to_string();
        }
        "Organization" => {
            let finess = identifier(FINESS_SYSTEM);
            base.bal_type = "ORG".into();
            if !finess.is_empty() {
                base.structure_id_type = "1".into();
                base.structure_id = format!("1{finess}");
            }
            base.structure_name = resource["name"].as_str().unwrap_or("").to_string();
        }
        _ => return Vec::new(),
    }
    mailbox_telecoms(resource, address)
        .map(|(value, bal_type)| DirectoryRow {
            address: value,
            bal_type: bal_type.unwrap_or_else(|| base.bal_type.clone()),
            ..base.clone()
        })
        .collect()
}

/// `telecom` entries of an address with the BAL type of their mailbox extension.
fn mailbox_telecoms<'a>(
    resource: &'a Value,
    address: &'a str,
) -> impl Iterator<Item = (String, Option<String>)> + 'a {
    resource["telecom"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(move |telecom| {
            let value = telecom["value"].as_str()?;
            if telecom["system"] != "email" || !value.eq_ignore_ascii_case(address.trim()) {
                return None;
            }
            let bal_type = telecom["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["url"] == MAILBOX_EXTENSION)
                .flat_map(|e| e["extension"].as_array().into_iter().flatten())
                .find(|sub| sub["url"] == "type")
                .and_then(|sub| sub["valueCodeableConcept"]["coding"][0]["code"].as_str())
                .map(str::to_string);
            Some((value.to_string(), bal_type))
        })
}
