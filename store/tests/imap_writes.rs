//! The IMAP writes of the store (ADR 0031): what they leave in the folder, and what they
//! cost in commits. On SQLite, writes of concurrent sessions share one commit; a SELECT of a
//! folder with nothing new to claim as \Recent writes nothing. On SQLite and PostgreSQL.

use mssante_store::*;
use mssante_testkit::engine_tests;

mod common;
use common::{bal_with_inbox, open};

async fn append(store: &Store, folder: i64, flags: &[&str]) -> u32 {
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
    store
        .append(folder, raw, &flags, 0, MessageMeta::default())
        .await
        .unwrap()
        .1
}

/// A store whose INBOX holds `n` messages: the store, its database, the BAL id, the INBOX
/// and the UIDs.
async fn inbox_with(
    engine: mssante_testkit::Engine,
    n: usize,
) -> (Store, mssante_testkit::TestDb, i64, Folder, Vec<u32>) {
    let (store, db) = open(engine).await;
    let (bal_id, inbox) = bal_with_inbox(&store).await;
    let mut uids = Vec::new();
    for _ in 0..n {
        uids.push(append(&store, inbox.id, &[]).await);
    }
    (store, db, bal_id, inbox, uids)
}

/// Runs `work(store, uid)` for every UID at once, as that many sessions would; the outputs
/// in the order of `uids`.
async fn at_once<T, Fut>(store: &Store, uids: &[u32], work: impl Fn(Store, u32) -> Fut) -> Vec<T>
where
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = uids
        .iter()
        .map(|&uid| tokio::spawn(work(store.clone(), uid)))
        .collect();
    let mut outputs = Vec::new();
    for t in tasks {
        outputs.push(t.await.unwrap());
    }
    outputs
}

fn commits(store: &Store) -> Option<u64> {
    store.shared_commits().map(|c| c.commits)
}

engine_tests!(
    a_select_with_nothing_to_claim_writes_nothing,
    |engine| async move {
        let (store, _db, _, inbox, uids) = inbox_with(engine, 1).await;
        let uid = uids[0];
        // The first read-write session to look claims the new message (RFC 3501 §2.3.2)...
        let before = commits(&store);
        assert_eq!(store.claim_recent(inbox.id).await.unwrap(), uid);
        assert_eq!(
            commits(&store),
            before.map(|n| n + 1),
            "the claim is a write"
        );
        // ...and the next one finds nothing recent, without a commit.
        assert_eq!(store.claim_recent(inbox.id).await.unwrap(), uid + 1);
        assert_eq!(commits(&store), before.map(|n| n + 1), "nothing to claim");
        let next = append(&store, inbox.id, &[]).await;
        assert_eq!(store.claim_recent(inbox.id).await.unwrap(), next);
        assert_eq!(store.first_recent_uid(inbox.id).await.unwrap(), next + 1);
    }
);

engine_tests!(
    a_store_on_a_range_gives_each_message_its_own_flags,
    |engine| async move {
        let (store, _db, _, inbox, uids) = inbox_with(engine, 1).await;
        let a = uids[0];
        let b = append(&store, inbox.id, &["\\Seen"]).await;
        let c = append(&store, inbox.id, &["$Label1"]).await;
        let d = append(&store, inbox.id, &[]).await;
        let before = store.folder_snapshot(inbox.id).await.unwrap().highestmodseq;
        let flags = ["\\seen".to_string(), "$Label1".to_string()];
        let update = store
            .update_flags(inbox.id, &[a, b, c, d], FlagOp::Add, &flags, None)
            .await
            .unwrap();
        let changed: Vec<u32> = update.changed.iter().map(|m| m.uid).collect();
        assert_eq!(changed, vec![a, b, c, d]);
        let after = store.folder_snapshot(inbox.id).await.unwrap();
        assert_eq!(after.highestmodseq, before + 1, "one modseq per STORE");
        let stored: Vec<(u32, u64, Vec<String>)> = after
            .messages
            .into_iter()
            .map(|m| (m.uid, m.modseq, m.flags))
            .collect();
        let m = before + 1;
        let seen_label = |first: &str, second: &str| vec![first.to_string(), second.to_string()];
        assert_eq!(
            stored,
            vec![
                (a, m, seen_label("\\Seen", "$Label1")),
                (b, m, seen_label("\\Seen", "$Label1")),
                (c, m, seen_label("$Label1", "\\Seen")),
                (d, m, seen_label("\\Seen", "$Label1")),
            ]
        );
        // Unchanged messages keep their modseq.
        let again = store
            .update_flags(inbox.id, &[a, b], FlagOp::Add, &flags, None)
            .await
            .unwrap();
        assert!(again.changed.is_empty());
    }
);

