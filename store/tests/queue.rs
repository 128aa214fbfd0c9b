//! The outbound queue, reports owed and tracking, on SQLite and on a real PostgreSQL.

use mssante_mail::dsn::Notify;
use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb, engine_tests};

async fn open(engine: TestEngine) -> (Store, TestDb) {
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path())
        .await
        .expect("open store");
    (store, db)
}

fn remote(address: &str, notify: Option<&str>) -> RecipientSpec {
    RecipientSpec {
        address: Address::parse(address).unwrap(),
        orcpt: Some(format!("rfc822;{address}")),
        notify: notify.map(|n| Notify::parse(n).unwrap()),
        disposition: RcptDisposition::Remote,
    }
}

fn submitted(msgid: &str, from: &str, rcpts: Vec<RecipientSpec>) -> IncomingMessage {
    IncomingMessage {
        raw: format!("Message-ID: <{msgid}>\r\nSubject: CR\r\n\r\nbody\r\n").into_bytes(),
        mail_from: from.into(),
        envid: Some(format!("ENV-{msgid}")),
        ret: Some(Ret::Hdrs),
        source: Source::Submission,
        auth_bal_id: None,
        meta: MessageMeta {
            message_id: Some(msgid.into()),
            ..MessageMeta::default()
        },
        recipients: rcpts,
    }
}

engine_tests!(
    claims_are_exclusive_until_the_lease_ends,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let rcpts = (0..6)
            .map(|i| remote(&format!("dr{i}@b.mssante.fr"), None))
            .collect();
        store
            .deliver(submitted("m1@a", "s@a.mssante.fr", rcpts))
            .await
            .unwrap();
        // Two workers claiming at the same time share the six rows without overlap.
        let (a, b) = tokio::join!(
            store.claim_queued("w1", 300, 4),
            store.claim_queued("w2", 300, 4)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut ids: Vec<i64> = a.iter().chain(b.iter()).map(|i| i.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 6, "every row claimed once: {a:?} {b:?}");
        assert_eq!(a.len() + b.len(), 6);
        assert!(store.claim_queued("w3", 300, 10).await.unwrap().is_empty());
        // Freed claims (w1's, as after a restart of that worker) are taken again.
        store.release_node_claims("w1").await.unwrap();
        let again = store.claim_queued("w3", 0, 10).await.unwrap();
        let mut freed: Vec<i64> = a.iter().map(|i| i.id).collect();
        freed.sort();
        assert_eq!(again.iter().map(|i| i.id).collect::<Vec<_>>(), freed);
        assert_eq!(again[0].domain(), "b.mssante.fr");
        assert_eq!(again[0].envid.as_deref(), Some("ENV-m1@a"));
    }
);

engine_tests!(outcomes_decide_the_reports_owed, |engine| async move {
    let (store, _db) = open(engine).await;
    store
        .deliver(submitted(
            "m2@a",
            "s@a.mssante.fr",
            vec![
                remote("ok-nodsn@b.mssante.fr", Some("SUCCESS,FAILURE")),
                remote("ok-dsn@b.mssante.fr", Some("SUCCESS")),
                remote("bad@b.mssante.fr", None),
                remote("never@b.mssante.fr", Some("NEVER")),
                remote("late@b.mssante.fr", Some("DELAY")),
            ],
        ))
        .await
        .unwrap();
    let items = store.claim_queued("w", 300, 10).await.unwrap();
    let by = |a: &str| items.iter().find(|i| i.address == a).unwrap().clone();
    let relayed = |dsn| AttemptOutcome::Relayed {
        remote_mta: "mx.b.mssante.fr".into(),
        reply: "250 2.0.0 Ok".into(),
        peer_dsn: dsn,
    };
    let failed = AttemptOutcome::Failed {
        remote_mta: Some("mx.b.mssante.fr".into()),
        status: "5.1.1".into(),
        reply: "550 5.1.1 no such mailbox".into(),
    };
    let deferred = |delayed| AttemptOutcome::Deferred {
        remote_mta: None,
        status: "4.4.1".into(),
        reply: "connection refused".into(),
        next_attempt: now() + 60,
        delayed,
    };
    store
        .record_attempt(&by("ok-nodsn@b.mssante.fr"), &relayed(false))
        .await
        .unwrap();
    store
        .record_attempt(&by("ok-dsn@b.mssante.fr"), &relayed(true))
        .await
        .unwrap();
    store
        .record_attempt(&by("bad@b.mssante.fr"), &failed)
        .await
        .unwrap();
    store
        .record_attempt(&by("never@b.mssante.fr"), &failed)
        .await
        .unwrap();
    store
        .record_attempt(&by("late@b.mssante.fr"), &deferred(true))
        .await
        .unwrap();

    let mut due: Vec<(String, String)> = store
        .due_reports(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.address, r.action.to_string()))
        .collect();
    due.sort();
    assert_eq!(
        due,
        vec![
            ("bad@b.mssante.fr".into(), "failed".into()),
            ("late@b.mssante.fr".into(), "delayed".into()),
            ("ok-nodsn@b.mssante.fr".into(), "relayed".into()),
        ],
        "NOTIFY decides: default FAILURE,DELAY; NEVER silences; a DSN peer reports success itself"
    );
    let ids: Vec<i64> = store
        .due_reports(100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.recipient_id)
        .collect();
    store.clear_reports(&ids).await.unwrap();
    assert!(store.due_reports(100).await.unwrap().is_empty());

    // A second delay is not reported again; the row is still queued with its last error.
    let late = store.queue_list().await.unwrap();
    assert_eq!(late.len(), 1);
    assert!(late[0].delay_reported);
    assert_eq!(late[0].last_error.as_deref(), Some("connection refused"));
    assert!(
        !store
            .record_attempt(&late[0], &deferred(true))
            .await
            .unwrap(),
        "an attempt is recorded only under the claim it was made under"
    );
    store.queue_retry(Some(late[0].id)).await.unwrap();
    let late = store.claim_queued("w", 300, 10).await.unwrap();
    assert_eq!(late.len(), 1);
    assert!(
        store
            .record_attempt(&late[0], &deferred(true))
            .await
            .unwrap()
    );
    assert!(store.due_reports(100).await.unwrap().is_empty());
    assert_eq!(
        store
            .queue_item(late[0].id)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        2
    );
});

