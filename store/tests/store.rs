//! Store behaviour, on SQLite and on a real PostgreSQL cluster.

use mssante_mail::dsn::Notify;
use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, engine_tests};

mod common;
use common::{bal_with_inbox, local, message, open, per};

engine_tests!(
    migrations_run_twice_and_engine_is_detected,
    |engine| async move {
        let (store, db) = open(engine).await;
        store.close().await;
        let again = Store::open(&db.url, db.data_path()).await.expect("reopen");
        let expected = match engine {
            TestEngine::Sqlite => mssante_store::Engine::Sqlite,
            TestEngine::Postgres => mssante_store::Engine::Postgres,
        };
        assert_eq!(again.engine(), expected);
    }
);

engine_tests!(domains_are_normalised_and_unique, |engine| async move {
    let (store, _db) = open(engine).await;
    let d = store.add_domain("CH-X.MSSante.fr").await.unwrap();
    assert_eq!(d.name, "ch-x.mssante.fr");
    let dup = store.add_domain("ch-x.mssante.fr").await.unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate(_)), "{dup:?}");
    assert!(matches!(
        store.add_domain("not a domain").await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.list_domains().await.unwrap().len(), 1);
    assert!(store.is_local_domain("CH-X.mssante.fr").await.unwrap());
    assert!(!store.is_local_domain("other.mssante.fr").await.unwrap());
});

engine_tests!(
    bal_creation_makes_special_use_folders,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store.add_domain("ch-x.mssante.fr").await.unwrap();
        let bal = store
            .create_bal(&per("Jean.Dupont@ch-x.mssante.fr", "10003456789"))
            .await
            .unwrap();
        assert_eq!(bal.address.as_str(), "jean.dupont@ch-x.mssante.fr");
        assert_eq!(bal.national_id.as_deref(), Some("810003456789"));
        assert_eq!(bal.status, BalStatus::Active);
        let folders = store
            .folder_summaries("jean.dupont@ch-x.mssante.fr")
            .await
            .unwrap();
        let names: Vec<_> = folders
            .iter()
            .map(|f| (f.name.as_str(), f.special_use.as_deref()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("Drafts", Some("\\Drafts")),
                ("INBOX", None),
                ("Sent", Some("\\Sent")),
                ("Trash", Some("\\Trash"))
            ]
        );
        assert!(folders.iter().all(|f| f.uidnext == 1 && f.uidvalidity > 0));
    }
);

