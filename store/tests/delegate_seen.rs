//! Per-user `\Seen` of delegates (ADR 0034), on SQLite and on a real PostgreSQL: a
//! delegate's `\Seen` is theirs and the holder's stays shared; other flags are shared; the
//! modseq a delegate sees moves with their own changes while the holder's messages do not;
//! the rows follow COPY and MOVE and die with EXPUNGE and the folder.

use mssante_store::*;
use mssante_testkit::engine_tests;

mod common;
use common::{bal_with_inbox, flags_of, open};

const SEC: &str = "sec.dupont@ch-x.mssante.fr";
const OTHER: &str = "sec.durand@ch-x.mssante.fr";

async fn append(store: &Store, folder: i64) -> u32 {
    let raw = b"Subject: t\r\n\r\nbody\r\n".to_vec();
    store
        .append(folder, raw, &[], 0, MessageMeta::default())
        .await
        .unwrap()
        .1
}

fn seen() -> Vec<String> {
    vec!["\\Seen".to_string()]
}

async fn unseen(store: &Store, folder: i64, delegate: Option<&str>) -> u32 {
    store
        .folder_status_as(folder, delegate)
        .await
        .unwrap()
        .unseen
}

/// A BAL with its INBOX and an `Archives` folder to copy into.
async fn inbox_and_archives(store: &Store) -> (i64, Folder, Folder) {
    let (bal_id, inbox) = bal_with_inbox(store).await;
    store.create_folder(bal_id, "Archives", None).await.unwrap();
    let archives = store.folder(bal_id, "Archives").await.unwrap().unwrap();
    (bal_id, inbox, archives)
}

engine_tests!(
    a_delegates_seen_is_their_own_and_the_holders_stays_shared,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (_, inbox) = bal_with_inbox(&store).await;
        let (a, b) = (
            append(&store, inbox.id).await,
            append(&store, inbox.id).await,
        );

        // The secretary reads A: her \Seen only.
        let update = store
            .update_flags_as(inbox.id, &[a], (FlagOp::Add, &seen()), None, Some(SEC))
            .await
            .unwrap();
        assert_eq!(update.changed.len(), 1);
        assert_eq!(update.changed[0].flags, seen());
        assert_eq!(flags_of(&store, inbox.id, a, Some(SEC)).await, seen());
        assert!(flags_of(&store, inbox.id, a, None).await.is_empty());
        assert!(flags_of(&store, inbox.id, a, Some(OTHER)).await.is_empty());

        // The doctor reads B: shared, not the secretary's.
        store
            .update_flags(inbox.id, &[b], FlagOp::Add, &seen(), None)
            .await
            .unwrap();
        assert_eq!(flags_of(&store, inbox.id, b, None).await, seen());
        assert!(flags_of(&store, inbox.id, b, Some(SEC)).await.is_empty());

        assert_eq!(unseen(&store, inbox.id, None).await, 1, "doctor: A unseen");
        assert_eq!(unseen(&store, inbox.id, Some(SEC)).await, 1, "secretary: B");
        assert_eq!(unseen(&store, inbox.id, Some(OTHER)).await, 2);

        // Other flags stay shared; a delegate's FLAGS replace keeps the doctor's \Seen.
        let flagged = vec!["\\Flagged".to_string()];
        store
            .update_flags_as(inbox.id, &[b], (FlagOp::Replace, &flagged), None, Some(SEC))
            .await
            .unwrap();
        assert_eq!(
            flags_of(&store, inbox.id, b, None).await,
            vec!["\\Flagged", "\\Seen"]
        );
        assert_eq!(flags_of(&store, inbox.id, b, Some(SEC)).await, flagged);

        // The secretary clears her \Seen on A: unseen for her again, the doctor unchanged.
        store
            .update_flags_as(inbox.id, &[a], (FlagOp::Remove, &seen()), None, Some(SEC))
            .await
            .unwrap();
        assert!(flags_of(&store, inbox.id, a, Some(SEC)).await.is_empty());
        assert_eq!(unseen(&store, inbox.id, Some(SEC)).await, 2);
        assert_eq!(unseen(&store, inbox.id, None).await, 1);
    }
);

