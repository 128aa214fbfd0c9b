//! A delegate's STORE and EXPUNGE on PostgreSQL in one statement each, audit entry included
//! (ADR 0059), against a real PostgreSQL: round trips counted through a proxy
//! (`mssante_testkit::round_trips`), holder and delegate side by side, not timed; and when
//! the statement cannot do what the transaction path would (another process moved the
//! chain's head, a message asked for is already gone), the transaction path does it, the
//! chain never forks and the entry names what was really done.

use std::time::Duration;

use mssante_store::*;
use mssante_testkit::round_trips::RoundTrips;
use mssante_testkit::{Engine as TestEngine, TestDb};

mod common;
use common::{bal_with_inbox, flags_of};

const SEC: &str = "sec.dupont@ch-x.mssante.fr";
const BAL: &str = "a@ch-x.mssante.fr";

fn flag(name: &str) -> Vec<String> {
    vec![name.to_string()]
}

async fn append(store: &Store, folder: i64, i: u32) -> u32 {
    let raw = format!("Subject: {i}\r\n\r\nbody\r\n").into_bytes();
    store
        .append(folder, raw, &[], 0, MessageMeta::default())
        .await
        .unwrap()
        .1
}

/// A STORE of `flags` on `uid`, by the secretary (audited, her own `\Seen`) or the holder.
async fn store_as(
    store: &Store,
    (bal_id, folder): (i64, i64),
    uid: u32,
    (op, flags): (FlagOp, &[String]),
    as_delegate: bool,
) -> FlagUpdate {
    let event = as_delegate.then(|| AuditEvent::new(bal_id, SEC, AuditAction::Flags));
    let delegate = as_delegate.then_some(SEC);
    let uids = [uid];
    let write = store.update_flags_as(folder, &uids, (op, flags), None, delegate);
    Store::audited(event, write).await.unwrap()
}

/// A delegate's first write on the BAL: it takes the transaction path, which reads the
/// chain's head; the store remembers it from then on.
async fn remember_head(store: &Store, target: (i64, i64), uid: u32) {
    store_as(store, target, uid, (FlagOp::Add, &flag("\\Flagged")), true).await;
}

async fn expunge_as(store: &Store, (bal_id, folder): (i64, i64), uids: &[u32]) -> Vec<u32> {
    let event = AuditEvent::new(bal_id, SEC, AuditAction::Expunge);
    Store::audited(Some(event), store.expunge(folder, uids))
        .await
        .unwrap()
}

/// A store on a fresh PostgreSQL, a BAL's INBOX with `n` messages: ((BAL, INBOX), UIDs).
async fn inbox_with(db: &TestDb, n: u32) -> (Store, (i64, i64), Vec<u32>) {
    let store = Store::open(&db.url, db.data_path()).await.unwrap();
    let (target, uids) = fill(&store, n).await;
    (store, target, uids)
}

/// [`inbox_with`] through a round-trip counter, the chain's head remembered (a delegate's
/// first write takes the transaction path, which reads it).
async fn counted_inbox(db: &TestDb, n: u32) -> (RoundTrips, Store, (i64, i64), Vec<u32>) {
    let counter = RoundTrips::start(&db.url).await;
    let store = Store::open(counter.url(), db.data_path()).await.unwrap();
    let (target, uids) = fill(&store, n).await;
    remember_head(&store, target, uids[0]).await;
    (counter, store, target, uids)
}

/// A BAL's INBOX with `n` messages.
async fn fill(store: &Store, n: u32) -> ((i64, i64), Vec<u32>) {
    let (bal_id, inbox) = bal_with_inbox(store).await;
    let mut uids = Vec::new();
    for i in 0..n {
        uids.push(append(store, inbox.id, i).await);
    }
    ((bal_id, inbox.id), uids)
}

/// Round trips since `before`, once the pool's ping of the connection given back is in.
async fn since(counter: &RoundTrips, before: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(30)).await;
    counter.count() - before
}