engine_tests!(bal_creation_errors_are_clear, |engine| async move {
    let (store, _db) = open(engine).await;
    let err = store
        .create_bal(&per("a@unknown.mssante.fr", "10003456789"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a local domain"), "{err}");
    store.add_domain("ch-x.mssante.fr").await.unwrap();
    store
        .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
        .await
        .unwrap();
    let err = store
        .create_bal(&per("A@CH-X.mssante.fr", "10003456789"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    let err = store
        .create_bal(&per("bad address@ch-x.mssante.fr", "10003456789"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid address"), "{err}");
    // Nothing half-created: exactly one BAL and its four folders.
    assert_eq!(store.list_bals(None).await.unwrap().len(), 1);
});

engine_tests!(life_cycle_is_enforced, |engine| async move {
    let (store, _db) = open(engine).await;
    store.add_domain("ch-x.mssante.fr").await.unwrap();
    store
        .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
        .await
        .unwrap();
    let a = "a@ch-x.mssante.fr";
    assert!(
        store.set_bal_status(a, BalStatus::Active).await.is_err(),
        "already active"
    );
    assert_eq!(
        store
            .set_bal_status(a, BalStatus::Suspended)
            .await
            .unwrap()
            .status,
        BalStatus::Suspended
    );
    assert_eq!(
        store
            .set_bal_status(a, BalStatus::Active)
            .await
            .unwrap()
            .status,
        BalStatus::Active
    );
    assert_eq!(
        store
            .set_bal_status(a, BalStatus::Closed)
            .await
            .unwrap()
            .status,
        BalStatus::Closed
    );
    assert!(
        store.set_bal_status(a, BalStatus::Active).await.is_err(),
        "closed is final"
    );
});

engine_tests!(password_login_and_invalidation, |engine| async move {
    let (store, _db) = open(engine).await;
    store.add_domain("ch-x.mssante.fr").await.unwrap();
    let mut new = per("a@ch-x.mssante.fr", "10003456789");
    new.password_hash = Some(hash_password("first secret").unwrap());
    store.create_bal(&new).await.unwrap();
    let a = "a@ch-x.mssante.fr";
    assert!(
        store
            .authenticate("A@ch-x.mssante.fr", "first secret")
            .await
            .unwrap()
            .is_ok()
    );
    // Second login is served from the cache; still correct.
    assert!(store.authenticate(a, "first secret").await.unwrap().is_ok());
    assert_eq!(
        store.authenticate(a, "wrong").await.unwrap().unwrap_err(),
        AuthFailure::BadPassword
    );
    store
        .set_bal_password(a, &hash_password("second secret").unwrap())
        .await
        .unwrap();
    assert_eq!(
        store
            .authenticate(a, "first secret")
            .await
            .unwrap()
            .unwrap_err(),
        AuthFailure::BadPassword,
        "old password still accepted after a change"
    );
    assert!(
        store
            .authenticate(a, "second secret")
            .await
            .unwrap()
            .is_ok()
    );
    store.set_bal_status(a, BalStatus::Suspended).await.unwrap();
    assert_eq!(
        store
            .authenticate(a, "second secret")
            .await
            .unwrap()
            .unwrap_err(),
        AuthFailure::Suspended
    );
    assert_eq!(
        store
            .authenticate("nobody@ch-x.mssante.fr", "x")
            .await
            .unwrap()
            .unwrap_err(),
        AuthFailure::UnknownAccount
    );
});

engine_tests!(one_blob_for_many_local_recipients, |engine| async move {
    let (store, db) = open(engine).await;
    store.add_domain("ch-x.mssante.fr").await.unwrap();
    let a = store
        .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
        .await
        .unwrap();
    let b = store
        .create_bal(&per("b@ch-x.mssante.fr", "10003456790"))
        .await
        .unwrap();
    let raw = b"Subject: report\r\n\r\nbody\r\n";
    let remote = RecipientSpec {
        address: Address::parse("dr@other.mssante.fr").unwrap(),
        orcpt: None,
        notify: Some(Notify::NEVER),
        disposition: RcptDisposition::Remote,
    };
    let receipt = store
        .deliver(message(
            raw,
            vec![
                local("a@ch-x.mssante.fr", a.id),
                local("b@ch-x.mssante.fr", b.id),
                remote,
            ],
        ))
        .await
        .unwrap();
    assert_eq!((receipt.delivered_local, receipt.queued_remote), (2, 1));
    assert_eq!(store.message_count().await.unwrap(), 1);
    for addr in ["a@ch-x.mssante.fr", "b@ch-x.mssante.fr"] {
        let msgs = store.folder_messages(addr, "INBOX").await.unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].uid, 1);
        assert_eq!(msgs[0].blob_hash, receipt.blob_hash);
        assert_eq!(store.read_blob(&msgs[0].blob_hash).await.unwrap(), raw);
        // RFC 8514: a delivered copy has its SAVEDATE, on both engines (PostgreSQL's
        // one-statement delivery left it NULL, answered as NIL).
        let inbox = store.folder_summaries(addr).await.unwrap();
        let inbox = inbox.iter().find(|f| f.name == "INBOX").unwrap();
        let info = store.message_infos(inbox.id, &[1]).await.unwrap();
        assert!(info[0].saved_at.is_some(), "{addr}: no SAVEDATE");
    }
    let blob_files = walk_files(&db.data_path().join("blobs"));
    assert_eq!(
        blob_files, 0,
        "a small message lives in the database (ADR 0009)"
    );
    let queued = store.queue_list().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].address, "dr@other.mssante.fr");
    assert_eq!(queued[0].notify, Some(Notify::NEVER));
    assert_eq!(queued[0].envid.as_deref(), Some("ENV1"));
    assert_eq!(queued[0].ret, Some(Ret::Hdrs));
});

engine_tests!(
    uids_and_modseqs_increase_under_concurrency,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store.add_domain("ch-x.mssante.fr").await.unwrap();
        let a = store
            .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let raw = format!("Subject: {i}\r\n\r\n{i}\r\n");
                store
                    .deliver(message(
                        raw.as_bytes(),
                        vec![local("a@ch-x.mssante.fr", a.id)],
                    ))
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let msgs = store
            .folder_messages("a@ch-x.mssante.fr", "INBOX")
            .await
            .unwrap();
        let uids: Vec<i64> = msgs.iter().map(|m| m.uid).collect();
        assert_eq!(uids, (1..=40).collect::<Vec<_>>());
        let mut modseqs: Vec<i64> = msgs.iter().map(|m| m.modseq).collect();
        modseqs.sort();
        modseqs.dedup();
        assert_eq!(modseqs.len(), 40, "each append has its own modseq");
        let inbox = store
            .folder_summaries("a@ch-x.mssante.fr")
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.name == "INBOX")
            .unwrap();
        assert_eq!(inbox.uidnext, 41);
        assert_eq!(inbox.highestmodseq, *modseqs.last().unwrap());
    }
);

