//! JSON-lines logs (`[log] format = "json"`): every line the server writes is one JSON
//! object; each SMTP transaction and each IMAP session gives one line with the fields an
//! operator greps for (with its Message-ID), each relay attempt one (peer, reply, attempt
//! number); and no password, AUTH blob or token ever appears, at debug level,
//! after logins that succeed and logins that fail (SMTP AUTH with swaks, IMAP LOGIN with
//! Python's imaplib, the HTTP API with a key and with a forged one).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::http::*;
use common::*;
use mssante_testkit::dns::{DnsRecord, Dnsmasq};
use mssante_testkit::pki::TestPki;
use serde_json::Value;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const OTHER: &str = "dr.durand@ch-test.mssante.fr";
const LAB: &str = "labo@ch-test.mssante.fr";
const WRONG_PASSWORD: &str = "Wrong-Passphrase-4711";
const FORGED_TOKEN: &str = "mss_forged0123456789abcdef";
const PEER_DOMAIN: &str = "pair.mssante.fr";
const PEER_MX: &str = "mx.pair.mssante.fr";

/// An IMAP session with imaplib: STARTTLS, LOGIN as DR with `password`, SELECT, LOGOUT.
/// Prints "ok" or "refused".
fn imap_login(server: &Server, password: &str) -> String {
    let script = "import imaplib,ssl,sys\n\
        c=ssl._create_unverified_context()\n\
        m=imaplib.IMAP4('127.0.0.1',int(sys.argv[1])); m.starttls(ssl_context=c)\n\
        try:\n    m.login(sys.argv[2],sys.argv[3])\nexcept imaplib.IMAP4.error:\n    print('refused'); m.logout(); sys.exit(0)\n\
        m.select('INBOX'); m.logout(); print('ok')\n";
    let out = Command::new("python3")
        .args(["-c", script, &server.ports.imap.to_string(), DR, password])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The server's log lines, each parsed. The log file also holds the startup banner `serve`
/// prints on stdout ("listening  smtp …"); every other line must be a JSON object.
/// swaks on submission with STARTTLS, as DR with (`mechanism`, `password`), to `to`.
fn submit_as_dr(
    server: &Server,
    (mechanism, password): (&str, &str),
    to: &str,
    extra: &[&str],
) -> (i32, String) {
    let submission = format!("127.0.0.1:{}", server.ports.submission);
    let mut args = vec![
        "--server",
        &submission,
        "--tls",
        "--auth",
        mechanism,
        "--auth-user",
        DR,
        "--auth-password",
        password,
        "--from",
        DR,
        "--to",
        to,
    ];
    args.extend_from_slice(extra);
    swaks(&args)
}

fn json_lines(server: &Server) -> Vec<Value> {
    // "listening  smtp …", "data dir   /tmp/…": a lower-case word, then two spaces.
    let banner = |l: &str| {
        l.split_once("  ").is_some_and(|(word, _)| {
            !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == ' ')
        })
    };
    server
        .log()
        .lines()
        .filter(|l| !l.trim().is_empty() && !banner(l))
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
        })
        .collect()
}

fn lines_of<'a>(lines: &'a [Value], target: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["target"] == target).collect()
}

/// The IMAP session lines, without the harness's readiness probes (sessions without a
/// command).
fn imap_sessions(lines: &[Value]) -> Vec<&Value> {
    lines_of(lines, "imap.session")
        .into_iter()
        .filter(|s| s["commands"].as_u64() > Some(0))
        .collect()
}

