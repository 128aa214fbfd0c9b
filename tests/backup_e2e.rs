//! Restore drill: `mssante backup DEST` while clients keep sending (a tracked client writing
//! each acknowledged number, and postfix's `smtp-source` for volume: issue 17 asks for a
//! backup under 500 msg/s; the rate reached is printed, not asserted, as it depends on the
//! machine), then `mssante restore`
//! into a new data dir. Every message acknowledged before the backup started is in the
//! restored instance byte for byte (small ones inline in the database, large ones as blob
//! files), the database passes SQLite's integrity check, and the server starts on it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const SENDER: &str = "lab@labo.mssante.fr";

fn message_id(stored: &[u8]) -> String {
    let text = String::from_utf8_lossy(stored);
    let rest = text.split("Message-ID: <").nth(1).expect("a Message-ID");
    rest.split('>').next().unwrap().to_string()
}

/// Sends one message larger than INLINE_BLOB_MAX (stored as a blob file) to the MX.
fn send_large(server: &Server, n: u32) -> Vec<u8> {
    let line = format!("large message {n}, a line of an imaging report................\r\n");
    let body = line.repeat(300 * 1024 / line.len() + 1);
    let message = format!(
        "From: <{SENDER}>\r\nTo: <{DR}>\r\nSubject: large {n}\r\nMessage-ID: <large{n}@client.test>\r\n\r\n{body}"
    );
    let status = Command::new("python3")
        .args([
            "-c",
            "import smtplib,sys; s=smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30); \
             s.sendmail(sys.argv[2], [sys.argv[3]], sys.stdin.buffer.read()); s.quit()",
            &server.ports.smtp.to_string(),
            SENDER,
            DR,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(message.as_bytes())?;
            child.wait()
        })
        .expect("python3");
    assert!(status.success(), "large message {n} refused");
    message.into_bytes()
}

