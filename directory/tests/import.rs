//! Bulk import of the extraction file, on SQLite and on a real PostgreSQL (issue #6 acceptance).

mod common;

use std::collections::BTreeSet;
use std::io::Write;

use common::*;
use mssante_directory::{ImportOptions, Progress, import_extraction};
use mssante_store::{ImportStatus, NameQuery, directory_sources};
use mssante_testkit::engine_tests;

async fn counts_by_type(store: &mssante_store::Store) -> Vec<(String, i64)> {
    store
        .directory_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.bal_type, c.rows))
        .collect()
}

engine_tests!(
    sample_imports_with_the_manifest_counts,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let manifest = json("Extraction_Correspondance_MSSante_sample.manifest.json");
        for name in [SAMPLE, SAMPLE_ZIP] {
            let report = import_fixture(&store, name).await;
            assert_eq!(
                report.record.status,
                ImportStatus::Ok,
                "{name}: {:?}",
                report.record.message
            );
            assert_eq!(
                report.record.rows,
                manifest["rows"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(
                report.record.addresses,
                manifest["distinct_addresses"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(report.record.rejected, 0, "{name}");
            assert!(report.rejects.is_empty());
            assert_eq!(
                counts_by_type(&store).await,
                vec![
                    ("ORG".to_string(), manifest["org_rows"].as_i64().unwrap()),
                    ("PER".to_string(), manifest["per_rows"].as_i64().unwrap()),
                ],
                "{name}"
            );
        }
        // The ZIP holds the same text: importing it over the .txt changes nothing.
        let history = store.directory_history(10).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            (history[0].added, history[0].removed, history[0].modified),
            (0, 0, 0)
        );
        assert_eq!(
            history[1].added, 1995,
            "the first import adds every address"
        );
        // Both lines of a duplicated address are kept (one per structure).
        for dup in manifest["duplicated_addresses"].as_array().unwrap() {
            let entries = store
                .directory_by_address(dup["address"].as_str().unwrap())
                .await
                .unwrap();
            let lines: Vec<i64> = entries.iter().map(|e| e.line).collect();
            let expected: Vec<i64> = dup["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_i64().unwrap())
                .collect();
            assert_eq!(lines, expected, "{dup}");
        }
    }
);

engine_tests!(
    corrupt_sample_rejects_exactly_the_listed_lines,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let expected = json("Extraction_Correspondance_MSSante_sample_corrupt.rejects.json");
        let report = import_fixture(&store, CORRUPT).await;
        assert_eq!(report.record.status, ImportStatus::Ok);
        assert_eq!(report.record.rows, expected["valid_rows"].as_i64().unwrap());
        assert_eq!(
            report.record.rejected,
            expected["rejected"].as_i64().unwrap()
        );
        let want: Vec<(i64, String)> = expected["rejects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["line"].as_i64().unwrap(),
                    r["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let got: Vec<(i64, String)> = report
            .rejects
            .iter()
            .map(|r| (r.line, r.kind.clone()))
            .collect();
        assert_eq!(got, want);
        // The history keeps them too, and none of their addresses was imported.
        let stored = store
            .directory_import_rejects(report.record.id)
            .await
            .unwrap();
        assert_eq!(stored, report.rejects);
        for reject in expected["rejects"].as_array().unwrap() {
            let address = reject["address"].as_str().unwrap();
            assert!(
                store
                    .directory_by_address(address)
                    .await
                    .unwrap()
                    .is_empty(),
                "{address}"
            );
        }
        // CRLF lines are read like LF lines: the sample's data is all there.
        assert_eq!(report.record.addresses, 1995);
    }
);

engine_tests!(
    day2_reports_exactly_the_delta_addresses,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let delta = json("Extraction_Correspondance_MSSante_sample_day2.delta.json");
        import_fixture(&store, SAMPLE).await;
        let report = import_fixture(&store, DAY2).await;
        assert_eq!(report.record.status, ImportStatus::Ok);
        assert_eq!(set_of(&report.changes.added), address_set(&delta["added"]));
        assert_eq!(
            set_of(&report.changes.removed),
            address_set(&delta["removed"])
        );
        let modified: BTreeSet<String> = delta["modified"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["address"].as_str().unwrap().to_lowercase())
            .collect();
        assert_eq!(set_of(&report.changes.modified), modified);
        let counts = &delta["counts"];
        assert_eq!(report.record.added, counts["added"].as_i64().unwrap());
        assert_eq!(report.record.removed, counts["removed"].as_i64().unwrap());
        assert_eq!(report.record.modified, counts["modified"].as_i64().unwrap());
        // The new day is what lookups now serve.
        let removed = delta["removed"][0].as_str().unwrap();
        assert!(
            store
                .directory_by_address(removed)
                .await
                .unwrap()
                .is_empty()
        );
        let added = delta["added"][0].as_str().unwrap();
        assert_eq!(store.directory_by_address(added).await.unwrap().len(), 1);
        let changed = &delta["modified"][0];
        let field_new = changed["fields"]["Code Profession"]["new"]
            .as_str()
            .unwrap();
        let entry = &store
            .directory_by_address(changed["address"].as_str().unwrap())
            .await
            .unwrap()[0];
        assert_eq!(entry.row.profession_code, field_new);
    }
);

/// The first `rows` data lines of the sample, header included.
fn truncated_sample(rows: usize) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for line in text.lines().take(rows + 1) {
        writeln!(file, "{line}").unwrap();
    }
    file
}

engine_tests!(
    truncated_file_is_refused_unless_forced,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let first = import_fixture(&store, SAMPLE).await;
        let truncated = truncated_sample(1_500); // 25 % fewer rows than the current 2,000
        let path = truncated.path().to_str().unwrap().to_string();
        let last_line_address = "muriel.robert@acisp.sante.mssante.fr"; // also on line 1508

        let refused = import(&store, &path).await;
        assert_eq!(refused.record.status, ImportStatus::Refused);
        assert!(
            refused
                .record
                .message
                .as_deref()
                .unwrap()
                .contains("drop guard")
        );
        let current = store
            .directory_current_import(directory_sources::EXTRACTION)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            current.id, first.record.id,
            "the previous import still serves"
        );
        assert_eq!(
            store.directory_counts().await.unwrap()[0].rows
                + store.directory_counts().await.unwrap()[1].rows,
            2000
        );
        let lines: Vec<i64> = store
            .directory_by_address(last_line_address)
            .await
            .unwrap()
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, vec![1425, 1508]);

        let forced = import_extraction(
            &store,
            &path,
            ImportOptions {
                force: true,
                ..GUARDED
            },
            &mut Progress::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(forced.record.status, ImportStatus::Ok);
        assert!(forced.record.forced);
        assert_eq!(forced.record.rows, 1_500);
        let lines: Vec<i64> = store
            .directory_by_address(last_line_address)
            .await
            .unwrap()
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, vec![1425]);
        let statuses: Vec<ImportStatus> = store
            .directory_history(10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(
            statuses,
            vec![ImportStatus::Ok, ImportStatus::Refused, ImportStatus::Ok]
        );
    }
);

