//! End-to-end IMAP tests: the real binary driven by Python's imaplib (and raw sockets for
//! bad input), on SQLite and on PostgreSQL.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::Value;

const DR: &str = "dr.martin@ch-test.mssante.fr";

fn deliver(server: &Server, subject: &str, body: &str) -> Vec<u8> {
    let message = format!(
        "From: <lab@labo.mssante.fr>\r\nTo: <{DR}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@labo>\r\n\r\n{body}\r\n"
    );
    let file = server.db.data_path().join(format!("{subject}.eml"));
    std::fs::write(&file, &message).unwrap();
    let out = py(
        "mx",
        server,
        &[
            "--sender",
            "lab@labo.mssante.fr",
            "--rcpt",
            DR,
            "--message-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out["data"][0], 250, "{out}");
    message.into_bytes()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_string())
        .collect()
}

engine_tests_sync!(
    login_needs_tls_and_works_after_starttls_or_on_imaps,
    |engine| {
        let server = Server::start(engine, &[DR]);
        let out = py_imap("starttls_login", &server, DR, &[]);
        let before = strings(&out["before_tls"]);
        assert!(
            before.contains(&"LOGINDISABLED".into()) && before.contains(&"STARTTLS".into()),
            "{out}"
        );
        assert!(
            !before.iter().any(|c| c.starts_with("AUTH=")),
            "no AUTH= before TLS: {out}"
        );
        assert_eq!(out["login_before_tls"][0], "NO", "{out}");
        let after = strings(&out["after_tls"]);
        assert!(
            after.contains(&"AUTH=PLAIN".into()) && !after.contains(&"LOGINDISABLED".into()),
            "{out}"
        );
        assert!(
            after.contains(&"IMAP4REV2".into()) || after.contains(&"IMAP4rev2".into()),
            "{out}"
        );
        assert_eq!(out["login"], "OK");
        assert!(
            out["wrong_password"]
                .as_str()
                .unwrap()
                .contains("AUTHENTICATIONFAILED"),
            "{out}"
        );
        assert_eq!(out["imaps_login"], "OK");
    }
);

engine_tests_sync!(
    smtp_delivery_is_read_flagged_searched_and_expunged_over_imap,
    |engine| {
        let server = Server::start(engine, &[DR]);
        let sent = deliver(&server, "resultats", "Glycemie normale.");
        deliver(&server, "second", "Autre message.");
        let out = py_imap(
            "read_inbox",
            &server,
            DR,
            &["--subject", "resultats", "--body-word", "Glycemie"],
        );
        assert_eq!(out["exists"], 2, "{out}");
        let first = &out["fetch"][0];
        let body = hex::decode(first["body_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            strip_trace_header(&body),
            &sent[..],
            "BODY[] is the stored message byte for byte"
        );
        assert!(
            first["meta"]
                .as_str()
                .unwrap()
                .contains(&format!("RFC822.SIZE {}", body.len())),
            "{out}"
        );
        assert_eq!(strings(&out["unseen_before"]), vec!["1", "2"]);
        assert_eq!(strings(&out["unseen_after"]), vec!["2"]);
        assert_eq!(strings(&out["keyword"]), vec!["1"]);
        assert_eq!(strings(&out["subject_search"]), vec!["1"]);
        assert_eq!(strings(&out["body_search"]), vec!["1"]);
        assert_eq!(strings(&out["expunged"]), vec!["1"]);
        assert_eq!(out["exists_after"], 1);
        let envelope = out["envelope"].to_string();
        assert!(
            envelope.contains("ENVELOPE")
                && envelope.contains("resultats")
                && envelope.contains("BODYSTRUCTURE"),
            "{envelope}"
        );
        assert_eq!(server.messages(DR, "INBOX").len(), 1);
    }
);

engine_tests_sync!(folders_append_copy_move_rename_delete, |engine| {
    let server = Server::start(engine, &[DR]);
    deliver(&server, "one", "x");
    let out = py_imap("folders", &server, DR, &[]);
    assert_eq!(out["create"], "OK", "{out}");
    assert_eq!(out["create_dup"], "NO", "{out}");
    assert_eq!(out["create_utf7"], "OK", "{out}");
    let list = out["list"].to_string();
    for name in [
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Archives",
        "Archives/2026",
        "&AMk-t&AOk-",
    ] {
        assert!(
            list.contains(&format!("\\\"{name}\\\"")) || list.contains(&format!(" {name}\"")),
            "LIST lacks {name}: {list}"
        );
    }
    assert!(
        list.contains("\\\\Sent") && list.contains("\\\\Trash"),
        "special-use attributes: {list}"
    );
    assert_eq!(out["append"][0], "OK", "{out}");
    assert!(out["append"][1].to_string().contains("APPENDUID"), "{out}");
    assert_eq!(out["append_missing"], "NO");
    assert!(out["copy"][1].to_string().contains("COPYUID"), "{out}");
    assert!(out["move"].to_string().contains("COPYUID"), "{out}");
    assert!(out["status"].to_string().contains("MESSAGES 1"), "{out}");
    assert_eq!(out["rename"], "OK");
    assert!(
        out["list_renamed"].to_string().contains("Old/2026"),
        "children follow a rename: {out}"
    );
    assert_eq!(out["delete"], "OK");
    assert_eq!(out["delete_inbox"], "NO");
    assert!(out["lsub"].to_string().contains("Old"), "{out}");
    // Stored where IMAP said: the Été folder (UTF-8 in the store) holds the moved message.
    assert_eq!(server.messages(DR, "Été").len(), 1);
    assert_eq!(server.messages(DR, "INBOX").len(), 2, "delivered + copied");
});

engine_tests_sync!(idle_session_is_told_of_an_smtp_delivery, |engine| {
    let server = Server::start(engine, &[DR]);
    let mut child = imap_command("idle", &server, DR, &["--timeout", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "IDLING");
    let start = Instant::now();
    deliver(&server, "pushed", "now");
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let elapsed = start.elapsed();
    assert!(child.wait().unwrap().success());
    let out: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(
        strings(&out["untagged"]).iter().any(|l| l == "* 1 EXISTS"),
        "{out}"
    );
    assert!(
        out["done"]
            .as_str()
            .unwrap()
            .ends_with("OK IDLE terminated"),
        "{out}"
    );
    eprintln!("IDLE notification after {elapsed:?} (SMTP transaction included)");
    assert!(elapsed < Duration::from_secs(20));
});

engine_tests_sync!(two_sessions_see_each_others_changes, |engine| {
    let server = Server::start(engine, &[DR]);
    deliver(&server, "shared", "x");
    let out = py_imap("two_sessions", &server, DR, &[]);
    assert!(
        out["flags_seen"].to_string().contains("\\\\Flagged"),
        "{out}"
    );
    assert_eq!(strings(&out["expunge_seen"]), vec!["1"], "{out}");
});

engine_tests_sync!(bad_input_gets_tagged_errors_and_never_crashes, |engine| {
    let server = Server::start(engine, &[DR]);
    deliver(&server, "one", "x");
    let out = py_imap("bad_input", &server, DR, &[]);
    assert!(
        out["unknown"].as_str().unwrap().starts_with("a1 BAD"),
        "{out}"
    );
    assert!(
        out["select_unauth"].as_str().unwrap().starts_with("a2 BAD"),
        "{out}"
    );
    assert!(out["login"].as_str().unwrap().starts_with("a3 OK"), "{out}");
    assert!(
        out["fetch_unselected"]
            .as_str()
            .unwrap()
            .starts_with("a4 BAD"),
        "{out}"
    );
    assert!(
        out["bad_seq"].as_str().unwrap().starts_with("a6 BAD"),
        "{out}"
    );
    assert!(
        out["bad_set"].as_str().unwrap().starts_with("a7 BAD"),
        "{out}"
    );
    assert!(
        out["bad_name"].as_str().unwrap().starts_with("a8 NO"),
        "{out}"
    );
    assert!(
        out["literal_too_big"]
            .as_str()
            .unwrap()
            .starts_with("a9 NO [TOOBIG]"),
        "{out}"
    );
    assert_eq!(out["pipelined_ok"], 1000, "{out}");
    assert!(
        out["line_too_long"].as_str().unwrap().starts_with("* BAD"),
        "{out}"
    );
    assert!(
        out["after_long_line"]
            .as_str()
            .unwrap()
            .starts_with("a12 OK"),
        "session survives: {out}"
    );
    assert!(
        out["nonsync_too_big"]
            .as_str()
            .unwrap()
            .starts_with("* BYE"),
        "{out}"
    );
    assert_eq!(out["closed"], true);
    // Still serving.
    let again = py_imap("starttls_login", &server, DR, &[]);
    assert_eq!(again["login"], "OK");
});

engine_tests_sync!(
    quota_is_reported_and_enforced_on_append_and_delivery,
    |engine| {
        let server = Server::start(engine, &[DR]);
        let none = py_imap("quota", &server, DR, &[]);
        assert!(
            strings(&none["caps"]).iter().any(|c| c == "QUOTA"),
            "{none}"
        );
        assert_eq!(
            none["getquota"][0], "NO",
            "no quota root without a quota: {none}"
        );
        assert_eq!(none["append_big"][0], "OK", "no quota, no limit: {none}");
        // 2 MB used now; a 3 MB quota leaves room for small messages only.
        server.cli_ok(&["bal", "quota", DR, "--megabytes", "3"]);
        deliver(&server, "small", "x");
        let out = py_imap("quota", &server, DR, &[]);
        let root = out["quotaroot"].to_string();
        assert!(
            root.contains("INBOX") && root.contains("STORAGE") && root.contains(" 3072)"),
            "{out}"
        );
        assert!(out["getquota"].to_string().contains("STORAGE"), "{out}");
        assert!(
            out["append_big"][1].to_string().contains("OVERQUOTA"),
            "{out}"
        );
        // Fill the box past its quota by SMTP (accepted while under), then the next is refused.
        let big = server.db.data_path().join("big.eml");
        std::fs::write(
            &big,
            format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(1_200_000)),
        )
        .unwrap();
        let first = py(
            "mx",
            &server,
            &[
                "--sender",
                "lab@labo.mssante.fr",
                "--rcpt",
                DR,
                "--message-file",
                big.to_str().unwrap(),
            ],
        );
        assert_eq!(first["data"][0], 250, "{first}");
        let refused = py(
            "mx",
            &server,
            &["--sender", "lab@labo.mssante.fr", "--rcpt", DR],
        );
        assert_eq!(refused["rcpt"][DR][0], 552, "{refused}");
        assert!(
            refused["rcpt"][DR][1]
                .as_str()
                .unwrap()
                .starts_with("5.2.2"),
            "{refused}"
        );
        let show = server.cli_ok(&["bal", "show", DR]);
        assert!(show.contains("quota 3 MB"), "{show}");
    }
);

// Issue 11's extensions as Python's imaplib sends them, through the real binary.
engine_tests_sync!(imaplib_uses_the_issue_11_extensions, |engine| {
    let server = Server::start(engine, &[DR]);
    let out = py_imap("extensions", &server, DR, &[]);
    let caps = strings(&out["capabilities"]);
    for cap in [
        "THREAD=REFERENCES",
        "ESORT",
        "CONTEXT=SEARCH",
        "CONTEXT=SORT",
        "PARTIAL",
        "CATENATE",
        "PREVIEW",
        "OBJECTID",
        "SAVEDATE",
        "REPLACE",
        "UNAUTHENTICATE",
        "COMPRESS=DEFLATE",
    ] {
        assert!(caps.contains(&cap.to_string()), "{cap} not in {caps:?}");
    }
    assert_eq!(out["thread"], serde_json::json!(["(1 2)(3)"]), "{out}");
    let esort = out["esort"][1][0].as_str().unwrap();
    assert!(esort.ends_with("MIN 3 MAX 1 COUNT 3 ALL 3,2,1"), "{out}");
    let partial = out["partial"][1][0].as_str().unwrap();
    assert!(partial.ends_with("PARTIAL (-1:-2 2:3)"), "{out}");
    let tag = out["context_tag"].as_str().unwrap();
    assert_eq!(
        out["context_update"][1][0],
        format!("(TAG \"{tag}\") ADDTO (1 2)"),
        "{out}"
    );
    assert_eq!(out["cancelupdate"], "OK", "{out}");
    let fetched = out["fetch"][1][0].as_str().unwrap();
    assert!(
        fetched.contains("PREVIEW \"Resultats du bilan sanguin\" EMAILID (M")
            && fetched.contains(" SAVEDATE \""),
        "{out}"
    );
    assert_eq!(out["catenate"][0], "OK", "{out}");
    assert!(
        out["catenated_text"]
            .as_str()
            .unwrap()
            .ends_with("BODY[TEXT] \"Nouveau corps\")"),
        "{out}"
    );
    assert_eq!(out["replace"][0], "OK", "{out}");
    assert_eq!(out["unauthenticate"], "OK", "{out}");
    assert_eq!(out["login_again"], "OK", "{out}");
});

/// The Python interpreter with `imapclient` installed (`scripts/test` makes a venv and sets
/// MSSANTE_TEST_PYTHON); without it the test fails saying so.
fn imapclient_python() -> String {
    std::env::var("MSSANTE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

engine_tests_sync!(imapclient_runs_the_whole_client_flow, |engine| {
    let server = Server::start(engine, &[DR]);
    deliver(&server, "resultats", "Glycemie normale.");
    let idle_msg = server.db.data_path().join("idle.eml");
    std::fs::write(&idle_msg, "Subject: pendant IDLE\r\n\r\nx\r\n").unwrap();
    let deliver_cmd = [
        "python3".to_string(),
        clients_dir().join("smtp_client.py").display().to_string(),
        "mx".into(),
        "--smtp".into(),
        server.ports.smtp.to_string(),
        "--sender".into(),
        "lab@labo.mssante.fr".into(),
        "--rcpt".into(),
        DR.into(),
        "--message-file".into(),
        idle_msg.display().to_string(),
    ];
    let out = std::process::Command::new(imapclient_python())
        .arg(clients_dir().join("imapclient_flow.py"))
        .args([
            "--imap",
            &server.ports.imap.to_string(),
            "--user",
            DR,
            "--password",
            PASSWORD,
            "--deliver-cmd",
        ])
        .arg(serde_json::to_string(&deliver_cmd).unwrap())
        .output()
        .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "imapclient flow failed (scripts/test installs imapclient in a venv and sets MSSANTE_TEST_PYTHON): {stderr}\n{}",
        server.log()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in ["INBOX", "Sent", "Drafts", "Trash"] {
        assert!(strings(&v["folders"]).contains(&f.to_string()), "{v}");
    }
    assert_eq!(strings(&v["special"]), vec!["Sent", "Trash"], "{v}");
    assert_eq!(v["exists"], 1);
    assert_eq!(v["search"], serde_json::json!([1]));
    assert_eq!(v["subject"], "resultats");
    assert_eq!(v["from"], "lab@labo.mssante.fr");
    assert_eq!(v["text"], "Glycemie normale.\r\n");
    // \\Recent: this session is the first to see the delivery (RFC 3501 §2.3.2).
    assert_eq!(
        v["flags_after_store"],
        serde_json::json!(["$Important", "\\Recent", "\\Seen"]),
        "{v}"
    );
    assert!(v["append"].as_str().unwrap().contains("APPENDUID"), "{v}");
    assert_eq!(
        (
            v["inbox_after_move"].as_i64(),
            v["trash_after_move"].as_i64()
        ),
        (Some(0), Some(1)),
        "{v}"
    );
    assert!(
        v["idle"].to_string().contains("EXISTS"),
        "IDLE told of the delivery: {v}"
    );
    eprintln!(
        "imapclient IDLE wake-up after {} s (SMTP transaction included)",
        v["idle_seconds"]
    );
});

/// Clients that send an IP address as TLS server name (RFC 6066 §3 forbids it, some do it
/// anyway) must not cost a WARN line per connection: 71,802 lines in 18 minutes of load.
#[test]
fn an_ip_address_as_tls_server_name_does_not_flood_the_log() {
    let server = Server::start(Engine::Sqlite, &[DR]);
    for _ in 0..3 {
        let mut child = std::process::Command::new("openssl")
            .args(["s_client", "-quiet", "-servername", "127.0.0.1", "-connect"])
            .arg(format!("127.0.0.1:{}", server.ports.imaps))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client (apt-get install openssl)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"a LOGOUT\r\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("* OK [CAPABILITY"),
            "no greeting over TLS: {text}"
        );
    }
    let log = server.log();
    assert!(
        !log.lines().any(|l| l.contains("WARN") && l.contains("SNI")),
        "{log}"
    );
}