fn wait_for_acks(ack_file: &Path, at_least: usize, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while acked_numbers(ack_file).len() < at_least {
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} acks: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parallel SMTP connections of the load: each waits for its 250 before the next message
/// (what a peer MTA does), so the offered rate is what the server answers, up to what the
/// Python client can send.
const LOAD_CONNECTIONS: usize = 4;

/// Sessions of postfix's `smtp-source` adding untracked load (to LOAD_BAL), next to the
/// tracked client: it is C and keeps no per-message record, so it offers more than Python.
const SMTP_SOURCE_SESSIONS: usize = 16;
const LOAD_BAL: &str = "dr.charge@ch-test.mssante.fr";

fn spawn_smtp_source(server: &Server, sessions: usize) -> std::process::Child {
    Command::new("smtp-source")
        .args([
            "-s",
            &sessions.to_string(),
            "-m",
            "10000000",
            "-l",
            "4000",
            "-d",
            "-A",
        ])
        .args(["-f", SENDER, "-t", LOAD_BAL, "-M", "peer-load.test"])
        .arg(format!("127.0.0.1:{}", server.ports.smtp))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-source (postfix)")
}

/// Messages in the database.
fn stored_count(server: &Server) -> i64 {
    server
        .sql("SELECT COUNT(*) FROM messages")
        .trim()
        .parse()
        .unwrap()
}

/// (tracked messages acknowledged, all messages stored) per second over `window`.
fn load_rates(server: &Server, ack_file: &Path, window: Duration) -> (f64, f64) {
    let (acked, stored) = (acked_numbers(ack_file).len(), stored_count(server));
    let t0 = Instant::now();
    std::thread::sleep(window);
    let secs = t0.elapsed().as_secs_f64();
    (
        (acked_numbers(ack_file).len() - acked) as f64 / secs,
        (stored_count(server) - stored) as f64 / secs,
    )
}

/// The command failed and said `needle` on stderr.
fn assert_refused(out: std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {needle:?} expected");
    assert!(stderr.contains(needle), "{stderr}");
}

#[test]
fn backup_under_load_restores_every_acknowledged_message() {
    let mut server = Server::start(Engine::Sqlite, &[DR, LOAD_BAL]);
    let large: Vec<Vec<u8>> = (1..=2).map(|n| send_large(&server, n)).collect();

    let ack_file = server.db.data_path().join("acked.txt");
    let inflight_file = server.db.data_path().join("inflight.txt");
    let connections: usize = std::env::var("BACKUP_LOAD_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LOAD_CONNECTIONS);
    let mut client = spawn_durability_client(
        &server,
        (SENDER, DR),
        1_000_000,
        connections,
        &ack_file,
        &inflight_file,
    );
    let mut extra_load = spawn_smtp_source(&server, SMTP_SOURCE_SESSIONS);
    wait_for_acks(&ack_file, 200, &server);
    let (tracked_rate, total_rate) = load_rates(&server, &ack_file, Duration::from_secs(3));

    let backup_dir = tempfile::tempdir().unwrap();
    let dest = backup_dir.path().join("backup");
    let acked_before = acked_numbers(&ack_file);
    let stored_before = stored_count(&server);
    let started = Instant::now();
    let out = server.cli_ok(&["backup", dest.to_str().unwrap()]);
    let backup_secs = started.elapsed().as_secs_f64();
    let stored_during = stored_count(&server) - stored_before;
    let acked_at_end = acked_numbers(&ack_file).len();
    // Mail keeps flowing after the backup: the server was not stopped or blocked by it.
    wait_for_acks(&ack_file, acked_at_end + 50, &server);
    assert!(
        client.try_wait().unwrap().is_none(),
        "the sending client stopped during the backup"
    );
    let extra_running = extra_load.try_wait().unwrap().is_none();
    for child in [&mut client, &mut extra_load] {
        let _ = child.kill();
        child.wait().unwrap();
    }
    let during = acked_at_end - acked_before.len();
    println!(
        "load: {connections} tracked connections + smtp-source x{SMTP_SOURCE_SESSIONS} \
         (running to the end: {extra_running}); before the backup {total_rate:.0} msg/s \
         stored ({tracked_rate:.0} msg/s of them tracked); during the backup {:.0} msg/s \
         stored ({:.0} tracked); backup of {} tracked acked messages in {backup_secs:.2} s: {out}",
        stored_during as f64 / backup_secs,
        during as f64 / backup_secs,
        acked_before.len(),
    );
    assert!(out.starts_with("backup "), "{out}");
    let backup_out = out;
    assert!(dest.join("BACKUP").is_file(), "no manifest written");
    server.terminate();

    // A second backup into the same folder is refused: it is not empty.
    assert_refused(server.cli(&["backup", dest.to_str().unwrap()]), "not empty");

    let mut restored = Server::configure_uninitialised(Engine::Sqlite, "");
    let out = restored.cli_ok(&["restore", dest.to_str().unwrap()]);
    assert!(out.starts_with("restored "), "{out}");

    let stored = restored.messages(DR, "INBOX");
    let mut stored_ids = BTreeSet::new();
    for bytes in &stored {
        assert!(
            stored_ids.insert(message_id(bytes)),
            "a message restored twice"
        );
    }
    let lost: Vec<_> = acked_before
        .iter()
        .filter(|n| !stored_ids.contains(&format!("m{n}@client.test")))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged before the backup, not restored: {lost:?}"
    );
    for (n, original) in large.iter().enumerate() {
        let id = format!("large{}@client.test", n + 1);
        let copy = stored
            .iter()
            .find(|m| message_id(m) == id)
            .unwrap_or_else(|| panic!("{id} (a blob file) not restored"));
        assert_eq!(
            strip_trace_header(copy),
            original.as_slice(),
            "{id} differs"
        );
    }
    block_on(async {
        let store = mssante_store::Store::open(&restored.db.url, restored.db.data_path())
            .await
            .unwrap();
        assert_eq!(
            store.integrity_problems().await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            store.missing_blob_files().await.unwrap(),
            Vec::<String>::new()
        );
        store.close().await;
    });

    // The restored instance serves: the server starts on it, with every message of the
    // snapshot ("database snapshot (N messages)").
    let snapshot: i64 = backup_out
        .split("database snapshot (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no message count in {backup_out}"));
    restored.spawn();
    assert_eq!(restored.message_count(), snapshot);
    restored.terminate();

    // Restoring over an instance is refused; so is a backup without its manifest.
    assert_refused(
        restored.cli(&["restore", dest.to_str().unwrap()]),
        "already holds an instance",
    );
    std::fs::remove_file(dest.join("BACKUP")).unwrap();
    let fresh = Server::configure_uninitialised(Engine::Sqlite, "");
    assert_refused(
        fresh.cli(&["restore", dest.to_str().unwrap()]),
        "not a complete mssante backup",
    );
}

#[test]
fn backup_on_postgres_points_to_pg_dump() {
    let mut server = Server::start(Engine::Postgres, &[DR]);
    server.terminate();
    let dest = tempfile::tempdir().unwrap();
    let out = server.cli(&["backup", dest.path().join("b").to_str().unwrap()]);
    assert_refused(out, "pg_dump");
}
