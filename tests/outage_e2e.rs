//! Storage faults under load (docs/cluster.md §3): PostgreSQL stopped while MTAs send,
//! and a SQLite data dir whose file system fills up. SMTP answers 4xx and never 250 while
//! nothing can be stored, IMAP answers `NO [UNAVAILABLE]`, the server recovers by itself,
//! and every acknowledged message is there once.
//!
//! The outage lasts `MSSANTE_OUTAGE_SECS` seconds (10 by default; the 60 s run is recorded
//! in docs/cluster.md).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use common::faults::*;
use common::*;
use mssante_testkit::PgCluster;

const DR: &str = "dr.martin@ch-test.mssante.fr";

fn outage_secs() -> f64 {
    std::env::var("MSSANTE_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0)
}

#[test]
fn a_postgres_outage_answers_4xx_and_the_server_recovers_without_loss() {
    let cluster = PgCluster::start_private();
    let mut server = Server::configure_db(TestDb::in_cluster(&cluster), "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(DR, "10000000001");
    server.spawn();
    let dir = tempfile::tempdir().unwrap();
    let (events, stop) = (dir.path().join("smtp.jsonl"), dir.path().join("stop"));
    let mut load = spawn_smtp_load(&[server.ports.smtp], &[DR], 4, 2000, &events, &stop, &[]);
    wait_for(
        "50 acks before the outage",
        Duration::from_secs(120),
        || acked(&read_events(&events)).len() >= 50,
    );
    let mut probe = std::process::Command::new("python3")
        .arg(clients_dir().join("load_client.py"))
        .args(["imap-probe", "--ports", &server.ports.imap.to_string()])
        .args(["--user", DR, "--password", PASSWORD, "--timeout", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut probe_in = probe.stdin.take().unwrap();
    let mut probe_out = BufReader::new(probe.stdout.take().unwrap());
    let mut line = String::new();
    probe_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY");

    let down_at = epoch();
    cluster.stop();
    std::thread::sleep(Duration::from_secs(1));
    let during = probe_check(&mut probe_in, &mut probe_out);
    let left = outage_secs() - (epoch() - down_at);
    std::thread::sleep(Duration::from_secs_f64(left.max(0.0)));
    cluster.start_again();
    let up_at = epoch();
    eprintln!("PostgreSQL down for {:.1} s", up_at - down_at);
    let after_up = |events: &[Event]| {
        events
            .iter()
            .filter(|e| e["code"] == 250 && e["t"].as_f64().unwrap() > up_at)
            .count()
    };
    wait_for("50 acks after the outage", Duration::from_secs(120), || {
        after_up(&read_events(&events)) >= 50
    });
    let after = probe_check(&mut probe_in, &mut probe_out);
    drop(probe_in);
    std::fs::write(&stop, b"").unwrap();
    assert!(load.wait().unwrap().success());
    let _ = probe.wait();

    let events = read_events(&events);
    // While the database was down (with a second of margin at each end for answers in
    // flight), nothing was acknowledged and the server did answer, with 4xx.
    let in_outage: Vec<&Event> = events
        .iter()
        .filter(|e| {
            let t = e["t"].as_f64().unwrap();
            t > down_at + 1.0 && t < up_at
        })
        .collect();
    let acked_in_outage: Vec<_> = in_outage.iter().filter(|e| e["code"] == 250).collect();
    assert!(
        acked_in_outage.is_empty(),
        "250 while PostgreSQL was down: {acked_in_outage:?}"
    );
    let codes: std::collections::BTreeSet<i64> = in_outage
        .iter()
        .filter_map(|e| e["code"].as_i64())
        .collect();
    assert!(
        codes.iter().any(|c| (400..500).contains(c)),
        "no 4xx answer during the outage: {in_outage:?}"
    );
    assert!(
        codes.iter().all(|c| (400..500).contains(c)),
        "during the outage only 4xx answers (no 5xx, no dropped connection): {codes:?}"
    );
    assert!(
        during["select"].as_str().unwrap().contains("[UNAVAILABLE]"),
        "{during}"
    );
    assert!(
        during["login"].as_str().unwrap().contains("[UNAVAILABLE]"),
        "{during}"
    );
    assert!(
        after["select"].as_str().unwrap().starts_with("OK"),
        "{after}"
    );
    assert_eq!(after["login"], "OK", "{after}");

    let stored = stored_numbers(&server, DR);
    let acked = acked(&events);
    let duplicates = check_exactly_once(&stored, &acked, &retried_after_data(&events), "outage");
    eprintln!(
        "outage: {} acknowledged, {} stored, {} answers during the outage ({codes:?}), \
         {} duplicates after a lost answer",
        acked.len(),
        stored.len(),
        in_outage.len(),
        duplicates.len()
    );
    server.terminate();
}

/// Asks the IMAP probe to SELECT and LOGIN now; its answers.
fn probe_check(
    input: &mut std::process::ChildStdin,
    output: &mut BufReader<std::process::ChildStdout>,
) -> serde_json::Value {
    input.write_all(b"check\n").unwrap();
    input.flush().unwrap();
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// A tmpfs of a fixed size mounted for one test (root only: tests run as root, as
/// scripts/test does), lazily unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount (util-linux)");
        assert!(
            out.status.success(),
            "the disk-full test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallFs { dir }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// SQLite on a file system that fills up (a 24 MB tmpfs, with a filler file): 452 4.3.1
/// once nothing more fits, no corruption, and mail flows again as soon as space is freed.
#[test]
fn a_full_disk_answers_452_keeps_what_was_acknowledged_and_recovers() {
    let fs = SmallFs::mount("24m");
    let data_dir = tempfile::tempdir_in(fs.dir.path()).unwrap();
    let db = TestDb {
        url: format!("sqlite://{}/mssante.db", data_dir.path().display()),
        data_dir,
    };
    let mut server = Server::configure_db(db, "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(DR, "10000000001");
    // The log elsewhere: on the full file system it would be cut.
    let dir = tempfile::tempdir().unwrap();
    server.log_path = dir.path().join("server.log");
    server.spawn();
    let filler = fs.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 6 << 20]).unwrap();
    let (events, stop) = (dir.path().join("smtp.jsonl"), dir.path().join("stop"));
    // 100 kB messages: inline in the database (ADR 0009), so the WAL is what fills up.
    let mut load = spawn_smtp_load(&[server.ports.smtp], &[DR], 2, 100_000, &events, &stop, &[]);
    let full = |e: &Event| e["code"].as_i64().is_some_and(|c| c != 250);
    wait_for("the disk to fill", Duration::from_secs(240), || {
        read_events(&events).iter().any(full)
    });
    std::thread::sleep(Duration::from_secs(2));
    let when_full = read_events(&events);
    let acked_when_full = acked(&when_full).len();
    std::fs::remove_file(&filler).unwrap();
    let freed_at = epoch();
    wait_for("mail to flow again", Duration::from_secs(60), || {
        read_events(&events)
            .iter()
            .any(|e| e["code"] == 250 && e["t"].as_f64().unwrap() > freed_at)
    });
    std::fs::write(&stop, b"").unwrap();
    assert!(load.wait().unwrap().success());
    server.terminate();

    let events = read_events(&events);
    let refusals: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| full(e))
        .map(|e| format!("{} at {}", e["code"], e["phase"]))
        .collect();
    assert_eq!(
        refusals,
        ["452 at \"data\"".to_string()].into(),
        "a full disk is told as 452 at DATA, nothing else: {:?}\n--- server log ---\n{}",
        events
            .iter()
            .filter(|e| full(e) && e["code"] != 452)
            .take(5)
            .collect::<Vec<_>>(),
        server
            .log()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stored = stored_numbers(&server, DR);
    let acked = acked(&events);
    check_exactly_once(&stored, &acked, &retried_after_data(&events), "disk full");
    let problems = block_on(async {
        let store = mssante_store::Store::open(&server.db.url, server.db.data_path())
            .await
            .unwrap();
        let problems = store.integrity_problems().await.unwrap();
        store.close().await;
        problems
    });
    assert!(problems.is_empty(), "SQLite integrity: {problems:?}");
    eprintln!(
        "disk full: {acked_when_full} acknowledged when the disk filled, {} in all, {} stored, \
         {} answers 452",
        acked.len(),
        stored.len(),
        events.iter().filter(|e| e["code"] == 452).count()
    );
    drop(server);
    drop(fs);
}