engine_tests!(
    a_delegates_seen_moves_their_modseq_not_the_holders_messages,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (_, inbox) = bal_with_inbox(&store).await;
        let a = append(&store, inbox.id).await;
        let before = store.folder_snapshot(inbox.id).await.unwrap().highestmodseq;

        store
            .update_flags_as(inbox.id, &[a], (FlagOp::Add, &seen()), None, Some(SEC))
            .await
            .unwrap();
        // The secretary's sessions see A changed (RFC 7162 CHANGEDSINCE) ...
        let hers = store
            .snapshot_as(inbox.id, Some(before), Some(SEC))
            .await
            .unwrap();
        assert_eq!(hers.messages.len(), 1, "{hers:?}");
        assert!(hers.messages[0].modseq > before);
        assert_eq!(hers.messages[0].flags, seen());
        // ... the doctor's see HIGHESTMODSEQ move and no message change.
        let his = store.changes_since(inbox.id, before).await.unwrap();
        assert!(his.messages.is_empty(), "{his:?}");
        assert!(his.highestmodseq > before);
        // Another delegate sees nothing either.
        let other = store
            .snapshot_as(inbox.id, Some(before), Some(OTHER))
            .await
            .unwrap();
        assert!(other.messages.is_empty(), "{other:?}");

        // UNCHANGEDSINCE compares the modseq the delegate sees.
        let stale = store
            .update_flags_as(
                inbox.id,
                &[a],
                (FlagOp::Remove, &seen()),
                Some(before),
                Some(SEC),
            )
            .await
            .unwrap();
        assert_eq!(stale.conflicts, vec![a]);
        // The doctor's STORE still reaches the secretary's view (shared flags).
        let mark = store.folder_snapshot(inbox.id).await.unwrap().highestmodseq;
        store
            .update_flags(inbox.id, &[a], FlagOp::Add, &["\\Answered".into()], None)
            .await
            .unwrap();
        let hers = store
            .snapshot_as(inbox.id, Some(mark), Some(SEC))
            .await
            .unwrap();
        assert_eq!(hers.messages.len(), 1);
        let mut flags = hers.messages[0].flags.clone();
        flags.sort();
        assert_eq!(flags, vec!["\\Answered", "\\Seen"]);
    }
);

engine_tests!(
    a_delegates_seen_follows_copies_and_dies_with_the_message,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (bal_id, inbox, archives) = inbox_and_archives(&store).await;
        let (a, b) = (
            append(&store, inbox.id).await,
            append(&store, inbox.id).await,
        );
        store
            .update_flags_as(inbox.id, &[a, b], (FlagOp::Add, &seen()), None, Some(SEC))
            .await
            .unwrap();

        // MOVE: the copy keeps her \Seen, the source rows go with the source.
        let moved = store
            .copy_messages(inbox.id, &[a], archives.id, true)
            .await
            .unwrap();
        let new_uid = moved[0].1;
        assert_eq!(
            flags_of(&store, archives.id, new_uid, Some(SEC)).await,
            seen()
        );
        assert!(
            flags_of(&store, archives.id, new_uid, None)
                .await
                .is_empty()
        );
        assert_eq!(unseen(&store, inbox.id, Some(SEC)).await, 0);

        // EXPUNGE and the folder's deletion take the rows along (the cascade: without it
        // both would fail on the rows' foreign key).
        assert_eq!(store.expunge(inbox.id, &[b]).await.unwrap(), vec![b]);
        let c = append(&store, inbox.id).await;
        assert_eq!(unseen(&store, inbox.id, Some(SEC)).await, 1);
        assert!(flags_of(&store, inbox.id, c, Some(SEC)).await.is_empty());
        store.delete_folder(bal_id, "Archives").await.unwrap();
        assert!(store.folder(bal_id, "Archives").await.unwrap().is_none());
    }
);

engine_tests!(
    a_copy_of_several_messages_carries_each_readers_seen_to_its_own_copy,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let (_, inbox, archives) = inbox_and_archives(&store).await;
        let mut uids = Vec::new();
        for _ in 0..4 {
            uids.push(append(&store, inbox.id).await);
        }
        // She has read the first and the third, the other delegate the second; nobody the
        // fourth (no rows for it).
        for (reader, read) in [(SEC, vec![uids[0], uids[2]]), (OTHER, vec![uids[1]])] {
            store
                .update_flags_as(inbox.id, &read, (FlagOp::Add, &seen()), None, Some(reader))
                .await
                .unwrap();
        }

        // One COPY of the four (one statement for the rows that follow them).
        let copied = store
            .copy_messages(inbox.id, &uids, archives.id, false)
            .await
            .unwrap();
        assert_eq!(copied.len(), 4);
        let mut seen_by = Vec::new();
        for &(source, copy) in &copied {
            let mine = flags_of(&store, archives.id, copy, Some(SEC)).await == seen();
            let theirs = flags_of(&store, archives.id, copy, Some(OTHER)).await == seen();
            let holders = flags_of(&store, archives.id, copy, None).await.is_empty();
            assert!(holders, "the holder's \\Seen is not the delegates'");
            seen_by.push((source, mine, theirs));
        }
        assert_eq!(
            seen_by,
            vec![
                (uids[0], true, false),
                (uids[1], false, true),
                (uids[2], true, false),
                (uids[3], false, false),
            ]
        );
        // The sources keep theirs: a COPY moves nothing.
        assert_eq!(unseen(&store, inbox.id, Some(SEC)).await, 2);
        assert_eq!(unseen(&store, inbox.id, Some(OTHER)).await, 3);
    }
);