fn large_body() -> Vec<u8> {
    let mut raw = b"Subject: imagerie\r\n\r\n".to_vec();
    while raw.len() <= INLINE_BLOB_MAX {
        raw.extend_from_slice(&[b'x'; 998]);
        raw.extend_from_slice(b"\r\n");
    }
    raw
}

engine_tests!(
    large_bodies_are_stored_once_in_files_on_sqlite_in_the_database_on_postgres,
    |engine| async move {
        let (store, db) = open(engine).await;
        store.add_domain("ch-x.mssante.fr").await.unwrap();
        let a = store
            .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
            .await
            .unwrap();
        let b = store
            .create_bal(&per("b@ch-x.mssante.fr", "10003456790"))
            .await
            .unwrap();
        let raw = large_body();
        for _ in 0..2 {
            store
                .deliver(message(
                    &raw,
                    vec![
                        local("a@ch-x.mssante.fr", a.id),
                        local("b@ch-x.mssante.fr", b.id),
                    ],
                ))
                .await
                .unwrap();
        }
        // On PostgreSQL every body is in the database: nodes keep no files (ADR 0023).
        let files_expected = match engine {
            TestEngine::Sqlite => 1,
            TestEngine::Postgres => 0,
        };
        assert_eq!(
            walk_files(&db.data_path().join("blobs")),
            files_expected,
            "one file per content on SQLite, none on PostgreSQL"
        );
        let msgs = store
            .folder_messages("b@ch-x.mssante.fr", "INBOX")
            .await
            .unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(store.read_blob(&msgs[1].blob_hash).await.unwrap(), raw);
        // And a small one is read back from the database.
        store
            .deliver(message(
                b"Subject: petit\r\n\r\nx\r\n",
                vec![local("a@ch-x.mssante.fr", a.id)],
            ))
            .await
            .unwrap();
        let msgs = store
            .folder_messages("a@ch-x.mssante.fr", "INBOX")
            .await
            .unwrap();
        assert_eq!(
            store.read_blob(&msgs[2].blob_hash).await.unwrap(),
            b"Subject: petit\r\n\r\nx\r\n"
        );
        assert_eq!(walk_files(&db.data_path().join("blobs")), files_expected);
    }
);

/// SQLite only: on PostgreSQL no body goes to a file (ADR 0023).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_blob_write_leaves_no_rows() {
    let (store, db) = open(TestEngine::Sqlite).await;
    store.add_domain("ch-x.mssante.fr").await.unwrap();
    let a = store
        .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
        .await
        .unwrap();
    // Make the blob directory unusable: a file where the directory should be.
    let blobs = db.data_path().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
    let err = store
        .deliver(message(
            &large_body(),
            vec![local("a@ch-x.mssante.fr", a.id)],
        ))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(store.message_count().await.unwrap(), 0);
    assert!(
        store
            .folder_messages("a@ch-x.mssante.fr", "INBOX")
            .await
            .unwrap()
            .is_empty()
    );
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk_files(&p) } else { 1 }
        })
        .sum()
}

engine_tests!(imap_append_flags_expunge_and_changes, |engine| async move {
    let (store, _db) = open(engine).await;
    let (_, inbox) = bal_with_inbox(&store).await;
    let mut changes = store.subscribe_changes();
    changes.watch_folder(Some(inbox.id));
    let (uidvalidity, uid1) = store
        .append(
            inbox.id,
            b"Subject: 1\r\n\r\n1\r\n".to_vec(),
            &["\\seen".into()],
            100,
            MessageMeta::default(),
        )
        .await
        .unwrap();
    let (_, uid2) = store
        .append(
            inbox.id,
            b"Subject: 2\r\n\r\n2\r\n".to_vec(),
            &[],
            200,
            MessageMeta::default(),
        )
        .await
        .unwrap();
    assert_eq!((uidvalidity, uid1, uid2), (inbox.uidvalidity, 1, 2));
    assert_eq!(
        next_change(&mut changes).folder_id,
        inbox.id,
        "sessions are told"
    );
    let refs = store.message_refs(inbox.id).await.unwrap();
    assert_eq!(
        refs[0].flags,
        vec!["\\Seen"],
        "system flags in canonical case"
    );
    let status = store.folder_status(inbox.id).await.unwrap();
    assert_eq!((status.messages, status.unseen, status.uidnext), (2, 1, 3));
    let before = status.highestmodseq;

    let update = store
        .update_flags(inbox.id, &[1, 2], FlagOp::Add, &["\\Deleted".into()], None)
        .await
        .unwrap();
    assert_eq!(update.changed.len(), 2);
    let conflict = store
        .update_flags(inbox.id, &[1], FlagOp::Add, &["$x".into()], Some(before))
        .await
        .unwrap();
    assert_eq!(
        conflict.conflicts,
        vec![1],
        "UNCHANGEDSINCE older than the last change"
    );
    let since = store.changes_since(inbox.id, before).await.unwrap();
    assert_eq!(since.messages.len(), 2);
    assert!(since.vanished.is_empty());

    assert_eq!(store.expunge(inbox.id, &[1]).await.unwrap(), vec![1]);
    let since = store.changes_since(inbox.id, before).await.unwrap();
    assert_eq!(
        since.vanished,
        vec![1],
        "expunged UIDs are remembered for QRESYNC"
    );
    let infos = store.message_infos(inbox.id, &[1, 2]).await.unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].internaldate, 200);
    assert_eq!(
        store.read_blob(&infos[0].blob_hash).await.unwrap(),
        b"Subject: 2\r\n\r\n2\r\n"
    );
});