// Twenty sessions storing flags at once: every change is there when its STORE returns,
// each with its own modseq, and on SQLite they took fewer commits than writes.
engine_tests!(
    concurrent_stores_share_commits_and_each_is_durable,
    |engine| async move {
        let (store, _db, _, inbox, uids) = inbox_with(engine, 20).await;
        let before = store.shared_commits();
        let folder = inbox.id;
        let mut modseqs = at_once(&store, &uids, |store, uid| async move {
            let keyword = format!("$k{uid}");
            let one = std::slice::from_ref(&keyword);
            let update = store
                .update_flags(folder, &[uid], FlagOp::Add, one, None)
                .await
                .unwrap();
            // Durable and visible as soon as the STORE returned.
            let infos = store.message_infos(folder, &[uid]).await.unwrap();
            assert_eq!(infos[0].flags, vec![keyword]);
            update.changed[0].modseq
        })
        .await;
        modseqs.sort_unstable();
        modseqs.dedup();
        assert_eq!(modseqs.len(), 20, "one modseq per STORE");
        if let (Some(before), Some(after)) = (before, store.shared_commits()) {
            assert_eq!(after.writes - before.writes, 20);
            assert!(
                after.commits - before.commits < 20,
                "no STORE shared a commit: {before:?} → {after:?}"
            );
        }
    }
);

// A delegate's writes are audited in their own transaction (ADR 0016): with group commit the
// write runs in the committer's task, and the entry taken in the session's task still goes
// with it, once per write, with the UIDs it touched.
engine_tests!(
    audited_writes_record_their_entry_in_a_shared_commit,
    |engine| async move {
        let (store, _db, bal_id, inbox, uids) = inbox_with(engine, 5).await;
        let folder = inbox.id;
        at_once(&store, &uids, |store, uid| async move {
            let event = AuditEvent::new(bal_id, "sec@ch-x.mssante.fr", AuditAction::Flags);
            let (uids, flags) = ([uid], ["\\Seen".to_string()]);
            let store_flags = store.update_flags(folder, &uids, FlagOp::Add, &flags, None);
            Store::audited(Some(event), store_flags).await.unwrap();
        })
        .await;
        let trail = store
            .audit_entries("a@ch-x.mssante.fr", &AuditQuery::default())
            .await
            .unwrap();
        let mut recorded: Vec<String> = trail
            .iter()
            .filter(|e| e.action == "flags")
            .map(|e| e.message_ids.clone())
            .collect();
        recorded.sort();
        let mut expected: Vec<String> = uids.iter().map(|u| format!("uid:{u}")).collect();
        expected.sort();
        assert_eq!(recorded, expected);
        let verification = store.verify_audit(None).await.unwrap();
        assert_eq!(verification.first_bad, None);
    }
);

// Sessions moving messages both ways between two folders of one BAL while others append and
// expunge (issue 11's model run on PostgreSQL: 6 % of commands answered `NO [UNAVAILABLE]`,
// every one a deadlock between a MOVE taking its two folders' rows in opposite orders and the
// BAL's usage row). Every write must succeed: conflicts between writers are the store's to
// resolve, never the client's.
engine_tests!(crossed_moves_and_appends_never_fail, |engine| async move {
    let (store, _db, bal_id, inbox) = {
        let (store, db) = open(engine).await;
        let (bal_id, inbox) = bal_with_inbox(&store).await;
        (store, db, bal_id, inbox)
    };
    let dossiers = store.create_folder(bal_id, "Dossiers", None).await.unwrap();
    let sessions: Vec<u32> = (0..12).collect();
    let (inbox_id, dossiers_id) = (inbox.id, dossiers.id);
    let failures = at_once(&store, &sessions, |store, session| async move {
        let (from, to) = match session % 2 {
            0 => (inbox_id, dossiers_id),
            _ => (dossiers_id, inbox_id),
        };
        let mut failures = Vec::new();
        for _ in 0..8 {
            let flags = ["\\Seen".to_string()];
            let raw = format!("Subject: s{session}\r\n\r\nbody\r\n").into_bytes();
            let step = async {
                let (_, uid) = store
                    .append(from, raw, &flags, 0, MessageMeta::default())
                    .await?;
                let moved = store.copy_messages(from, &[uid], to, true).await?;
                let deleted = ["\\Deleted".to_string()];
                store
                    .update_flags(to, &[moved[0].1], FlagOp::Add, &deleted, None)
                    .await?;
                store.expunge(to, &[moved[0].1]).await
            };
            if let Err(e) = step.await {
                failures.push(e.to_string());
            }
        }
        failures
    })
    .await;
    let failures: Vec<String> = failures.into_iter().flatten().collect();
    assert!(
        failures.is_empty(),
        "{} writes failed: {failures:?}",
        failures.len()
    );
    for folder in [inbox_id, dossiers_id] {
        let left = store.folder_snapshot(folder).await.unwrap().messages;
        assert!(
            left.is_empty(),
            "every message moved then expunged: {left:?}"
        );
    }
});

