//! Fault tests (database outage, disk full, kill -9 torture): the load and watch clients of
//! `tests/clients/load_client.py` and the judging of their event logs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{PASSWORD, Server, clients_dir};

/// One line of a load client's event log.
pub type Event = serde_json::Value;

pub fn read_events(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        // The last line may be half-written when the client was stopped.
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// An SMTP load's event log judged: the numbers acknowledged and those retried after DATA;
/// panics when a client gave up.
pub fn judge_load(path: &Path, what: &str) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let events = read_events(path);
    let gave_up: Vec<_> = events.iter().filter(|e| e["code"] == -2).collect();
    assert!(gave_up.is_empty(), "{what}: clients gave up: {gave_up:?}");
    (acked(&events), retried_after_data(&events))
}

/// Numbers acknowledged with 250 (at DATA) in an SMTP event log.
pub fn acked(events: &[Event]) -> BTreeSet<u64> {
    events
        .iter()
        .filter(|e| e["phase"] == "data" && e["code"] == 250)
        .filter_map(|e| e["n"].as_u64())
        .collect()
}

/// Numbers whose DATA got something else than a 250 or a 5xx: the server may have
/// committed them (the answer was lost) and the client sent them again.
pub fn retried_after_data(events: &[Event]) -> BTreeSet<u64> {
    events
        .iter()
        .filter(|e| e["phase"] == "data" && e["code"] != 250)
        .filter_map(|e| e["n"].as_u64())
        .collect()
}

pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds since the epoch, as the clients write them.
pub fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn ports_arg(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The SMTP load: `connections` MTAs sending numbered messages of `size` bytes to `rcpts`
/// (message n to rcpts[n % len]) on the MX `ports`, until `stop` exists.
/// The SMTP load: `connections` MTAs sending numbered messages of `size` bytes to `rcpts`
/// (message n to rcpts[n % len]) on the MX `ports`, until `stop` exists. `options` for the
/// client: `--first N` (numbers from N), `--starttls`, `--cert`/`--key` (an operator's MTA),
/// `--user`/`--password`/`--sender` (a practitioner on submission).
pub fn spawn_smtp_load(
    ports: &[u16],
    rcpts: &[&str],
    connections: usize,
    size: usize,
    events: &Path,
    stop: &Path,
    options: &[&str],
) -> Child {
    let mut c = Command::new("python3");
    c.arg(clients_dir().join("load_client.py"))
        .args(["smtp", "--ports", &ports_arg(ports)])
        .args(["--connections", &connections.to_string()])
        .args(["--size", &size.to_string()])
        .arg("--events")
        .arg(events)
        .arg("--stop-file")
        .arg(stop)
        .args(options)
        .stdout(Stdio::null());
    for rcpt in rcpts {
        c.args(["--rcpt", rcpt]);
    }
    c.spawn().expect("python3")
}

/// An IMAP client following `user`'s INBOX with IDLE across `ports` until `stop` exists.
pub fn spawn_imap_watch(ports: &[u16], user: &str, events: &Path, stop: &Path) -> Child {
    Command::new("python3")
        .arg(clients_dir().join("load_client.py"))
        .args(["imap-watch", "--ports", &ports_arg(ports)])
        .args(["--user", user, "--password", PASSWORD])
        .arg("--events")
        .arg(events)
        .arg("--stop-file")
        .arg(stop)
        .stdout(Stdio::null())
        .spawn()
        .expect("python3")
}

/// The load numbers in a BAL's INBOX (from their Message-ID `<mN@load.test>`), with how
/// many times each is there.
pub fn stored_numbers(server: &Server, bal: &str) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for m in server.messages(bal, "INBOX") {
        if let Some(n) = load_number(&String::from_utf8_lossy(&m)) {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// The load numbers in a BAL's INBOX with the INTERNALDATE (seconds) of each copy.
pub fn stored_copies(server: &Server, bal: &str) -> BTreeMap<u64, Vec<i64>> {
    let mut seen: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for (internaldate, m) in server.messages_dated(bal, "INBOX") {
        if let Some(n) = load_number(&String::from_utf8_lossy(&m)) {
            seen.entry(n).or_default().push(internaldate);
        }
    }
    seen
}

/// `N` of a `<mN@load.test>` Message-ID found in `text`.
pub fn load_number(text: &str) -> Option<u64> {
    text.split("<m")
        .nth(1)?
        .split_once("@load.test>")?
        .0
        .parse()
        .ok()
}

/// Checks that every acknowledged number is stored exactly once, and that a number stored
/// twice is one whose 250 may have been lost (retried after DATA). Returns the duplicates.
pub fn check_exactly_once(
    stored: &BTreeMap<u64, usize>,
    acked: &BTreeSet<u64>,
    retried: &BTreeSet<u64>,
    what: &str,
) -> Vec<u64> {
    let lost: Vec<_> = acked.iter().filter(|n| !stored.contains_key(n)).collect();
    assert!(lost.is_empty(), "{what}: acknowledged but lost: {lost:?}");
    let duplicates: Vec<u64> = stored
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(n, _)| *n)
        .collect();
    let unexplained: Vec<_> = duplicates.iter().filter(|n| !retried.contains(n)).collect();
    assert!(
        unexplained.is_empty(),
        "{what}: stored twice though acknowledged at the first attempt: {unexplained:?}"
    );
    duplicates
}
