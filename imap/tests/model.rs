//! A seeded, randomized multi-session test (issue 11): several sessions on two shared
//! mailboxes run a random mix of SELECT (switching between them), STORE (flags and new
//! keywords), APPEND, COPY, MOVE, EXPUNGE, FETCH, IDLE (DONE after a random wait) and NOOP,
//! some with QRESYNC on, while every untagged response is checked against what the client knows:
//! keywords announced before a FETCH names them, EXISTS / EXPUNGE / VANISHED arithmetic,
//! UIDs ascending by sequence number and never changing for a sequence number, MODSEQ never
//! going back for a message, the UID in every FETCH with QRESYNC. At the end every session's
//! sequence-to-UID map must be the store's.
//!
//! `MSSANTE_MODEL_SEED`, `MSSANTE_MODEL_STEPS` and `MSSANTE_MODEL_PLAYERS` change the run
//! (defaults: short, fixed); `MSSANTE_MODEL_SECONDS` plays for that long instead of a number
//! of steps (docs/imap-model-run.md records a 10-minute run with 50 clients).

/// The two shared mailboxes the players move between.
const MAILBOXES: [&str; 2] = ["INBOX", "Dossiers"];

mod harness;

use std::collections::{BTreeSet, HashMap};

use harness::{Client, Server};
use mssante_testkit::Engine;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

/// Choices from a seeded generator: a run is reproducible from its seed.
struct Rng(StdRng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(StdRng::seed_from_u64(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.random()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n.max(1))
    }
}

/// What one client knows of the selected mailbox, from the responses it has read.
struct Model {
    name: String,
    qresync: bool,
    /// UID by sequence number; `None` until a FETCH names it.
    uids: Vec<Option<u32>>,
    keywords: BTreeSet<String>,
    modseqs: HashMap<u32, u64>,
    /// The last lines exchanged, shown when a check fails.
    recent: std::collections::VecDeque<String>,
}

impl Model {
    fn fail(&self, line: &str, why: &str) -> ! {
        let recent: Vec<&str> = self.recent.iter().map(String::as_str).collect();
        panic!(
            "{}: {why}\n  line: {line}\n  model: {:?}\n  last lines:\n    {}",
            self.name,
            self.uids,
            recent.join("\n    ")
        )
    }

