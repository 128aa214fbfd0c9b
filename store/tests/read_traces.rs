//! A delegate's read traces queued for the next commit without waiting for it (ADR 0035), on
//! SQLite and on a real PostgreSQL: the trace reaches the trail shortly after the call
//! returned, in the order queued and chained; one that cannot be recorded says so.

use std::time::{Duration, Instant};

use mssante_store::*;
use mssante_testkit::engine_tests;

mod common;
use common::{bal_with_inbox, open};

const SEC: &str = "sec.dupont@ch-x.mssante.fr";
const DOCTOR: &str = "a@ch-x.mssante.fr";

/// The doctor's trail once it holds `n` entries, polled for at most five seconds.
async fn trail_of(store: &Store, n: usize) -> Vec<AuditEntry> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let trail = store
            .audit_entries(DOCTOR, &AuditQuery::default())
            .await
            .unwrap();
        if trail.len() >= n || Instant::now() > deadline {
            return trail;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

engine_tests!(
    a_queued_read_trace_reaches_the_trail_in_order_and_chained,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (bal_id, _) = bal_with_inbox(&store).await;
        let mut traces = Vec::new();
        for (action, uid) in [
            (AuditAction::Login, ""),
            (AuditAction::Select, ""),
            (AuditAction::FetchBody, "uid:1"),
            (AuditAction::FetchBody, "uid:2"),
        ] {
            let mut e = AuditEvent::new(bal_id, SEC, action);
            e.folder = "INBOX".into();
            e.message_ids = [uid]
                .iter()
                .filter(|u| !u.is_empty())
                .map(|u| u.to_string())
                .collect();
            // Returns at once: nothing awaited here.
            traces.push(store.queue_audit(&e));
        }
        // In the trail soon after (polled), in the order queued, chained.
        let trail = trail_of(&store, 4).await;
        let got: Vec<(&str, &str)> = trail
            .iter()
            .map(|e| (e.action.as_str(), e.message_ids.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("login", ""),
                ("select", ""),
                ("fetch-body", "uid:1"),
                ("fetch-body", "uid:2")
            ]
        );
        // Each says it committed (the rows may be visible just before it is told).
        for trace in traces {
            trace.settled().await.unwrap();
        }
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (4, None));

        // A write after a queued read comes after it in the chain (SQLite: the same queue;
        // PostgreSQL: the session waits for the trace first, as `orders_writes` says).
        let trace = store.queue_audit(&AuditEvent::new(bal_id, SEC, AuditAction::FetchBody));
        if trace.orders_writes() {
            trace.settled().await.unwrap();
        }
        store
            .record_audit(&AuditEvent::new(bal_id, SEC, AuditAction::Flags))
            .await
            .unwrap();
        let trail = trail_of(&store, 6).await;
        let last: Vec<&str> = trail[4..].iter().map(|e| e.action.as_str()).collect();
        assert_eq!(last, ["fetch-body", "flags"]);
        assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);
    }
);

engine_tests!(
    a_read_trace_that_cannot_be_recorded_says_so,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (bal_id, _) = bal_with_inbox(&store).await;
        // No such BAL: the entry's foreign key refuses it at commit.
        let mut trace =
            store.queue_audit(&AuditEvent::new(bal_id + 1000, SEC, AuditAction::Select));
        let deadline = Instant::now() + Duration::from_secs(5);
        let failed = loop {
            match trace.state() {
                TraceState::Pending if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                state => break state,
            }
        };
        assert!(matches!(failed, TraceState::Failed(_)), "{failed:?}");
        // The others' traces are not lost with it.
        let ok = store.queue_audit(&AuditEvent::new(bal_id, SEC, AuditAction::Select));
        ok.settled().await.unwrap();
        assert_eq!(trail_of(&store, 1).await.len(), 1);
    }
);

