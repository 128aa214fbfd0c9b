//! Kill -9 torture (docs/cluster.md §4): operator A's nodes take SMTP load from another
//! operator's MTA (MX, mutual TLS) and from a practitioner who writes to operator B
//! (submission, relayed through the trust space: MX in a loopback dnsmasq, certificates,
//! whitelist, as in `tests/relay_e2e.rs`), IMAP clients follow the INBOXes with IDLE, and a
//! node of A is killed with SIGKILL and started again, cycle after cycle. B is never killed.
//! Afterwards:
//! - every message acknowledged for A's BALs is in its mailbox once (twice only when its
//!   `250` was lost and the client sent it again), the IDLE clients (reconnecting, to other
//!   nodes when there are) saw every delivery, and no UID was ever given to two messages;
//! - every relayed message acknowledged on submission reached B at least once (more only
//!   when a kill interrupted a delivery between B's `250` and A's record of it), A's queue
//!   is empty and each of its rows was marked sent exactly once.
//!
//! - `three_postgres_nodes_survive_sigkill_cycles`: three nodes on one PostgreSQL; the last
//!   kill is not followed by a restart, so its relay claims must be taken over by the other
//!   nodes when their lease (`lease_secs = 10`) expires: the test waits for the queue to
//!   drain and reports how long it took;
//! - `one_sqlite_node_survives_sigkill_cycles`: one SQLite node (a restart frees its claims).
//!
//! The default run is short (a few cycles); the long runs recorded in docs/cluster.md set
//! `MSSANTE_TORTURE_CYCLES` (kills) and `MSSANTE_TORTURE_EVERY` (seconds between kills).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::faults::*;
use common::operators::{A, B, TrustSpace};
use common::*;

/// A's BALs, which receive the MX load.
const LOCALS: [&str; 3] = ["dr.un", "dr.deux", "dr.trois"];
/// B's BALs, which receive what A relays.
const PEER_LOCALS: [&str; 2] = ["dr.durand", "dr.petit"];
/// The relayed load's numbers start here (the MX load's at 0).
const RELAYED_FROM: u64 = 1_000_000;
/// How long a relay claim holds (the shortest the configuration allows).
const LEASE_SECS: u64 = 10;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Operator A's configuration: trust space, fast relay retries, a short lease, JSON logs
/// (whose `relay.attempt` lines the test counts).
fn a_config(space: &TrustSpace) -> String {
    format!(
        "{}[log]\nformat = \"json\"\n",
        space.server_config(&A, &format!("lease_secs = {LEASE_SECS}"))
    )
}

/// A's first node (its MX on 127.0.0.1: the load connects there), with A's domain and BALs.
fn operator_a(space: &TrustSpace, engine: Engine) -> Server {
    let node = Server::configure_at(engine, A.mta, None, &a_config(space));
    node.cli_ok(&["domain", "add", A.domain]);
    for (i, local) in LOCALS.iter().enumerate() {
        node.create_bal(&A.user(local), &format!("1000000000{i}"));
    }
    node
}

#[test]
fn three_postgres_nodes_survive_sigkill_cycles() {
    let space = TrustSpace::new(&[&A, &B]);
    let peer = space.start_operator(Engine::Sqlite, &B, "", &PEER_LOCALS);
    let first = operator_a(&space, Engine::Postgres);
    let second = first.another_node(&a_config(&space));
    let third = first.another_node(&a_config(&space));
    torture(
        &space,
        &peer,
        vec![first, second, third],
        "3 PostgreSQL nodes",
    );
}

#[test]
fn one_sqlite_node_survives_sigkill_cycles() {
    let space = TrustSpace::new(&[&A, &B]);
    let peer = space.start_operator(Engine::Sqlite, &B, "", &PEER_LOCALS);
    let node = operator_a(&space, Engine::Sqlite);
    torture(&space, &peer, vec![node], "1 SQLite node");
}

/// Starts `node` with a log file of its own for this run (a killed run's log is kept: the
/// relay lines of every run are counted).
fn start(node: &mut Server, index: usize, dir: &Path, logs: &mut Vec<PathBuf>) {
    node.log_path = dir.join(format!("node{index}-run{}.log", logs.len()));
    logs.push(node.log_path.clone());
    node.spawn();
}

