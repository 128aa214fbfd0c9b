//! Restore drill: `mssante backup DEST` while clients keep sending, then `mssante restore`
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

/// The command failed and said `needle` on stderr.
fn assert_refused(out: std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {needle:?} expected");
    assert!(stderr.contains(needle), "{stderr}");
}

#[test]
fn backup_under_load_restores_every_acknowledged_message() {
    let mut server = Server::start(Engine::Sqlite, &[DR]);
    let large: Vec<Vec<u8>> = (1..=2).map(|n| send_large(&server, n)).collect();

    let ack_file = server.db.data_path().join("acked.txt");
    let inflight_file = server.db.data_path().join("inflight.txt");
    let mut client =
        spawn_durability_client(&server, SENDER, DR, 1_000_000, &ack_file, &inflight_file);
    wait_for_acks(&ack_file, 200, &server);

    let backup_dir = tempfile::tempdir().unwrap();
    let dest = backup_dir.path().join("backup");
    let acked_before = acked_numbers(&ack_file);
    let started = Instant::now();
    let out = server.cli_ok(&["backup", dest.to_str().unwrap()]);
    let backup_secs = started.elapsed().as_secs_f64();
    let acked_at_end = acked_numbers(&ack_file).len();
    // Mail keeps flowing after the backup: the server was not stopped or blocked by it.
    wait_for_acks(&ack_file, acked_at_end + 50, &server);
    assert!(
        client.try_wait().unwrap().is_none(),
        "the sending client stopped during the backup"
    );
    client.kill().unwrap();
    client.wait().unwrap();
    println!(
        "backup of {} acked messages in {backup_secs:.2} s ({} more acked meanwhile): {out}",
        acked_before.len(),
        acked_at_end - acked_before.len()
    );
    assert!(out.starts_with("backup "), "{out}");
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

    // The restored instance serves: the server starts on it and logs in the BAL.
    restored.spawn();
    let count = restored.message_count();
    assert_eq!(count as usize, stored.len());
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