engine_tests!(imap_folders_copy_move_rename, |engine| async move {
    let (store, _db) = open(engine).await;
    let (bal_id, inbox) = bal_with_inbox(&store).await;
    let archive = store.create_folder(bal_id, "Archive", None).await.unwrap();
    assert!(matches!(
        store.create_folder(bal_id, "Archive", None).await,
        Err(StoreError::Duplicate(_))
    ));
    for i in 0..3 {
        store
            .append(
                inbox.id,
                format!("Subject: {i}\r\n\r\n").into_bytes(),
                &[],
                0,
                MessageMeta::default(),
            )
            .await
            .unwrap();
    }
    let pairs = store
        .copy_messages(inbox.id, &[1, 2], archive.id, false)
        .await
        .unwrap();
    assert_eq!(pairs, vec![(1, 1), (2, 2)]);
    let moved = store
        .copy_messages(inbox.id, &[3], archive.id, true)
        .await
        .unwrap();
    assert_eq!(moved, vec![(3, 3)]);
    assert_eq!(store.folder_status(inbox.id).await.unwrap().messages, 2);
    assert_eq!(store.folder_status(archive.id).await.unwrap().messages, 3);
    assert_eq!(
        store.message_count().await.unwrap(),
        3,
        "copies share the stored message"
    );

    store
        .create_folder(bal_id, "Archive/2026", None)
        .await
        .unwrap();
    store
        .rename_folder(bal_id, "Archive", "Old", '/')
        .await
        .unwrap();
    let names: Vec<String> = store
        .folders(bal_id)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert!(
        names.contains(&"Old".to_string()) && names.contains(&"Old/2026".to_string()),
        "{names:?}"
    );
    let renamed = store.folder(bal_id, "Old").await.unwrap().unwrap();
    assert_ne!(
        renamed.uidvalidity, archive.uidvalidity,
        "a renamed folder gets a new UIDVALIDITY"
    );
    let recreated = store.create_folder(bal_id, "Archive", None).await.unwrap();
    assert!(recreated.uidvalidity > renamed.uidvalidity, "never reused");
    assert!(store.delete_folder(bal_id, "INBOX").await.is_err());
    store.delete_folder(bal_id, "Old").await.unwrap();
    assert!(store.folder(bal_id, "Old").await.unwrap().is_none());

    store
        .set_subscription(bal_id, "Nowhere", true)
        .await
        .unwrap();
    assert!(
        store
            .subscriptions(bal_id)
            .await
            .unwrap()
            .contains(&"Nowhere".to_string())
    );
    store
        .set_subscription(bal_id, "Nowhere", false)
        .await
        .unwrap();
    assert!(
        !store
            .subscriptions(bal_id)
            .await
            .unwrap()
            .contains(&"Nowhere".to_string())
    );
    let (used, quota) = store.bal_usage(bal_id).await.unwrap();
    assert!(used > 0 && quota.is_none());
});

