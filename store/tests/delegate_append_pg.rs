//! A delegate's APPEND on PostgreSQL takes ADR 0043's one-statement path in a transaction
//! with its audit entry (ADR 0044): round trips counted through a proxy
//! (`mssante_testkit::round_trips`), holder and delegate side by side, not timed. Before,
//! the delegate's APPEND ran the transaction path's statement per row: 22 round trips
//! against the holder's 10 on the lead's count (issue 14).

use std::time::Duration;

use mssante_store::*;
use mssante_testkit::round_trips::RoundTrips;
use mssante_testkit::{Engine as TestEngine, TestDb};

mod common;
use common::bal_with_inbox;

const SEC: &str = "sec.dupont@ch-x.mssante.fr";

/// Round trips of `n` APPENDs to `folder`, each recorded for `as_delegate` when `Some`.
async fn appends(
    store: &Store,
    counter: &RoundTrips,
    (bal_id, folder): (i64, i64),
    as_delegate: bool,
    n: u64,
) -> (u64, Vec<u32>) {
    let mut total = 0;
    let mut uids = Vec::new();
    for i in 0..n {
        let raw = format!("Subject: {i}\r\n\r\nbody {as_delegate}\r\n").into_bytes();
        let event = as_delegate.then(|| AuditEvent::new(bal_id, SEC, AuditAction::Append));
        let before = counter.count();
        let append = store.append(folder, raw, &[], 0, MessageMeta::default());
        let (_, uid) = Store::audited(event, append).await.unwrap();
        // The pool pings a connection as it comes back: counted with this APPEND (see
        // smtp/tests/round_trips.rs for why the pause is short).
        tokio::time::sleep(Duration::from_millis(30)).await;
        total += counter.count() - before;
        uids.push(uid);
    }
    (total, uids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_append_costs_the_holders_round_trips_plus_its_entry() {
    let db = TestDb::new(TestEngine::Postgres);
    let counter = RoundTrips::start(&db.url).await;
    let store = Store::open(counter.url(), db.data_path()).await.unwrap();
    let (bal_id, inbox) = bal_with_inbox(&store).await;
    let target = (bal_id, inbox.id);
    // Warm-up: the pool's connections opened, the statements prepared, the chain's head
    // remembered.
    appends(&store, &counter, target, false, 3).await;
    appends(&store, &counter, target, true, 3).await;
    let n = 10;
    let (holder, _) = appends(&store, &counter, target, false, n).await;
    let (delegate, uids) = appends(&store, &counter, target, true, n).await;
    let (holder, delegate) = (holder as f64 / n as f64, delegate as f64 / n as f64);
    println!("round trips per APPEND: holder {holder:.1}, delegate {delegate:.1}");
    // BEGIN, the chain's lock, the entry, COMMIT: four more, one of slack for a ping.
    assert!(
        delegate <= holder + 5.0,
        "a delegate's APPEND took {delegate:.1} round trips, the holder's {holder:.1}"
    );
    // Each entry names the message its APPEND stored, and the chain verifies.
    let trail = store
        .audit_entries("a@ch-x.mssante.fr", &AuditQuery::default())
        .await
        .unwrap();
    let recorded: Vec<String> = trail[trail.len() - n as usize..]
        .iter()
        .map(|e| e.message_ids.clone())
        .collect();
    let want: Vec<String> = uids.iter().map(|u| format!("uid:{u}")).collect();
    assert_eq!(recorded, want);
    assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);
    let stored = store
        .folder_messages("a@ch-x.mssante.fr", "INBOX")
        .await
        .unwrap();
    assert_eq!(stored.len(), 26);
}
