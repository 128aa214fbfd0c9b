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

/// A BAL `local@hop.mssante.fr` with 20 messages in its INBOX.
async fn bal_with_messages(server: &Server, local: &str) -> String {
    let address = server.bal(local).await;
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
    address
}

const APPENDED: &str = "Subject: appended\r\n\r\nhello\r\n";

/// The commands counted, by name. Each round expunges message 1, so message 2 is a fresh
/// one in every round.
fn commands(append: &str) -> [(&'static str, &str); 9] {
    [
        ("SELECT", "SELECT INBOX"),
        ("FETCH flags", "FETCH 1:* (UID FLAGS)"),
        ("FETCH body", "FETCH 5 (BODY.PEEK[])"),
        ("STORE", "STORE 2 +FLAGS (\\Seen)"),
        ("APPEND", append),
        ("COPY", "COPY 3 INBOX"),
        ("STORE \\Deleted", "STORE 1 +FLAGS.SILENT (\\Deleted)"),
        ("EXPUNGE", "EXPUNGE"),
        ("NOOP", "NOOP"),
    ]
}

/// The round trips of each of [`commands`] in `client`'s session, in the last of several
/// rounds: the first ones open pool connections and prepare statements; the counts are
/// those of the last, with the statement caches warm as in a long-running server.
async fn counts_per_command(
    client: &mut Client,
    counter: &mssante_testkit::round_trips::RoundTrips,
    with_copy: bool,
) -> Vec<(&'static str, u64)> {
    let append = format!("APPEND INBOX {{{}+}}\r\n{APPENDED}", APPENDED.len());
    let commands: Vec<_> = commands(&append)
        .into_iter()
        .filter(|(name, _)| with_copy || *name != "COPY")
        .collect();
    let mut counts = Vec::new();
    for round in 0..6 {
        counts.clear();
        for (i, (name, command)) in commands.iter().enumerate() {
            let tag = format!("r{round}c{i}");
            counts.push((*name, round_trips_of(client, counter, &tag, command).await));
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_per_imap_command_on_postgres() {
    let (server, counter) = Server::counting_round_trips().await;
    let address = bal_with_messages(&server, "rt").await;
    let mut client = server.login(&address).await;
    let counts = counts_per_command(&mut client, &counter, false).await;
    println!("round trips per command on PostgreSQL: {counts:?}");
    let log = std::env::temp_dir()
        .join(format!("mssante-pg-{}", std::process::id()))
        .join("log");
    let _ = std::fs::copy(&log, "/tmp/pgspeed-rt-imap.log");
    // Counted on 2026-12-06, before (a pool ping at every acquire, a snapshot in a
    // five-round-trip transaction, NOTIFY after the commit) → after: SELECT 12 → 6, FETCH
    // flags 3 → 2, FETCH body 6 → 4, STORE 17 → 9, APPEND 34 → 22, STORE \Deleted 17 → 9,
    // EXPUNGE 17 → 9, NOOP 0. Then (ADR 0043) APPEND 22 → 10 (the message in one
    // statement, the \Recent claim of the session's own report in one) and FETCH body
    // 4 → 2 (the body read with its metadata). The bounds allow one more (which pool
    // connection has the statement prepared already).
    let bounds = [
        ("SELECT", 7),
        ("FETCH flags", 3),
        ("FETCH body", 3),
        ("STORE", 10),
        ("APPEND", 11),
        ("STORE \\Deleted", 10),
        ("EXPUNGE", 10),
        ("NOOP", 0),
    ];
    for ((name, count), (_, bound)) in counts.iter().zip(bounds) {
        assert!(
            *count <= bound,
            "{name}: {count} round trips, at most {bound} expected"
        );
    }
}

/// ADR 0042: a delegate's command costs the holder's round trips plus its audit entry, not
/// more. For a write, the entry is in the write's transaction: PostgreSQL's per-BAL lock
/// and the insert, the chain's head known from the previous append (checked by the insert
/// itself, not read first). A read's trace is queued (ADR 0035) and committed on its own
/// on PostgreSQL. Same commands, same contents, the
/// holder on one BAL and a secretary logged in as another (PLAIN with an authorization id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_command_costs_the_holders_round_trips_plus_its_audit_entry() {
    use base64::Engine as _;
    let (server, counter) = Server::counting_round_trips().await;
    let holder = bal_with_messages(&server, "holder").await;
    let doctor = bal_with_messages(&server, "doctor").await;
    let secretary = server.bal("secretary").await;
    let grantee = mssante_store::Grantee::parse(&secretary).unwrap();
    server
        .store
        .grant_delegation(&mssante_store::NewDelegation {
            bal: &doctor,
            grantee: &grantee,
            rights: mssante_store::NamedRights::parse("secretary")
                .unwrap()
                .rights(),
            folders: &[],
            not_after: None,
            author: "operator",
            client: "",
        })
        .await
        .unwrap();

    let mut owner = server.login(&holder).await;
    let owner_counts = counts_per_command(&mut owner, &counter, true).await;

    let mut delegate = server.connect().await;
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("{doctor}\0{secretary}\0{}", harness::PASSWORD));
    delegate
        .send(&format!("d0 AUTHENTICATE PLAIN {plain}"))
        .await;
    let lines = delegate.lines_until("d0").await;
    assert!(lines.last().unwrap().starts_with("d0 OK"), "{lines:?}");
    let delegate_counts = counts_per_command(&mut delegate, &counter, true).await;
    println!("round trips, holder: {owner_counts:?}\n          delegate: {delegate_counts:?}");

    // The read traces' own commits land in the command's counting window (settled before
    // the next one), so reads that trace are allowed them. As in the test above, one more
    // is allowed: which pool connection has the statement prepared already. (Before ADR
    // 0042 a delegate's SELECT cost the holder's plus 9, a STORE plus 3.)
    let audit_in_write = 2;
    // BEGIN, the lock, the insert, COMMIT, and the pool's ping of the committer's
    // connection (measured: 5).
    let trace_commit = 5;
    let prepared = 1;
    for ((name, owner), (_, delegate)) in owner_counts.iter().zip(&delegate_counts) {
        let allowed = prepared
            + match *name {
                "SELECT" | "FETCH body" => owner + trace_commit,
                "FETCH flags" | "NOOP" => *owner,
                _ => owner + audit_in_write,
            };
        assert!(
            delegate <= &allowed,
            "{name}: the delegate's {delegate} round trips, the holder's {owner}: at most \
             {allowed} expected"
        );
    }
    // The trail holds what the delegate did, chained.
    let verification = server.store.verify_audit(Some(&doctor)).await.unwrap();
    assert_eq!(verification.first_bad, None);
}
