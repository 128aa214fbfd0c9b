//! The running usage counter (`bals.used_bytes`, docs/limits.md) against the bytes a BAL's
//! folders really hold, after every kind of write, on SQLite and on a real PostgreSQL
//! cluster. Since ADR 0049 no trigger counts a new copy: each writer adds the bytes itself
//! (the one-statement delivery, APPEND and COPY on PostgreSQL, the transaction paths on
//! both engines), so a writer that forgets the counter fails here. The import's count is
//! checked in `portability/tests/round_trip.rs`, and the source scan
//! `db::tests::every_insert_into_mailbox_messages_counts_its_bytes` catches a new writer.

use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb, engine_tests};
use sqlx::Row;

mod common;
use common::{local, message, open, per};

fn remote(address: &str) -> RecipientSpec {
    RecipientSpec {
        disposition: RcptDisposition::Remote,
        ..local(address, 0)
    }
}

/// Every BAL's counter and the bytes of its copies summed from the rows, read with a
/// connection of our own (the store has no such query: that is the point of the counter).
async fn counters_and_sums(db: &TestDb) -> Vec<(String, i64, i64)> {
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let rows = sqlx::query(
        "SELECT b.address, b.used_bytes, CAST((SELECT COALESCE(SUM(m.size), 0) FROM mailboxes f \
         JOIN mailbox_messages mm ON mm.mailbox_id = f.id JOIN messages m ON m.id = mm.message_id \
         WHERE f.bal_id = b.id) AS BIGINT) AS held FROM bals b ORDER BY b.address",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| {
            (
                r.try_get("address").unwrap(),
                r.try_get("used_bytes").unwrap(),
                r.try_get("held").unwrap(),
            )
        })
        .collect()
}

/// Asserts that every counter equals what its BAL holds, and returns `address`'s.
async fn exact(db: &TestDb, after: &str, address: &str) -> i64 {
    let all = counters_and_sums(db).await;
    for (bal, counted, held) in &all {
        assert_eq!(
            counted, held,
            "after {after}: {bal} counts {counted} bytes, holds {held}"
        );
    }
    all.iter()
        .find(|(bal, _, _)| bal == address)
        .map(|(_, counted, _)| *counted)
        .unwrap_or(0)
}

engine_tests!(
    usage_counter_is_exact_after_every_kind_of_write,
    |engine: TestEngine| async move {
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
        let (a_at, b_at) = ("a@ch-x.mssante.fr", "b@ch-x.mssante.fr");
        assert_eq!(exact(&db, "creation", a_at).await, 0);

        // Deliveries: one recipient; two BALs and a remote recipient; two addresses of
        // one BAL (one copy).
        let one = b"Subject: one\r\n\r\nfor a\r\n".to_vec();
        store
            .deliver(message(&one, vec![local(a_at, a.id)]))
            .await
            .unwrap();
        assert_eq!(exact(&db, "a delivery", a_at).await, one.len() as i64);
        let both = vec![b'x'; 5000];
        store
            .deliver(message(
                &both,
                vec![
                    local(a_at, a.id),
                    remote("z@ailleurs.mssante.fr"),
                    local(b_at, b.id),
                ],
            ))
            .await
            .unwrap();
        let a_used = exact(&db, "a delivery to two BALs", a_at).await;
        assert_eq!(a_used, (one.len() + both.len()) as i64);
        assert_eq!(exact(&db, "a delivery to two BALs", b_at).await, 5000);
        let twice = b"Subject: twice\r\n\r\nsame BAL\r\n".to_vec();
        store
            .deliver(message(
                &twice,
                vec![local(a_at, a.id), local("a.alias@ch-x.mssante.fr", a.id)],
            ))
            .await
            .unwrap();
        let a_used = exact(&db, "two addresses of one BAL", a_at).await;
        assert_eq!(a_used, (one.len() + both.len() + twice.len()) as i64);

        // IMAP: APPEND, COPY, MOVE, EXPUNGE, folder deletion.
        let inbox = store.folder(a.id, "INBOX").await.unwrap().unwrap();
        let appended = vec![b'y'; 3000];
        let (_, uid) = store
            .append(inbox.id, appended, &[], 0, MessageMeta::default())
            .await
            .unwrap();
        assert_eq!(exact(&db, "APPEND", a_at).await, a_used + 3000);
        let archive = store.create_folder(a.id, "Archive", None).await.unwrap();
        let all_uids = [1, 2, 3, uid];
        store
            .copy_messages(inbox.id, &all_uids, archive.id, false)
            .await
            .unwrap();
        assert_eq!(exact(&db, "COPY", a_at).await, 2 * (a_used + 3000));
        let old = store.create_folder(a.id, "Old", None).await.unwrap();
        store
            .copy_messages(archive.id, &[1, 2], old.id, true)
            .await
            .unwrap();
        assert_eq!(exact(&db, "MOVE", a_at).await, 2 * (a_used + 3000));
        store.expunge(inbox.id, &[uid]).await.unwrap();
        assert_eq!(exact(&db, "EXPUNGE", a_at).await, 2 * a_used + 3000);
        store.delete_folder(a.id, "Old").await.unwrap();
        store.delete_folder(a.id, "Archive").await.unwrap();
        assert_eq!(exact(&db, "folder deletions", a_at).await, a_used);

        // BAL removal: its copies go, the other BAL's stay counted.
        store.set_bal_status(b_at, BalStatus::Closed).await.unwrap();
        store.remove_bal(b_at, "test").await.unwrap();
        assert_eq!(exact(&db, "BAL removal", b_at).await, 0);
        assert_eq!(exact(&db, "BAL removal", a_at).await, a_used);
    }
);
