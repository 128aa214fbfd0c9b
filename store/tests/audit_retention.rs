//! Audit retention (issue 14, ADR 0016): pruning a BAL's oldest audit entries leaves an
//! anchor, so that `verify_audit` still proves the remaining chain unedited. On SQLite and on
//! a real PostgreSQL.

mod common;

use common::{org, per};
use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb, engine_tests};

const DOCTOR: &str = "dr.martin@ch.mssante.fr";
const ORG: &str = "secretariat@ch.mssante.fr";
const SECRETARY: &str = "sec.dupont@ch.mssante.fr";

async fn open(engine: TestEngine) -> (Store, TestDb) {
    let (store, db) = common::open(engine).await;
    store.add_domain("ch.mssante.fr").await.unwrap();
    store.create_bal(&per(DOCTOR, "10001234567")).await.unwrap();
    store.create_bal(&org(ORG, "750712184")).await.unwrap();
    (store, db)
}

async fn record(store: &Store, bal_id: i64, actions: &[AuditAction]) {
    for &action in actions {
        let mut e = AuditEvent::new(bal_id, SECRETARY, action);
        e.folder = "INBOX".into();
        e.message_ids = vec!["uid:7".into()];
        store.record_audit(&e).await.unwrap();
    }
}

/// Runs one statement on the database behind the store's back (someone with access to it).
async fn tamper(db: &TestDb, statement: &'static str, id: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    sqlx::query(statement)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

engine_tests!(
    pruning_keeps_an_anchor_and_edits_after_it_are_still_found,
    |engine| async move {
        let (store, db) = open(engine).await;
        let doctor = store.bal(DOCTOR).await.unwrap();
        let org_bal = store.bal(ORG).await.unwrap();
        use AuditAction::*;
        record(&store, doctor.id, &[Login, Select, Flags]).await;
        record(&store, org_bal.id, &[Login]).await;
        // Entries are stamped in seconds: the next ones are written a second later.
        let cutoff = now() + 1;
        while now() < cutoff {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        record(&store, doctor.id, &[Move, Expunge]).await;

        let pruned = store.prune_audit(cutoff).await.unwrap();
        assert_eq!(
            pruned,
            PrunedAudit {
                chains: 2,
                entries: 4
            }
        );
        let trail = store
            .audit_entries(DOCTOR, &AuditQuery::default())
            .await
            .unwrap();
        let summary: Vec<_> = trail.iter().map(|e| (e.seq, e.action.as_str())).collect();
        assert_eq!(summary, [(4, "move"), (5, "expunge"), (6, "prune")]);
        assert!(
            trail[2].detail.contains("resumes at entry 4 after hash"),
            "{}",
            trail[2].detail
        );
        // The ORG BAL's trail had only old entries: its prune entry is the anchor itself.
        let org_trail = store
            .audit_entries(ORG, &AuditQuery::default())
            .await
            .unwrap();
        assert_eq!(org_trail.len(), 1);
        assert_eq!(
            (org_trail[0].seq, org_trail[0].action.as_str()),
            (2, "prune")
        );
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (4, None));
        assert_eq!(
            store.prune_audit(cutoff).await.unwrap(),
            PrunedAudit::default(),
            "nothing older is left"
        );

        // A quiet edit of the first remaining entry, the one the anchor vouches for.
        tamper(
            &db,
            "UPDATE audit_log SET author = 'nobody' WHERE id = $1",
            trail[0].id,
        )
        .await;
        let (bal, seq, _, why) = store.verify_audit(None).await.unwrap().first_bad.unwrap();
        assert_eq!((bal.as_str(), seq), (DOCTOR, 4));
        assert!(why.contains("edited"), "{why}");
        tamper(
            &db,
            "UPDATE audit_log SET author = 'sec.dupont@ch.mssante.fr' WHERE id = $1",
            trail[0].id,
        )
        .await;
        assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);

        // Removing the first remaining entry: no retention entry accounts for it.
        tamper(&db, "DELETE FROM audit_log WHERE id = $1", trail[0].id).await;
        let (_, seq, _, why) = store
            .verify_audit(Some(DOCTOR))
            .await
            .unwrap()
            .first_bad
            .unwrap();
        assert_eq!(seq, 5);
        assert!(why.contains("removed"), "{why}");

        // Moving the ORG trail's anchor (the prune entry's own detail) shows too.
        tamper(
            &db,
            "UPDATE audit_log SET detail = REPLACE(detail, 'after hash ', 'after hash 0') WHERE id = $1",
            org_trail[0].id,
        )
        .await;
        assert!(
            store
                .verify_audit(Some(ORG))
                .await
                .unwrap()
                .first_bad
                .is_some()
        );
    }
);
