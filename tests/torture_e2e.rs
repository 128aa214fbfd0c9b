//! Kill -9 torture (docs/cluster.md §4): under SMTP load and IMAP clients in IDLE, a node is
//! killed with SIGKILL and started again, cycle after cycle; afterwards every acknowledged
//! message is in its mailbox once, the IDLE clients (reconnecting, to other nodes when there
//! are) saw every delivery, and no UID was ever given to two messages.
//!
//! - `three_postgres_nodes_survive_sigkill_cycles`: three nodes on one PostgreSQL;
//! - `one_sqlite_node_survives_sigkill_cycles`: one SQLite node.
//!
//! The default run is short (a few cycles); the long runs recorded in docs/cluster.md set
//! `MSSANTE_TORTURE_CYCLES` (kills) and `MSSANTE_TORTURE_EVERY` (seconds between kills).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::faults::*;
use common::*;

const BALS: [&str; 3] = [
    "dr.un@ch-test.mssante.fr",
    "dr.deux@ch-test.mssante.fr",
    "dr.trois@ch-test.mssante.fr",
];

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn three_postgres_nodes_survive_sigkill_cycles() {
    let first = Server::configure(Engine::Postgres, "");
    first.cli_ok(&["domain", "add", DOMAIN]);
    for (i, bal) in BALS.iter().enumerate() {
        first.create_bal(bal, &format!("1000000000{i}"));
    }
    let second = first.another_node("");
    let third = first.another_node("");
    torture(vec![first, second, third], "3 PostgreSQL nodes");
}

#[test]
fn one_sqlite_node_survives_sigkill_cycles() {
    let node = Server::configure(Engine::Sqlite, "");
    node.cli_ok(&["domain", "add", DOMAIN]);
    for (i, bal) in BALS.iter().enumerate() {
        node.create_bal(bal, &format!("1000000000{i}"));
    }
    torture(vec![node], "1 SQLite node");
}

fn torture(mut nodes: Vec<Server>, what: &str) {
    let cycles = setting("MSSANTE_TORTURE_CYCLES", 4);
    let every = Duration::from_secs(setting("MSSANTE_TORTURE_EVERY", 6));
    for node in &mut nodes {
        node.spawn();
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp_events = dir.path().join("smtp.jsonl");
    let (stop_load, stop_watch) = (dir.path().join("stop-load"), dir.path().join("stop-watch"));
    let smtp_ports: Vec<u16> = nodes.iter().map(|n| n.ports.smtp).collect();
    let imap_ports: Vec<u16> = nodes.iter().map(|n| n.ports.imap).collect();
    let mut watchers = Vec::new();
    for (i, bal) in BALS.iter().enumerate() {
        // Each watcher starts on another node, so that deliveries cross nodes.
        let mut ports = imap_ports.clone();
        let shift = i % ports.len();
        ports.rotate_left(shift);
        let events = dir.path().join(format!("imap-{i}.jsonl"));
        watchers.push((
            *bal,
            events.clone(),
            spawn_imap_watch(&ports, bal, &events, &stop_watch),
        ));
    }
    let mut load = spawn_smtp_load(&smtp_ports, &BALS, 6, 3000, &smtp_events, &stop_load);
    let started = Instant::now();
    for cycle in 0..cycles {
        std::thread::sleep(every);
        let victim = cycle as usize % nodes.len();
        nodes[victim].kill();
        // A moment down (on one node, clients get refused connections; on three, they
        // move to the others), then the node starts again on the same data.
        std::thread::sleep(Duration::from_millis(500));
        nodes[victim].spawn();
    }
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&stop_load, b"").unwrap();
    assert!(load.wait().unwrap().success());
    let smtp = read_events(&smtp_events);
    let acked = acked(&smtp);
    let retried = retried_after_data(&smtp);
    let gave_up: Vec<_> = smtp.iter().filter(|e| e["code"] == -2).collect();
    assert!(gave_up.is_empty(), "{what}: clients gave up: {gave_up:?}");

    let mut report = Vec::new();
    for (bal, events, _) in &watchers {
        let stored = nodes[0].inbox_uids(bal);
        // The watcher catches up with what is stored, then stops.
        wait_for(
            "the IMAP watcher to catch up",
            Duration::from_secs(60),
            || seen_of(&read_events(events)).len() >= stored.len(),
        );
        report.push((*bal, stored));
    }
    std::fs::write(&stop_watch, b"").unwrap();
    for (_, _, child) in &mut watchers {
        assert!(child.wait().unwrap().success());
    }

    let mut total_stored = 0;
    let mut duplicates = 0;
    let mut by_idle = 0;
    let mut reconnects = 0;
    for ((bal, stored), (_, events, _)) in report.iter().zip(&watchers) {
        let numbers: BTreeMap<u64, usize> = stored.values().fold(BTreeMap::new(), |mut m, mid| {
            if let Some(n) = load_number(mid) {
                *m.entry(n).or_insert(0) += 1;
            }
            m
        });
        let mine: BTreeSet<u64> = acked
            .iter()
            .copied()
            .filter(|n| BALS[*n as usize % BALS.len()] == *bal)
            .collect();
        duplicates += check_exactly_once(&numbers, &mine, &retried, what).len();
        total_stored += stored.len();
        // What the IMAP client saw: every stored message, each UID always the same one.
        let events = read_events(events);
        let seen = seen_of(&events);
        for (uid, mid) in stored {
            assert_eq!(
                seen.get(uid),
                Some(mid),
                "{what}: {bal} UID {uid} is {mid} in the store, the client saw otherwise"
            );
        }
        by_idle += events.iter().filter(|e| e["idle"] == true).count();
        reconnects += events.iter().filter(|e| e["kind"] == "session").count() - 1;
    }
    eprintln!(
        "{what}: {cycles} SIGKILLs every {every:?} in {:?}; {} acknowledged, {total_stored} stored, \
         {duplicates} stored twice after a lost answer; IMAP: {reconnects} reconnections, \
         {by_idle} fetches announced by IDLE, every stored message seen under one UID",
        started.elapsed(),
        acked.len(),
    );
}

/// UID → Message-ID as an IMAP watcher saw them; panics when one UID was seen with two
/// different messages (a UID reused).
fn seen_of(events: &[Event]) -> BTreeMap<u64, String> {
    let mut seen = BTreeMap::new();
    for e in events.iter().filter(|e| e["kind"] == "seen") {
        let uid = e["uid"].as_u64().unwrap();
        let mid = e["mid"].as_str().unwrap().to_string();
        if let Some(before) = seen.insert(uid, mid.clone()) {
            assert_eq!(before, mid, "UID {uid} reused");
        }
    }
    seen
}
