//! Who may open which BAL, on SQLite and on a real PostgreSQL: PER holders by national id,
//! habilitations on ORG/CAB BALs, end dates, revocation, refusals.

use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb, engine_tests};

const RPPS: &str = "10001234567";
const HOLDER: &str = "810001234567";
const SECRETARY: &str = "3b2f1c9e-7d1a-4c55-9a0e-2f6f0b1d4e21";

async fn open(engine: TestEngine) -> (Store, TestDb) {
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path())
        .await
        .expect("open store");
    store.add_domain("ch.mssante.fr").await.unwrap();
    for new in [
        bal("dr.martin@ch.mssante.fr", BalType::Per, Some(RPPS), None),
        bal(
            "cardio@ch.mssante.fr",
            BalType::Org,
            None,
            Some("750712184"),
        ),
        bal(
            "cabinet@ch.mssante.fr",
            BalType::Cab,
            None,
            Some("750712185"),
        ),
        bal("labo@ch.mssante.fr", BalType::App, None, Some("750712186")),
    ] {
        store.create_bal(&new).await.unwrap();
    }
    (store, db)
}

fn bal(address: &str, bal_type: BalType, rpps: Option<&str>, finess: Option<&str>) -> NewBal {
    NewBal {
        address: address.into(),
        bal_type,
        rpps: rpps.map(String::from),
        adeli: None,
        finess: finess.map(String::from),
        siret: None,
        display_name: None,
        password_hash: None,
        liste_rouge: false,
    }
}

engine_tests!(
    the_holder_opens_their_per_bal_and_nothing_else,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let access = store
            .access_for_identity(HOLDER, "Dr.Martin@CH.mssante.fr")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(access.bal.address.as_str(), "dr.martin@ch.mssante.fr");
        assert_eq!(access.origin, AccessOrigin::Holder);
        assert_eq!(access.rights, HOLDER_RIGHTS);
        for other in [
            "cardio@ch.mssante.fr",
            "cabinet@ch.mssante.fr",
            "labo@ch.mssante.fr",
        ] {
            assert_eq!(
                store.access_for_identity(HOLDER, other).await.unwrap(),
                Err(AccessRefusal::NoRight),
                "{other}"
            );
        }
        assert_eq!(
            store
                .access_for_identity(SECRETARY, "dr.martin@ch.mssante.fr")
                .await
                .unwrap(),
            Err(AccessRefusal::NoRight)
        );
        assert_eq!(
            store
                .access_for_identity(HOLDER, "nobody@ch.mssante.fr")
                .await
                .unwrap(),
            Err(AccessRefusal::UnknownBal)
        );
        assert_eq!(
            store
                .access_for_identity(HOLDER, "not an address")
                .await
                .unwrap(),
            Err(AccessRefusal::UnknownBal)
        );
    }
);

engine_tests!(
    habilitations_open_org_and_cab_bals_until_revoked,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let grant = store
            .grant_habilitation("cardio@ch.mssante.fr", SECRETARY, None)
            .await
            .unwrap();
        assert_eq!(grant.bal, "cardio@ch.mssante.fr");
        assert_eq!(grant.national_id, SECRETARY);
        assert_eq!(grant.origin, AccessOrigin::Habilitation);
        assert_eq!(grant.rights, HABILITATION_RIGHTS);
        store
            .grant_habilitation("cabinet@ch.mssante.fr", SECRETARY, None)
            .await
            .unwrap();
        store
            .grant_habilitation("cardio@ch.mssante.fr", HOLDER, None)
            .await
            .unwrap();

        let access = store
            .access_for_identity(SECRETARY, "cardio@ch.mssante.fr")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(access.origin, AccessOrigin::Habilitation);
        assert!(
            store
                .access_for_identity(SECRETARY, "cabinet@ch.mssante.fr")
                .await
                .unwrap()
                .is_ok()
        );

        let listed = store.access_grants(None, None).await.unwrap();
        let pairs: Vec<_> = listed
            .iter()
            .map(|g| (g.bal.as_str(), g.national_id.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("cabinet@ch.mssante.fr", SECRETARY),
                ("cardio@ch.mssante.fr", SECRETARY),
                ("cardio@ch.mssante.fr", HOLDER),
            ]
        );
        assert_eq!(
            store
                .access_grants(Some("cardio@ch.mssante.fr"), None)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store
                .access_grants(None, Some(SECRETARY))
                .await
                .unwrap()
                .len(),
            2
        );

        assert!(
            store
                .revoke_habilitation("cardio@ch.mssante.fr", SECRETARY)
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_habilitation("cardio@ch.mssante.fr", SECRETARY)
                .await
                .unwrap(),
            "nothing left to revoke"
        );
        assert_eq!(
            store
                .access_for_identity(SECRETARY, "cardio@ch.mssante.fr")
                .await
                .unwrap(),
            Err(AccessRefusal::NoRight)
        );
        assert!(
            store
                .access_for_identity(SECRETARY, "cabinet@ch.mssante.fr")
                .await
                .unwrap()
                .is_ok(),
            "the other grant stays"
        );
    }
);