    fn remember(&mut self, line: String) {
        if self.recent.len() == 40 {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    /// Where `uid` is: its known place, or an unknown one between known smaller and larger
    /// UIDs (UIDs ascend with sequence numbers, so any of those is the same to the model).
    fn position_for(&self, uid: u32) -> Option<usize> {
        if let Some(i) = self.uids.iter().position(|u| *u == Some(uid)) {
            return Some(i);
        }
        (0..self.uids.len()).find(|&i| {
            self.uids[i].is_none()
                && self.uids[..i].iter().flatten().all(|&u| u < uid)
                && self.uids[i..].iter().flatten().all(|&u| u > uid)
        })
    }

    /// Applies one untagged line, checking it against what is known.
    fn apply(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("* ") else {
            return;
        };
        let words: Vec<&str> = rest.splitn(3, ' ').collect();
        if let Some(list) = rest.strip_prefix("FLAGS (") {
            let list = list.strip_suffix(')').unwrap_or(list);
            self.keywords = list
                .split(' ')
                .filter(|f| !f.is_empty() && !f.starts_with('\\'))
                .map(String::from)
                .collect();
            return;
        }
        if let Some(set) = rest.strip_prefix("VANISHED ") {
            if set.starts_with("(EARLIER)") {
                return;
            }
            for uid in expand(set) {
                match self.position_for(uid) {
                    Some(i) => {
                        self.uids.remove(i);
                    }
                    None => self.fail(line, &format!("VANISHED {uid}: not in the mailbox")),
                }
            }
            return;
        }
        if words.len() < 2 {
            return;
        }
        let Ok(n) = words[0].parse::<usize>() else {
            return;
        };
        match words[1] {
            "EXISTS" => {
                if n < self.uids.len() {
                    self.fail(line, "EXISTS went down without EXPUNGE");
                }
                self.uids.resize(n, None);
            }
            "EXPUNGE" => {
                if self.qresync {
                    self.fail(line, "EXPUNGE instead of VANISHED with QRESYNC on");
                }
                if n == 0 || n > self.uids.len() {
                    self.fail(line, "EXPUNGE of an unknown sequence number");
                }
                self.uids.remove(n - 1);
            }
            "FETCH" => self.fetch(n, words.get(2).copied().unwrap_or(""), line),
            _ => {}
        }
    }

    fn fetch(&mut self, seq: usize, items: &str, line: &str) {
        if seq == 0 || seq > self.uids.len() {
            self.fail(line, "FETCH of a sequence number beyond EXISTS");
        }
        let uid = item_after(items, "UID ").and_then(|v| v.parse::<u32>().ok());
        if self.qresync && uid.is_none() {
            self.fail(
                line,
                "FETCH without UID while QRESYNC is on (RFC 7162 §3.2.4)",
            );
        }
        if let Some(uid) = uid {
            match self.uids[seq - 1] {
                Some(known) if known != uid => self.fail(
                    line,
                    &format!("UID changed for sequence {seq}: {known} -> {uid}"),
                ),
                _ => self.uids[seq - 1] = Some(uid),
            }
            let known: Vec<u32> = self.uids.iter().flatten().copied().collect();
            if known.windows(2).any(|w| w[0] >= w[1]) {
                self.fail(line, "UIDs not ascending by sequence number");
            }
        }
        if let Some(flags) = item_after(items, "FLAGS (") {
            for f in flags
                .split(' ')
                .filter(|f| !f.is_empty() && !f.starts_with('\\'))
            {
                if !self.keywords.contains(f) {
                    self.fail(line, &format!("keyword {f} used before FLAGS announced it"));
                }
            }
        }
        if let (Some(uid), Some(modseq)) = (
            uid,
            item_after(items, "MODSEQ (").and_then(|v| v.parse::<u64>().ok()),
        ) {
            let before = self.modseqs.insert(uid, modseq).unwrap_or(0);
            if modseq < before {
                self.fail(line, "MODSEQ went back");
            }
        }
    }
}

/// The value after `key` in a FETCH item list, up to the next space or `)`.
fn item_after<'a>(items: &'a str, key: &str) -> Option<&'a str> {
    let at = items.find(key)? + key.len();
    let rest = &items[at..];
    let end = if key.ends_with('(') {
        rest.find(')')?
    } else {
        rest.find([' ', ')']).unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

/// `1:3,7` → 1, 2, 3, 7.
fn expand(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|part| match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                (a.min(b)..=a.max(b)).collect::<Vec<_>>()
            }
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

struct Player {
    client: Client,
    model: Model,
    tag: u32,
    /// Which of [`MAILBOXES`] is selected.
    mailbox: usize,
    steps: u64,
    /// Commands answered `NO [UNAVAILABLE]` (a storage failure).
    unavailable: u64,
}

impl Player {
    /// Runs a command; a QRESYNC client then learns the UIDs of new messages at once (it
    /// needs them to apply VANISHED, which names UIDs), as real QRESYNC clients do.
    async fn run(&mut self, command: &str) -> String {
        let done = self.command(command).await;
        self.learn_new_uids().await;
        done
    }

    /// A QRESYNC client fetches the UIDs of messages it has not seen yet.
    async fn learn_new_uids(&mut self) {
        while self.model.qresync {
            let Some(first) = self.model.uids.iter().position(Option::is_none) else {
                break;
            };
            // By number: no VANISHED can arrive during it (RFC 9051 §7.5.1). A message
            // expunged meanwhile gets no FETCH: the NOOP then brings its VANISHED.
            self.command(&format!("FETCH {}:* (UID)", first + 1)).await;
            self.command("NOOP").await;
        }
    }

    /// IDLE (RFC 2177): untagged updates while idling, DONE after `wait`.
    async fn idle(&mut self, wait: std::time::Duration) {
        self.tag += 1;
        let tag = format!("{}{}", self.model.name, self.tag);
        self.client.send(&format!("{tag} IDLE")).await;
        self.model.remember(format!("C: {tag} IDLE"));
        loop {
            let line = self.client.line().await;
            self.model.remember(format!("S: {line}"));
            if line.starts_with('+') {
                break;
            }
            self.model.apply(&line);
        }
        tokio::time::sleep(wait).await;
        self.client.send("DONE").await;
        let lines = self.client.lines_until(&tag).await;
        for line in &lines[..lines.len() - 1] {
            self.model.remember(format!("S: {line}"));
            self.model.apply(line);
        }
        let done = lines.last().unwrap().clone();
        if !done.contains(" OK ") {
            self.model.fail(&done, "IDLE not completed");
        }
        self.learn_new_uids().await;
    }

    /// SELECT of the other mailbox (or the same again): the model starts over.
    async fn select(&mut self, mailbox: usize) {
        self.mailbox = mailbox;
        self.model.uids.clear();
        self.model.keywords.clear();
        self.model.modseqs.clear();
        // A SELECT refused by a storage failure leaves no mailbox selected (RFC 9051 §6.3.2):
        // counted (docs/imap-model-run.md) and tried again, as a client would.
        while self
            .run(&format!("SELECT {}", MAILBOXES[mailbox]))
            .await
            .contains(" NO [UNAVAILABLE]")
        {
            self.model.uids.clear();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sends one command and applies every untagged response up to its tag.
    async fn command(&mut self, command: &str) -> String {
        self.tag += 1;
        let tag = format!("{}{}", self.model.name, self.tag);
        self.client.send(&format!("{tag} {command}")).await;
        self.model.remember(format!("C: {tag} {command}"));
        let lines = self.client.lines_until(&tag).await;
        for line in &lines[..lines.len() - 1] {
            self.model.remember(format!("S: {line}"));
            self.model.apply(line);
        }
        let done = lines.last().unwrap().clone();
        self.model.remember(format!("S: {done}"));
        if done.contains(" BAD ") {
            self.model.fail(&done, "command refused");
        }
        if done.contains(" NO [UNAVAILABLE]") {
            self.unavailable += 1;
        }
        done
    }

    async fn random_step(&mut self, rng: &mut Rng) {
        const KEYWORDS: [&str; 5] = ["$a", "$b", "$hello", "NIL", "\\Deleted"];
        let exists = self.model.uids.len() as u64;
        let (here, other) = (MAILBOXES[self.mailbox], MAILBOXES[1 - self.mailbox]);
        self.steps += 1;
        match rng.below(14) {
            10 if exists > 0 => {
                let seq = rng.below(exists) + 1;
                self.run(&format!("MOVE {seq} {other}")).await;
            }
            11 => {
                let mailbox = rng.below(2) as usize;
                self.select(mailbox).await;
            }
            12 => {
                let wait = std::time::Duration::from_millis(rng.below(60));
                self.idle(wait).await;
            }
            13 if exists > 0 => {
                let seq = rng.below(exists) + 1;
                self.run(&format!("UID MOVE {} {other}", self.uid_or_seq(seq)))
                    .await;
            }
            0 | 1 => {
                let target = MAILBOXES[rng.below(2) as usize];
                let subject = rng.next() % 1000;
                let flag = KEYWORDS[rng.below(KEYWORDS.len() as u64) as usize];
                let body = format!("Subject: m{subject}\r\n\r\nbody");
                self.run(&format!(
                    "APPEND {target} ({flag}) {{{}+}}\r\n{body}",
                    body.len()
                ))
                .await;
            }
            2..=4 if exists > 0 => {
                let seq = rng.below(exists) + 1;
                let flag = KEYWORDS[rng.below(KEYWORDS.len() as u64) as usize];
                let op = ["+", "-", ""][rng.below(3) as usize];
                self.run(&format!("STORE {seq} {op}FLAGS ({flag})")).await;
            }
            5 if exists > 0 => {
                let seq = rng.below(exists) + 1;
                let target = [here, other][rng.below(2) as usize];
                self.run(&format!("COPY {seq} {target}")).await;
            }
            6 => {
                self.run("EXPUNGE").await;
            }
            7 if exists > 0 => {
                let seq = rng.below(exists) + 1;
                self.run(&format!("FETCH {seq}:* (UID FLAGS)")).await;
            }
            8 if exists > 0 => {
                let seq = rng.below(exists) + 1;
                self.run(&format!("UID STORE {seq}:* +FLAGS.SILENT ($b)"))
                    .await;
            }
            _ => {
                self.run("NOOP").await;
            }
        }
    }
}

impl Player {
    /// The UID of sequence number `seq` when known, else `seq` itself (a UID that may not
    /// exist: UID MOVE then moves nothing, which is fine too).
    fn uid_or_seq(&self, seq: u64) -> u64 {
        self.model.uids[seq as usize - 1].map_or(seq, u64::from)
    }
}

/// How long a run lasts: a number of steps per player, or a time.
#[derive(Clone, Copy)]
enum Length {
    Steps(usize),
    Until(std::time::Instant),
}

/// Plays; returns the steps played and the commands refused by a storage failure.
async fn play(
    engine: mssante_testkit::Engine,
    seed: u64,
    players: usize,
    length: Length,
) -> (u64, u64) {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    {
        let mut setup = server.login(&address).await;
        setup.send("c CREATE Dossiers").await;
        setup.lines_until("c").await;
    }
    let mut tasks = Vec::new();
    for p in 0..players {
        let mut client = server.login(&address).await;
        let qresync = p % 2 == 1;
        if qresync {
            client.send("e ENABLE QRESYNC").await;
            client.lines_until("e").await;
        }
        let mut player = Player {
            client,
            model: Model {
                name: format!("p{p}_"),
                qresync,
                uids: Vec::new(),
                keywords: BTreeSet::new(),
                modseqs: HashMap::new(),
                recent: Default::default(),
            },
            tag: 0,
            mailbox: 0,
            steps: 0,
            unavailable: 0,
        };
        player.select(p % 2).await;
        let mut rng = Rng::new(seed.wrapping_add(p as u64));
        tasks.push(tokio::spawn(async move {
            match length {
                Length::Steps(steps) => {
                    for _ in 0..steps {
                        player.random_step(&mut rng).await;
                    }
                }
                Length::Until(end) => {
                    while std::time::Instant::now() < end {
                        player.random_step(&mut rng).await;
                    }
                }
            }
            player
        }));
    }
    let mut finished = Vec::new();
    for t in tasks {
        finished.push(t.await.expect("player panicked"));
    }
    // Quiet now: every session learns the rest, then its map must be the store's.
    let bal_id = server.store.find_bal(&address).await.unwrap().unwrap().id;
    let mut stored = Vec::new();
    for name in MAILBOXES {
        let folder = server.store.folder(bal_id, name).await.unwrap().unwrap();
        let uids: Vec<Option<u32>> = server
            .store
            .message_refs(folder.id)
            .await
            .unwrap()
            .iter()
            .map(|m| Some(m.uid))
            .collect();
        stored.push(uids);
    }
    for player in &mut finished {
        player.run("NOOP").await;
        player.run("FETCH 1:* (UID FLAGS)").await;
        assert_eq!(
            player.model.uids, stored[player.mailbox],
            "{}: the session's sequence-to-UID map of {} differs from the store's",
            player.model.name, MAILBOXES[player.mailbox]
        );
    }
    let failures: u64 = finished.iter().map(|p| p.unavailable).sum();
    (finished.iter().map(|p| p.steps).sum(), failures)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A short run in the default suite; longer ones with `MSSANTE_MODEL_SEED` and
/// `MSSANTE_MODEL_STEPS` (issue 11 found its sequence drift at 250 steps: a session read the
/// changed messages and the expunged UIDs at two moments, and brought an expunged message
/// back mid-list; the store now reads both from one snapshot).
async fn sessions_agree_with_the_store(engine: Engine) {
    let seed = env_or("MSSANTE_MODEL_SEED", 11);
    let players = env_or("MSSANTE_MODEL_PLAYERS", 4) as usize;
    let length = match env_or("MSSANTE_MODEL_SECONDS", 0) {
        0 => Length::Steps(env_or("MSSANTE_MODEL_STEPS", 60) as usize),
        s => Length::Until(std::time::Instant::now() + std::time::Duration::from_secs(s)),
    };
    let started = std::time::Instant::now();
    let (steps, unavailable) = play(engine, seed, players, length).await;
    // For docs/imap-model-run.md (shown with --nocapture).
    println!(
        "model run: engine {engine:?}, seed {seed}, {players} clients, {steps} steps in {:.0} s: \
         every check held; {unavailable} commands answered NO [UNAVAILABLE]",
        started.elapsed().as_secs_f64()
    );
    // The database is up throughout: conflicts between sessions' writes (PostgreSQL
    // deadlocks, 6 % of commands in the first 10-minute run) are the store's to resolve.
    assert_eq!(unavailable, 0, "commands refused with the database up");
}

mod sessions_agree_with_the_store {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::sessions_agree_with_the_store(Engine::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::sessions_agree_with_the_store(Engine::Postgres).await
    }
}
