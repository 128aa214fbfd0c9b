//! `mssante migrate` from a real Debian Dovecot started by the test (issue 15): a populated
//! account (nested folders under Dovecot's `.` delimiter, every flag, keywords, a UTF-8
//! folder name, a special-use folder under another name, a large attachment) copies
//! exactly: bytes hashed, flags, internal dates, subscriptions; a second run copies
//! nothing; a third after new mail (APPENDed to Dovecot) copies only that and brings a
//! changed flag over; after Dovecot's UIDVALIDITY changes, messages are found again by
//! Message-ID and size instead of copied twice. A wrong password fails its BAL by name while
//! the rest of the CSV runs; a bad CSV line and an untrusted source certificate are clear
//! errors. The source side is read with Python's imaplib, not with our client.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use mssante_testkit::dovecot::{Dovecot, DovecotSpec};
use mssante_testkit::engine_tests_sync;
use mssante_testkit::pki::{OperatorSpec, TestPki};
use serde_json::{Value, json};

const ALICE: (&str, &str) = ("alice@old-operator.test", "alice source pass");
const BOB: (&str, &str) = ("bob@old-operator.test", "bob source pass");
const ALICE_BAL: &str = "dr.alice@ch-test.mssante.fr";
const BOB_BAL: &str = "dr.bob@ch-test.mssante.fr";

/// Source folder (Dovecot's name, UTF-8) → the folder it must become here.
const FOLDERS: [(&str, &str); 7] = [
    ("INBOX", "INBOX"),
    ("Archives", "Archives"),
    ("Archives.2024", "Archives/2024"),
    ("Archives.2024.Mars", "Archives/2024/Mars"),
    ("Compte-rendus été", "Compte-rendus été"),
    ("Sent Items", "Sent"),
    ("Vide", "Vide"),
];

fn message(n: u32, extra: &str) -> Vec<u8> {
    format!(
        "From: Dr A <alice@old-operator.test>\r\nTo: <x@old-operator.test>\r\n\
         Subject: message {n}\r\nMessage-ID: <m{n}@old-operator.test>\r\n\
         Date: Thu, 01 Feb 2024 10:00:00 +0100\r\n{extra}\r\nBonjour, message {n}.\r\n"
    )
    .into_bytes()
}

/// A message with a ~3 MB attachment (base64, 76-character lines).
fn large_message(n: u32) -> Vec<u8> {
    let blob: Vec<u8> = (0..2_300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&blob);
    let mut body = String::new();
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(line).unwrap());
        body.push_str("\r\n");
    }
    format!(
        "From: <alice@old-operator.test>\r\nTo: <x@old-operator.test>\r\nSubject: IRM {n}\r\n\
         Message-ID: <irm{n}@old-operator.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Compte rendu.\r\n--b\r\nContent-Type: application/dicom\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"irm.dcm\"\r\n\r\n{body}--b--\r\n"
    )
    .into_bytes()
}

