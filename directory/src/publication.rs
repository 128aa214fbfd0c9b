//! Publication of our own BALs to the national directory (docs/mssante.md §7): FHIR conditional PATCH
//! with a `Parameters` body (FHIRPath Patch, https://hl7.org/fhir/R4/fhirpatch.html), queued in
//! the store's outbox and sent with retries.
//!
//! A BAL is a `telecom` ContactPoint (`system=email`, `value`, `rank` 1) carrying the
//! `as-ext-mailbox-mss-metadata` extension (`type`, `listeRouge`, `description`, `service`), on
//! the Practitioner (PER, CAB; by national id) or the Organization (ORG, APP; by FINESS).
//! The address and type of a BAL never change, so a modification replaces the ContactPoint
//! found by its address.

use anyhow::bail;
use mssante_store::{Bal, BalType, Store, now};
use serde_json::{Value, json};

use crate::config::PublicationConfig;
use crate::fhir::{FINESS_SYSTEM, MAILBOX_EXTENSION, NATIONAL_ID_SYSTEM};

/// Code system of TRE_R257-TypeBAL (our reading of the NOS naming; unverified).
pub const BAL_TYPE_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL";
/// First retry delay; doubled at each attempt, capped at [`MAX_RETRY_SECS`].
const FIRST_RETRY_SECS: i64 = 30;
const MAX_RETRY_SECS: i64 = 6 * 3600;

/// What happened to a BAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalChange {
    Created,
    Modified,
    Closed,
}

/// The conditional-patch target of a BAL, relative to the FHIR base.
pub fn resource_url(bal: &Bal) -> anyhow::Result<(String, &'static str)> {
    match (bal.bal_type, &bal.national_id, &bal.finess) {
        (BalType::Per | BalType::Cab, Some(id), _) => Ok((
            format!("Practitioner?identifier={NATIONAL_ID_SYSTEM}|{id}"),
            "Practitioner",
        )),
        (BalType::Org | BalType::App, _, Some(finess)) => Ok((
            format!("Organization?identifier={FINESS_SYSTEM}|{finess}"),
            "Organization",
        )),
        _ => bail!(
            "BAL {} ({}) has no national id or FINESS to publish it under",
            bal.address.as_str(),
            bal.bal_type.as_str()
        ),
    }
}

/// The ContactPoint of a BAL, with its MSSanté metadata.
pub fn contact_point(bal: &Bal, service: Option<&str>) -> Value {
    let mut metadata = vec![
        json!({"url": "type", "valueCodeableConcept": {"coding": [{"system": BAL_TYPE_SYSTEM, "code": bal.bal_type.as_str()}]}}),
        // Liste rouge (docs/mssante.md §7): published flagged, for the directory to hide.
        json!({"url": "listeRouge", "valueBoolean": bal.liste_rouge}),
    ];
    if let Some(description) = &bal.display_name {
        metadata.push(json!({"url": "description", "valueString": description}));
    }
    if let Some(service) = service {
        metadata.push(json!({"url": "service", "valueString": service}));
    }
    json!({
        "system": "email",
        "value": bal.address.as_str(),
        "rank": 1,
        "extension": [{"url": MAILBOX_EXTENSION, "extension": metadata}]
    })
}

/// The `Parameters` body for a change: `insert` a new ContactPoint, `replace` or `delete` the
/// one holding the address.
pub fn patch_body(bal: &Bal, change: BalChange, resource: &str, service: Option<&str>) -> Value {
    let existing = format!(
        "{resource}.telecom.where(system='email' and value='{}')",
        bal.address.as_str()
    );
    let mut parts = match change {
        BalChange::Created => vec![
            json!({"name": "type", "valueCode": "insert"}),
            json!({"name": "path", "valueString": format!("{resource}.telecom")}),
            json!({"name": "index", "valueInteger": 0}),
        ],
        BalChange::Modified => vec![
            json!({"name": "type", "valueCode": "replace"}),
            json!({"name": "path", "valueString": existing}),
        ],
        BalChange::Closed => vec![
            json!({"name": "type", "valueCode": "delete"}),
            json!({"name": "path", "valueString": existing}),
        ],
    };
    if change != BalChange::Closed {
        parts.push(json!({"name": "value", "valueContactPoint": contact_point(bal, service)}));
    }
    json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": parts}]})
}

/// Queues the publication of a BAL change; the lead's BAL life-cycle code calls this.
pub async fn enqueue(
    store: &Store,
    bal: &Bal,
    change: BalChange,
    service: Option<&str>,
) -> anyhow::Result<i64> {
    let (url, resource) = resource_url(bal)?;
    let body = patch_body(bal, change, resource, service);
    Ok(store
        .directory_outbox_enqueue(bal.address.as_str(), &url, &body.to_string())
        .await?)
}

/// What one pass of the worker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxPass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Sends the items due at `at` (`now()` in production) and records each outcome.
pub async fn deliver_due(
    store: &Store,
    config: &PublicationConfig,
    at: i64,
) -> anyhow::Result<OutboxPass> {
    let http = crate::download::http_client()?;
    let base = config.base_url.trim_end_matches('/');
    let mut pass = OutboxPass::default();
    for item in store.directory_outbox_due(at, 100).await? {
        let mut request = http
            .patch(format!("{base}/{}", item.resource_url))
            .header("Content-Type", "application/fhir+json")
            .header("Accept", "application/fhir+json")
            .body(item.body.clone());
        if let Some(key) = &config.api_key {
            request = request.header("ESANTE-API-KEY", key);
        }
        let outcome = match request.send().await {
            Ok(response) => Outcome::of_status(response.status().as_u16()),
            Err(error) => Outcome::Retry(format!("{error}")),
        };
        let attempts = item.attempts + 1;
        let (status, next, error) = match outcome {
            Outcome::Done => ("done", at, None),
            Outcome::Retry(error) if attempts < config.max_attempts => {
                let delay = (FIRST_RETRY_SECS << (attempts - 1).min(20)).min(MAX_RETRY_SECS);
                ("pending", at + delay, Some(error))
            }
            Outcome::Retry(error) | Outcome::Fail(error) => ("failed", at, Some(error)),
        };
        match status {
            "done" => pass.sent += 1,
            "pending" => pass.retried += 1,
            _ => pass.failed += 1,
        }
        if let Some(error) = &error {
            tracing::warn!(address = %item.address, attempts, status, %error, "directory publication not accepted");
        }
        store
            .directory_outbox_record(item.id, status, next, error.as_deref())
            .await?;
    }
    Ok(pass)
}

/// Runs [`deliver_due`] every `interval` until the task is dropped.
pub async fn run_outbox(store: Store, config: PublicationConfig, interval: std::time::Duration) {
    loop {
        if let Err(error) = deliver_due(&store, &config, now()).await {
            tracing::warn!(%error, "directory publication pass failed");
        }
        tokio::time::sleep(interval).await;
    }
}

enum Outcome {
    Done,
    Retry(String),
    Fail(String),
}

impl Outcome {
    /// 2xx applied; 429 and 5xx are worth retrying; other answers need a human (docs/mssante.md §7:
    /// 412 when several resources match, 404 when none does).
    fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Done,
            429 | 500..=599 => Outcome::Retry(format!("HTTP {status}")),
            412 => {
                Outcome::Fail("HTTP 412: several directory resources match the identifier".into())
            }
            404 => Outcome::Fail("HTTP 404: no directory resource has the identifier".into()),
            _ => Outcome::Fail(format!("HTTP {status}")),
        }
    }
}
