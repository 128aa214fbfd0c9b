//! `mssante export` and `mssante import` as an operator runs them (issue 15, ADR 0020):
//!
//! - an import of a six-BAL archive killed with SIGKILL at random points (at least 5 landing
//!   mid-import) never shows a BAL that is not whole, and the re-run ends with exactly the
//!   exported BALs: same folders and counters, UIDs, modseqs, flags, dates, bodies (hashed),
//!   subscriptions, and nothing stored twice;
//! - the Maildir trees of an export, extracted with tar, are served by a Debian Dovecot
//!   started here, and Python's imaplib reads from it, folder by folder, the same messages
//!   (SHA-256), UIDs, flags and keywords, dates, UIDVALIDITY, UIDNEXT and subscriptions.
//! - an `imapclient` session (CONDSTORE) that synced a BAL before its export sees, after the
//!   import into a fresh instance, the same UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UIDs, flags
//!   and modseqs in every folder, and nothing CHANGEDSINCE the modseq it knew.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use mssante_store::{MessageMeta, Store};
use mssante_testkit::dovecot::{Dovecot, DovecotSpec};
use mssante_testkit::engine_tests_sync;
use mssante_testkit::pki::{OperatorSpec, TestPki};
use serde_json::Value;

/// The BALs of the archive: the import runs them one after the other.
const PARTS: u32 = 6;
/// Messages per BAL, and per staging transaction (`import --batch`): 8 batches per BAL.
const MESSAGES: u32 = 300;
const BATCH: &str = "40";
/// Kills landing mid-import that the test requires.
const KILLS_REQUIRED: usize = 5;

fn address(part: u32) -> String {
    format!("dr.part{part}@{DOMAIN}")
}

/// Message `n` of BAL `part`; every 97th one is large (a blob file on SQLite).
fn message(part: u32, n: u32) -> Vec<u8> {
    let body = if n.is_multiple_of(97) {
        "pièce jointe ".repeat(30_000)
    } else {
        format!("compte rendu {part}-{n}")
    };
    format!(
        "From: lab@labo.mssante.fr\r\nTo: {}\r\nSubject: cr {part}-{n}\r\n\
         Message-ID: <cr{part}-{n}@labo>\r\n\r\n{body}\r\n",
        address(part)
    )
    .into_bytes()
}

async fn open(server: &Server) -> Store {
    Store::open(&server.db.url, server.db.data_path())
        .await
        .unwrap()
}

/// A stopped instance with `parts` BALs of `messages` messages each over INBOX and two
/// folders (nested, UTF-8), an empty folder, system flags and keywords, and a COPY (two
/// placements, one message).
fn populated(engine: mssante_testkit::Engine, parts: u32, messages: u32) -> Server {
    let server = Server::configure(engine, "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    for part in 0..parts {
        server.create_bal(&address(part), &format!("1000123456{part}"));
    }
    block_on(async {
        let store = open(&server).await;
        for part in 0..parts {
            fill_bal(&store, part, messages).await;
        }
        store.close().await;
    });
    server
}

async fn fill_bal(store: &Store, part: u32, messages: u32) {
    let bal = store.bal(&address(part)).await.unwrap();
    let nested = store
        .create_folder(bal.id, "Patients/Dossiers", None)
        .await
        .unwrap();
    let utf8 = store
        .create_folder(bal.id, "Comptes rendus/Échographie", None)
        .await
        .unwrap();
    store.create_folder(bal.id, "Vide", None).await.unwrap();
    store
        .set_subscription(bal.id, "Patients/Dossiers", true)
        .await
        .unwrap();
    let inbox = store.folder(bal.id, "INBOX").await.unwrap().unwrap();
    let flag_sets: [&[&str]; 4] = [
        &[],
        &["\\Seen"],
        &["\\Seen", "\\Answered", "\\Flagged", "$Urgent"],
        &["\\Draft", "\\Deleted", "Projet"],
    ];
    for n in 0..messages {
        let folder = match n % 5 {
            0 => nested.id,
            1 => utf8.id,
            _ => inbox.id,
        };
        let flags: Vec<String> = flag_sets[(n + part) as usize % 4]
            .iter()
            .map(|f| f.to_string())
            .collect();
        store
            .append(
                folder,
                message(part, n),
                &flags,
                1_700_000_000 + n as i64,
                MessageMeta::default(),
            )
            .await
            .unwrap();
    }
    store
        .copy_messages(inbox.id, &[1, 2], utf8.id, false)
        .await
        .unwrap();
}