struct Source {
    dovecot: Dovecot,
    ca: std::path::PathBuf,
    foreign_ca: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Source {
    fn py(&self, user: (&str, &str), args: &[&str]) -> Value {
        let out = Command::new("python3")
            .arg(clients_dir().join("dovecot_source.py"))
            .args(args)
            .args(["--port", &self.dovecot.imaps_port.to_string()])
            .args(["--ca", self.ca.to_str().unwrap()])
            .args(["--user", user.0, "--password", user.1])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "dovecot_source.py {args:?}: {}\n--- dovecot log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.dovecot.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn fill(&self, user: (&str, &str), spec: Value) {
        let path = self.dir.join("spec.json");
        std::fs::write(&path, spec.to_string()).unwrap();
        self.py(user, &["fill", "--spec", path.to_str().unwrap()]);
    }

    fn write_message(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }
}

fn start_source(tmp: &Path) -> Source {
    let pki = TestPki::new(&tmp.join("pki"));
    let id = pki.operator(
        "imap-old",
        &OperatorSpec {
            mta: "imap.old-operator.test",
            siret: "12345678900011",
            org: "Ancien operateur",
            departement: "Gironde (33)",
        },
    );
    let dovecot = Dovecot::start(
        &tmp.join("dovecot"),
        &DovecotSpec {
            users: &[ALICE, BOB],
            tls: (&id.chain_pem, &id.key_pem),
            special_use: &[("Sent Items", "\\Sent")],
            mail_location: None,
        },
    );
    let dir = tmp.join("messages");
    std::fs::create_dir_all(&dir).unwrap();
    Source {
        dovecot,
        ca: pki.root_pem.clone(),
        foreign_ca: pki.foreign_root_pem.clone(),
        dir,
    }
}

/// Fills Alice's account: every folder of FOLDERS, every flag, keywords, dates in several
/// time zones, a large attachment; and two messages for Bob.
fn populate(source: &Source) -> usize {
    let m = |n: u32| source.write_message(&format!("m{n}.eml"), &message(n, ""));
    let large = source.write_message("irm.eml", &large_message(1));
    let appends = vec![
        json!({"folder": "INBOX", "flags": ["\\Seen"], "date": "01-Feb-2024 10:00:00 +0100", "file": m(1)}),
        json!({"folder": "INBOX", "flags": ["\\Answered", "\\Flagged"], "date": "15-Aug-2023 23:59:59 -0700", "file": m(2)}),
        json!({"folder": "INBOX", "flags": ["\\Draft", "\\Deleted"], "date": " 3-Jan-2022 00:00:01 +0000", "file": m(3)}),
        json!({"folder": "INBOX", "flags": ["$Forwarded", "$MDNSent", "NonJunk", "Urgent"], "date": "29-Feb-2024 12:30:00 +0530", "file": m(4)}),
        json!({"folder": "INBOX", "flags": ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Label1"], "date": "31-Dec-2023 23:00:00 -1200", "file": m(5)}),
        json!({"folder": "INBOX", "flags": [], "date": "02-Feb-2024 08:00:00 +0100", "file": m(6)}),
        json!({"folder": "Archives", "flags": ["\\Seen"], "date": "10-Oct-2020 10:10:10 +0200", "file": m(7)}),
        json!({"folder": "Archives.2024", "flags": ["\\Seen", "$Label2"], "date": "11-Mar-2024 09:00:00 +0100", "file": m(8)}),
        json!({"folder": "Archives.2024.Mars", "flags": ["\\Seen"], "date": "12-Mar-2024 09:00:00 +0100", "file": m(9)}),
        json!({"folder": "Archives.2024.Mars", "flags": ["\\Flagged"], "date": "13-Mar-2024 09:00:00 +0100", "file": m(10)}),
        json!({"folder": "Compte-rendus été", "flags": ["\\Seen", "$Important"], "date": "14-Jul-2024 14:00:00 +0200", "file": large}),
        json!({"folder": "Compte-rendus été", "flags": [], "date": "15-Jul-2024 14:00:00 +0200", "file": m(11)}),
        json!({"folder": "Sent Items", "flags": ["\\Seen"], "date": "16-Jul-2024 14:00:00 +0200", "file": m(12)}),
    ];
    let count = appends.len();
    source.fill(
        ALICE,
        json!({
            "create": ["Archives", "Archives.2024", "Archives.2024.Mars", "Compte-rendus été", "Sent Items", "Vide"],
            "subscribe": ["INBOX", "Archives.2024.Mars", "Compte-rendus été", "Sent Items"],
            "append": appends,
        }),
    );
    source.fill(
        BOB,
        json!({"append": [
            {"folder": "INBOX", "flags": ["\\Seen"], "date": "01-Feb-2024 10:00:00 +0100", "file": m(20)},
            {"folder": "INBOX", "flags": [], "date": "01-Feb-2024 10:00:00 +0100", "file": m(21)},
        ]}),
    );
    count
}

/// A folder's messages as (SHA-256, sorted flags, internal date), sorted.
type Contents = Vec<(String, Vec<String>, i64)>;

fn source_contents(source: &Source, user: (&str, &str)) -> BTreeMap<String, Contents> {
    let dump = source.py(user, &["dump"]);
    dump.as_object()
        .unwrap()
        .iter()
        .map(|(folder, messages)| {
            let mut contents: Contents = messages
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let mut flags: Vec<String> = m["flags"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f.as_str().unwrap().to_ascii_lowercase())
                        .collect();
                    flags.sort();
                    (
                        m["sha256"].as_str().unwrap().to_string(),
                        flags,
                        m["internaldate"].as_i64().unwrap(),
                    )
                })
                .collect();
            contents.sort();
            (folder.clone(), contents)
        })
        .collect()
}

fn target_contents(server: &Server, address: &str, folder: &str) -> Contents {
    block_on(async {
        let store = mssante_store::Store::open(&server.db.url, server.db.data_path())
            .await
            .unwrap();
        let mut contents: Contents = Vec::new();
        for m in store.folder_messages(address, folder).await.unwrap() {
            let bytes = store.read_blob(&m.blob_hash).await.unwrap();
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            assert_eq!(sha, m.blob_hash, "stored bytes hash to their name");
            let mut flags: Vec<String> = m
                .flags
                .split(' ')
                .filter(|f| !f.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            flags.sort();
            contents.push((sha, flags, m.internaldate));
        }
        store.close().await;
        contents.sort();
        contents
    })
}

fn subscriptions(server: &Server, address: &str) -> Vec<String> {
    block_on(async {
        let store = mssante_store::Store::open(&server.db.url, server.db.data_path())
            .await
            .unwrap();
        let bal = store.find_bal(address).await.unwrap().unwrap();
        let mut subs = store.subscriptions(bal.id).await.unwrap();
        store.close().await;
        subs.sort();
        subs
    })
}

/// Alice's account here is exactly Dovecot's, folder by folder.
fn assert_exact_copy(source: &Source, server: &Server) {
    let src = source_contents(source, ALICE);
    assert_eq!(src.len(), FOLDERS.len(), "source folders: {:?}", src.keys());
    for (source_name, target_name) in FOLDERS {
        let expected = &src[source_name];
        assert_eq!(
            &target_contents(server, ALICE_BAL, target_name),
            expected,
            "{source_name} -> {target_name}: bytes, flags and dates"
        );
    }
}

fn migrate(server: &Server, args: &[&str]) -> (Output, Vec<Value>) {
    let out = server.cli(&[&["migrate"], args].concat());
    let reports = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, reports)
}

fn report_for<'a>(reports: &'a [Value], target: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no report for {target}: {reports:?}"))
}

