//! The audit entries of one group commit inserted together at its end (ADR 0044), on SQLite
//! and on a real PostgreSQL (where each write appends its own: the same outcome is due):
//! entries of many sessions on several BALs, writes and read traces mixed, chain per BAL in
//! the order they were queued, commit with their writes, and a head remembered stale (another
//! store appended) never forks a chain.

use mssante_store::*;
use mssante_testkit::engine_tests;

mod common;
use common::{bal_with_inbox, open, per};

const SEC: &str = "sec.dupont@ch-x.mssante.fr";

/// `(seq, action, message ids)` of a BAL's trail.
async fn trail(store: &Store, address: &str) -> Vec<(i64, String, String)> {
    store
        .audit_entries(address, &AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.action, e.message_ids))
        .collect()
}

/// The doctor's BAL (`a@`) with its INBOX, and another BAL's id (`b@`).
async fn two_bals(store: &Store) -> (i64, Folder, i64) {
    let (doctor, inbox) = bal_with_inbox(store).await;
    let other = store
        .create_bal(&per("b@ch-x.mssante.fr", "10003456788"))
        .await
        .unwrap()
        .id;
    (doctor, inbox, other)
}

/// Queues `n` read traces on each of `bals`, interleaved, without waiting (one group, or a
/// few), then waits for them all.
async fn queue_interleaved(store: &Store, bals: &[i64], n: usize) {
    let mut traces = Vec::new();
    for i in 0..n {
        for &bal_id in bals {
            let mut e = AuditEvent::new(bal_id, SEC, AuditAction::FetchBody);
            e.message_ids = vec![format!("uid:{i}")];
            traces.push(store.queue_audit(&e));
        }
    }
    for t in traces {
        t.settled().await.unwrap();
    }
}

engine_tests!(
    a_groups_entries_chain_per_bal_in_order_with_their_writes,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (doctor, inbox, other) = two_bals(&store).await;
        queue_interleaved(&store, &[doctor, other], 20).await;
        // Writes of several sessions at once, each with its entry, and reads between them.
        let raw = |i: usize| format!("Subject: {i}\r\n\r\nbody\r\n").into_bytes();
        let appends: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let event = AuditEvent::new(doctor, SEC, AuditAction::Append);
                tokio::spawn(async move {
                    let append = store.append(inbox.id, raw(i), &[], 0, MessageMeta::default());
                    Store::audited(Some(event), append).await
                })
            })
            .collect();
        let traces: Vec<_> = (0..8)
            .map(|_| store.queue_audit(&AuditEvent::new(other, SEC, AuditAction::Select)))
            .collect();
        let mut appended = Vec::new();
        for a in appends {
            appended.push(a.await.unwrap());
        }
        for t in traces {
            t.settled().await.unwrap();
        }
        let uids: Vec<u32> = appended.into_iter().map(|r| r.unwrap().1).collect();

        // Each chain: contiguous, the reads in the order queued, then every append with
        // the UID it stored (the message and its entry committed together).
        let doctors = trail(&store, "a@ch-x.mssante.fr").await;
        let seqs: Vec<i64> = doctors.iter().map(|e| e.0).collect();
        assert_eq!(seqs, (1..=28).collect::<Vec<i64>>());
        let reads: Vec<&str> = doctors[..20].iter().map(|e| e.2.as_str()).collect();
        let want: Vec<String> = (0..20).map(|i| format!("uid:{i}")).collect();
        assert_eq!(reads, want);
        let mut recorded: Vec<String> = doctors[20..]
            .iter()
            .map(|e| {
                assert_eq!(e.1, "append");
                e.2.clone()
            })
            .collect();
        recorded.sort();
        let mut want: Vec<String> = uids.iter().map(|u| format!("uid:{u}")).collect();
        want.sort();
        assert_eq!(recorded, want);
        let others = trail(&store, "b@ch-x.mssante.fr").await;
        assert_eq!(others.len(), 28);
        assert!(others[20..].iter().all(|e| e.1 == "select"));
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (56, None));
    }
);

engine_tests!(
    a_stale_remembered_head_in_a_group_never_forks_a_chain,
    |engine| async move {
        let (store, db) = open(engine).await;
        let (doctor, _, other_bal) = two_bals(&store).await;
        // The store remembers both heads...
        queue_interleaved(&store, &[doctor, other_bal], 2).await;
        // ...then another process appends to one chain behind its back.
        let other = Store::open(&db.url, db.data_path()).await.unwrap();
        other
            .record_audit(&AuditEvent::new(doctor, "operator", AuditAction::Grant))
            .await
            .unwrap();
        // A group with entries on both BALs: the doctor's first one would chain to a
        // stale head; the group is run again write by write, and every entry is kept.
        queue_interleaved(&store, &[doctor, other_bal], 5).await;
        let doctors = trail(&store, "a@ch-x.mssante.fr").await;
        let seqs: Vec<i64> = doctors.iter().map(|e| e.0).collect();
        assert_eq!(seqs, (1..=8).collect::<Vec<i64>>());
        assert_eq!(doctors[2].1, "grant");
        assert_eq!(trail(&store, "b@ch-x.mssante.fr").await.len(), 7);
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (15, None));
        // And the hint follows the real head again: the next entries chain after it.
        queue_interleaved(&store, &[doctor], 1).await;
        let v = store.verify_audit(None).await.unwrap();
        assert_eq!((v.entries, v.first_bad), (16, None));
    }
);

/// The group's insert is padded to a power of two of rows that its WHERE leaves out (ADR
/// 0055): a group of 45 entries on two BALs (padded to 64) and then one of 3 (padded to 4)
/// each commit once, with exactly their entries. Were a padding row inserted, or refused,
/// the count would not match and the group would be run again one write per commit.
#[tokio::test]
async fn a_padded_group_insert_stores_exactly_its_entries_in_one_commit() {
    let (store, _db) = open(mssante_testkit::Engine::Sqlite).await;
    let (doctor, _, other) = two_bals(&store).await;
    for entries in [45, 3] {
        let before = store.shared_commits().expect("SQLite committer");
        // Queued without an await in between: the committer takes them as one group.
        let mut traces = Vec::new();
        for i in 0..entries {
            let bal_id = if i % 2 == 0 { doctor } else { other };
            let mut e = AuditEvent::new(bal_id, SEC, AuditAction::FetchBody);
            e.message_ids = vec![format!("uid:{i}")];
            traces.push(store.queue_audit(&e));
        }
        for t in traces {
            t.settled().await.unwrap();
        }
        let after = store.shared_commits().unwrap();
        assert_eq!(after.writes - before.writes, entries as u64);
        assert_eq!(
            after.commits - before.commits,
            1,
            "{entries} entries in one commit"
        );
    }
    let doctors = trail(&store, "a@ch-x.mssante.fr").await;
    let others = trail(&store, "b@ch-x.mssante.fr").await;
    assert_eq!((doctors.len(), others.len()), (23 + 2, 22 + 1));
    let reads: Vec<&str> = doctors.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(&reads[..3], ["uid:0", "uid:2", "uid:4"]);
    let v = store.verify_audit(None).await.unwrap();
    assert_eq!((v.entries, v.first_bad), (48, None));
}
