//! Issue 11: what an IMAP session learns of a folder comes from one snapshot, so that a
//! session following the changes never sees a message both changed and expunged, nor a
//! new message below a UID it already knows. A writer appends, flags and expunges while a
//! reader follows the folder as a session does; on SQLite and on a real PostgreSQL. There
//! are several writers, so that on SQLite their writes share commits (ADR 0031) and the
//! reader sees groups of them land at once.

use std::collections::BTreeMap;

use mssante_store::*;
use mssante_testkit::engine_tests;

mod common;
use common::{bal_with_inbox, open};

/// Cycles of append, flag, expunge by each writer: enough for the reader to fall between
/// two of its statements many times if they saw the folder at different moments.
const CYCLES: u32 = 100;

/// Writers running at once, like the sessions of several clients on one BAL.
const WRITERS: u32 = 3;

/// Appends, flags and expunges one message per cycle, keeping one message in two.
async fn write(store: Store, folder: i64) {
    for i in 0..CYCLES {
        let raw = format!("Subject: {i}\r\n\r\n{i}\r\n").into_bytes();
        let (_, uid) = store
            .append(folder, raw, &[], 0, MessageMeta::default())
            .await
            .unwrap();
        store
            .update_flags(folder, &[uid], FlagOp::Add, &["$seen".into()], None)
            .await
            .unwrap();
        if i % 2 == 0 {
            store.expunge(folder, &[uid]).await.unwrap();
        }
    }
}

/// A session's view: UID → modseq, brought up to date from the changes after its modseq.
struct Follower {
    messages: BTreeMap<u32, u64>,
    known_modseq: u64,
}

impl Follower {
    fn apply(&mut self, s: &FolderSnapshot) {
        let largest = self.messages.keys().next_back().copied().unwrap_or(0);
        for m in &s.messages {
            assert!(
                s.vanished.binary_search(&m.uid).is_err(),
                "UID {} both changed and expunged in one report: {s:?}",
                m.uid
            );
            assert!(
                m.modseq <= s.highestmodseq,
                "UID {} changed at {} after the report's HIGHESTMODSEQ {}",
                m.uid,
                m.modseq,
                s.highestmodseq
            );
            if !self.messages.contains_key(&m.uid) {
                assert!(
                    m.uid > largest,
                    "new UID {} below UID {largest} already known",
                    m.uid
                );
            }
        }
        for uid in &s.vanished {
            self.messages.remove(uid);
        }
        for m in &s.messages {
            self.messages.insert(m.uid, m.modseq);
        }
        assert!(
            s.highestmodseq >= self.known_modseq,
            "HIGHESTMODSEQ went back"
        );
        self.known_modseq = s.highestmodseq;
    }
}

engine_tests!(
    a_session_following_changes_sees_one_folder,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (_, inbox) = bal_with_inbox(&store).await;
        let folder = inbox.id;
        let first = store.folder_snapshot(folder).await.unwrap();
        let mut follower = Follower {
            messages: BTreeMap::new(),
            known_modseq: 0,
        };
        follower.apply(&first);
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| tokio::spawn(write(store.clone(), folder)))
            .collect();
        let mut reports = 0;
        while !writers.iter().all(|w| w.is_finished()) {
            let s = store
                .changes_since(folder, follower.known_modseq)
                .await
                .unwrap();
            follower.apply(&s);
            reports += 1;
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let last = store
            .changes_since(folder, follower.known_modseq)
            .await
            .unwrap();
        follower.apply(&last);
        let whole = store.folder_snapshot(folder).await.unwrap();
        let stored: BTreeMap<u32, u64> = whole.messages.iter().map(|m| (m.uid, m.modseq)).collect();
        assert_eq!(follower.messages, stored, "after {reports} reports");
        assert_eq!(stored.len() as u32, WRITERS * CYCLES / 2);
        assert!(
            reports > 10,
            "the reader ran beside the writers ({reports})"
        );
        // On SQLite the writers' appends, flag changes and expunges shared commits.
        if let Some(counts) = store.shared_commits() {
            assert!(
                counts.commits < counts.writes,
                "no write shared a commit: {counts:?}"
            );
        }
    }
);
