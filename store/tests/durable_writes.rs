//! A write is acknowledged only once PostgreSQL has committed it (`db::fetch_committed`).
//! The one-statement writes of PostgreSQL (a delivery, an APPEND, a `\Recent` claim) return
//! their row before the implicit transaction commits; a commit that then fails (here a
//! deferred constraint trigger; in production the database dying between the row and the
//! WAL flush, which `tests/outage_e2e.rs` caught once) must reach the caller as an error,
//! never as a "250" or a tagged OK, and leave nothing stored.
//!
//! PostgreSQL only: SQLite's writes run in explicit transactions whose COMMIT is awaited.

use mssante_mail::dsn::{Notify, NotifyEvent};
use mssante_store::*;
use mssante_testkit::Engine;

mod common;
use common::{bal_with_inbox, open};

const ADDRESS: &str = "a@ch-x.mssante.fr";

/// Makes every commit that `event` (`INSERT` / `UPDATE OF col`) on `table` took part in fail
/// at COMMIT, after the statement itself succeeded and returned its rows.
async fn refuse_commits(url: &str, table: &str, event: &str) {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE OR REPLACE FUNCTION refused_at_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER refused_at_commit AFTER {event} ON {table} \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refused_at_commit();"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

fn mail_for(bal_id: i64) -> IncomingMessage {
    IncomingMessage {
        raw: b"Message-ID: <m1@lab>\r\nSubject: t\r\n\r\nbody\r\n".to_vec(),
        mail_from: "lab@labo.mssante.fr".into(),
        envid: None,
        ret: None,
        source: Source::Mx,
        auth_bal_id: None,
        meta: MessageMeta::default(),
        recipients: vec![RecipientSpec {
            address: Address::parse(ADDRESS).unwrap(),
            orcpt: None,
            notify: Some(Notify::of(&[NotifyEvent::Failure])),
            disposition: RcptDisposition::Local { bal_id },
        }],
    }
}

/// The write failed, and the INBOX holds nothing.
async fn assert_refused_and_absent<T: std::fmt::Debug>(store: &Store, outcome: Result<T>) {
    assert!(outcome.is_err(), "acknowledged: {:?}", outcome.ok());
    let stored = store.folder_messages(ADDRESS, "INBOX").await.unwrap();
    assert!(stored.is_empty(), "{} stored", stored.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_commit_fails_is_not_acknowledged() {
    let (store, db) = open(Engine::Postgres).await;
    let (bal_id, _) = bal_with_inbox(&store).await;
    refuse_commits(&db.url, "messages", "INSERT").await;
    let outcome = store.deliver(mail_for(bal_id)).await;
    assert_refused_and_absent(&store, outcome).await;
    assert_eq!(store.message_count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_whose_commit_fails_is_not_acknowledged() {
    let (store, db) = open(Engine::Postgres).await;
    let (_, inbox) = bal_with_inbox(&store).await;
    refuse_commits(&db.url, "mailbox_messages", "INSERT").await;
    let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
    let outcome = store
        .append(inbox.id, raw, &[], 0, MessageMeta::default())
        .await;
    assert_refused_and_absent(&store, outcome).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_claim_whose_commit_fails_is_not_reported() {
    let (store, db) = open(Engine::Postgres).await;
    let (bal_id, inbox) = bal_with_inbox(&store).await;
    store.deliver(mail_for(bal_id)).await.unwrap();
    refuse_commits(&db.url, "mailboxes", "UPDATE OF first_recent_uid").await;
    let claimed = store.claim_recent(inbox.id).await;
    assert!(claimed.is_err(), "reported as claimed: {:?}", claimed.ok());
    let inbox = store.folder(bal_id, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        store.claim_recent(inbox.id).await.ok(),
        None,
        "the claim failed, so the message is still to be claimed (and the trigger refuses again)"
    );
}

/// ADR 0052: the RCPT lookup and the delivery keep their connection for the next message
/// instead of giving it back to sqlx's pool, whose ping on every return cost a round trip
/// each (four a message on the wire, two of them pings). 20 messages, each looked up and
/// delivered as SMTP does, send no connection back to the pool (was two per message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_gives_no_connection_back_to_the_pool() {
    let (store, _db) = open(Engine::Postgres).await;
    let (bal_id, _) = bal_with_inbox(&store).await;
    let address = Address::parse(ADDRESS).unwrap();
    let send = |n: usize| {
        let mut mail = mail_for(bal_id);
        mail.raw = format!("Message-ID: <m{n}@lab>\r\nSubject: {n}\r\n\r\nbody\r\n").into_bytes();
        mail
    };
    store.lookup_recipient(&address).await.unwrap();
    store.deliver(send(0)).await.unwrap();
    let before = store.pool_returns();
    for n in 1..=20 {
        let found = store.lookup_recipient(&address).await.unwrap();
        assert!(matches!(found, RcptLookup::Local { .. }), "{found:?}");
        store.deliver(send(n)).await.unwrap();
    }
    let returned = store.pool_returns() - before;
    // A connection kept over a second is given back (and pinged): a slow machine may see a
    // few, never one a message.
    assert!(
        returned < 10,
        "{returned} connections given back for 20 messages"
    );
    assert_eq!(
        store.folder_messages(ADDRESS, "INBOX").await.unwrap().len(),
        21
    );
}

/// A kept connection whose statement failed (here at COMMIT) is not kept: the next
/// deliveries run on a clean connection, outside any transaction, and are stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_leaves_no_broken_connection_kept() {
    let (store, db) = open(Engine::Postgres).await;
    let (bal_id, _) = bal_with_inbox(&store).await;
    store.deliver(mail_for(bal_id)).await.unwrap();
    refuse_commits(&db.url, "messages", "INSERT").await;
    assert!(store.deliver(mail_for(bal_id)).await.is_err());
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql("DROP TRIGGER refused_at_commit ON messages")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    for _ in 0..3 {
        store.deliver(mail_for(bal_id)).await.unwrap();
    }
    assert_eq!(
        store.folder_messages(ADDRESS, "INBOX").await.unwrap().len(),
        4
    );
    assert_eq!(store.message_count().await.unwrap(), 4);
}

/// The pool's `close` waits for every connection it lent: those the SMTP statements keep
/// (ADR 0052) go back to it, or a server's shutdown after mail would wait forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_store_after_deliveries_returns_the_kept_connections() {
    let (store, _db) = open(Engine::Postgres).await;
    let (bal_id, _) = bal_with_inbox(&store).await;
    store
        .lookup_recipient(&Address::parse(ADDRESS).unwrap())
        .await
        .unwrap();
    store.deliver(mail_for(bal_id)).await.unwrap();
    // Not a timing assertion: a bound on a wait that, broken, never ends.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(60), store.close()).await;
    assert!(closed.is_ok(), "close still waiting for a kept connection");
}