async fn trail(store: &Store) -> Vec<AuditEntry> {
    store
        .audit_entries(BAL, &AuditQuery::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_store_and_expunge_cost_the_holders_round_trips() {
    let db = TestDb::new(TestEngine::Postgres);
    let (counter, store, target, uids) = counted_inbox(&db, 24).await;
    let inbox = store.folder(target.0, "INBOX").await.unwrap().unwrap();
    store_as(
        &store,
        target,
        uids[1],
        (FlagOp::Add, &flag("\\Flagged")),
        false,
    )
    .await;
    let entries_before = trail(&store).await.len();

    let (mut holder, mut delegate) = (0, 0);
    for i in 0..5 {
        let before = counter.count();
        store_as(
            &store,
            target,
            uids[2 + i],
            (FlagOp::Add, &flag("\\Seen")),
            false,
        )
        .await;
        holder += since(&counter, before).await;
        let before = counter.count();
        let update = store_as(
            &store,
            target,
            uids[7 + i],
            (FlagOp::Add, &flag("\\Seen")),
            true,
        )
        .await;
        delegate += since(&counter, before).await;
        assert_eq!(update.changed.len(), 1);
        assert_eq!(update.changed[0].flags, flag("\\Seen"));
    }
    println!("round trips for 5 STOREs: holder {holder}, delegate {delegate}");
    // The read and the statement each; the transaction path took eight.
    assert!(
        delegate <= holder + 2,
        "5 delegate STOREs took {delegate} round trips, the holder's {holder}"
    );

    // A shared flag and the secretary's \Seen in the same statement.
    let both = [flag("\\Seen"), flag("\\Answered")].concat();
    store_as(&store, target, uids[18], (FlagOp::Add, &both), true).await;
    let before = counter.count();
    let update = store_as(&store, target, uids[12], (FlagOp::Add, &both), true).await;
    let combined = since(&counter, before).await;
    // The read, the statement, the pool's ping, and its preparation if the pooled
    // connection had not prepared it yet: the transaction path took ten.
    assert!(
        combined <= 5,
        "a STORE of a shared flag and \\Seen took {combined} round trips"
    );
    let mut told = update.changed[0].flags.clone();
    told.sort();
    assert_eq!(told, ["\\Answered", "\\Seen"]);
    assert_eq!(
        flags_of(&store, inbox.id, uids[12], None).await,
        flag("\\Answered")
    );
    assert_eq!(
        flags_of(&store, inbox.id, uids[12], Some(SEC)).await,
        ["\\Answered", "\\Seen"]
    );
    // Her \Seen is hers; the holder's is shared and not hers.
    assert!(flags_of(&store, inbox.id, uids[7], None).await.is_empty());
    assert_eq!(
        flags_of(&store, inbox.id, uids[7], Some(SEC)).await,
        flag("\\Seen")
    );
    assert_eq!(
        flags_of(&store, inbox.id, uids[2], None).await,
        flag("\\Seen")
    );
    assert!(
        flags_of(&store, inbox.id, uids[2], Some(SEC))
            .await
            .is_empty()
    );

    // EXPUNGE: one statement for the holder (ADR 0046), one for the delegate.
    let before = counter.count();
    assert_eq!(
        store.expunge(inbox.id, &[uids[13]]).await.unwrap(),
        [uids[13]]
    );
    let holder = since(&counter, before).await;
    let before = counter.count();
    let asked = [uids[14], uids[15], uids[17]];
    assert_eq!(expunge_as(&store, target, &asked).await, asked);
    let delegate = since(&counter, before).await;
    println!("round trips per EXPUNGE: holder {holder}, delegate {delegate}");
    assert!(
        delegate <= holder + 1,
        "delegate {delegate}, holder {holder}"
    );

    // One entry per delegated write, naming its messages, chained.
    let entries = trail(&store).await;
    let recorded: Vec<(String, String)> = entries[entries_before..]
        .iter()
        .map(|e| (e.action.clone(), e.message_ids.clone()))
        .collect();
    let mut want: Vec<(String, String)> = (7..12)
        .map(|i| ("flags".to_string(), format!("uid:{}", uids[i])))
        .collect();
    want.push(("flags".into(), format!("uid:{}", uids[18])));
    want.push(("flags".into(), format!("uid:{}", uids[12])));
    let expunged = asked.map(|u| format!("uid:{u}")).join(" ");
    want.push(("expunge".into(), expunged));
    assert_eq!(recorded, want);
    assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_moved_by_another_process_sends_the_write_to_the_transaction_path() {
    let db = TestDb::new(TestEngine::Postgres);
    let (store, target, uids) = inbox_with(&db, 3).await;
    let ((bal_id, inbox), (a, b, c)) = (target, (uids[0], uids[1], uids[2]));
    store_as(&store, target, a, (FlagOp::Add, &flag("\\Seen")), true).await;

    // Another process (the command line, another node) appends to the chain: this one's
    // remembered head is stale.
    let other = Store::open(&db.url, db.data_path()).await.unwrap();
    let mut grant = AuditEvent::new(bal_id, "operator", AuditAction::Grant);
    grant.detail = "sec: read".into();
    other.record_audit(&grant).await.unwrap();

    let update = store_as(&store, target, b, (FlagOp::Add, &flag("\\Seen")), true).await;
    assert_eq!(update.changed.len(), 1);
    assert_eq!(flags_of(&store, inbox, b, Some(SEC)).await, flag("\\Seen"));
    other.record_audit(&grant).await.unwrap();
    assert_eq!(expunge_as(&store, target, &[c]).await, [c]);

    let actions: Vec<String> = trail(&store)
        .await
        .iter()
        .map(|e| e.action.clone())
        .collect();
    assert_eq!(actions, ["flags", "grant", "flags", "grant", "expunge"]);
    let seqs: Vec<i64> = trail(&store).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_expunge_of_a_message_already_gone_records_only_what_it_removed() {
    let db = TestDb::new(TestEngine::Postgres);
    let (store, target, uids) = inbox_with(&db, 2).await;
    let (inbox, (a, b)) = (target.1, (uids[0], uids[1]));
    // The head is remembered, so the delegate's EXPUNGE tries its one statement first.
    store_as(&store, target, a, (FlagOp::Add, &flag("\\Deleted")), true).await;
    store_as(&store, target, b, (FlagOp::Add, &flag("\\Deleted")), true).await;
    // The holder's other session expunges B first.
    assert_eq!(store.expunge(inbox, &[b]).await.unwrap(), [b]);

    assert_eq!(expunge_as(&store, target, &[a, b]).await, [a]);
    let last = trail(&store).await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.message_ids.as_str()),
        ("expunge", format!("uid:{a}").as_str())
    );
    assert!(
        store
            .snapshot_as(inbox, None, None)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delegates_stores_racing_the_holders_expunges_never_fail_nor_fork_the_chain() {
    let db = TestDb::new(TestEngine::Postgres);
    let (store, target, uids) = inbox_with(&db, 120).await;
    remember_head(&store, target, uids[0]).await;
    let rest = uids[1..].to_vec();
    // The secretary reads each message (her own \Seen: no shared row to check) while the
    // doctor's other session expunges them one by one: some of her writes find their
    // message gone between their read and their statement.
    let reads = {
        let (store, rest) = (store.clone(), rest.clone());
        tokio::spawn(async move {
            let mut entries = 0;
            for uid in rest {
                let event = AuditEvent::new(target.0, SEC, AuditAction::Flags);
                let (uids, seen) = ([uid], flag("\\Seen"));
                let write =
                    store.update_flags_as(target.1, &uids, (FlagOp::Add, &seen), None, Some(SEC));
                Store::audited(Some(event), write)
                    .await
                    .expect("a delegate's STORE on a message being expunged");
                entries += 1;
            }
            entries
        })
    };
    for uid in rest.iter().rev() {
        store.expunge(target.1, &[*uid]).await.unwrap();
    }
    let entries = reads.await.unwrap();
    assert_eq!(trail(&store).await.len(), 1 + entries);
    assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_copy_costs_the_holders_round_trips_and_a_full_quota_still_refuses_it() {
    let db = TestDb::new(TestEngine::Postgres);
    let (counter, store, target, uids) = counted_inbox(&db, 8).await;
    let (bal_id, inbox) = (
        target.0,
        store.folder(target.0, "INBOX").await.unwrap().unwrap(),
    );
    let archives = store.create_folder(bal_id, "Archives", None).await.unwrap();
    // The secretary has read uids[1]: her \Seen follows the copy.
    store_as(
        &store,
        target,
        uids[1],
        (FlagOp::Add, &flag("\\Seen")),
        true,
    )
    .await;
    let copy_as = |uids: Vec<u32>, as_delegate: bool| {
        let store = store.clone();
        async move {
            let event = as_delegate.then(|| AuditEvent::new(bal_id, SEC, AuditAction::Copy));
            let copy = store.copy_messages(inbox.id, &uids, archives.id, false);
            Store::audited(event, copy).await
        }
    };
    // Warm-up: each statement prepared once.
    copy_as(vec![uids[6]], false).await.unwrap();
    copy_as(vec![uids[7]], true).await.unwrap();

    let before = counter.count();
    copy_as(vec![uids[2]], false).await.unwrap();
    let holder = since(&counter, before).await;
    let before = counter.count();
    let pairs = copy_as(vec![uids[1]], true).await.unwrap();
    let delegate = since(&counter, before).await;
    println!("round trips per COPY: holder {holder}, delegate {delegate}");
    // One statement each (and the pool's ping); the transaction path took twelve.
    assert!(
        delegate <= holder + 1,
        "delegate {delegate}, holder {holder}"
    );
    let copy = pairs[0].1;
    assert_eq!(
        flags_of(&store, archives.id, copy, Some(SEC)).await,
        flag("\\Seen")
    );
    assert!(flags_of(&store, archives.id, copy, None).await.is_empty());
    let last = trail(&store).await.pop().unwrap();
    let want = ("copy", format!("uid:{}", uids[1]));
    assert_eq!((last.action.as_str(), last.message_ids), want);

    // A full quota: the statement writes nothing, the transaction path refuses.
    let (used, _) = store.bal_usage(bal_id).await.unwrap();
    store.set_bal_quota(BAL, Some(used)).await.unwrap();
    let entries = trail(&store).await.len();
    let full = copy_as(vec![uids[3], uids[4]], true).await;
    assert!(matches!(full, Err(StoreError::OverQuota)), "{full:?}");
    assert_eq!(store.folder_status(archives.id).await.unwrap().messages, 4);
    // Nothing written, so no entry (as the transaction path, which rolls back).
    assert_eq!(trail(&store).await.len(), entries);
    assert_eq!(store.verify_audit(None).await.unwrap().first_bad, None);
}