// Two nodes on one PostgreSQL: a delivery through one is announced to the other's sessions
// (LISTEN/NOTIFY). On SQLite (one node by design) the local broadcast is what is checked.
engine_tests!(
    changes_reach_sessions_on_another_node,
    |engine| async move {
        let (node_a, db) = open(engine).await;
        let node_b = Store::open(&db.url, db.data_path()).await.unwrap();
        let (_, inbox) = bal_with_inbox(&node_a).await;
        let mut on_a = node_a.subscribe_changes();
        let mut on_b = node_b.subscribe_changes();
        on_a.watch_folder(Some(inbox.id));
        on_b.watch_folder(Some(inbox.id));
        // Give the LISTEN connection of node B time to be established.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        node_a
            .append(
                inbox.id,
                b"Subject: x\r\n\r\n".to_vec(),
                &[],
                0,
                MessageMeta::default(),
            )
            .await
            .unwrap();
        assert_eq!(next_change(&mut on_a).folder_id, inbox.id);
        if engine == TestEngine::Postgres {
            let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                loop {
                    match on_b.recv().await {
                        FolderChanged::ANY => continue,
                        change => return change,
                    }
                }
            })
            .await;
            assert_eq!(heard.expect("node B was not told").folder_id, inbox.id);
        } else {
            assert!(
                on_b.try_recv().is_none(),
                "separate SQLite stores share nothing in memory"
            );
        }
    }
);

engine_tests!(
    one_failing_delivery_does_not_sink_its_commit_group,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store.add_domain("ch-x.mssante.fr").await.unwrap();
        let a = store
            .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
            .await
            .unwrap();
        // 30 concurrent deliveries share commits on SQLite; one names a BAL that does not
        // exist and fails inside its group.
        let mut tasks = Vec::new();
        for i in 0..30 {
            let store = store.clone();
            let bal_id = if i == 17 { a.id + 1000 } else { a.id };
            tasks.push(tokio::spawn(async move {
                let raw = format!("Subject: {i}\r\n\r\n{i}\r\n");
                store
                    .deliver(message(
                        raw.as_bytes(),
                        vec![local("a@ch-x.mssante.fr", bal_id)],
                    ))
                    .await
            }));
        }
        let mut failed = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap().is_err() {
                failed.push(i);
            }
        }
        assert_eq!(failed, vec![17]);
        let inbox = store
            .folder_messages("a@ch-x.mssante.fr", "INBOX")
            .await
            .unwrap();
        assert_eq!(inbox.len(), 29);
        assert_eq!(
            store.message_count().await.unwrap(),
            29,
            "nothing of the failed one"
        );
    }
);

/// The next change notification that names a folder: on PostgreSQL the LISTEN connection
/// also says "any folder" (`FolderChanged::ANY`) when it connects.
fn next_change(changes: &mut mssante_store::ChangeFeed) -> FolderChanged {
    loop {
        match changes.try_recv().expect("a change") {
            FolderChanged::ANY => continue,
            change => return change,
        }
    }
}

// The usage counter of migration 0014 follows every way a message enters or leaves a BAL's
// folders: APPEND, COPY, MOVE, EXPUNGE, folder deletion; and the quota check reads it.
engine_tests!(
    usage_counter_follows_appends_copies_moves_and_expunges,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (bal_id, inbox) = bal_with_inbox(&store).await;
        let used = |store: &Store| {
            let store = store.clone();
            async move { store.bal_usage(bal_id).await.unwrap().0 }
        };
        assert_eq!(used(&store).await, 0);
        let small = b"Subject: a\r\n\r\nhello\r\n".to_vec();
        let big = vec![b'x'; 1000];
        let (s, b) = (small.len() as u64, big.len() as u64);
        let (_, uid_small) = store
            .append(inbox.id, small, &[], 0, MessageMeta::default())
            .await
            .unwrap();
        let (_, uid_big) = store
            .append(inbox.id, big, &[], 0, MessageMeta::default())
            .await
            .unwrap();
        assert_eq!(used(&store).await, s + b);
        let archive = store.create_folder(bal_id, "Archive", None).await.unwrap();
        store
            .copy_messages(inbox.id, &[uid_big], archive.id, false)
            .await
            .unwrap();
        assert_eq!(used(&store).await, s + 2 * b, "a copy counts again");
        store
            .copy_messages(inbox.id, &[uid_small], archive.id, true)
            .await
            .unwrap();
        assert_eq!(used(&store).await, s + 2 * b, "a move changes nothing");
        store.expunge(inbox.id, &[uid_big]).await.unwrap();
        assert_eq!(used(&store).await, s + b);
        store
            .set_bal_quota("a@ch-x.mssante.fr", Some(s + b + 10))
            .await
            .unwrap();
        assert!(!store.over_quota(bal_id, 10).await.unwrap());
        assert!(store.over_quota(bal_id, 11).await.unwrap());
        store.delete_folder(bal_id, "Archive").await.unwrap();
        assert_eq!(
            used(&store).await,
            0,
            "a deleted folder's messages no longer count"
        );
    }
);
