//! What the store's integration tests share: a store on a fresh database, a BAL and its INBOX.
// Each test file uses its own part of these.
#![allow(dead_code)]

use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb};

pub async fn open(engine: TestEngine) -> (Store, TestDb) {
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path())
        .await
        .expect("open store");
    (store, db)
}

pub fn per(address: &str, rpps: &str) -> NewBal {
    NewBal {
        address: address.into(),
        bal_type: BalType::Per,
        rpps: Some(rpps.into()),
        adeli: None,
        finess: None,
        siret: None,
        display_name: Some("Dr Test".into()),
        password_hash: None,
        liste_rouge: false,
    }
}

pub fn org(address: &str, finess: &str) -> NewBal {
    NewBal {
        bal_type: BalType::Org,
        rpps: None,
        finess: Some(finess.into()),
        display_name: None,
        ..per(address, "")
    }
}

/// A PER BAL in a local domain, and its INBOX.
pub async fn bal_with_inbox(store: &Store) -> (i64, Folder) {
    store.add_domain("ch-x.mssante.fr").await.unwrap();
    let bal = store
        .create_bal(&per("a@ch-x.mssante.fr", "10003456789"))
        .await
        .unwrap();
    let inbox = store.folder(bal.id, "INBOX").await.unwrap().unwrap();
    (bal.id, inbox)
}