engine_tests!(administrators_retry_and_delete, |engine| async move {
    let (store, _db) = open(engine).await;
    store
        .deliver(submitted(
            "m3@a",
            "s@a.mssante.fr",
            vec![
                remote("x@b.mssante.fr", None),
                remote("y@b.mssante.fr", None),
            ],
        ))
        .await
        .unwrap();
    let items = store.claim_queued("w", 300, 10).await.unwrap();
    for item in &items {
        let later = deferred_an_hour();
        store.record_attempt(item, &later).await.unwrap();
    }
    assert!(
        store.claim_queued("w", 300, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(store.queue_retry(Some(items[0].id)).await.unwrap(), 1);
    assert_eq!(store.claim_queued("w", 300, 10).await.unwrap().len(), 1);
    assert!(store.queue_delete(items[1].id).await.unwrap());
    assert!(
        !store.queue_delete(items[1].id).await.unwrap(),
        "already out of the queue"
    );
    let deleted = store.queue_item(items[1].id).await.unwrap().unwrap();
    assert_eq!(deleted.status, "failed");
    assert_eq!(store.queue_list().await.unwrap().len(), 1);
});

// An administrator deletes a recipient while the relay holds its claim (a connection in
// progress): the attempt's outcome, recorded afterwards, must not put it back in the queue.
engine_tests!(
    an_attempt_ending_after_an_admin_delete_does_not_requeue,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store
            .deliver(submitted(
                "m4@a",
                "s@a.mssante.fr",
                vec![
                    remote("gone@b.mssante.fr", Some("FAILURE,DELAY")),
                    remote("done@b.mssante.fr", None),
                ],
            ))
            .await
            .unwrap();
        let items = store.claim_queued("w", 300, 10).await.unwrap();
        let by = |a: &str| items.iter().find(|i| i.address == a).unwrap().clone();
        let (gone, done) = (by("gone@b.mssante.fr"), by("done@b.mssante.fr"));
        assert!(store.queue_delete(gone.id).await.unwrap());
        assert!(store.queue_delete(done.id).await.unwrap());
        let deferred = AttemptOutcome::Deferred {
            remote_mta: Some("mx.b.mssante.fr".into()),
            status: "4.4.1".into(),
            reply: "421 try later".into(),
            next_attempt: now() - 1,
            delayed: true,
        };
        store.record_attempt(&gone, &deferred).await.unwrap();
        let row = store.queue_item(gone.id).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.next_attempt),
            ("failed", None),
            "the deleted recipient came back: {row:?}"
        );
        assert_eq!(
            row.last_error.as_deref(),
            Some("removed from the queue by an administrator")
        );
        assert!(store.claim_queued("w2", 300, 10).await.unwrap().is_empty());
        assert!(store.queue_list().await.unwrap().is_empty());
        assert!(
            store.due_reports(10).await.unwrap().is_empty(),
            "no delay report for a recipient taken out of the queue"
        );
        // A relay that did happen is recorded all the same: the message left.
        let relayed = AttemptOutcome::Relayed {
            remote_mta: "mx.b.mssante.fr".into(),
            reply: "250 2.0.0 Ok".into(),
            peer_dsn: true,
        };
        store.record_attempt(&done, &relayed).await.unwrap();
        let row = store.queue_item(done.id).await.unwrap().unwrap();
        assert_eq!(row.status, "relayed");
    }
);