engine_tests!(
    the_chain_head_hint_never_forks_the_chain,
    |engine| async move {
        // ADR 0042: a store appends after the head it remembers, checked in the insert. Here
        // a second store on the same database (another process: the command line, another
        // node) appends behind the first one's back, and a group commit rolls back after an
        // entry was chained in it: the next entries still follow the real last one.
        let (store, db) = open(engine).await;
        let (bal_id, inbox) = bal_with_inbox(&store).await;
        let other = Store::open(&db.url, db.data_path()).await.unwrap();
        let event = |action| AuditEvent::new(bal_id, SEC, action);
        store
            .record_audit(&event(AuditAction::Login))
            .await
            .unwrap();
        other
            .record_audit(&event(AuditAction::Select))
            .await
            .unwrap();
        store
            .record_audit(&event(AuditAction::FetchBody))
            .await
            .unwrap();
        // A write's own entry, in its transaction, after the others.
        let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
        let (_, uid) = store
            .append(inbox.id, raw, &[], 0, MessageMeta::default())
            .await
            .unwrap();
        Store::audited(
            Some(event(AuditAction::Flags)),
            store.update_flags(inbox.id, &[uid], FlagOp::Add, &["$x".to_string()], None),
        )
        .await
        .unwrap();
        // A valid trace and one that fails at commit, likely in one group: the group is
        // rolled back and each write retried alone.
        let valid = store.queue_audit(&event(AuditAction::Select));
        let failing = store.queue_audit(&AuditEvent::new(bal_id + 1000, SEC, AuditAction::Select));
        assert!(failing.settled().await.is_err());
        valid.settled().await.unwrap();
        store
            .record_audit(&event(AuditAction::Expunge))
            .await
            .unwrap();
        let trail = trail_of(&store, 6).await;
        let got: Vec<(i64, &str)> = trail.iter().map(|e| (e.seq, e.action.as_str())).collect();
        assert_eq!(
            got,
            [
                (1, "login"),
                (2, "select"),
                (3, "fetch-body"),
                (4, "flags"),
                (5, "select"),
                (6, "expunge")
            ]
        );
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (6, None));
    }
);

engine_tests!(
    two_stores_appending_at_once_keep_one_unbroken_chain,
    |engine| async move {
        // Two stores on one database (two processes or nodes), each with several tasks
        // appending to the same BAL's trail at once: each store's remembered chain head is
        // stale half of the time. Every append must land (on SQLite no "database is
        // locked": ADR 0056), once, after the real last entry: no fork, no gap.
        let (store, db) = open(engine).await;
        let (bal_id, _) = bal_with_inbox(&store).await;
        let other = Store::open(&db.url, db.data_path()).await.unwrap();
        const TASKS_PER_STORE: usize = 3;
        const APPENDS_PER_TASK: usize = 20;
        let mut tasks = tokio::task::JoinSet::new();
        for (s, st) in [store.clone(), other.clone()].into_iter().enumerate() {
            for t in 0..TASKS_PER_STORE {
                let st = st.clone();
                tasks.spawn(async move {
                    for i in 0..APPENDS_PER_TASK {
                        let mut e = AuditEvent::new(bal_id, SEC, AuditAction::FetchBody);
                        e.message_ids = vec![format!("s{s}t{t}i{i}")];
                        st.record_audit(&e).await.unwrap();
                    }
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let total = 2 * TASKS_PER_STORE * APPENDS_PER_TASK;
        let trail = trail_of(&store, total).await;
        let seqs: Vec<i64> = trail.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
        // Every append is there once, each task's in the order it made them.
        let mut ids: Vec<&str> = trail.iter().map(|e| e.message_ids.as_str()).collect();
        for s in 0..2 {
            for t in 0..TASKS_PER_STORE {
                let prefix = format!("s{s}t{t}i");
                let mine: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|m| m.starts_with(&prefix))
                    .collect();
                let expected: Vec<String> = (0..APPENDS_PER_TASK)
                    .map(|i| format!("{prefix}{i}"))
                    .collect();
                assert_eq!(mine, expected);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total);
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (total as u64, None));
    }
);
