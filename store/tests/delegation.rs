//! Delegations and the audit trail (issue 14, ADR 0016), on SQLite and on a real PostgreSQL:
//! named rights, per-folder rights, grantees (account, PSC identity, members of an ORG BAL),
//! end dates, revocation, the access generation sessions watch, and the hash chain with its
//! tamper detection.

use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb, engine_tests};

const DOCTOR: &str = "dr.martin@ch.mssante.fr";
const SECRETARY: &str = "sec.dupont@ch.mssante.fr";
const ORG: &str = "secretariat@ch.mssante.fr";
const DOCTOR_ID: &str = "810001234567";
const SECRETARY_ID: &str = "810009876543";
const MEMBER_ID: &str = "3b2f1c9e-7d1a-4c55-9a0e-2f6f0b1d4e21";

async fn open(engine: TestEngine) -> (Store, TestDb) {
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path())
        .await
        .expect("open store");
    store.add_domain("ch.mssante.fr").await.unwrap();
    for (address, bal_type, rpps, finess) in [
        (DOCTOR, BalType::Per, Some("10001234567"), None),
        (SECRETARY, BalType::Per, Some("10009876543"), None),
        (ORG, BalType::Org, None, Some("750712184")),
    ] {
        store
            .create_bal(&NewBal {
                address: address.into(),
                bal_type,
                rpps: rpps.map(String::from),
                adeli: None,
                finess: finess.map(String::from),
                siret: None,
                display_name: None,
                password_hash: None,
                liste_rouge: false,
            })
            .await
            .unwrap();
    }
    (store, db)
}

fn grant<'a>(grantee: &'a Grantee, rights: &str, folders: &'a [String]) -> NewDelegation<'a> {
    NewDelegation {
        bal: DOCTOR,
        grantee,
        rights: parse_rights(rights).unwrap(),
        folders,
        not_after: None,
        author: "operator",
        client: "",
    }
}

engine_tests!(
    a_named_delegation_opens_the_bal_to_its_grantee_until_revoked,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let sec = Grantee::parse(SECRETARY).unwrap();
        let generation = store.access_generation();
        let d = store
            .grant_delegation(&grant(&sec, "secretary", &[]))
            .await
            .unwrap();
        assert!(
            store.access_generation() > generation,
            "sessions must re-read"
        );
        assert_eq!(d.bal, DOCTOR);
        assert_eq!(d.rights.to_string(), "lrswixte0");
        assert_eq!(d.rights_text(), "secretary");
        assert!(d.rights_on("INBOX").has(SEND_RIGHT));

        // The secretary's session (password login on her own PER BAL) finds it, by account
        // and by national id alike.
        let secretary = store.bal(SECRETARY).await.unwrap();
        let principals = store.principals(&secretary, None).await.unwrap();
        assert_eq!(
            principals,
            [
                Grantee::Bal(SECRETARY.into()),
                Grantee::NationalId(SECRETARY_ID.into())
            ]
        );
        let open = store.delegations_to(&principals).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].bal, DOCTOR);

        // Granting again changes it in place (one row), as "change" in the trail.
        let d = store
            .grant_delegation(&grant(&sec, "read", &[]))
            .await
            .unwrap();
        assert_eq!(d.rights_text(), "read");
        assert_eq!(
            store.delegations(Some(DOCTOR), None).await.unwrap().len(),
            1
        );

        assert!(
            store
                .revoke_delegation(DOCTOR, &sec, "operator", "")
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_delegation(DOCTOR, &sec, "operator", "")
                .await
                .unwrap()
        );
        assert!(store.delegations_to(&principals).await.unwrap().is_empty());

        let trail = store
            .audit_entries(DOCTOR, &AuditQuery::default())
            .await
            .unwrap();
        let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["grant", "change", "revoke"]);
        assert_eq!(trail[0].detail, format!("{SECRETARY} secretary"));
        assert_eq!(trail[0].prev_hash, GENESIS_HASH);
        assert_eq!(trail[1].prev_hash, trail[0].hash);
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (3, None));
    }
);