fn torture(space: &TrustSpace, peer: &Server, mut nodes: Vec<Server>, what: &str) {
    let cycles = setting("MSSANTE_TORTURE_CYCLES", 4);
    let every = Duration::from_secs(setting("MSSANTE_TORTURE_EVERY", 6));
    let dir = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        start(node, i, dir.path(), &mut logs);
    }
    let bals: Vec<String> = LOCALS.iter().map(|l| A.user(l)).collect();
    let bals: Vec<&str> = bals.iter().map(String::as_str).collect();
    let peer_bals: Vec<String> = PEER_LOCALS.iter().map(|l| B.user(l)).collect();
    let peer_bals: Vec<&str> = peer_bals.iter().map(String::as_str).collect();
    let smtp_events = dir.path().join("smtp.jsonl");
    let relay_events = dir.path().join("relay.jsonl");
    let (stop_load, stop_watch) = (dir.path().join("stop-load"), dir.path().join("stop-watch"));
    let ports = |f: fn(&Server) -> u16| nodes.iter().map(f).collect::<Vec<u16>>();
    let (smtp_ports, submission_ports) = (ports(|n| n.ports.smtp), ports(|n| n.ports.submission));
    let imap_ports = ports(|n| n.ports.imap);
    let mut watchers = Vec::new();
    for (i, bal) in bals.iter().enumerate() {
        // Each watcher starts on another node, so that deliveries cross nodes.
        let mut rotated = imap_ports.clone();
        rotated.rotate_left(i % imap_ports.len());
        let events = dir.path().join(format!("imap-{i}.jsonl"));
        watchers.push((
            *bal,
            events.clone(),
            spawn_imap_watch(&rotated, bal, &events, &stop_watch),
        ));
    }
    // Two thirds: operator B's MTA on A's MX (mutual TLS, a sender of B's domain).
    let b_id = space.identity(B.domain);
    let (cert, key) = (
        b_id.cert_pem.to_str().unwrap(),
        b_id.key_pem.to_str().unwrap(),
    );
    let mta_sender = B.user("labo");
    let mx_options = [
        "--starttls",
        "--cert",
        cert,
        "--key",
        key,
        "--sender",
        &mta_sender,
    ];
    let mut load = spawn_smtp_load(
        &smtp_ports,
        &bals,
        4,
        3000,
        &smtp_events,
        &stop_load,
        &mx_options,
    );
    // A third: a practitioner of A writing to B's BALs on submission; A relays.
    let practitioner = A.user(LOCALS[0]);
    let first = RELAYED_FROM.to_string();
    let submit_options = [
        "--first",
        &first,
        "--starttls",
        "--user",
        &practitioner,
        "--password",
        PASSWORD,
        "--sender",
        &practitioner,
    ];
    let mut relay_load = spawn_smtp_load(
        &submission_ports,
        &peer_bals,
        2,
        3000,
        &relay_events,
        &stop_load,
        &submit_options,
    );
    let started = Instant::now();
    let mut kills = Vec::new();
    for cycle in 0..cycles {
        std::thread::sleep(every);
        let victim = cycle as usize % nodes.len();
        nodes[victim].kill();
        kills.push(epoch());
        if cycle + 1 == cycles && nodes.len() > 1 {
            // The last victim stays dead: the others must take over its relay claims.
            break;
        }
        // A moment down (on one node, clients get refused connections; on three, they
        // move to the others), then the node starts again on the same data.
        std::thread::sleep(Duration::from_millis(500));
        start(&mut nodes[victim], victim, dir.path(), &mut logs);
    }
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&stop_load, b"").unwrap();
    assert!(load.wait().unwrap().success());
    assert!(relay_load.wait().unwrap().success());
    let live = nodes.iter().find(|n| n.running()).expect("a running node");
    let drained_after = wait_for_empty_queue(live, &kills);

    let local = check_local_delivery(live, &bals, &smtp_events, watchers, &stop_watch, what);
    let relay = check_relay(live, peer, &peer_bals, &relay_events, &kills, &logs, what);
    eprintln!(
        "{what}: {cycles} SIGKILLs every {every:?} in {:?}; {local}; {relay}, queue empty \
         {drained_after:.1} s after the last kill",
        started.elapsed(),
    );
}

/// Waits until A's relay queue is empty as `mssante queue list` shows it: the claims of a
/// killed node come back after their lease (or at its restart), so this waits for that,
/// not a fixed time. Returns the seconds since the last kill.
fn wait_for_empty_queue(node: &Server, kills: &[f64]) -> f64 {
    let last_kill = *kills.last().unwrap_or(&epoch());
    wait_for(
        "A's relay queue to empty (claims of killed nodes taken over)",
        Duration::from_secs(LEASE_SECS * 6 + 60),
        || {
            let list = node.cli_ok(&["queue", "list"]);
            list.lines().last() == Some("0 recipient(s) queued")
        },
    );
    epoch() - last_kill
}