engine_tests!(
    a_failed_import_leaves_the_previous_data,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let first = import_fixture(&store, SAMPLE).await;
        // A download that returned an error page instead of the file.
        let mut bogus = tempfile::NamedTempFile::new().unwrap();
        writeln!(bogus, "<html><body>503 Service Unavailable</body></html>").unwrap();
        let error = import_extraction(
            &store,
            bogus.path().to_str().unwrap(),
            GUARDED,
            &mut Progress::hidden(),
        )
        .await
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("not an Extraction_Correspondance_MSSante file"),
            "{error:#}"
        );
        // A ZIP cut in the middle of its member: rows were already written when it fails.
        let zip = std::fs::read(fixture(SAMPLE_ZIP)).unwrap();
        let mut cut = tempfile::NamedTempFile::new().unwrap();
        cut.write_all(&zip[..zip.len() / 2]).unwrap();
        assert!(
            import_extraction(
                &store,
                cut.path().to_str().unwrap(),
                GUARDED,
                &mut Progress::hidden()
            )
            .await
            .is_err()
        );

        let current = store
            .directory_current_import(directory_sources::EXTRACTION)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(current.id, first.record.id);
        let total: i64 = store
            .directory_counts()
            .await
            .unwrap()
            .iter()
            .map(|c| c.rows)
            .sum();
        assert_eq!(total, 2000);
        let history = store.directory_history(10).await.unwrap();
        assert_eq!(history[0].status, ImportStatus::Failed);
        assert_eq!(history[1].status, ImportStatus::Failed);
        // The next good import works and sees no leftovers of the failed ones.
        let again = import_fixture(&store, SAMPLE).await;
        assert_eq!(
            (again.record.rows, again.record.added, again.record.removed),
            (2000, 0, 0)
        );
    }
);