engine_tests!(
    concurrent_claims_give_each_new_message_to_one_session,
    |engine| async move {
        let (store, _db, _, inbox, uids) = inbox_with(engine, 3).await;
        let next = uids[2] + 1;
        for round in 0..3 {
            // RFC 3501 §2.3.2: a new message is \Recent for one session only; PostgreSQL
            // claims in one statement that locks the folder row only when there is
            // something to claim (ADR 0043).
            let first_new = match round {
                0 => uids[0],
                _ => append(&store, inbox.id, &[]).await,
            };
            let uidnext = store.folder_status(inbox.id).await.unwrap().uidnext;
            let claims = at_once(&store, &[0; 8], move |store, _| async move {
                store.claim_recent(inbox.id).await.unwrap()
            })
            .await;
            let winners: Vec<&u32> = claims.iter().filter(|&&c| c < uidnext).collect();
            assert_eq!(winners, vec![&first_new], "round {round}: {claims:?}");
            assert!(
                claims.iter().all(|&c| c == first_new || c >= uidnext),
                "the others claim nothing: {claims:?}"
            );
        }
        assert!(next <= store.folder_status(inbox.id).await.unwrap().uidnext);
    }
);

// ADR 0050: an APPEND or COPY by a session that has the folder selected claims \Recent
// with its write. Ten such sessions at once, three rounds: each write's claim holds its own
// new messages, no two claims overlap, together they hold every message from the one
// delivered unclaimed before them up to UIDNEXT, and a claim afterwards finds nothing. On
// SQLite the claim rides in the write's commit: no commit of its own.
engine_tests!(
    writes_claiming_recent_give_each_new_message_to_one_session,
    |engine| async move {
        let (store, _db, _, inbox, uids) = inbox_with(engine, 3).await;
        let folder = inbox.id;
        assert_eq!(store.claim_recent(folder).await.unwrap(), uids[0]);
        let unclaimed = append(&store, folder, &[]).await;
        let sessions: Vec<u32> = (0..10).collect();
        let sources = uids.clone();
        let claims = at_once(&store, &sessions, move |store, session| {
            let sources = sources.clone();
            async move {
                let mut mine = Vec::new();
                for round in 0..3u32 {
                    let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
                    let (new, claim) = match (session + round) % 2 {
                        0 => {
                            let ((_, uid), claim) = store
                                .append_claiming_recent(
                                    folder,
                                    raw,
                                    (&[], 0),
                                    MessageMeta::default(),
                                )
                                .await
                                .unwrap();
                            (vec![uid], claim)
                        }
                        _ => {
                            let from = &sources[(session % 2) as usize..][..2];
                            let (pairs, claim) = store
                                .copy_claiming_recent(folder, from, folder)
                                .await
                                .unwrap();
                            (pairs.iter().map(|p| p.1).collect(), claim.unwrap())
                        }
                    };
                    for uid in &new {
                        assert!(
                            (claim.first..claim.next).contains(uid),
                            "{uid} outside its own claim {claim:?}"
                        );
                    }
                    mine.push(claim);
                }
                mine
            }
        })
        .await;
        let mut claims: Vec<RecentClaim> = claims.into_iter().flatten().collect();
        claims.sort_by_key(|c| c.first);
        let uidnext = store.folder_status(folder).await.unwrap().uidnext;
        assert_eq!(
            claims[0].first, unclaimed,
            "the delivered message is claimed"
        );
        for pair in claims.windows(2) {
            assert_eq!(
                pair[0].next, pair[1].first,
                "claims neither overlap nor leave gaps: {claims:?}"
            );
        }
        assert_eq!(claims.last().unwrap().next, uidnext);
        assert_eq!(
            store.claim_recent(folder).await.unwrap(),
            uidnext,
            "nothing left"
        );
        // One more, alone: one commit on SQLite, the claim included.
        let before = commits(&store);
        let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
        let ((_, uid), claim) = store
            .append_claiming_recent(folder, raw, (&[], 0), MessageMeta::default())
            .await
            .unwrap();
        assert_eq!(
            claim,
            RecentClaim {
                first: uid,
                next: uid + 1
            }
        );
        assert_eq!(
            commits(&store),
            before.map(|n| n + 1),
            "the claim shares the commit"
        );
        assert_eq!(store.claim_recent(folder).await.unwrap(), uid + 1);
        assert_eq!(
            commits(&store),
            before.map(|n| n + 1),
            "nothing left to claim"
        );
    }
);

