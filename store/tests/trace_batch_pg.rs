//! PostgreSQL's committer of delegates' read traces (ADR 0035) inserts a group's entries
//! together (ADR 0060): one statement for the chains' locks, one for the entries, however
//! many traces the group holds, against a real PostgreSQL, round trips counted through a
//! proxy (`mssante_testkit::round_trips`), not timed. Each BAL's trail keeps the order the
//! traces were queued in and verifies.

use std::time::Duration;

use mssante_store::*;
use mssante_testkit::round_trips::RoundTrips;
use mssante_testkit::{Engine as TestEngine, TestDb};

mod common;
use common::per;

const SEC: &str = "sec.dupont@ch-x.mssante.fr";

fn trace(bal_id: i64, i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(bal_id, SEC, AuditAction::FetchBody);
    e.folder = "INBOX".into();
    e.message_ids = vec![format!("uid:{i}")];
    e
}

// One thread: the 30 traces below are all queued before the committer's task can take
// any, whatever the machine's load. (With two worker threads it could take the first few
// while the loop still queued, a third group: 14 round trips, seen once under load.)
#[tokio::test]
async fn a_group_of_read_traces_over_several_bals_costs_a_few_round_trips() {
    let db = TestDb::new(TestEngine::Postgres);
    let counter = RoundTrips::start(&db.url).await;
    let store = Store::open(counter.url(), db.data_path()).await.unwrap();
    store.add_domain("ch-x.mssante.fr").await.unwrap();
    let mut bals = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let address = format!("{name}@ch-x.mssante.fr");
        let bal = store
            .create_bal(&per(&address, &format!("1000345678{i}")))
            .await
            .unwrap();
        bals.push((address, bal.id));
    }
    // Warm-up: one trace per BAL, so that the committer's connection is open and each
    // chain's head remembered.
    for (_, bal_id) in &bals {
        store
            .queue_audit(&trace(*bal_id, 0))
            .settled()
            .await
            .unwrap();
    }

    // 30 traces queued at once, interleaved over the three BALs, with no await between
    // them: one group.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = counter.count();
    let queued: Vec<QueuedTrace> = (1..=30)
        .map(|i| store.queue_audit(&trace(bals[i % 3].1, i)))
        .collect();
    for q in queued {
        q.settled().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let trips = counter.count() - before;
    println!("round trips for 30 read traces over 3 BALs: {trips}");
    // Two groups at most of BEGIN, locks, insert, COMMIT, and a ping; one entry at a
    // time (a lock and an insert each) took more than 60.
    assert!(trips <= 12, "30 traces took {trips} round trips");

    for (k, (address, _)) in bals.iter().enumerate() {
        let trail = store
            .audit_entries(address, &AuditQuery::default())
            .await
            .unwrap();
        let got: Vec<&str> = trail.iter().map(|e| e.message_ids.as_str()).collect();
        let mut want = vec!["uid:0".to_string()];
        want.extend((1..=30).filter(|i| i % 3 == k).map(|i| format!("uid:{i}")));
        assert_eq!(got, want, "trail of {address}");
        let seqs: Vec<i64> = trail.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=want.len() as i64).collect::<Vec<_>>());
    }
    let v = store.verify_audit(None).await.unwrap();
    assert_eq!((v.entries, v.first_bad), (33, None));
}