engine_tests!(
    lookups_see_yesterday_or_today_never_a_mix,
    |engine| async move {
        let (store, _db) = open(engine).await;
        // "mart" covers removed (franck.martinez@, monique.martin@), added (fabien.martin@) and
        // unchanged addresses: one lookup must answer with one day's set, never a blend.
        let query = NameQuery {
            profession: None,
            ..name("mart")
        };
        import_fixture(&store, SAMPLE).await;
        let yesterday = addresses(&store.directory_search_name(&query).await.unwrap());
        let importer = {
            let store = store.clone();
            tokio::spawn(async move { import_fixture(&store, DAY2).await })
        };
        let mut answers = Vec::new();
        while !importer.is_finished() {
            answers.push(addresses(
                &store.directory_search_name(&query).await.unwrap(),
            ));
        }
        importer.await.unwrap();
        let today = addresses(&store.directory_search_name(&query).await.unwrap());
        assert_ne!(yesterday, today);
        assert!(today.contains(&"fabien.martin@aps56.mssante.fr".to_string()));
        assert!(yesterday.contains(&"monique.martin@infirmier.mssante.fr".to_string()));
        for answer in &answers {
            assert!(
                *answer == yesterday || *answer == today,
                "a lookup saw a mix of both days"
            );
        }
        assert!(
            answers.contains(&yesterday),
            "lookups ran during the import"
        );
    }
);

fn addresses(entries: &[mssante_store::DirectoryEntry]) -> Vec<String> {
    let set: BTreeSet<String> = entries
        .iter()
        .map(|e| e.row.address.to_lowercase())
        .collect();
    set.into_iter().collect()
}

fn name(prefix: &str) -> NameQuery {
    NameQuery {
        name: prefix.into(),
        limit: 1000,
        ..Default::default()
    }
}