engine_tests!(
    an_append_to_a_deleted_folder_stores_nothing,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (bal_id, _) = bal_with_inbox(&store).await;
        let folder = store.create_folder(bal_id, "Dossiers", None).await.unwrap();
        store.delete_folder(bal_id, "Dossiers").await.unwrap();
        let before = store.message_count().await.unwrap();
        let raw = b"Subject: late\r\n\r\nbody\r\n".to_vec();
        let outcome = store
            .append(folder.id, raw, &[], 0, MessageMeta::default())
            .await;
        assert!(
            matches!(outcome, Err(StoreError::NotFound(_))),
            "{outcome:?}"
        );
        assert_eq!(
            store.message_count().await.unwrap(),
            before,
            "no orphan row"
        );
    }
);

engine_tests!(fetch_infos_bring_small_bodies_along, |engine| async move {
    let (store, _db) = open(engine).await;
    let (_, inbox) = bal_with_inbox(&store).await;
    let small = b"Subject: small\r\n\r\nbody\r\n".to_vec();
    let mut large = b"Subject: large\r\n\r\n".to_vec();
    large.resize(BODY_WITH_INFO_MAX as usize + 10, b'x');
    let mut uids = Vec::new();
    for raw in [&small, &large] {
        let (_, uid) = store
            .append(inbox.id, raw.clone(), &[], 0, MessageMeta::default())
            .await
            .unwrap();
        uids.push(uid);
    }
    let infos = store
        .message_infos_with_bodies(inbox.id, &uids)
        .await
        .unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].0.uid, uids[0]);
    assert_eq!(infos[0].1.as_deref(), Some(small.as_slice()));
    // Above the bound the body is left for read_blob, which still finds it.
    assert_eq!(infos[1].1, None);
    assert_eq!(store.read_blob(&infos[1].0.blob_hash).await.unwrap(), large);
    let plain = store.message_infos(inbox.id, &uids).await.unwrap();
    assert_eq!(plain.len(), 2);
    assert_eq!(plain[1].size as usize, large.len());
});

/// The bytes of the message [`append`] stores.
const APPENDED_SIZE: u64 = b"Subject: t\r\n\r\nbody\r\n".len() as u64;