fn copied(report: &Value) -> u64 {
    report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["copied"].as_u64().unwrap())
        .sum()
}

fn safe(report: &Value) -> bool {
    report["error"].is_null()
        && report["folders"].as_array().unwrap().iter().all(|f| {
            f["missing"] == 0
                && f["metadata_differences"] == 0
                && f["source_side"] == f["target_side"]
        })
}

engine_tests_sync!(
    migrates_from_dovecot_exactly_then_only_what_is_new,
    |engine: Engine| {
        let tmp = tempfile::tempdir().unwrap();
        let source = start_source(tmp.path());
        let alice_messages = populate(&source);
        let server = Server::configure(engine, "");
        server.cli_ok(&["domain", "add", DOMAIN]);
        server.create_bal(ALICE_BAL, "10000000001");
        server.create_bal(BOB_BAL, "10000000002");
        let imaps = format!("imaps://127.0.0.1:{}", source.dovecot.imaps_port);
        let ca = source.ca.to_str().unwrap();

        // A bad CSV line is refused by name, before anything runs.
        let bad_csv = tmp.path().join("bad.csv");
        std::fs::write(
            &bad_csv,
            format!("{},x,{ALICE_BAL}\n{},only-two\n", ALICE.0, BOB.0),
        )
        .unwrap();
        let (out, reports) = migrate(
            &server,
            &[
                "--source",
                &imaps,
                "--source-ca",
                ca,
                "--csv",
                bad_csv.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && reports.is_empty());
        assert!(
            stderr.contains("bad.csv line 2: 2 field(s), expected 3"),
            "{stderr}"
        );
        assert!(target_contents(&server, ALICE_BAL, "INBOX").is_empty());

        // A source certificate from a CA we were not told to trust: refused, saying TLS.
        let csv = tmp.path().join("accounts.csv");
        std::fs::write(
        &csv,
        format!(
            "source_login,secret,target_bal\n{},wrong password,{BOB_BAL}\n\"{}\",\"{}\",{ALICE_BAL}\n",
            BOB.0, ALICE.0, ALICE.1
        ),
    )
    .unwrap();
        let foreign = source.foreign_ca.to_str().unwrap();
        let (out, reports) = migrate(
            &server,
            &[
                "--source",
                &imaps,
                "--source-ca",
                foreign,
                "--csv",
                csv.to_str().unwrap(),
                "--json",
            ],
        );
        assert!(!out.status.success());
        let error = report_for(&reports, ALICE_BAL)["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            error.contains("TLS") && error.contains("certificate"),
            "{error}"
        );

        // First run: Bob's wrong password fails Bob's BAL by name; Alice's account still copies.
        let started = std::time::Instant::now();
        let (out, reports) = migrate(
            &server,
            &[
                "--source",
                &imaps,
                "--source-ca",
                ca,
                "--csv",
                csv.to_str().unwrap(),
                "--jobs",
                "2",
                "--json",
            ],
        );
        let seconds = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "Bob's failure makes the run fail");
        assert!(
            stderr.contains(&format!("not safe to cut over yet: {BOB_BAL} (")),
            "{stderr}"
        );
        let bob = report_for(&reports, BOB_BAL);
        assert!(
            bob["error"]
                .as_str()
                .unwrap()
                .contains("the source refused the login of bob@old-operator.test"),
            "{bob}"
        );
        assert!(target_contents(&server, BOB_BAL, "INBOX").is_empty());
        let alice = report_for(&reports, ALICE_BAL);
        assert!(safe(alice), "{alice}");
        assert_eq!(copied(alice) as usize, alice_messages);
        eprintln!(
            "first run: {alice_messages} messages in {seconds:.2} s (report {} s)",
            alice["seconds"]
        );
        assert_exact_copy(&source, &server);
        let subs = subscriptions(&server, ALICE_BAL);
        for expected in ["Archives/2024/Mars", "Compte-rendus été", "INBOX", "Sent"] {
            assert!(
                subs.iter().any(|s| s == expected),
                "{expected} not in {subs:?}"
            );
        }
        assert!(!subs.iter().any(|s| s == "Sent Items"), "{subs:?}");

        // Second run, one account over STARTTLS with a password file: nothing new, nothing copied.
        let password_file = tmp.path().join("alice.pass");
        std::fs::write(&password_file, format!("{}\n", ALICE.1)).unwrap();
        let starttls = format!("imap://127.0.0.1:{}", source.dovecot.imap_port);
        let single = [
            "--source",
            &starttls,
            "--source-ca",
            ca,
            "--login",
            ALICE.0,
            "--bal",
            ALICE_BAL,
            "--password-file",
            password_file.to_str().unwrap(),
            "--json",
        ];
        let (out, reports) = migrate(&server, &single);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(copied(&reports[0]), 0, "{}", reports[0]);
        assert!(safe(&reports[0]));
        assert_exact_copy(&source, &server);

        // New mail at the source and a flag changed there: the third run copies only the new
        // message and brings the flag over.
        let new = source.write_message("new.eml", &message(30, "X-New: yes\r\n"));
        source.fill(ALICE, json!({"append": [
        {"folder": "Archives.2024", "flags": ["\\Flagged"], "date": "20-Nov-2024 18:00:00 +0100", "file": new},
    ]}));
        source.py(
            ALICE,
            &[
                "store",
                "--folder",
                "INBOX",
                "--uid",
                "6",
                "--flags",
                "\\Seen $Label3",
            ],
        );
        let (out, reports) = migrate(&server, &single);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let folders = reports[0]["folders"].as_array().unwrap();
        let by_source = |name: &str| folders.iter().find(|f| f["source"] == name).unwrap();
        assert_eq!(copied(&reports[0]), 1);
        assert_eq!(by_source("Archives.2024")["copied"], 1);
        assert_eq!(by_source("INBOX")["flags_updated"], 1);
        assert_exact_copy(&source, &server);

        // Dovecot forgets the UIDs of a folder (its uidlist and index removed): a new
        // UIDVALIDITY. Its messages are found again by Message-ID and size, not copied twice.
        let maildir = tmp
            .path()
            .join("dovecot/mail")
            .join(ALICE.0)
            .join(".Archives.2024.Mars");
        for entry in std::fs::read_dir(&maildir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("dovecot") {
                std::fs::remove_file(&path).unwrap();
            }
        }
        let (out, reports) = migrate(&server, &single);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let folders = reports[0]["folders"].as_array().unwrap();
        let mars = folders
            .iter()
            .find(|f| f["source"] == "Archives.2024.Mars")
            .unwrap();
        assert_eq!(
            (mars["copied"].as_u64(), mars["matched"].as_u64()),
            (Some(0), Some(2)),
            "{mars}"
        );
        assert_eq!(copied(&reports[0]), 0);
        assert_exact_copy(&source, &server);

        // The text report says so to a person.
        let out = server.cli(&[&["migrate"], &single[..single.len() - 1]].concat());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("== {} -> {ALICE_BAL} (command line)", ALICE.0)),
            "{text}"
        );
        assert!(text.contains("cut-over safe"), "{text}");
        assert!(
            text.contains("\"Archives.2024.Mars\" -> \"Archives/2024/Mars\""),
            "{text}"
        );
    }
);