engine_tests!(
    a_grant_to_an_org_bal_is_for_its_members_and_psc_identities_count,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store
            .grant_habilitation(ORG, MEMBER_ID, None)
            .await
            .unwrap();
        let org = Grantee::parse(ORG).unwrap();
        store
            .grant_delegation(&grant(&org, "read", &[]))
            .await
            .unwrap();
        let by_id = Grantee::parse(SECRETARY_ID).unwrap();
        store
            .grant_delegation(&grant(&by_id, "lr", &[]))
            .await
            .unwrap();

        // A member logging in to her own PER BAL with her PSC identity.
        let secretary = store.bal(SECRETARY).await.unwrap();
        let principals = store.principals(&secretary, Some(MEMBER_ID)).await.unwrap();
        assert!(
            principals.contains(&Grantee::Bal(ORG.into())),
            "{principals:?}"
        );
        let open = store.delegations_to(&principals).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].grantee, org);

        // The holder of SECRETARY_ID, by password on her PER BAL.
        let principals = store.principals(&secretary, None).await.unwrap();
        let open = store.delegations_to(&principals).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].grantee, by_id);
        // The same grant opens the BAL with a PSC token naming it (one access model).
        let access = store
            .access_for_identity(SECRETARY_ID, DOCTOR)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(access.origin, AccessOrigin::Delegation);

        // Nobody delegates a BAL to itself, nor to its own holder.
        let own = Grantee::parse(DOCTOR).unwrap();
        assert!(
            store
                .grant_delegation(&grant(&own, "read", &[]))
                .await
                .is_err()
        );
        let holder = Grantee::parse(DOCTOR_ID).unwrap();
        assert!(
            store
                .grant_delegation(&grant(&holder, "read", &[]))
                .await
                .is_err()
        );
        assert!(Rights::parse("lrq").is_err());
    }
);

engine_tests!(
    folder_rights_and_acl_changes_are_per_folder,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let sec = Grantee::parse(SECRETARY).unwrap();
        let folders = vec!["INBOX".to_string()];
        let d = store
            .grant_delegation(&grant(&sec, "read", &folders))
            .await
            .unwrap();
        assert!(d.rights.is_empty());
        assert_eq!(d.rights_on("INBOX").to_string(), "lrs");
        assert!(d.rights_on("Sent").is_empty());

        // SETACL Sent / DELETEACL INBOX, as the doctor.
        let doctor = store.bal(DOCTOR).await.unwrap();
        let d = store
            .set_delegation_folder(
                &doctor,
                &sec,
                "Sent",
                Some(Rights::parse("lr").unwrap()),
                DOCTOR,
                "127.0.0.1:1",
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.rights_on("Sent").to_string(), "lr");
        let d = store
            .set_delegation_folder(&doctor, &sec, "INBOX", None, DOCTOR, "127.0.0.1:1")
            .await
            .unwrap()
            .unwrap();
        assert!(d.rights_on("INBOX").is_empty());
        // The last right gone, the delegation is gone.
        let gone = store
            .set_delegation_folder(&doctor, &sec, "Sent", None, DOCTOR, "127.0.0.1:1")
            .await
            .unwrap();
        assert_eq!(gone, None);
        assert!(
            store
                .delegations(Some(DOCTOR), None)
                .await
                .unwrap()
                .is_empty()
        );
        let trail = store
            .audit_entries(
                DOCTOR,
                &AuditQuery {
                    since: None,
                    author: Some(DOCTOR.into()),
                    ..AuditQuery::default()
                },
            )
            .await
            .unwrap();
        let actions: Vec<_> = trail
            .iter()
            .map(|e| (e.action.as_str(), e.folder.as_str()))
            .collect();
        assert_eq!(
            actions,
            [("change", "Sent"), ("change", "INBOX"), ("revoke", "Sent")]
        );
        assert!(trail.iter().all(|e| e.client == "127.0.0.1:1"));
    }
);