// RFC 9208, OVERQUOTA: a COPY or an APPEND that would take the BAL over its quota is refused and
// stores nothing; one that just fits is stored; the usage counter stays the sum of what
// the folders hold. PostgreSQL checks in the write's one statement (ADR 0046), SQLite in
// its transaction.
engine_tests!(
    copies_and_appends_near_the_quota_store_all_or_nothing,
    |engine| async move {
        let (store, _db, bal_id, inbox, uids) = inbox_with(engine, 3).await;
        let (used, _) = store.bal_usage(bal_id).await.unwrap();
        assert_eq!(used, 3 * APPENDED_SIZE);
        // Room for exactly two more messages.
        let quota = used + 2 * APPENDED_SIZE;
        store
            .set_bal_quota("a@ch-x.mssante.fr", Some(quota))
            .await
            .unwrap();
        let dossiers = store.create_folder(bal_id, "Dossiers", None).await.unwrap();
        let before = store.message_count().await.unwrap();
        let three = store
            .copy_messages(inbox.id, &uids, dossiers.id, false)
            .await;
        assert!(matches!(three, Err(StoreError::OverQuota)), "{three:?}");
        let status = store.folder_status(dossiers.id).await.unwrap();
        assert_eq!((status.messages, status.uidnext), (0, 1), "nothing copied");
        // Two fit exactly, with the target's first UIDs, in source order.
        let two = store
            .copy_messages(inbox.id, &uids[1..], dossiers.id, false)
            .await
            .unwrap();
        assert_eq!(two, vec![(uids[1], 1), (uids[2], 2)]);
        assert_eq!(store.bal_usage(bal_id).await.unwrap().0, quota);
        // Full: neither an APPEND checked with its write nor another COPY goes in.
        let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
        let append = store
            .append_within_quota(dossiers.id, raw, (&[], 0), MessageMeta::default())
            .await;
        assert!(matches!(append, Err(StoreError::OverQuota)), "{append:?}");
        let one = store
            .copy_messages(inbox.id, &uids[..1], dossiers.id, false)
            .await;
        assert!(matches!(one, Err(StoreError::OverQuota)), "{one:?}");
        assert_eq!(
            store.message_count().await.unwrap(),
            before,
            "no message row left"
        );
        assert_eq!(store.bal_usage(bal_id).await.unwrap().0, quota);
        // An expunge makes room again: the next APPEND fits, and takes the next UID.
        store.expunge(dossiers.id, &[1]).await.unwrap();
        let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
        let (_, uid) = store
            .append_within_quota(dossiers.id, raw, (&[], 0), MessageMeta::default())
            .await
            .unwrap();
        assert_eq!(uid, 3);
        let held: Vec<u32> = store
            .folder_snapshot(dossiers.id)
            .await
            .unwrap()
            .messages
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(held, vec![2, 3]);
        assert_eq!(store.bal_usage(bal_id).await.unwrap().0, quota);
    }
);

// RFC 9208, OVERQUOTA: a MOVE into a folder of another BAL (one a delegate reaches through
// the other-users namespace) adds to that BAL's usage, so it is checked like a COPY: refused
// with nothing moved when it would exceed the quota, stored when it fits. A MOVE between two
// folders of one full BAL adds nothing and goes through.
engine_tests!(
    moves_into_another_bal_are_checked_against_its_quota,
    |engine| async move {
        let (store, _db, bal_id, inbox, uids) = inbox_with(engine, 3).await;
        let other = store
            .create_bal(&common::per("b@ch-x.mssante.fr", "10003456790"))
            .await
            .unwrap();
        let other_inbox = store.folder(other.id, "INBOX").await.unwrap().unwrap();
        // The other BAL has room for exactly two of these messages.
        store
            .set_bal_quota("b@ch-x.mssante.fr", Some(2 * APPENDED_SIZE))
            .await
            .unwrap();
        let three = store
            .copy_messages(inbox.id, &uids, other_inbox.id, true)
            .await;
        assert!(matches!(three, Err(StoreError::OverQuota)), "{three:?}");
        assert_eq!(store.folder_status(inbox.id).await.unwrap().messages, 3);
        let status = store.folder_status(other_inbox.id).await.unwrap();
        assert_eq!((status.messages, status.uidnext), (0, 1), "nothing moved");
        assert_eq!(store.bal_usage(other.id).await.unwrap().0, 0);
        assert_eq!(store.bal_usage(bal_id).await.unwrap().0, 3 * APPENDED_SIZE);
        // Two fit exactly and leave their BAL.
        let two = store
            .copy_messages(inbox.id, &uids[..2], other_inbox.id, true)
            .await
            .unwrap();
        assert_eq!(two, vec![(uids[0], 1), (uids[1], 2)]);
        assert_eq!(
            store.bal_usage(other.id).await.unwrap().0,
            2 * APPENDED_SIZE
        );
        assert_eq!(store.bal_usage(bal_id).await.unwrap().0, APPENDED_SIZE);
        let one = store
            .copy_messages(inbox.id, &uids[2..], other_inbox.id, true)
            .await;
        assert!(matches!(one, Err(StoreError::OverQuota)), "{one:?}");
        // Within the full BAL a MOVE takes no room: it is not refused.
        let archive = store
            .create_folder(other.id, "Archive", None)
            .await
            .unwrap();
        let moved = store
            .copy_messages(other_inbox.id, &[1, 2], archive.id, true)
            .await
            .unwrap();
        assert_eq!(moved, vec![(1, 1), (2, 2)]);
        assert_eq!(
            store.bal_usage(other.id).await.unwrap().0,
            2 * APPENDED_SIZE
        );
        assert_eq!(
            store.folder_status(other_inbox.id).await.unwrap().messages,
            0
        );
    }
);

