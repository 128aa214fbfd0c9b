//! What the store's integration tests share: a store on a fresh database, a BAL and its INBOX.
// Each test file uses its own part of these.
#![allow(dead_code)]

use mssante_mail::dsn::{Notify, NotifyEvent};
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

/// The flags of `uid` as `delegate` (or the holder) sees them in a whole-folder snapshot.
pub async fn flags_of(store: &Store, folder: i64, uid: u32, delegate: Option<&str>) -> Vec<String> {
    let snapshot = store.snapshot_as(folder, None, delegate).await.unwrap();
    let mut flags = snapshot
        .messages
        .into_iter()
        .find(|m| m.uid == uid)
        .expect("message")
        .flags;
    flags.sort();
    flags
}

/// A message from a lab with an envelope id and RET=HDRS, to the given recipients.
pub fn message(raw: &[u8], rcpts: Vec<RecipientSpec>) -> IncomingMessage {
    IncomingMessage {
        raw: raw.to_vec(),
        mail_from: "lab@labo.mssante.fr".into(),
        envid: Some("ENV1".into()),
        ret: Some(Ret::Hdrs),
        source: Source::Mx,
        auth_bal_id: None,
        meta: MessageMeta::default(),
        recipients: rcpts,
    }
}

/// A local recipient asking for success and failure DSNs, with its ORCPT.
pub fn local(address: &str, bal_id: i64) -> RecipientSpec {
    RecipientSpec {
        address: Address::parse(address).unwrap(),
        orcpt: Some(format!("rfc822;{address}")),
        notify: Some(Notify::of(&[NotifyEvent::Success, NotifyEvent::Failure])),
        disposition: RcptDisposition::Local { bal_id },
    }
}
