//! FHIR client and publication outbox against a loopback stub with recorded-format answers.

mod common;

use std::time::Instant;

use common::http_stub;
use common::*;
use mssante_directory::config::{FhirConfig, PublicationConfig};
use mssante_directory::fhir::{FhirClient, refresh_address};
use mssante_directory::publication::{BalChange, deliver_due, enqueue};
use mssante_store::{BalType, NewBal, now};
use mssante_testkit::engine_tests;
use serde_json::{Value, json};

const ADDRESS: &str = "jean.martin@medecin.mssante.fr";

/// A search Bundle as the Annuaire Santé API returns it (trimmed to the fields we read).
fn practitioner_bundle() -> String {
    json!({
        "resourceType": "Bundle", "type": "searchset", "total": 1,
        "entry": [{"fullUrl": "https://gateway.api.esante.gouv.fr/fhir/v2/Practitioner/003-1234",
            "resource": {
                "resourceType": "Practitioner", "id": "003-1234",
                "identifier": [
                    {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234567"},
                    {"system": "https://rpps.esante.gouv.fr", "value": "10001234567"}
                ],
                "name": [{"family": "MARTIN", "given": ["Jean"], "prefix": ["DR"]}],
                "telecom": [
                    {"system": "phone", "value": "0102030405"},
                    {"system": "email", "value": "Jean.Martin@medecin.mssante.fr",
                     "extension": [{"url": "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata",
                        "extension": [{"url": "type", "valueCodeableConcept": {"coding": [{"code": "PER"}]}}]}]},
                    {"system": "email", "value": "other@medecin.mssante.fr"}
                ]
            }}]
    })
    .to_string()
}

fn empty_bundle() -> String {
    json!({"resourceType": "Bundle", "type": "searchset", "total": 0}).to_string()
}

fn fhir_config(stub: &http_stub::Stub, rate: u32) -> FhirConfig {
    FhirConfig {
        base_url: format!("{}/fhir/v2", stub.base_url),
        api_key: Some("test-key".into()),
        requests_per_second: rate,
    }
}

engine_tests!(
    fhir_refresh_replaces_one_entry_of_the_local_copy,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let stub = http_stub::start(vec![
            (200, practitioner_bundle()),
            (200, empty_bundle()),
            (200, empty_bundle()),
            (200, empty_bundle()),
        ])
        .await;
        let client = FhirClient::new(&fhir_config(&stub, 17)).unwrap();
        let rows = refresh_address(&store, &client, ADDRESS).await.unwrap();
        assert_eq!(rows.len(), 1);
        let entries = store.directory_by_address(ADDRESS).await.unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.source, "fhir");
        assert_eq!(
            (
                entry.row.bal_type.as_str(),
                entry.row.national_id.as_str(),
                entry.row.pp_id.as_str(),
                entry.row.name.as_str(),
                entry.row.first_name.as_str()
            ),
            ("PER", "810001234567", "10001234567", "MARTIN", "Jean")
        );
        let requests = stub.requests.lock().unwrap().clone();
        assert_eq!(requests[0].method, "GET");
        assert_eq!(
            requests[0].target,
            format!("/fhir/v2/Practitioner?mailbox-mss={ADDRESS}")
        );
        assert_eq!(
            requests[1].target,
            format!("/fhir/v2/Organization?mailbox-mss={ADDRESS}")
        );
        assert_eq!(requests[0].header("ESANTE-API-KEY"), Some("test-key"));
        // Gone from the API: the refresh removes it locally.
        assert!(
            refresh_address(&store, &client, ADDRESS)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .directory_by_address(ADDRESS)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

#[tokio::test]
async fn fhir_client_keeps_to_its_rate_limit() {
    let stub = http_stub::start(Vec::new()).await;
    let client = FhirClient::new(&fhir_config(&stub, 20)).unwrap();
    let started = Instant::now();
    for _ in 0..6 {
        client.lookup_address(ADDRESS).await.unwrap(); // 2 requests each
    }
    // 12 requests at 20/s: the 12th starts no earlier than 11 × 50 ms.
    assert!(
        started.elapsed().as_millis() >= 550,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stub.requests.lock().unwrap().len(), 12);
}

fn operation(body: &str) -> Vec<Value> {
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["resourceType"], "Parameters");
    assert_eq!(body["parameter"][0]["name"], "operation");
    body["parameter"][0]["part"].as_array().unwrap().clone()
}

fn part<'a>(parts: &'a [Value], name: &str) -> &'a Value {
    parts
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no part {name}"))
}