// Sessions copying and appending into one folder at once (issue 11's mix: COPY n INBOX and
// APPEND INBOX from several sessions of a BAL): every new message gets its own UID, each
// writer's UIDs ascend in the order it wrote them, every copy and append has its own
// modseq, HIGHESTMODSEQ and UIDNEXT end above all of them, and the usage counter is the
// sum of the folder's messages.
engine_tests!(
    concurrent_copies_and_appends_keep_uids_unique_and_ascending,
    |engine| async move {
        let (store, _db, bal_id, inbox, uids) = inbox_with(engine, 4).await;
        let folder = inbox.id;
        let sessions: Vec<u32> = (0..10).collect();
        let sources = uids.clone();
        let written = at_once(&store, &sessions, move |store, session| {
            let sources = sources.clone();
            async move {
                let mut mine = Vec::new();
                for round in 0..6u32 {
                    let uid = match (session + round) % 2 {
                        0 => append(&store, folder, &[]).await,
                        _ => {
                            // 1..=3: the next UID is a source too.
                            let from = sources[(session + round) as usize % 3];
                            let pairs = store
                                .copy_messages(folder, &[from, from + 1], folder, false)
                                .await
                                .unwrap();
                            assert_eq!(pairs.len(), 2, "{pairs:?}");
                            assert!(pairs[0].1 < pairs[1].1, "{pairs:?}");
                            pairs[1].1
                        }
                    };
                    mine.push(uid);
                }
                mine
            }
        })
        .await;
        for mine in &written {
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "not ascending: {mine:?}"
            );
        }
        let snapshot = store.folder_snapshot(folder).await.unwrap();
        let mut held: Vec<u32> = snapshot.messages.iter().map(|m| m.uid).collect();
        let count = held.len();
        held.dedup();
        assert_eq!(held.len(), count, "a UID given twice");
        // 4 + 10 sessions × (3 appends + 3 copies of 2).
        assert_eq!(count, 4 + 10 * (3 + 6));
        let mut modseqs: Vec<u64> = snapshot.messages.iter().map(|m| m.modseq).collect();
        modseqs.sort_unstable();
        modseqs.dedup();
        assert_eq!(modseqs.len(), count, "a modseq given twice");
        assert_eq!(snapshot.highestmodseq, *modseqs.last().unwrap());
        let status = store.folder_status(folder).await.unwrap();
        assert_eq!(status.uidnext, held.last().unwrap() + 1);
        let used = store.bal_usage(bal_id).await.unwrap().0;
        assert_eq!(used, count as u64 * APPENDED_SIZE);
    }
);

/// Long enough for the pool's ping of a released connection to be done on a loaded machine.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// Round trips to PostgreSQL of `work`, the pool's ping of the connection it gave back
/// included (counted through `mssante_testkit::round_trips`).
async fn round_trips<T>(
    counter: &mssante_testkit::round_trips::RoundTrips,
    work: impl std::future::Future<Output = T>,
) -> (u64, T) {
    let before = counter.count();
    let output = work.await;
    tokio::time::sleep(SETTLE).await;
    (counter.count() - before, output)
}

// ADR 0043 and 0046: on PostgreSQL an APPEND (its quota check included), a COPY and an
// EXPUNGE are one statement each, i.e. one round trip and the pool's ping when the
// connection goes back; a STORE is a read and one statement on one connection, and its ping. Each count is its fewest over the last rounds (statement caches
// warm: a pooled connection that has not prepared the statement yet adds one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_append_copy_store_expunge_are_one_statement_each() {
    let db = mssante_testkit::TestDb::new(mssante_testkit::Engine::Postgres);
    let counter = mssante_testkit::round_trips::RoundTrips::start(&db.url).await;
    let store = Store::open(counter.url(), db.data_path()).await.unwrap();
    let (_, inbox) = bal_with_inbox(&store).await;
    let folder = inbox.id;
    let mut fewest = [u64::MAX; 4];
    for round in 0..6 {
        let raw = format!("Subject: r{round}\r\n\r\nbody\r\n").into_bytes();
        let append = store.append_within_quota(folder, raw, (&[], 0), MessageMeta::default());
        let (appends, appended) = round_trips(&counter, append).await;
        let (_, uid) = appended.unwrap();
        let source = [uid];
        let copy = store.copy_messages(folder, &source, folder, false);
        let (copies, pairs) = round_trips(&counter, copy).await;
        let copied = pairs.unwrap()[0].1;
        assert_eq!(copied, uid + 1);
        let seen = ["\\Seen".to_string()];
        let store_flags = store.update_flags(folder, &source, FlagOp::Add, &seen, None);
        let (stores, update) = round_trips(&counter, store_flags).await;
        assert_eq!(update.unwrap().changed.len(), 1);
        let gone = [uid, copied];
        let expunge = store.expunge(folder, &gone);
        let (expunges, removed) = round_trips(&counter, expunge).await;
        assert_eq!(removed.unwrap(), vec![uid, copied]);
        if round >= 3 {
            for (f, n) in fewest.iter_mut().zip([appends, copies, stores, expunges]) {
                *f = (*f).min(n);
            }
        }
    }
    println!("round trips of APPEND, COPY, STORE, EXPUNGE: {fewest:?}");
    assert_eq!(fewest, [2, 2, 3, 2], "APPEND, COPY, STORE, EXPUNGE");
}

