//! Several stateless nodes on one PostgreSQL database (ADR 0023), each a real `mssante
//! serve` process with its own data dir and ports: an IDLE session on one node hears of a
//! delivery made on another, large bodies are in the database (any node serves them), and
//! the periodic jobs run on one leader at a time, taken over when it is killed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const SEC: &str = "secretariat@ch-test.mssante.fr";

/// Sends one message to `node`'s MX from `sender` to DR, with `rcpt_options`.
fn send(node: &Server, sender: &str, subject: &str, body: &str, rcpt_options: &[&str]) {
    let message = format!(
        "From: <{sender}>\r\nTo: <{DR}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@cluster.test>\r\n\r\n{body}\r\n"
    );
    let file = node.db.data_path().join(format!("{subject}.eml"));
    std::fs::write(&file, &message).unwrap();
    let mut args = vec!["--sender", sender, "--rcpt", DR, "--message-file"];
    args.push(file.to_str().unwrap());
    for option in rcpt_options {
        args.extend(["--rcpt-option", option]);
    }
    let out = py("mx", node, &args);
    assert_eq!(out["data"][0], 250, "{out}");
}

/// The nodes whose log says they lead now (the last leadership line of each log).
fn leaders(nodes: &[&Server]) -> Vec<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            let log = n.log();
            let took = log.rfind("leader: this node runs the periodic jobs");
            let lost = log.rfind("leader: lost the database lock");
            took.is_some() && took > lost
        })
        .map(|(i, _)| i)
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idle_on_one_node_hears_of_a_delivery_on_another() {
    let a = Server::start(Engine::Postgres, &[DR]);
    let mut b = a.another_node("");
    b.spawn();
    let mut idle = imap_command("idle", &b, DR, &["--timeout", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(idle.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "IDLING");
    let start = Instant::now();
    send(&a, "lab@labo.mssante.fr", "across", "from node A", &[]);
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let elapsed = start.elapsed();
    assert!(idle.wait().unwrap().success());
    let out: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(
        out["untagged"].to_string().contains("* 1 EXISTS"),
        "IDLE on node B: {out}"
    );
    eprintln!("IDLE on node B told of node A's delivery after {elapsed:?} (SMTP included)");
    // LISTEN/NOTIFY, not a poll: well under the 20 s the client waits.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn a_large_body_lives_in_the_database_and_every_node_serves_it() {
    let a = Server::start(Engine::Postgres, &[DR]);
    let mut b = a.another_node("");
    b.spawn();
    let line = "an imaging report line, larger than the inline limit of SQLite.....\r\n";
    let body = line.repeat(mssante_store::INLINE_BLOB_MAX / line.len() + 100);
    send(&a, "lab@labo.mssante.fr", "large", &body, &[]);
    let files = walk(&a.db.data_path().join("blobs"));
    assert!(files.is_empty(), "node A kept body files: {files:?}");
    // Node B's store (its own, empty data dir) reads the body from the database.
    let stored = b.messages(DR, "INBOX");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].len() > mssante_store::INLINE_BLOB_MAX);
    assert!(strip_trace_header(&stored[0]).ends_with(format!("{body}\r\n").as_bytes()));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type().unwrap().is_dir() {
            true => files.extend(walk(&entry.path())),
            false => files.push(entry.path()),
        }
    }
    files
}

/// Delivery reports are a periodic job: three nodes, one leader, each report sent once;
/// the leader killed with SIGKILL, another node takes the jobs over.
#[test]
fn periodic_jobs_run_on_one_leader_and_move_when_it_is_killed() {
    let mut first = Server::start(Engine::Postgres, &[DR, SEC]);
    let mut second = first.another_node("");
    second.spawn();
    let mut third = first.another_node("");
    third.spawn();
    wait_for("a leader", Duration::from_secs(20), || {
        leaders(&[&first, &second, &third]).len() == 1
    });
    let reports = |node: &Server| {
        node.messages(SEC, "INBOX")
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains("multipart/report"))
            .count()
    };
    for i in 0..9 {
        let node = [&first, &second, &third][i % 3];
        let subject = format!("report-{i}");
        send(node, SEC, &subject, "x", &["NOTIFY=SUCCESS"]);
    }
    wait_for("9 reports", Duration::from_secs(30), || {
        reports(&first) >= 9
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reports(&first), 9, "one `delivered` report per message");

    let leader = leaders(&[&first, &second, &third])[0];
    let nodes = [&mut first, &mut second, &mut third];
    nodes[leader].kill();
    let survivors: Vec<&Server> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, n)| &**n)
        .collect();
    let killed_at = Instant::now();
    wait_for("a new leader", Duration::from_secs(30), || {
        leaders(&survivors).len() == 1
    });
    eprintln!(
        "leadership taken over {:?} after the leader's SIGKILL",
        killed_at.elapsed()
    );
    for i in 9..15 {
        let subject = format!("report-{i}");
        send(survivors[i % 2], SEC, &subject, "x", &["NOTIFY=SUCCESS"]);
    }
    wait_for("15 reports", Duration::from_secs(30), || {
        reports(survivors[0]) >= 15
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reports(survivors[0]), 15, "one report per message");
}