engine_tests!(
    an_ended_delegation_expires_into_the_trail,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let sec = Grantee::parse(SECRETARY).unwrap();
        let mut new = grant(&sec, "secretary", &[]);
        new.not_after = Some(now() - 1);
        store.grant_delegation(&new).await.unwrap();
        let secretary = store.bal(SECRETARY).await.unwrap();
        let principals = store.principals(&secretary, None).await.unwrap();
        assert!(
            store.delegations_to(&principals).await.unwrap().is_empty(),
            "ended"
        );
        let generation = store.access_generation();
        let ended = store.expire_delegations().await.unwrap();
        assert_eq!(ended.len(), 1);
        assert!(store.access_generation() > generation);
        assert!(store.expire_delegations().await.unwrap().is_empty(), "once");
        let trail = store
            .audit_entries(DOCTOR, &AuditQuery::default())
            .await
            .unwrap();
        assert_eq!(trail.last().unwrap().action, "expire");
    }
);

engine_tests!(
    actions_chain_per_bal_and_an_edited_entry_is_named,
    |engine| async move {
        let (store, db) = open(engine).await;
        let doctor = store.bal(DOCTOR).await.unwrap();
        let org = store.bal(ORG).await.unwrap();
        for (bal_id, action) in [
            (doctor.id, AuditAction::Login),
            (org.id, AuditAction::Login),
            (doctor.id, AuditAction::Select),
            (doctor.id, AuditAction::Flags),
            (doctor.id, AuditAction::Expunge),
        ] {
            let mut e = AuditEvent::new(bal_id, SECRETARY, action);
            e.folder = "INBOX".into();
            e.message_ids = vec!["uid:3".into(), "<a@b>".into()];
            e.client = "127.0.0.1:40000".into();
            store.record_audit(&e).await.unwrap();
        }
        let trail = verified_doctor_trail(&store, 5).await;
        assert_eq!(
            trail.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(trail[1].message_ids, "uid:3 <a@b>");
        let later = AuditQuery {
            since: Some(now() + 10),
            ..AuditQuery::default()
        };
        assert!(
            store
                .audit_entries(DOCTOR, &later)
                .await
                .unwrap()
                .is_empty()
        );
        // One action, and pages after a sequence number (the HTTP API's cursor).
        let flags = AuditQuery {
            action: Some("flags".into()),
            ..AuditQuery::default()
        };
        let only = store.audit_entries(DOCTOR, &flags).await.unwrap();
        assert_eq!(only.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        let page = AuditQuery {
            after_seq: 1,
            limit: Some(2),
            ..AuditQuery::default()
        };
        let page = store.audit_entries(DOCTOR, &page).await.unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);

        // Someone with database access changes what the third entry says.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE audit_log SET action = 'select' WHERE id = $1")
            .bind(trail[2].id)
            .execute(&pool)
            .await
            .unwrap();
        let v = store.verify_audit(None).await.unwrap();
        let (bal, seq, id, why) = v.first_bad.expect("tampering found");
        assert_eq!((bal.as_str(), seq, id), (DOCTOR, 3, trail[2].id));
        assert!(why.contains("edited"), "{why}");
        // Removing an entry breaks the sequence at the next one.
        sqlx::query("DELETE FROM audit_log WHERE id = $1")
            .bind(trail[2].id)
            .execute(&pool)
            .await
            .unwrap();
        let (_, seq, _, why) = store
            .verify_audit(Some(DOCTOR))
            .await
            .unwrap()
            .first_bad
            .unwrap();
        assert_eq!(seq, 4);
        assert!(why.contains("removed"), "{why}");
        assert_eq!(store.verify_audit(Some(ORG)).await.unwrap().first_bad, None);
        pool.close().await;
    }
);

/// Waits (up to 5 s) for `store`'s access generation to move past `from` and for a grant
/// notification to reach `changes` after it moved, as an IDLE session would be woken.
/// Notifications of earlier changes still queued are passed over.
async fn access_moves(
    store: &Store,
    changes: &mut mssante_store::ChangeFeed,
    from: u64,
    what: &str,
) -> u64 {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, changes.recv()).await {
            Ok(c) if c.access_of().is_some() && store.access_generation() > from => {
                return store.access_generation();
            }
            Ok(_) => {}
            Err(_) => panic!(
                "{what}: within 5 s, no grant notification with the access generation past \
                 {from} (now {})",
                store.access_generation()
            ),
        }
    }
}