// Sessions adding each their own keyword to one message at once: on PostgreSQL each STORE
// writes flags computed from a read (ADR 0046), so a change made between the read and the
// write must make it read again, never be overwritten. Every keyword is there at the end,
// and each STORE took its own modseq.
engine_tests!(
    concurrent_stores_on_one_message_lose_no_flag,
    |engine| async move {
        let (store, _db, _, inbox, uids) = inbox_with(engine, 1).await;
        let (folder, uid) = (inbox.id, uids[0]);
        let sessions: Vec<u32> = (0..12).collect();
        let mut modseqs = at_once(&store, &sessions, move |store, session| async move {
            let keyword = [format!("$k{session}")];
            let update = store
                .update_flags(folder, &[uid], FlagOp::Add, &keyword, None)
                .await
                .unwrap();
            assert_eq!(update.changed.len(), 1, "{update:?}");
            assert!(update.changed[0].flags.contains(&keyword[0]));
            update.changed[0].modseq
        })
        .await;
        modseqs.sort_unstable();
        modseqs.dedup();
        assert_eq!(modseqs.len(), sessions.len(), "a modseq given twice");
        let infos = store.message_infos(folder, &[uid]).await.unwrap();
        let mut flags = infos[0].flags.clone();
        flags.sort();
        let mut expected: Vec<String> = sessions.iter().map(|s| format!("$k{s}")).collect();
        expected.sort();
        assert_eq!(flags, expected, "a keyword lost");
        assert_eq!(infos[0].modseq, *modseqs.last().unwrap());
    }
);

