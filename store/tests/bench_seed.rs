//! The benchmark seeding of tracked messages (`mssante bench-seed`), on SQLite and on a real
//! PostgreSQL: the rows it inserts are what the status lookup reads (recipients, relayed or
//! failed, and MDNs), in batches that follow one another, and on SQLite the lookup's three
//! statements use an index (the status benchmark runs on a million of them).

use mssante_store::*;
use mssante_testkit::engine_tests;

mod common;
use common::{open, org};

engine_tests!(
    seeded_messages_have_statuses_and_indexed_lookups,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store.add_domain("labo.mssante.fr").await.unwrap();
        store
            .create_bal(&org("resultats@labo.mssante.fr", "750712186"))
            .await
            .unwrap();
        let from = Address::parse("resultats@labo.mssante.fr").unwrap();
        // 250 in batches of 100: three transactions, one range.
        let range = store
            .seed_tracked_messages(&from, "peer.invalid", 10, 250, 100)
            .await
            .unwrap();
        assert_eq!(range.last_id - range.first_id + 1, 250);
        let more = store
            .seed_tracked_messages(&from, "peer.invalid", 10, 5, 100)
            .await
            .unwrap();
        assert_eq!(more.first_id, range.last_id + 1);

        // An odd id: relayed, with a `displayed` MDN; a multiple of 4: failed with its reply.
        let odd = range.first_id | 1;
        let status = store.message_status_by_id(odd).await.unwrap().unwrap();
        assert_eq!(status.mail_from, "resultats@labo.mssante.fr");
        assert_eq!(status.recipients.len(), 1);
        let r = &status.recipients[0];
        assert_eq!(r.address, format!("user{}@peer.invalid", odd % 10 + 1));
        assert_eq!(r.reported_state(), "relayed");
        assert_eq!(r.disposition.as_ref().unwrap().state, "displayed");
        let four = (range.first_id + 3) / 4 * 4;
        let failed = store.message_status_by_id(four).await.unwrap().unwrap();
        let r = &failed.recipients[0];
        assert_eq!(r.reported_state(), "failed");
        assert_eq!(r.detail.as_deref(), Some("550 5.1.1 mailbox unknown"));
        assert!(r.disposition.is_none());

        // Unknown sender BAL: refused, nothing inserted.
        let nobody = Address::parse("nobody@labo.mssante.fr").unwrap();
        assert!(
            store
                .seed_tracked_messages(&nobody, "peer.invalid", 10, 5, 100)
                .await
                .is_err()
        );

        let plans = store.status_query_plans(odd).await.unwrap();
        assert_eq!(plans.len(), 3);
        for plan in &plans {
            let (_, steps) = plan.split_once('\n').unwrap();
            assert!(!steps.trim().is_empty(), "{plan}");
            // SQLite's planner is rule-based: "SEARCH … USING (INTEGER PRIMARY KEY | INDEX)"
            // whatever the size. PostgreSQL's weighs costs and rightly scans a table of a few
            // pages; its plans on a million rows are checked by the benchmark (BENCHMARKS.md).
            if store.engine() == Engine::Sqlite {
                assert!(
                    steps.contains("USING INTEGER PRIMARY KEY") || steps.contains("USING INDEX"),
                    "no index in the plan of {plan}"
                );
                assert!(!steps.contains("SCAN "), "{plan}");
            }
        }
    }
);