engine_tests!(reports_that_come_back_are_tracked, |engine| async move {
    let (store, _db) = open(engine).await;
    store.add_domain("a.mssante.fr").await.unwrap();
    store
        .deliver(submitted(
            "m4@a",
            "s@a.mssante.fr",
            vec![
                remote("dr@b.mssante.fr", Some("SUCCESS")),
                remote("sec@b.mssante.fr", None),
            ],
        ))
        .await
        .unwrap();
    for item in store.claim_queued("w", 300, 10).await.unwrap() {
        let relayed = AttemptOutcome::Relayed {
            remote_mta: "mx.b".into(),
            reply: "250 ok".into(),
            peer_dsn: true,
        };
        store.record_attempt(&item, &relayed).await.unwrap();
    }
    let report = |kind, rcpt: &str, state: &str, codes: Vec<u16>| TrackingReport {
        kind,
        original_msgid: Some("m4@a".into()),
        envid: None,
        recipient: rcpt.into(),
        state: state.into(),
        detail: None,
        error_codes: codes,
    };
    let incoming = |tracking: Vec<TrackingReport>| IncomingMessage {
        raw: b"Subject: report\r\n\r\nx\r\n".to_vec(),
        mail_from: String::new(),
        envid: None,
        ret: None,
        source: Source::Mx,
        auth_bal_id: None,
        meta: MessageMeta {
            tracking,
            ..MessageMeta::default()
        },
        recipients: vec![remote("s@elsewhere.mssante.fr", None)],
    };
    store
        .deliver(incoming(vec![report(
            TrackingKind::Dsn,
            "DR@b.mssante.fr",
            "delivered",
            vec![],
        )]))
        .await
        .unwrap();
    store
        .deliver(incoming(vec![report(
            TrackingKind::Mdn,
            "dr@b.mssante.fr",
            "displayed",
            vec![],
        )]))
        .await
        .unwrap();
    store
        .deliver(incoming(vec![report(
            TrackingKind::Mdn,
            "sec@b.mssante.fr",
            "processed",
            vec![902],
        )]))
        .await
        .unwrap();
    let status = store.message_status("<m4@a>").await.unwrap();
    assert_eq!(status.len(), 1);
    let rcpts = &status[0].recipients;
    assert_eq!(rcpts[0].address, "dr@b.mssante.fr");
    assert_eq!(
        rcpts[0].state, "delivered",
        "the peer's DSN upgrades relayed"
    );
    assert_eq!(rcpts[0].disposition.as_ref().unwrap().state, "displayed");
    assert_eq!(rcpts[1].state, "relayed");
    let mdn = rcpts[1].disposition.as_ref().unwrap();
    assert_eq!(
        (mdn.state.as_str(), mdn.error_codes.clone()),
        ("processed", vec![902])
    );
    assert!(store.message_status("unknown@x").await.unwrap().is_empty());
    assert_eq!(store.tracking_event_count().await.unwrap(), 3);
});

engine_tests!(
    a_restarted_node_frees_only_its_own_claims,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let rcpts = (0..2)
            .map(|i| remote(&format!("dr{i}@b.mssante.fr"), None))
            .collect();
        store
            .deliver(submitted("m5@a", "s@a.mssante.fr", rcpts))
            .await
            .unwrap();
        let mine = store.claim_queued("mx.a/node1:100", 900, 1).await.unwrap();
        let theirs = store.claim_queued("mx.a/node2:200", 900, 1).await.unwrap();
        assert_eq!((mine.len(), theirs.len()), (1, 1));
        // node1 restarts (new pid): its old claim is freed, node2's live claim is not.
        assert_eq!(store.release_node_claims("mx.a/node1:").await.unwrap(), 1);
        let again = store.claim_queued("mx.a/node1:101", 900, 10).await.unwrap();
        assert_eq!(
            again.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![mine[0].id]
        );
    }
);