/// ADR 0053 and 0054: the writes on PostgreSQL (APPEND, COPY, STORE, EXPUNGE, a MOVE's
/// transaction, an SMTP delivery) do not queue behind another transaction's NOTIFY. PostgreSQL takes one cluster-wide lock at the commit
/// of every transaction that sent a NOTIFY and holds it through the commit's WAL flush; here
/// a blocker holds it for as long as the test wants (its commit waits for a synchronous
/// standby that does not exist, while the store's sessions commit locally). Before, each of
/// these writes sent its own NOTIFY in its statement and waited for that lock (seen as
/// `Lock:object` in `pg_stat_activity`); now other nodes are told after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writes_do_not_queue_behind_a_notify() {
    use sqlx::{Connection, Executor, Row};
    let cluster = mssante_testkit::PgCluster::start_private();
    let db = mssante_testkit::TestDb::in_cluster(&cluster);
    let mut admin = sqlx::postgres::PgConnection::connect(&db.url)
        .await
        .unwrap();
    let name: String = sqlx::query("SELECT current_database()")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{name}\" SET synchronous_commit = local"
        )))
        .await
        .unwrap();
    let store = Store::open(&db.url, db.data_path()).await.unwrap();
    let (bal_id, inbox) = bal_with_inbox(&store).await;
    let folder = inbox.id;
    let first = append(&store, folder, &[]).await;
    let moved = append(&store, folder, &[]).await;
    let archive = store
        .create_folder(bal_id, "Archive", None)
        .await
        .unwrap()
        .id;
    admin
        .execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        .await
        .unwrap();
    admin.execute("SELECT pg_reload_conf()").await.unwrap();

    let mut blocker = sqlx::postgres::PgConnection::connect(&db.url)
        .await
        .unwrap();
    blocker
        .execute("SET synchronous_commit = on")
        .await
        .unwrap();
    let blocker_pid: i32 = sqlx::query("SELECT pg_backend_pid()")
        .fetch_one(&mut blocker)
        .await
        .unwrap()
        .get(0);
    // The blocker's commit waits for the standby, holding the NOTIFY lock; until the
    // checkpointer has read the new setting a commit does not wait, and is tried again.
    let held = loop {
        let held = tokio::spawn(async move {
            let _ = blocker
                .execute("BEGIN; SELECT pg_notify('held', 'x'), txid_current(); COMMIT")
                .await;
            blocker
        });
        let waiting = |waits: &[(i32, String, String)]| {
            waits
                .iter()
                .any(|(pid, event, _)| *pid == blocker_pid && event == "IPC:SyncRep")
        };
        until(&mut admin, |waits| held.is_finished() || waiting(waits)).await;
        if !held.is_finished() {
            break held;
        }
        blocker = held.await.unwrap();
    };

    let s = store.clone();
    let appended = completes_beside_the_lock(&mut admin, async move {
        let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
        s.append(folder, raw, &[], 0, MessageMeta::default()).await
    })
    .await;
    let uid = appended.expect("APPEND").1;
    let s = store.clone();
    let copied = completes_beside_the_lock(&mut admin, async move {
        s.copy_messages(folder, &[first], folder, false).await
    })
    .await;
    assert_eq!(copied.expect("COPY").len(), 1);
    let s = store.clone();
    let stored = completes_beside_the_lock(&mut admin, async move {
        let deleted = ["\\Deleted".to_string()];
        s.update_flags(folder, &[uid], FlagOp::Add, &deleted, None)
            .await
    })
    .await;
    assert_eq!(stored.expect("STORE").changed.len(), 1);
    let s = store.clone();
    let expunged =
        completes_beside_the_lock(&mut admin, async move { s.expunge(folder, &[uid]).await }).await;
    assert_eq!(expunged.expect("EXPUNGE"), vec![uid]);
    let s = store.clone();
    let moved = completes_beside_the_lock(&mut admin, async move {
        s.copy_messages(folder, &[moved], archive, true).await
    })
    .await;
    assert_eq!(moved.expect("MOVE").len(), 1);
    let s = store.clone();
    let delivered = completes_beside_the_lock(&mut admin, async move {
        let rcpt = common::local("a@ch-x.mssante.fr", bal_id);
        s.deliver(common::message(b"Subject: d\r\n\r\nbody\r\n", vec![rcpt]))
            .await
    })
    .await;
    assert_eq!(delivered.expect("delivery").delivered_local, 1);

    // Released: the blocker's commit (local already) returns with a warning.
    sqlx::query("SELECT pg_cancel_backend($1)")
        .bind(blocker_pid)
        .execute(&mut admin)
        .await
        .unwrap();
    held.await.unwrap();
}

/// (pid, "type:event", query) of the cluster's client backends other than the caller.
async fn client_waits(admin: &mut sqlx::postgres::PgConnection) -> Vec<(i32, String, String)> {
    use sqlx::Row;
    sqlx::query(
        "SELECT pid, coalesce(wait_event_type, '') || ':' || coalesce(wait_event, ''), query \
         FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .fetch_all(admin)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Polls `pg_stat_activity` until `done` holds (a 60 s bound only turns a hang into a failure).
async fn until(
    admin: &mut sqlx::postgres::PgConnection,
    done: impl Fn(&[(i32, String, String)]) -> bool,
) {
    for _ in 0..6000 {
        if done(&client_waits(admin).await) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("pg_stat_activity never showed the state waited for");
}

/// Runs `work` while the NOTIFY lock is held: it must finish, and no write of the store (a
/// statement starting with `WITH`, or a transaction's `COMMIT`) may be seen waiting for that
/// lock (`Lock:object`). The store's LISTEN connection announcing its node (`SELECT
/// pg_notify…`, not a write) may wait there.
async fn completes_beside_the_lock<T: Send + 'static>(
    admin: &mut sqlx::postgres::PgConnection,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let task = tokio::spawn(work);
    loop {
        if task.is_finished() {
            return task.await.unwrap();
        }
        let waits = client_waits(admin).await;
        let queued = waits.iter().find(|(_, event, query)| {
            event == "Lock:object" && (query.starts_with("WITH") || query == "COMMIT")
        });
        assert!(
            queued.is_none(),
            "a write waits for another transaction's NOTIFY: {queued:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
