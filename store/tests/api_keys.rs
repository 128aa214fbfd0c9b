//! API keys and idempotency records of the HTTP API, on SQLite and on a real PostgreSQL:
//! a key works until revoked, only with its own secret, within its reach; the first answer
//! to an idempotency key is kept.

use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb, engine_tests};

async fn open(engine: TestEngine) -> (Store, TestDb) {
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path())
        .await
        .expect("open store");
    store.add_domain("labo.mssante.fr").await.unwrap();
    store
        .create_bal(&NewBal {
            address: "resultats@labo.mssante.fr".into(),
            bal_type: BalType::App,
            rpps: None,
            adeli: None,
            finess: Some("750712186".into()),
            siret: None,
            display_name: None,
            password_hash: None,
            liste_rouge: false,
        })
        .await
        .unwrap();
    (store, db)
}

fn new_key(scopes: &[&str], domain: Option<&str>, bals: &[&str]) -> NewApiKey {
    NewApiKey {
        name: "SIL du laboratoire".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        domain: domain.map(str::to_string),
        bals: bals.iter().map(|s| s.to_string()).collect(),
    }
}

engine_tests!(
    a_key_works_with_its_secret_until_revoked,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let created = store
            .create_api_key(&new_key(
                &["send", "status"],
                None,
                &["resultats@labo.mssante.fr"],
            ))
            .await
            .unwrap();
        assert!(
            created
                .secret
                .starts_with(&format!("mss_{}_", created.key.key_id))
        );
        let found = store
            .api_key_for_secret(&created.secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, created.key);
        assert_eq!(found.bals, vec!["resultats@labo.mssante.fr".to_string()]);
        assert!(found.covers_bal("resultats@labo.mssante.fr"));
        // Same key id, another secret: refused.
        let forged = format!("mss_{}_{}", created.key.key_id, "0".repeat(64));
        assert!(store.api_key_for_secret(&forged).await.unwrap().is_none());
        assert!(
            store
                .api_key_for_secret("not-a-key")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.revoke_api_key(&created.key.key_id).await.unwrap());
        assert!(!store.revoke_api_key(&created.key.key_id).await.unwrap());
        assert!(
            store
                .api_key_for_secret(&created.secret)
                .await
                .unwrap()
                .is_none()
        );
        let listed = store.api_keys().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some());
    }
);

engine_tests!(a_key_needs_known_scopes_and_a_reach, |engine| async move {
    let (store, _db) = open(engine).await;
    for (bad, why) in [
        (
            new_key(&["sned"], Some("labo.mssante.fr"), &[]),
            "unknown scope",
        ),
        (new_key(&["send"], None, &[]), "acts on a domain"),
        (new_key(&["send"], Some("elsewhere.fr"), &[]), "not found"),
        (
            new_key(&["send"], None, &["nobody@labo.mssante.fr"]),
            "not found",
        ),
    ] {
        let err = store.create_api_key(&bad).await.unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
    assert!(store.api_keys().await.unwrap().is_empty());
    let admin = store
        .create_api_key(&new_key(&["admin"], None, &[]))
        .await
        .unwrap();
    assert!(admin.key.covers_bal("anyone@anywhere.fr"));
});

engine_tests!(
    the_first_answer_to_an_idempotency_key_is_kept,
    |engine| async move {
        let (store, _db) = open(engine).await;
        assert!(
            store
                .idempotent_response("key:a", "k1")
                .await
                .unwrap()
                .is_none()
        );
        let first = StoredResponse {
            request_hash: "h1".into(),
            status: 202,
            body: "application/json\n{\"id\":1}".into(),
        };
        store
            .keep_idempotent_response("key:a", "k1", &first)
            .await
            .unwrap();
        let second = StoredResponse {
            request_hash: "h2".into(),
            status: 202,
            body: "application/json\n{\"id\":2}".into(),
        };
        store
            .keep_idempotent_response("key:a", "k1", &second)
            .await
            .unwrap();
        assert_eq!(
            store.idempotent_response("key:a", "k1").await.unwrap(),
            Some(first)
        );
        // Keys are per client.
        assert!(
            store
                .idempotent_response("key:b", "k1")
                .await
                .unwrap()
                .is_none()
        );
    }
);
