//! LDAP sync against a real slapd loaded with sample.ldif: the same lookups as the file import.

mod common;

use std::collections::BTreeSet;

use common::slapd::{self, BASE, READER_DN, READER_PASSWORD};
use common::*;
use mssante_directory::config::{LdapConfig, LdapMapping};
use mssante_directory::ldap::sync_ldap;
use mssante_store::{DirectoryEntry, ImportStatus, NameQuery, Store};
use mssante_testkit::engine_tests;

fn ldap_config(server: &slapd::Slapd, password: &str) -> LdapConfig {
    LdapConfig {
        url: server.url.clone(),
        base: BASE.into(),
        filter: "(objectClass=*)".into(),
        bind_dn: Some(READER_DN.into()),
        bind_password: Some(password.into()),
        starttls: false,
        page_size: 200,
        mapping: LdapMapping::default(),
    }
}

/// What a lookup answers, in the fields the LDIF carries (it has no savoir-faire label,
/// category label, brand nor split postal address lines).
type Answer = BTreeSet<Vec<String>>;

fn answer(entries: &[DirectoryEntry]) -> Answer {
    entries
        .iter()
        .map(|e| {
            let mut r = e.row.clone();
            if r.bal_type == "ORG" {
                // The LDIF's ORG entries name the professional holding them (3 % of ORG rows) by
                // number only: name and profession are on the person's entry, which exists only
                // when they also hold a PER BAL (none of the 11 in the sample does).
                for field in [
                    &mut r.name,
                    &mut r.first_name,
                    &mut r.profession_code,
                    &mut r.profession_label,
                    &mut r.civility,
                    &mut r.skill_code,
                ] {
                    field.clear();
                }
            }
            vec![
                r.address.to_lowercase(),
                r.bal_type.clone(),
                r.national_id.clone(),
                r.pp_id_type.clone(),
                r.name.clone(),
                r.first_name.clone(),
                r.profession_code.clone(),
                r.profession_label.clone(),
                r.civility.clone(),
                r.skill_code.clone(),
                r.structure_id.clone(),
                r.structure_id_type.clone(),
                r.structure_name.clone(),
                r.service.clone(),
                r.dematerialisation.clone(),
                r.postcode.clone(),
                r.department.clone(),
            ]
        })
        .collect()
}

async fn answers_by_address(store: &Store, addresses: &BTreeSet<String>) -> Vec<(String, Answer)> {
    let mut answers = Vec::new();
    for address in addresses {
        answers.push((
            address.clone(),
            answer(&store.directory_by_address(address).await.unwrap()),
        ));
    }
    answers
}

fn sample_addresses() -> BTreeSet<String> {
    let text = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split('|').nth(1).unwrap().trim().to_lowercase())
        .collect()
}

engine_tests!(
    ldap_sync_answers_like_the_file_import,
    |engine| async move {
        let server = slapd::start(&fixture("sample.ldif"));
        let (from_file, _db1) = open(engine).await;
        let (from_ldap, _db2) = open(engine).await;
        import_fixture(&from_file, SAMPLE).await;
        let report = sync_ldap(
            &from_ldap,
            &ldap_config(&server, READER_PASSWORD),
            GUARDED,
            &mut mssante_directory::Progress::hidden(),
        )
        .await
        .expect("ldap sync");
        assert_eq!(report.record.status, ImportStatus::Ok);
        assert_eq!(report.record.source, "ldap");
        // More entries than the server's plain size limit: read through RFC 2696 pages.
        assert!(report.record.rows > slapd::SIZE_LIMIT as i64);
        assert_eq!(report.record.addresses, 1995);

        let addresses = sample_addresses();
        assert_eq!(addresses.len(), 1995);
        let file_answers = answers_by_address(&from_file, &addresses).await;
        let ldap_answers = answers_by_address(&from_ldap, &addresses).await;
        let differing: Vec<_> = file_answers
            .iter()
            .zip(&ldap_answers)
            .filter(|(f, l)| f != l)
            .map(|(f, l)| format!("{}:\n  file {:?}\n  ldap {:?}", f.0, f.1, l.1))
            .collect();
        assert!(
            differing.is_empty(),
            "{} addresses differ, first: {}",
            differing.len(),
            differing[..differing.len().min(3)].join("\n")
        );

        for id in ["10949939960", "810946396008"] {
            assert_eq!(
                answer(&from_file.directory_by_national_id(id).await.unwrap()),
                answer(&from_ldap.directory_by_national_id(id).await.unwrap()),
                "{id}"
            );
        }
        for prefix in ["mar", "coeurd", "éloïse", "d'alm"] {
            let query = NameQuery {
                name: prefix.into(),
                limit: 1000,
                ..Default::default()
            };
            // ORG rows match a name only through their holder's name, which the LDIF lacks (above).
            let file: Answer = answer(&from_file.directory_search_name(&query).await.unwrap())
                .into_iter()
                .filter(|row| row[1] != "ORG")
                .collect();
            let ldap = answer(&from_ldap.directory_search_name(&query).await.unwrap());
            assert!(!file.is_empty(), "{prefix}");
            assert!(
                file == ldap,
                "{prefix}: {} rows from the file, {} from LDAP",
                file.len(),
                ldap.len()
            );
        }
    }
);

engine_tests!(
    ldap_sync_with_a_wrong_password_fails_and_keeps_data,
    |engine| async move {
        let server = slapd::start(&fixture("sample.ldif"));
        let (store, _db) = open(engine).await;
        let config = ldap_config(&server, READER_PASSWORD);
        sync_ldap(
            &store,
            &config,
            GUARDED,
            &mut mssante_directory::Progress::hidden(),
        )
        .await
        .unwrap();
        let error = sync_ldap(
            &store,
            &ldap_config(&server, "wrong"),
            GUARDED,
            &mut mssante_directory::Progress::hidden(),
        )
        .await
        .unwrap_err();
        assert!(format!("{error:#}").contains("bind"), "{error:#}");
        assert_eq!(
            store
                .directory_by_national_id("10949939960")
                .await
                .unwrap()
                .len(),
            3
        );
    }
);
