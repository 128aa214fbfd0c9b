//! Round trips to PostgreSQL per IMAP command (issue 11: CPU per operation 2.7× SQLite's on
//! PostgreSQL). Counted through a proxy (`mssante_testkit::round_trips`), not timed: each
//! round trip is a wait for the database and a wake-up of the server and of a backend.
//! The bounds are today's counts: a change that adds round trips to a command fails here.

mod harness;

use harness::{Client, Server};
use mssante_store::MessageMeta;

/// Long enough for the pool's pings at release to be done on a loaded machine.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// Round trips of `command` (one tagged command, answered OK), the session otherwise quiet.
async fn round_trips_of(
    client: &mut Client,
    counter: &mssante_testkit::round_trips::RoundTrips,
    tag: &str,
    command: &str,
) -> u64 {
    let before = counter.count();
    client.send(&format!("{tag} {command}")).await;
    let lines = client.lines_until(tag).await;
    let done = lines.last().unwrap();
    assert!(
        done.starts_with(&format!("{tag} OK")),
        "{command}: {lines:?}"
    );
    // sqlx pings a connection as it goes back to the pool, after the reply: counted with
    // the command that used it, not the next one.
    tokio::time::sleep(SETTLE).await;
    counter.count() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_per_imap_command_on_postgres() {
    let (server, counter) = Server::counting_round_trips().await;
    let address = server.bal("rt").await;
    let bal = server.store.find_bal(&address).await.unwrap().unwrap();
    let inbox = server.store.folder(bal.id, "INBOX").await.unwrap().unwrap();
    for i in 0..20 {
        let raw = format!("Subject: m{i}\r\n\r\nbody {i}\r\n").into_bytes();
        server
            .store
            .append(inbox.id, raw, &[], 0, MessageMeta::default())
            .await
            .unwrap();
    }
    let mut client = server.login(&address).await;
    let message = "Subject: appended\r\n\r\nhello\r\n";
    let append = format!("APPEND INBOX {{{}+}}\r\n{message}", message.len());
    // Each round expunges message 1, so message 2 is a fresh one in every round.
    let commands: [(&str, &str); 9] = [
        ("SELECT", "SELECT INBOX"),
        ("FETCH flags", "FETCH 1:* (UID FLAGS)"),
        ("FETCH body", "FETCH 5 (BODY.PEEK[])"),
        ("STORE", "STORE 2 +FLAGS (\\Seen)"),
        ("APPEND", &append),
        ("COPY", "COPY 3 INBOX"),
        ("STORE \\Deleted", "STORE 1 +FLAGS.SILENT (\\Deleted)"),
        ("EXPUNGE", "EXPUNGE"),
        ("NOOP", "NOOP"),
    ];
    // Several rounds: the first ones open pool connections and prepare statements. The count
    // of a command is its fewest over the last three rounds, with the statement caches warm
    // as in a long-running server: which pooled connection a command gets (one that has not
    // prepared the statement yet, or one idle long enough to be pinged at acquire) adds a
    // round trip now and then on a loaded machine, while a change that adds round trips to a
    // command adds them in every round.
    let mut fewest: Vec<(&str, u64)> = commands.iter().map(|(name, _)| (*name, u64::MAX)).collect();
    for round in 0..6 {
        for (i, (_, command)) in commands.iter().enumerate() {
            let tag = format!("r{round}c{i}");
            let count = round_trips_of(&mut client, &counter, &tag, command).await;
            if round >= 3 {
                fewest[i].1 = fewest[i].1.min(count);
            }
        }
    }
    let counts = fewest;
    println!("round trips per command on PostgreSQL: {counts:?}");
    // Counted on 2026-12-06, before (a pool ping at every acquire, a snapshot in a
    // five-round-trip transaction, NOTIFY after the commit) → after: SELECT 12 → 6, FETCH
    // flags 3 → 2, FETCH body 6 → 4, STORE 17 → 9, APPEND 34 → 22, STORE \Deleted 17 → 9,
    // EXPUNGE 17 → 9, NOOP 0. Then (ADR 0043) APPEND 22 → 10 (the message in one
    // statement, the \Recent claim of the session's own report in one) and FETCH body
    // 4 → 2 (the body read with its metadata). Then (ADR 0046) STORE 9 → 5 (a read and
    // one checked statement on one connection), APPEND 10 → 8 (the quota checked in its
    // statement), EXPUNGE 9 → 4 (one statement); COPY of one message into the selected
    // folder counted from then on: 8 (its write is one statement; the rest is the target's
    // lookup and the session's report of the new message, as for APPEND). Then (ADR 0050)
    // APPEND 8 → 6 and COPY 8 → 6: into the selected mailbox, the \Recent claim is made by
    // the write, not by a statement (and a commit) of its own; what is left is the target's
    // lookup, the write and the read of the changes, each followed by the pool's ping. The
    // bounds allow one more (which pool connection has the statement prepared already).
    let bounds = [
        ("SELECT", 7),
        ("FETCH flags", 3),
        ("FETCH body", 3),
        ("STORE", 6),
        ("APPEND", 7),
        ("COPY", 7),
        ("STORE \\Deleted", 6),
        ("EXPUNGE", 5),
        ("NOOP", 0),
    ];
    for ((name, count), (_, bound)) in counts.iter().zip(bounds) {
        assert!(
            *count <= bound,
            "{name}: {count} round trips, at most {bound} expected"
        );
    }
}
