//! LDAP sync against a real slapd loaded with sample.ldif: the same lookups as the file import.

mod common;

use std::collections::BTreeSet;

use common::slapd::{self, ADMIN_DN, ADMIN_PASSWORD, BASE, READER_DN, READER_PASSWORD};
use common::*;
use mssante_directory::config::{LdapConfig, LdapMapping};
use mssante_directory::ldap::{SyncMode, sync_ldap, sync_ldap_with};
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
        full_every: 24,
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

/// Changes the directory as its administrator: a new professional, a renamed one, a renamed
/// structure (whose BALs' rows carry its name) and a deleted professional (3 addresses).
async fn change_directory(server: &slapd::Slapd) {
    use ldap3::{LdapConnAsync, Mod};
    use std::collections::HashSet;
    let (conn, mut ldap) = LdapConnAsync::new(&server.url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let set = |values: &[&'static str]| values.iter().copied().collect::<HashSet<&str>>();
    ldap.add(
        &format!("uid=899999999990,ou=personnes,{BASE}"),
        vec![
            (
                "objectClass",
                set(&["top", "person", "organizationalPerson", "inetOrgPerson"]),
            ),
            ("uid", set(&["899999999990"])),
            ("cn", set(&["Zoé NOUVEAU"])),
            ("sn", set(&["NOUVEAU"])),
            ("givenName", set(&["Zoé"])),
            ("employeeNumber", set(&["99999999990"])),
            ("employeeType", set(&["RPPS"])),
            ("title", set(&["Médecin"])),
            ("businessCategory", set(&["PER"])),
            ("mail", set(&["zoe.nouveau@apta78.mssante.fr"])),
            ("departmentNumber", set(&["1781279674"])),
            (
                "description",
                set(&[
                    "profession=10;categorie=C;civilite=MME;savoirFaire=",
                    "bal=zoe.nouveau@apta78.mssante.fr;structure=1781279674;service=;demat=N",
                ]),
            ),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    ldap.modify(
        &format!("uid=810946396008,ou=personnes,{BASE}"),
        vec![Mod::Replace("sn", set(&["GUERIN-MARTIN"]))],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    // Delete + add keeps the id first among the `o` values (the name comes second).
    ldap.modify(
        &format!("o=1781279674,ou=structures,{BASE}"),
        vec![
            Mod::Delete("o", set(&["APTA 78"])),
            Mod::Add("o", set(&["APTA 78 VERSAILLES"])),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    ldap.delete(&format!("uid=810949939960,ou=personnes,{BASE}"))
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap.unbind().await.unwrap();
}

fn is_incremental(report: &mssante_directory::ImportReport) -> bool {
    report.record.origin.contains("(incremental since ")
}

engine_tests!(
    incremental_ldap_sync_merges_changes_and_a_full_one_removes_deletions,
    |engine| async move {
        // The sample's entries last changed long ago; the reader account, now.
        let server = slapd::start_dated(&fixture("sample.ldif"), "20260101000000Z");
        let (store, _db) = open(engine).await;
        let mut config = ldap_config(&server, READER_PASSWORD);
        let hidden = || mssante_directory::Progress::hidden();
        let full = sync_ldap(&store, &config, GUARDED, &mut hidden())
            .await
            .unwrap();
        assert!(!is_incremental(&full), "{}", full.record.origin);
        let full_rows = full.record.rows;

        // Nothing changed: the next run asks only for recent entries and merges nothing.
        let quiet = sync_ldap(&store, &config, GUARDED, &mut hidden())
            .await
            .unwrap();
        assert!(is_incremental(&quiet), "{}", quiet.record.origin);
        assert_eq!(quiet.record.status, ImportStatus::Ok);
        assert_eq!(
            (quiet.record.rows, quiet.record.added, quiet.record.modified),
            (0, 0, 0)
        );

        change_directory(&server).await;
        let incremental = sync_ldap(&store, &config, GUARDED, &mut hidden())
            .await
            .unwrap();
        assert!(
            is_incremental(&incremental),
            "{}",
            incremental.record.origin
        );
        // Only the changed entries and the BALs of the renamed structure were read.
        assert!(
            incremental.record.rows > 0 && incremental.record.rows < full_rows / 10,
            "{} rows merged",
            incremental.record.rows
        );
        assert_eq!(incremental.record.added, 1);
        assert_eq!(
            incremental.changes.added,
            vec!["zoe.nouveau@apta78.mssante.fr".to_string()]
        );
        assert!(
            incremental
                .changes
                .modified
                .contains(&"jean.guerin@apta78.mssante.fr".to_string()),
            "{:?}",
            incremental.changes.modified
        );
        assert_eq!(incremental.record.removed, 0);

        let zoe = store
            .directory_by_address("Zoe.Nouveau@apta78.mssante.fr")
            .await
            .unwrap();
        assert_eq!(zoe.len(), 1);
        assert_eq!(zoe[0].source, "ldap");
        assert_eq!(
            (
                zoe[0].row.name.as_str(),
                zoe[0].row.national_id.as_str(),
                zoe[0].row.structure_name.as_str()
            ),
            ("NOUVEAU", "899999999990", "APTA 78 VERSAILLES")
        );
        let jean = store.directory_by_national_id("10946396008").await.unwrap();
        assert_eq!(jean.len(), 1);
        assert_eq!(jean[0].row.name, "GUERIN-MARTIN");
        assert_eq!(jean[0].row.structure_name, "APTA 78 VERSAILLES");
        let by_name = store
            .directory_search_name(&NameQuery {
                name: "guerin m".into(),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_name.len(), 1);
        // A deletion is not seen by an incremental run.
        assert_eq!(
            store
                .directory_by_national_id("10949939960")
                .await
                .unwrap()
                .len(),
            3
        );

        // A full run removes the deleted entry's addresses and agrees with what was merged.
        let full = sync_ldap_with(&store, &config, GUARDED, SyncMode::Full, &mut hidden())
            .await
            .unwrap();
        assert!(!is_incremental(&full), "{}", full.record.origin);
        assert_eq!(
            (full.record.added, full.record.removed, full.record.modified),
            (0, 3, 0),
            "{:?}",
            full.changes
        );
        assert!(
            store
                .directory_by_national_id("10949939960")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.directory_by_national_id("10946396008").await.unwrap()[0]
                .row
                .name,
            "GUERIN-MARTIN"
        );

        // Every `full_every` runs, a full one.
        config.full_every = 1;
        let next = sync_ldap(&store, &config, GUARDED, &mut hidden())
            .await
            .unwrap();
        assert!(is_incremental(&next), "{}", next.record.origin);
        let next = sync_ldap(&store, &config, GUARDED, &mut hidden())
            .await
            .unwrap();
        assert!(!is_incremental(&next), "{}", next.record.origin);
        // Another filter is another origin: its first run is full.
        config.full_every = 24;
        config.filter = "(|(objectClass=inetOrgPerson)(objectClass=organization))".into();
        let other = sync_ldap(&store, &config, GUARDED, &mut hidden())
            .await
            .unwrap();
        assert!(!is_incremental(&other), "{}", other.record.origin);
        let history = store.directory_history(20).await.unwrap();
        assert_eq!(
            history
                .iter()
                .filter(|r| r.origin.contains("(incremental since "))
                .count(),
            3
        );
    }
);