engine_tests!(
    grant_changes_by_another_process_reach_sessions_even_undone_at_once,
    |engine| async move {
        // `server` stands for `mssante serve`, `cli` for the command line: two stores on one
        // database share no in-process notification, as two processes do not.
        let (server, db) = open(engine).await;
        let mut changes = server.subscribe_changes();
        if engine == TestEngine::Postgres {
            // LISTEN is set up in the background: it announces itself by moving the
            // generation once (what it missed before it listened is looked at again).
            let start = server.access_generation();
            while server.access_generation() == start {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        let cli = Store::open(&db.url, db.data_path()).await.unwrap();
        let sec = Grantee::parse(SECRETARY).unwrap();
        let inbox = ["INBOX".to_string()];

        // A grant and its revocation between two polls leave the grant tables as they were:
        // sessions that read the grant in between must still hear of the revocation.
        let generation = server.access_generation();
        cli.grant_delegation(&grant(&sec, "read", &inbox))
            .await
            .unwrap();
        assert!(
            cli.revoke_delegation(DOCTOR, &sec, "operator", "")
                .await
                .unwrap()
        );
        let generation = access_moves(&server, &mut changes, generation, "grant then revoke").await;

        // Rights changed for others of the same length on a folder (lrs → lrw).
        cli.grant_delegation(&grant(&sec, "read", &inbox))
            .await
            .unwrap();
        let generation = access_moves(&server, &mut changes, generation, "grant").await;
        let doctor = cli.bal(DOCTOR).await.unwrap();
        cli.set_delegation_folder(
            &doctor,
            &sec,
            "INBOX",
            Some(parse_rights("lrw").unwrap()),
            "operator",
            "",
        )
        .await
        .unwrap();
        access_moves(&server, &mut changes, generation, "lrs → lrw").await;
        cli.close().await;
    }
);

/// The doctor's trail, after checking that every chain of the store verifies and holds
/// `entries` entries in all.
async fn verified_doctor_trail(store: &Store, entries: u64) -> Vec<AuditEntry> {
    let v = store.verify_audit(None).await.unwrap();
    assert_eq!((v.entries, v.first_bad.clone()), (entries, None));
    store
        .audit_entries(DOCTOR, &AuditQuery::default())
        .await
        .unwrap()
}

// Thirty delegate reads recorded at once (logins, SELECTs, body FETCHes of as many
// sessions): every entry is in the trail when its call returns, the chain verifies, and on
// SQLite they shared commits instead of paying one fsync each (issue 14's overhead).
engine_tests!(
    concurrent_read_entries_share_commits_and_the_chain_holds,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let doctor = store.bal(DOCTOR).await.unwrap();
        let before = store.shared_commits();
        let tasks: Vec<_> = (0..30)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut e = AuditEvent::new(doctor.id, SECRETARY, AuditAction::Select);
                    e.folder = format!("INBOX.{n}");
                    store.record_audit(&e).await.unwrap();
                    // Durable and visible once the call returned.
                    let trail = store
                        .audit_entries(DOCTOR, &AuditQuery::default())
                        .await
                        .unwrap();
                    assert!(
                        trail
                            .iter()
                            .any(|entry| entry.folder == format!("INBOX.{n}"))
                    );
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let trail = verified_doctor_trail(&store, 30).await;
        assert_eq!(
            trail.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=30).collect::<Vec<i64>>()
        );
        if let (Some(before), Some(after)) = (before, store.shared_commits()) {
            assert_eq!(after.writes - before.writes, 30);
            assert!(
                after.commits - before.commits < 30,
                "no audit entry shared a commit: {before:?} → {after:?}"
            );
        }
    }
);