/// The MX load's messages in A's mailboxes and what the IMAP watchers saw; a summary.
fn check_local_delivery(
    node: &Server,
    bals: &[&str],
    smtp_events: &Path,
    mut watchers: Vec<(&str, PathBuf, std::process::Child)>,
    stop_watch: &Path,
    what: &str,
) -> String {
    let (acked, retried) = judge_load(smtp_events, what);
    let mut report = Vec::new();
    for (bal, events, _) in &watchers {
        let stored = node.inbox_uids(bal);
        // The watcher catches up with what is stored, then stops.
        wait_for(
            "the IMAP watcher to catch up",
            Duration::from_secs(60),
            || seen_of(&read_events(events)).len() >= stored.len(),
        );
        report.push((*bal, stored));
    }
    std::fs::write(stop_watch, b"").unwrap();
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
            .filter(|n| bals[*n as usize % bals.len()] == *bal)
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
    format!(
        "MX: {} acknowledged, {total_stored} stored, {duplicates} stored twice after a lost \
         answer; IMAP: {reconnects} reconnections, {by_idle} fetches announced by IDLE, every \
         stored message seen under one UID",
        acked.len(),
    )
}

/// The relayed load (once A's queue is empty): on A every submitted copy relayed, on B every
/// acknowledged message at least once, extra copies only around a kill, and no queue row
/// marked sent twice (the `relay.attempt` lines of every run); a summary.
fn check_relay(
    node: &Server,
    peer: &Server,
    peer_bals: &[&str],
    relay_events: &Path,
    kills: &[f64],
    logs: &[PathBuf],
    what: &str,
) -> String {
    let (acked, retried) = judge_load(relay_events, what);
    assert!(
        !acked.is_empty(),
        "{what}: no relayed message was acknowledged"
    );
    let tried: BTreeSet<u64> = read_events(relay_events)
        .iter()
        .filter_map(|e| e["n"].as_u64())
        .collect();
    let mids: Vec<String> = tried.iter().map(|n| format!("m{n}@load.test")).collect();
    // What `mssante message status` shows, for every number the submitters tried.
    let states = node.sent_states(&mids);
    let mut copies_at_a = BTreeMap::new();
    for (n, copies) in tried.iter().zip(&states) {
        if copies.is_empty() {
            assert!(
                !acked.contains(n),
                "{what}: submission {n} acknowledged but lost"
            );
            continue;
        }
        assert!(
            copies.len() == 1 || retried.contains(n),
            "{what}: submission {n} stored {} times though acknowledged at the first attempt",
            copies.len()
        );
        for rcpts in copies {
            for (address, state, attempts) in rcpts {
                assert_eq!(
                    state, "relayed",
                    "{what}: message {n} to {address} is {state} after {attempts} attempt(s)"
                );
            }
        }
        copies_at_a.insert(*n, copies.len());
    }

    let mut at_peer: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for bal in peer_bals {
        for (n, dates) in stored_copies(peer, bal) {
            at_peer.entry(n).or_default().extend(dates);
        }
    }
    let mut peer_duplicates = 0;
    for (n, copies) in &copies_at_a {
        let dates = at_peer.get(n).cloned().unwrap_or_default();
        assert!(
            dates.len() >= *copies,
            "{what}: message {n} marked relayed {copies} time(s), at the peer {} time(s)",
            dates.len()
        );
        let extra = dates.len() - copies;
        if extra > 0 {
            // Sent, the node killed before it recorded so: sent again after the restart or
            // the takeover. A kill must fall between the first copy and the last.
            let (from, to) = (*dates.iter().min().unwrap(), *dates.iter().max().unwrap());
            assert!(
                kills
                    .iter()
                    .any(|k| *k >= (from - 2) as f64 && *k <= (to + 2) as f64),
                "{what}: message {n} reached the peer {} times (stored {copies} on A) at {dates:?}, \
                 no kill in between (kills at {kills:?})",
                dates.len()
            );
            peer_duplicates += extra;
        }
    }
    let unknown: Vec<_> = at_peer
        .keys()
        .filter(|n| !copies_at_a.contains_key(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "{what}: the peer got numbers A never stored: {unknown:?}"
    );

    let marked = relayed_marks(logs);
    let twice: Vec<_> = marked.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "{what}: queue rows marked sent twice: {twice:?}"
    );
    let rows: usize = copies_at_a.values().sum();
    assert!(
        marked.len() <= rows,
        "{what}: {} rows marked relayed, {rows} stored",
        marked.len()
    );
    format!(
        "relay: {} acknowledged, {rows} stored on A, all marked relayed ({} relayed lines, none \
         twice), {} at the peer, {peer_duplicates} extra copies at the peer after a kill \
         interrupted a delivery",
        acked.len(),
        marked.len(),
        at_peer.values().map(Vec::len).sum::<usize>(),
    )
}

/// Queue row → how many `relay.attempt` lines (JSON logs of every run) say it was relayed
/// and recorded as such.
fn relayed_marks(logs: &[PathBuf]) -> BTreeMap<i64, usize> {
    let mut marks = BTreeMap::new();
    for log in logs {
        for line in read_events(log) {
            if line["target"] == "relay.attempt"
                && line["result"] == "relayed"
                && line["recorded"] == true
            {
                let row = line["queue_row"].as_i64().expect("queue_row");
                *marks.entry(row).or_insert(0) += 1;
            }
        }
    }
    marks
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