fn contents(server: &Server) -> BTreeMap<String, Option<BalContents>> {
    block_on(async {
        let store = open(server).await;
        let mut all = BTreeMap::new();
        for part in 0..PARTS {
            let address = address(part);
            let found = match store.find_bal(&address).await.unwrap() {
                None => None,
                Some(_) => Some(bal_contents(&store, &address).await),
            };
            all.insert(address, found);
        }
        store.close().await;
        all
    })
}

fn count(server: &Server, table: &str) -> i64 {
    server
        .sql(&format!("SELECT COUNT(*) FROM {table}"))
        .trim()
        .parse()
        .unwrap()
}

fn import_command(server: &Server, archive: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.arg("--config")
        .arg(&server.config_path)
        .arg("import")
        .arg(archive)
        .args(["--progress", "--batch", BATCH])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// A small xorshift generator: random kill points without a dependency; the seed is printed
/// and `MSSANTE_KILL_SEED` replays a run.
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let seed = std::env::var("MSSANTE_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("kill points: MSSANTE_KILL_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The lines `import --progress` prints for a whole run, from a scratch instance.
fn whole_run_steps(engine: mssante_testkit::Engine, archive: &Path) -> Vec<String> {
    let scratch = Server::configure(engine, "");
    let out = import_command(&scratch, archive).output().unwrap();
    assert!(out.status.success());
    let steps: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .take_while(|l| !l.contains('\t')) // the outcome table follows the steps
        .map(str::to_string)
        .collect();
    assert_eq!(
        steps.iter().filter(|s| s.starts_with("finished ")).count(),
        PARTS as usize,
        "{steps:?}"
    );
    steps
}

/// One kill: an import started, killed (SIGKILL) once it printed the step `target` of a
/// whole run or a later one, plus a random delay. Returns the last step seen and whether
/// the process was still running when killed.
fn kill_at(
    target_server: &Server,
    archive: &Path,
    steps: &[String],
    target: usize,
    delay: Duration,
) -> (Option<String>, bool) {
    let mut child = import_command(target_server, archive).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = None;
    while let Some(Ok(line)) = lines.next() {
        let reached = steps
            .iter()
            .position(|s| *s == line)
            .is_some_and(|i| i >= target);
        seen = Some(line);
        if reached {
            break;
        }
    }
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    (seen, running)
}

engine_tests_sync!(
    import_killed_at_random_points_then_rerun_is_exact,
    |engine| {
        let source = populated(engine, PARTS, MESSAGES);
        let expected = contents(&source);
        assert!(expected.values().all(Option::is_some));
        let work = tempfile::tempdir().unwrap();
        let archive: PathBuf = work.path().join("parts.tar.zst");
        source.cli_ok(&["export", "--all", "-o", archive.to_str().unwrap()]);
        let steps = whole_run_steps(engine, &archive);
        eprintln!("a whole run has {} steps", steps.len());

        let target = Server::configure(engine, "");
        let mut random = Random::seeded();
        // Sorted step indices spread over the whole run, the last one (the last BAL
        // finished) excepted: each kill waits for its step or a later one.
        let mut targets: Vec<usize> = (0..KILLS_REQUIRED + 3)
            .map(|_| random.below(steps.len() as u64 - 1) as usize)
            .collect();
        targets.sort();
        let mut landed = Vec::new();
        for target_step in targets {
            let delay = Duration::from_millis(random.below(30));
            let (seen, running) = kill_at(&target, &archive, &steps, target_step, delay);
            let finished = count(&target, "import_runs WHERE state = 'done'");
            let staged = count(&target, "import_staged");
            // Every BAL shows whole or not at all, whenever the import stopped.
            for (address, got) in contents(&target) {
                if let Some(got) = got {
                    assert_eq!(
                        Some(&got),
                        expected[&address].as_ref(),
                        "{address} shows, so it is whole (killed after {seen:?})"
                    );
                }
            }
            eprintln!(
                "kill after step {target_step} (+{delay:?}): last line {seen:?}, running {running}, \
                 {finished} BAL(s) finished, {staged} placements staged"
            );
            if running && finished < PARTS as i64 {
                landed.push((seen, finished, staged));
            }
        }
        assert!(
            landed.len() >= KILLS_REQUIRED,
            "{} kills landed mid-import, {KILLS_REQUIRED} wanted: {landed:?}",
            landed.len()
        );
        assert!(
            landed.iter().any(|(_, _, staged)| *staged > 0),
            "a kill fell while a BAL was half staged: {landed:?}"
        );

        let out = import_command(&target, &archive).output().unwrap();
        assert!(out.status.success(), "the re-run completes");
        assert_eq!(contents(&target), expected, "exactly the exported BALs");
        assert_eq!(count(&target, "import_staged"), 0);
        for table in ["messages", "mailbox_messages", "mailboxes"] {
            assert_eq!(
                count(&target, table),
                count(&source, table),
                "{table}: nothing stored twice"
            );
        }
        // And once more: nothing to do.
        let again = import_command(&target, &archive).output().unwrap();
        let again = String::from_utf8(again.stdout).unwrap();
        assert_eq!(
            again.matches("already imported from this archive").count(),
            PARTS as usize,
            "{again}"
        );
        assert_eq!(count(&target, "messages"), count(&source, "messages"));
    }
);

/// The folders of `address` on the Dovecot serving the export, read with imaplib:
/// `dump` (messages) and `status` (counters, subscriptions).
fn dovecot_view(dovecot: &Dovecot, ca: &Path, address: &str, case: &str) -> Value {
    let out = Command::new("python3")
        .arg(clients_dir().join("dovecot_source.py"))
        .arg(case)
        .args(["--port", &dovecot.imaps_port.to_string()])
        .args(["--ca", ca.to_str().unwrap()])
        .args(["--user", address, "--password", PASSWORD])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "dovecot_source.py {case}: {}\n--- dovecot log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        dovecot.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A folder name as Dovecot's Maildir++ namespace shows it (`.` as the delimiter).
fn dovecot_name(name: &str) -> String {
    name.replace('/', ".")
}

/// Our BAL as imaplib would show it from Dovecot: per folder, (UID, sorted flags,
/// INTERNALDATE, SHA-256) in UID order; and per folder (UIDVALIDITY, UIDNEXT, count).
type FolderMessages = BTreeMap<String, Vec<(i64, Vec<String>, i64, String)>>;
type FolderCounters = BTreeMap<String, (i64, i64, i64)>;

fn ours(server: &Server, address: &str) -> (FolderMessages, FolderCounters, Vec<String>) {
    block_on(async {
        let store = open(server).await;
        let (bal_id, snapshot) = store.bal_snapshot(address).await.unwrap();
        let (mut messages, mut counters) = (BTreeMap::new(), BTreeMap::new());
        for f in &snapshot.folders {
            let mut list = Vec::new();
            for e in store
                .folder_entries_page(bal_id, f.id, 0, i64::MAX)
                .await
                .unwrap()
            {
                let bytes = store.read_blob(&e.blob_hash).await.unwrap();
                let mut flags: Vec<String> = e.flags.split_whitespace().map(String::from).collect();
                flags.sort();
                list.push((
                    e.uid,
                    flags,
                    e.internaldate,
                    mssante_store::blob_hash(&bytes),
                ));
            }
            let name = dovecot_name(&f.name);
            counters.insert(name.clone(), (f.uidvalidity, f.uidnext, list.len() as i64));
            messages.insert(name, list);
        }
        let mut subscribed: Vec<String> = snapshot
            .subscriptions
            .iter()
            .map(|s| dovecot_name(s))
            .collect();
        subscribed.sort();
        store.close().await;
        (messages, counters, subscribed)
    })
}

fn theirs(dump: &Value, status: &Value) -> (FolderMessages, FolderCounters, Vec<String>) {
    let int = |v: &Value| v.as_i64().unwrap();
    let messages = dump
        .as_object()
        .unwrap()
        .iter()
        .map(|(folder, list)| {
            let list = list
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let flags = m["flags"].as_array().unwrap();
                    let mut flags: Vec<String> =
                        flags.iter().map(|f| f.as_str().unwrap().into()).collect();
                    flags.sort();
                    let sha = m["sha256"].as_str().unwrap().to_string();
                    (int(&m["uid"]), flags, int(&m["internaldate"]), sha)
                })
                .collect();
            (folder.clone(), list)
        })
        .collect();
    let counters = status["folders"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(folder, s)| {
            let counters = (
                int(&s["uidvalidity"]),
                int(&s["uidnext"]),
                int(&s["messages"]),
            );
            (folder.clone(), counters)
        })
        .collect();
    let mut subscribed: Vec<String> = status["subscribed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    subscribed.sort();
    (messages, counters, subscribed)
}

engine_tests_sync!(dovecot_serves_the_exported_maildir, |engine| {
    let source = populated(engine, 2, 120);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("bals.tar");
    source.cli_ok(&["export", "--all", "-o", archive.to_str().unwrap()]);
    // What an operator does with it: extract it where Dovecot reads mail.
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .status()
        .unwrap();
    assert!(status.success(), "tar extracts the archive");
    let chown = Command::new("chown")
        .args(["-R", "mail:mail"])
        .arg(&tree)
        .status()
        .unwrap();
    assert!(chown.success());
    std::fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let pki = TestPki::new(&work.path().join("pki"));
    let id = pki.operator(
        "imap-reader",
        &OperatorSpec {
            mta: "imap.reader.test",
            siret: "12345678900011",
            org: "Lecteur",
            departement: "Gironde (33)",
        },
    );
    let addresses = [address(0), address(1)];
    let users: Vec<(&str, &str)> = addresses.iter().map(|a| (a.as_str(), PASSWORD)).collect();
    let location = tree.join("bals/%u/Maildir");
    let dovecot = Dovecot::start(
        &work.path().join("dovecot"),
        &DovecotSpec {
            users: &users,
            tls: (&id.chain_pem, &id.key_pem),
            special_use: &[],
            mail_location: Some(&location),
        },
    );
    for address in &addresses {
        let dump = dovecot_view(&dovecot, &pki.root_pem, address, "dump");
        let status = dovecot_view(&dovecot, &pki.root_pem, address, "status");
        let (messages, counters, subscribed) = theirs(&dump, &status);
        let (want_messages, want_counters, want_subscribed) = ours(&source, address);
        assert!(
            want_messages.values().map(Vec::len).sum::<usize>() >= 120,
            "{address} is populated"
        );
        assert_eq!(
            messages.keys().collect::<Vec<_>>(),
            want_messages.keys().collect::<Vec<_>>(),
            "{address}: the same folders"
        );
        for (folder, want) in &want_messages {
            assert_eq!(&messages[folder], want, "{address} {folder}: messages");
        }
        assert_eq!(
            counters, want_counters,
            "{address}: UIDVALIDITY, UIDNEXT, counts"
        );
        assert_eq!(subscribed, want_subscribed, "{address}: subscriptions");
    }
});

/// Runs `tests/clients/resync_flow.py PHASE` (imapclient, CONDSTORE) against `server`.
fn resync_view(server: &Server, phase: &str, extra: &[&str]) -> Value {
    let python = std::env::var("MSSANTE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(clients_dir().join("resync_flow.py"))
        .arg(phase)
        .args(["--imap", &server.ports.imap.to_string()])
        .args(["--user", &address(0), "--password", PASSWORD])
        .args(extra)
        .output()
        .expect("python3");
    client_json(phase, out, server)
}

// Issue 15's acceptance: a client that had synced before the move sees no change after the
// import (same UIDVALIDITY, UIDs, flags and modseqs, nothing CHANGEDSINCE its HIGHESTMODSEQ).
engine_tests_sync!(
    a_client_synced_before_the_move_sees_no_change_after_it,
    |engine| {
        let mut source = populated(engine, 1, 40);
        source.spawn();
        let before = resync_view(&source, "before", &[]);
        let folders = before["folders"].as_object().unwrap();
        assert!(folders.len() >= 4, "{before}");
        assert!(folders["INBOX"]["exists"].as_u64().unwrap() > 0, "{before}");
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("bal.tar.zst");
        source.cli_ok(&["export", "--all", "-o", archive.to_str().unwrap()]);

        let mut target = Server::configure(engine, "");
        target.cli_ok(&["import", archive.to_str().unwrap()]);
        target.spawn();
        let known = work.path().join("known.json");
        std::fs::write(&known, before.to_string()).unwrap();
        let after = resync_view(&target, "after", &["--known", known.to_str().unwrap()]);
        assert_eq!(
            after["folders"], before["folders"],
            "the client's view moved"
        );
        for (name, changed) in after["changed"].as_object().unwrap() {
            assert_eq!(
                changed,
                &Value::Array(vec![]),
                "{name}: changed since the sync"
            );
        }
    }
);