/// Waits until the leases of `items` are over (`claim_queued` takes a row whose
/// `locked_until` is in the past).
async fn outlive_leases(items: &[QueueItem]) {
    let end = items.iter().filter_map(|i| i.locked_until).max().unwrap();
    while now() <= end {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A time-out, tried again in an hour.
fn deferred_an_hour() -> AttemptOutcome {
    AttemptOutcome::Deferred {
        remote_mta: None,
        status: "4.4.1".into(),
        reply: "timeout".into(),
        next_attempt: now() + 3600,
        delayed: false,
    }
}

fn relayed_by(worker: &str) -> AttemptOutcome {
    AttemptOutcome::Relayed {
        remote_mta: "mx.b.mssante.fr".into(),
        reply: format!("250 2.0.0 sent by {worker}"),
        peer_dsn: false,
    }
}

// ADR 0045: a worker still sending when its lease ends, its row claimed again by another
// node that sends and marks it first: the first worker's late mark must not apply (the row
// would be marked sent twice, its attempt counted twice, the record overwritten).
engine_tests!(
    a_late_outcome_after_a_lease_overrun_is_not_recorded,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store
            .deliver(submitted(
                "m6@a",
                "s@a.mssante.fr",
                vec![
                    remote("overrun@b.mssante.fr", Some("SUCCESS,FAILURE")),
                    remote("deferred@b.mssante.fr", None),
                    remote("alone@b.mssante.fr", None),
                ],
            ))
            .await
            .unwrap();
        let slow = store.claim_queued("node1:1", 1, 10).await.unwrap();
        assert_eq!(slow.len(), 3);
        assert!(
            store
                .claim_queued("node2:2", 1, 10)
                .await
                .unwrap()
                .is_empty(),
            "the lease holds"
        );
        let by = |items: &[QueueItem], a: &str| items.iter().find(|i| i.address == a).cloned();
        // node1's lease ends while it still talks to the peer; node2 takes two of its rows.
        outlive_leases(&slow).await;
        let taken = store.claim_queued("node2:2", 900, 2).await.unwrap();
        assert_eq!(taken.len(), 2, "expired claims are taken over");
        let overrun = by(&taken, "overrun@b.mssante.fr").unwrap();
        let deferred = by(&taken, "deferred@b.mssante.fr").unwrap();
        assert!(by(&taken, "alone@b.mssante.fr").is_none());

        // node2 sends first and marks the row sent; node1's late mark, a relay or a
        // failure, changes nothing.
        assert!(
            store
                .record_attempt(&overrun, &relayed_by("node2"))
                .await
                .unwrap()
        );
        let late = by(&slow, "overrun@b.mssante.fr").unwrap();
        assert!(
            !store
                .record_attempt(&late, &relayed_by("node1"))
                .await
                .unwrap()
        );
        let failed = AttemptOutcome::Failed {
            remote_mta: None,
            status: "5.4.7".into(),
            reply: "given up".into(),
        };
        assert!(!store.record_attempt(&late, &failed).await.unwrap());
        let row = store.queue_item(overrun.id).await.unwrap().unwrap();
        assert_eq!(row.status, "relayed");
        assert_eq!(row.attempts, 1, "marked sent once: {row:?}");
        assert_eq!(row.last_error.as_deref(), Some("250 2.0.0 sent by node2"));
        let due = store.due_reports(10).await.unwrap();
        assert_eq!(
            due.iter().map(|r| r.address.as_str()).collect::<Vec<_>>(),
            vec!["overrun@b.mssante.fr"],
            "one relayed report, owed by node2's record"
        );

        // While node2 still holds its claim, node1's late outcome does not apply either.
        let late = by(&slow, "deferred@b.mssante.fr").unwrap();
        let later = deferred_an_hour();
        assert!(!store.record_attempt(&late, &later).await.unwrap());
        assert!(
            !store
                .record_attempt(&late, &relayed_by("node1"))
                .await
                .unwrap()
        );
        let row = store.queue_item(deferred.id).await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("queued", 0));
        assert_eq!(row.locked_by.as_deref(), Some("node2:2"));
        // node2's attempt is deferred: the row is queued and nobody's, so node1's relay (the
        // message did leave) is recorded, and the row is not sent a third time.
        assert!(store.record_attempt(&deferred, &later).await.unwrap());
        assert!(
            store
                .record_attempt(&late, &relayed_by("node1"))
                .await
                .unwrap()
        );
        let row = store.queue_item(deferred.id).await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("relayed", 2));

        // A lease that ran out without anyone claiming the row again is still node1's.
        let alone = by(&slow, "alone@b.mssante.fr").unwrap();
        assert!(
            store
                .record_attempt(&alone, &relayed_by("node1"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_attempt(&alone, &relayed_by("node1"))
                .await
                .unwrap(),
            "recorded once"
        );
        let row = store.queue_item(alone.id).await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("relayed", 1));
    }
);