engine_tests!(lookups_by_address_id_and_name, |engine| async move {
    let (store, _db) = open(engine).await;
    import_fixture(&store, SAMPLE).await;

    // Address: case-insensitive both ways (line 242 is upper case in the file).
    let upper = store
        .directory_by_address("magali.roussel@appuisantecob.mssante.fr")
        .await
        .unwrap();
    assert_eq!(upper.len(), 1);
    assert_eq!(
        upper[0].row.address,
        "MAGALI.ROUSSEL@APPUISANTECOB.MSSANTE.FR"
    );
    assert_eq!(upper[0].line, 242);
    assert_eq!(upper[0].source, "extraction");
    let mixed = store
        .directory_by_address(" Antoine.Bernard@ADAPEI.mssante.fr ")
        .await
        .unwrap();
    assert_eq!(mixed[0].row.national_id, "810939538301");
    assert!(
        store
            .directory_by_address("nobody@medecin.mssante.fr")
            .await
            .unwrap()
            .is_empty()
    );

    // National id or bare RPPS: every BAL of the professional.
    let expected = vec![
        "audrey.renard@altir-grand-est.mssante.fr".to_string(),
        "audrey.renard@annie-enia.mssante.fr".to_string(),
        "audrey.renard@appui-sante10.mssante.fr".to_string(),
    ];
    assert_eq!(
        addresses(
            &store
                .directory_by_national_id("810949939960")
                .await
                .unwrap()
        ),
        expected
    );
    assert_eq!(
        addresses(&store.directory_by_national_id("10949939960").await.unwrap()),
        expected
    );
    let first = &store.directory_by_national_id("10949939960").await.unwrap()[0];
    assert_eq!(
        (
            first.row.bal_type.as_str(),
            first.row.profession_label.as_str(),
            first.row.structure_id.as_str()
        ),
        ("PER", "Pharmacien", "337124155593549")
    );

    // Name prefixes, accent- and case-insensitive (expected sets computed from the fixture
    // with Python's NFD decomposition, an independent folding).
    assert_eq!(
        addresses(&store.directory_search_name(&name("Coeurd")).await.unwrap()),
        vec![
            "amandine.coeurderoy@pharmacien.mssante.fr",
            "patrick.coeurderoy@appuisantemartinique.mssante.fr"
        ]
    );
    assert_eq!(
        addresses(&store.directory_search_name(&name("ÉLOÏSE")).await.unwrap()),
        vec![
            "e.duval@a-3-s.mssante.fr",
            "eloise.dornano@apfpaysdeloire.mssante.fr",
            "eloise.morel@adapei01.aura.mssante.fr"
        ]
    );
    assert_eq!(
        addresses(&store.directory_search_name(&name("d'alm")).await.unwrap()),
        vec![
            "laetitia.dalmeida@pharmacien.mssante.fr",
            "sarah.dalmeida@agesthi.mssante.fr",
            "sarah.dalmeida@appuisantecob.mssante.fr"
        ]
    );
    assert_eq!(
        addresses(&store.directory_search_name(&name("mar")).await.unwrap()).len(),
        288
    );
    let doctors = NameQuery {
        profession: Some("10".into()),
        ..name("mar")
    };
    assert_eq!(
        addresses(&store.directory_search_name(&doctors).await.unwrap()).len(),
        139
    );
    let by_label = NameQuery {
        profession: Some("medecin".into()),
        ..name("mar")
    };
    assert_eq!(
        addresses(&store.directory_search_name(&by_label).await.unwrap()).len(),
        139
    );
    let in_paris = NameQuery {
        postcode: Some("75".into()),
        ..doctors.clone()
    };
    assert_eq!(
        addresses(&store.directory_search_name(&in_paris).await.unwrap()),
        vec![
            "audrey.martin@a-3-s.mssante.fr",
            "chloe.martin@adequadom.mssante.fr",
            "joachim.martin@apei-gam.mssante.fr",
            "quentin.martin@app-ramsaygds.mssante.fr"
        ]
    );
    let jean_martin = NameQuery {
        first_name: Some("quent".into()),
        ..in_paris
    };
    assert_eq!(
        addresses(&store.directory_search_name(&jean_martin).await.unwrap()),
        vec!["quentin.martin@app-ramsaygds.mssante.fr"]
    );
    let limited = NameQuery {
        limit: 5,
        ..name("mar")
    };
    assert_eq!(
        store.directory_search_name(&limited).await.unwrap().len(),
        5
    );
    assert!(
        store.directory_search_name(&name(" - ")).await.is_err(),
        "a search needs letters"
    );
});

engine_tests!(
    a_load_whose_writer_fails_returns_instead_of_hanging,
    |engine| async move {
        // The writer fails on its first batch (the import was taken over: its heartbeat is
        // refused) while more batches wait to be encoded: the load must return the error, not
        // wait forever on the encoder (which waits for room in the channel to the writer).
        let (store, _db) = open(engine).await;
        let import_id = store
            .directory_begin_import(directory_sources::EXTRACTION, "test")
            .await
            .unwrap();
        store
            .directory_fail_import(import_id, "taken over")
            .await
            .unwrap();
        let (sink, mut batches) = tokio::sync::mpsc::channel(16);
        let row = mssante_store::DirectoryRow {
            bal_type: "PER".into(),
            address: "a@b.fr".into(),
            ..Default::default()
        };
        for _ in 0..8 {
            sink.send(vec![(2, row.clone()); 100]).await.unwrap();
        }
        drop(sink);
        let load = store.directory_load(import_id, &mut batches, |_| {});
        let error = tokio::time::timeout(std::time::Duration::from_secs(30), load)
            .await
            .expect("the load hung")
            .unwrap_err();
        assert!(error.to_string().contains("no longer running"), "{error}");
    }
);