engine_tests!(
    publication_outbox_patches_with_retries,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store.add_domain("medecin.mssante.fr").await.unwrap();
        let bal = store
            .create_bal(&NewBal {
                address: ADDRESS.into(),
                bal_type: BalType::Per,
                rpps: Some("10001234567".into()),
                adeli: None,
                finess: None,
                siret: None,
                display_name: Some("Dr Jean MARTIN".into()),
                password_hash: None,
                liste_rouge: true,
            })
            .await
            .unwrap();
        let stub = http_stub::start(vec![
            (503, "{}".into()),
            (200, "{}".into()),
            (412, "{}".into()),
        ])
        .await;
        let config = PublicationConfig {
            base_url: format!("{}/fhir/v2", stub.base_url),
            api_key: Some("pub-key".into()),
            max_attempts: 5,
        };
        enqueue(&store, &bal, BalChange::Created, Some("Cardiologie"))
            .await
            .unwrap();

        let t = now();
        let first = deliver_due(&store, &config, t).await.unwrap();
        assert_eq!(
            (first.sent, first.retried, first.failed),
            (0, 1, 0),
            "503 is retried"
        );
        let item = &store.directory_outbox_items(ADDRESS).await.unwrap()[0];
        assert_eq!(
            (item.status.as_str(), item.attempts, item.next_attempt),
            ("pending", 1, t + 30)
        );
        assert_eq!(
            deliver_due(&store, &config, t + 10).await.unwrap().retried
                + deliver_due(&store, &config, t + 10).await.unwrap().sent,
            0,
            "not due yet"
        );
        let second = deliver_due(&store, &config, t + 30).await.unwrap();
        assert_eq!(second.sent, 1);

        let requests = stub.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 2);
        for request in &requests {
            assert_eq!(request.method, "PATCH");
            assert_eq!(
                request.target,
                "/fhir/v2/Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|810001234567"
            );
            assert_eq!(request.header("ESANTE-API-KEY"), Some("pub-key"));
            assert_eq!(
                request.header("Content-Type"),
                Some("application/fhir+json")
            );
        }
        assert_eq!(
            requests[0].body, requests[1].body,
            "a retry sends the same body"
        );
        let parts = operation(&requests[0].body);
        assert_eq!(part(&parts, "type")["valueCode"], "insert");
        assert_eq!(part(&parts, "path")["valueString"], "Practitioner.telecom");
        let contact = &part(&parts, "value")["valueContactPoint"];
        assert_eq!(
            (
                contact["system"].as_str(),
                contact["value"].as_str(),
                contact["rank"].as_i64()
            ),
            (Some("email"), Some(ADDRESS), Some(1))
        );
        let extension = &contact["extension"][0];
        assert_eq!(
            extension["url"],
            "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
        );
        let metadata: Vec<(String, Value)> = extension["extension"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["url"].as_str().unwrap().to_string(), e.clone()))
            .collect();
        let get = |url: &str| {
            metadata
                .iter()
                .find(|(u, _)| u == url)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| panic!("no {url}"))
        };
        assert_eq!(
            get("type")["valueCodeableConcept"]["coding"][0]["code"],
            "PER"
        );
        assert_eq!(
            get("listeRouge")["valueBoolean"],
            true,
            "liste rouge is published, flagged"
        );
        assert_eq!(get("description")["valueString"], "Dr Jean MARTIN");
        assert_eq!(get("service")["valueString"], "Cardiologie");

        // Closing: a delete of that ContactPoint; 412 (several resources match) is not retried.
        enqueue(&store, &bal, BalChange::Closed, None)
            .await
            .unwrap();
        let third = deliver_due(&store, &config, t + 60).await.unwrap();
        assert_eq!(third.failed, 1);
        let items = store.directory_outbox_items(ADDRESS).await.unwrap();
        assert_eq!(items[1].status, "failed");
        assert!(items[1].last_error.as_deref().unwrap().contains("412"));
        let parts = operation(&stub.requests.lock().unwrap()[2].body);
        assert_eq!(part(&parts, "type")["valueCode"], "delete");
        assert_eq!(
            part(&parts, "path")["valueString"],
            format!("Practitioner.telecom.where(system='email' and value='{ADDRESS}')")
        );
        assert!(parts.iter().all(|p| p["name"] != "value"));
    }
);