engine_tests!(an_ended_habilitation_no_longer_opens, |engine| async move {
    let (store, _db) = open(engine).await;
    let past = now() - 60;
    store
        .grant_habilitation("cardio@ch.mssante.fr", SECRETARY, Some(past))
        .await
        .unwrap();
    assert_eq!(
        store
            .access_for_identity(SECRETARY, "cardio@ch.mssante.fr")
            .await
            .unwrap(),
        Err(AccessRefusal::NoRight)
    );
    // Granting again replaces the end date.
    let grant = store
        .grant_habilitation("cardio@ch.mssante.fr", SECRETARY, Some(now() + 3600))
        .await
        .unwrap();
    assert!(grant.not_after.unwrap() > now());
    assert_eq!(store.access_grants(None, None).await.unwrap().len(), 1);
    assert!(
        store
            .access_for_identity(SECRETARY, "cardio@ch.mssante.fr")
            .await
            .unwrap()
            .is_ok()
    );
});

engine_tests!(
    habilitations_are_for_org_and_cab_bals_only,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let per = store
            .grant_habilitation("dr.martin@ch.mssante.fr", SECRETARY, None)
            .await
            .unwrap_err();
        assert!(per.to_string().contains("delegation"), "{per}");
        let app = store
            .grant_habilitation("labo@ch.mssante.fr", SECRETARY, None)
            .await
            .unwrap_err();
        assert!(app.to_string().contains("APP BAL"), "{app}");
        let unknown = store
            .grant_habilitation("nobody@ch.mssante.fr", SECRETARY, None)
            .await
            .unwrap_err();
        assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown}");
        let blank = store
            .grant_habilitation("cardio@ch.mssante.fr", "  ", None)
            .await
            .unwrap_err();
        assert!(matches!(blank, StoreError::Invalid(_)), "{blank}");
        assert!(store.access_grants(None, None).await.unwrap().is_empty());
    }
);

engine_tests!(
    suspended_and_closed_bals_refuse_every_identity,
    |engine| async move {
        let (store, _db) = open(engine).await;
        store
            .grant_habilitation("cardio@ch.mssante.fr", SECRETARY, None)
            .await
            .unwrap();
        store
            .set_bal_status("cardio@ch.mssante.fr", BalStatus::Suspended)
            .await
            .unwrap();
        store
            .set_bal_status("dr.martin@ch.mssante.fr", BalStatus::Closed)
            .await
            .unwrap();
        assert_eq!(
            store
                .access_for_identity(SECRETARY, "cardio@ch.mssante.fr")
                .await
                .unwrap(),
            Err(AccessRefusal::Suspended)
        );
        assert_eq!(
            store
                .access_for_identity(HOLDER, "dr.martin@ch.mssante.fr")
                .await
                .unwrap(),
            Err(AccessRefusal::Closed)
        );
    }
);