#[test]
fn json_logs_have_one_line_per_transaction_and_session_and_no_secret() {
    let mut server = Server::configure(
        Engine::Sqlite,
        "[log]\nformat = \"json\"\nlevel = \"debug\"\n",
    );
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(DR, "10001234567");
    server.create_bal(OTHER, "10001234568");
    create_lab_bal(&server, LAB);
    server.rust_log = "debug";
    let key = server
        .cli_ok(&[
            "apikey", "create", "--name", "SIL", "--scope", "status", "--bal", LAB,
        ])
        .trim()
        .to_string();
    server.spawn();

    // SMTP: one message with AUTH PLAIN, then an AUTH with a wrong password.
    let (code, transcript) = submit_as_dr(
        &server,
        ("PLAIN", PASSWORD),
        OTHER,
        &["--header", "Subject: journal", "--body", "Bonjour."],
    );
    assert_eq!(code, 0, "{transcript}");
    let queue_id = transcript
        .split("queued as ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no queue id in {transcript}"))
        .to_string();
    let (code, transcript) = submit_as_dr(&server, ("LOGIN", WRONG_PASSWORD), OTHER, &[]);
    assert_ne!(code, 0, "{transcript}");

    // IMAP: a session that logs in, one refused.
    assert_eq!(imap_login(&server, PASSWORD), "ok");
    assert_eq!(imap_login(&server, WRONG_PASSWORD), "refused");

    // HTTP API: a real key, and a forged one.
    let status_url = url(&server, "/api/v1/messages/none");
    curl(&["-H", &bearer(&key), &status_url]);
    let forged = curl(&["-H", &bearer(FORGED_TOKEN), &status_url]);
    assert_eq!(forged.status, 401, "{}", forged.body);

    // The IMAP sessions' end lines are written when the server sees them close.
    let deadline = Instant::now() + Duration::from_secs(20);
    while imap_sessions(&json_lines(&server)).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no imap.session lines:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.terminate();
    let lines = json_lines(&server);

    let transactions = lines_of(&lines, "smtp.transaction");
    assert_eq!(transactions.len(), 1, "{transactions:#?}");
    let t = transactions[0];
    assert_eq!(t["queue_id"], queue_id.as_str(), "{t}");
    assert_eq!(
        (
            t["listener"].as_str(),
            t["auth"].as_str(),
            t["from"].as_str()
        ),
        (Some("submission"), Some(DR), Some(DR))
    );
    assert!(
        t["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{t}"
    );
    assert_eq!(
        (
            t["recipients"].as_u64(),
            t["code"].as_u64(),
            t["tls"].as_bool()
        ),
        (Some(1), Some(250), Some(true))
    );
    assert!(t["size"].as_u64().unwrap() > "Bonjour.".len() as u64, "{t}");
    assert!(
        t["duration_ms"].is_u64() && t["timestamp"].is_string() && t["level"] == "INFO",
        "{t}"
    );

    let sessions = imap_sessions(&lines);
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    assert!(
        sessions
            .iter()
            .all(|s| s["listener"] == "imap" && s["tls"] == true),
        "{sessions:#?}"
    );
    let users: Vec<&str> = sessions
        .iter()
        .map(|s| s["user"].as_str().unwrap())
        .collect();
    assert!(users.contains(&DR) && users.contains(&""), "{users:?}");
    let logged_in = sessions.iter().find(|s| s["user"] == DR).unwrap();
    // CAPABILITY, STARTTLS, LOGIN, SELECT, LOGOUT at least.
    assert!(logged_in["commands"].as_u64().unwrap() >= 4, "{logged_in}");
    assert!(
        logged_in["duration_ms"].is_u64() && logged_in["end"].is_string(),
        "{logged_in}"
    );

    let log = server.log();
    let plain_blob =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{DR}\0{PASSWORD}"));
    let login_blob = base64::engine::general_purpose::STANDARD.encode(WRONG_PASSWORD);
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        &plain_blob,
        &login_blob,
        &key,
        FORGED_TOKEN,
    ] {
        assert!(
            !log.contains(secret),
            "the log holds a secret {secret:?}:\n{log}"
        );
    }
    // The key's secret part is not logged either (its id may be).
    let secret_part = key.rsplit('_').next().unwrap();
    assert!(
        secret_part.len() >= 16 && !log.contains(secret_part),
        "{key}"
    );
}

/// The relay logs one `relay.attempt` line per recipient and attempt (peer MX, result,
/// reply, attempt number), and the transaction line carries the message's Message-ID. The
/// peer's MX (loopback DNS) listens on no port: each attempt is deferred, and retried.
#[test]
fn relay_attempts_and_message_ids_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let dns = Dnsmasq::start(
        dir.path(),
        &[
            DnsRecord::mx(PEER_DOMAIN, PEER_MX, 10),
            DnsRecord::a(PEER_MX, std::net::Ipv4Addr::LOCALHOST),
        ],
    );
    // The relay runs only with a CA to verify peers by (a test one; never reached here).
    let pki = TestPki::new(&dir.path().join("pki"));
    let closed = Server::free_port();
    let mut server = Server::configure(
        Engine::Sqlite,
        &format!(
            "[log]\nformat = \"json\"\n[trust]\nenforce = false\nca_file = \"{}\"\n\
             [relay]\nport = {closed}\nnameserver = \"{}\"\n\
             retry_schedule_secs = [1]\npoll_interval_ms = 100\n",
            pki.root_pem.display(),
            dns.addr
        ),
    );
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(DR, "10001234567");
    server.spawn();
    let to = format!("dr.pair@{PEER_DOMAIN}");
    let (code, transcript) = submit_as_dr(
        &server,
        ("PLAIN", PASSWORD),
        &to,
        &["--header", "Message-ID: <journal-2@ch-test.mssante.fr>"],
    );
    assert_eq!(code, 0, "{transcript}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let attempts = loop {
        let lines = json_lines(&server);
        let attempts: Vec<Value> = lines_of(&lines, "relay.attempt")
            .into_iter()
            .cloned()
            .collect();
        if attempts.len() >= 2 {
            break attempts;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 2 relay attempts:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    server.terminate();
    for (n, line) in attempts.iter().take(2).enumerate() {
        eprintln!("relay attempt line: {line}");
        assert_eq!(
            (
                line["to"].as_str(),
                line["attempt"].as_u64(),
                line["peer"].as_str()
            ),
            (Some(to.as_str()), Some(n as u64 + 1), Some(PEER_MX)),
            "{line}"
        );
        assert_eq!(line["result"], "deferred", "{line}");
        assert!(
            line["status"].as_str().unwrap().starts_with("4.")
                && !line["reply"].as_str().unwrap().is_empty(),
            "{line}"
        );
    }
    assert_eq!(attempts[0]["queue_row"], attempts[1]["queue_row"]);

    let lines = json_lines(&server);
    let transaction = lines_of(&lines, "smtp.transaction");
    assert_eq!(transaction.len(), 1, "{transaction:#?}");
    eprintln!("transaction line: {}", transaction[0]);
    assert_eq!(
        transaction[0]["message_id"], "journal-2@ch-test.mssante.fr",
        "{}",
        transaction[0]
    );
}
