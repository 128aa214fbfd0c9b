//! End-to-end SMTP tests: the real binary, real clients (Python smtplib / raw sockets,
//! swaks), on SQLite and on PostgreSQL.

mod common;

use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::Value;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const SEC: &str = "secretariat@ch-test.mssante.fr";

fn code(v: &Value) -> i64 {
    v[0].as_i64()
        .unwrap_or_else(|| panic!("no reply code in {v}"))
}

fn text(v: &Value) -> String {
    v[1].as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v[1].to_string())
}

engine_tests_sync!(
    starttls_auth_plain_submission_delivers_locally_and_queues_remote,
    |engine| {
        let server = Server::start(engine, &[DR, SEC]);
        let out = py(
            "submit",
            &server,
            &[
                "--login",
                DR,
                "--sender",
                DR,
                "--rcpt",
                SEC,
                "--rcpt",
                "dr.x@autre-ch.mssante.fr",
                "--mail-option",
                "RET=HDRS",
                "--mail-option",
                "ENVID=lab+2B42",
                "--rcpt-option",
                "NOTIFY=SUCCESS,FAILURE",
            ],
        );
        assert_eq!(code(&out["mail"]), 250, "{out}");
        assert_eq!(code(&out["rcpt"][SEC]), 250, "{out}");
        assert_eq!(code(&out["rcpt"]["dr.x@autre-ch.mssante.fr"]), 250, "{out}");
        assert_eq!(code(&out["data"]), 250, "{out}");
        let inbox = server.messages(SEC, "INBOX");
        assert_eq!(inbox.len(), 1);
        let stored = String::from_utf8_lossy(&inbox[0]);
        assert!(
            stored.contains("with ESMTPSA"),
            "trace header says TLS + auth: {stored}"
        );
        let queued = server.queued();
        assert_eq!(
            queued.len(),
            1,
            "the remote recipient waits in the outbound queue"
        );
        assert_eq!(queued[0].address, "dr.x@autre-ch.mssante.fr");
        // The text forms the store keeps and the relay passes on (RFC 3461 §4.1, §4.3).
        let notify = queued[0].notify.map(|n| n.to_string());
        assert_eq!(notify.as_deref(), Some("SUCCESS,FAILURE"));
        assert_eq!(queued[0].ret.map(|r| r.as_str()), Some("HDRS"));
        assert_eq!(queued[0].envid.as_deref(), Some("lab+42"));
        // NOTIFY=SUCCESS: the local delivery owes its sender a `delivered` report, itself a
        // message; the submitted one has a single row for its local and remote recipients.
        wait_for_report(&server, DR);
        assert_eq!(
            server.message_count(),
            2,
            "one message row for local and remote recipients, plus the report"
        );
    }
);

engine_tests_sync!(swaks_submits_with_starttls_and_auth, |engine| {
    let server = Server::start(engine, &[DR, SEC]);
    let port = server.ports.submission.to_string();
    let (status, transcript) = swaks(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        DR,
        "--auth-password",
        PASSWORD,
        "--from",
        DR,
        "--to",
        SEC,
        "--header",
        "Subject: via swaks",
        "--body",
        "Bonjour.",
    ]);
    assert_eq!(status, 0, "{transcript}");
    assert!(transcript.contains("235 2.7.0"), "{transcript}");
    let inbox = server.messages(SEC, "INBOX");
    assert_eq!(inbox.len(), 1);
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Subject: via swaks"));
});

engine_tests_sync!(implicit_tls_submission_with_auth_login, |engine| {
    let server = Server::start(engine, &[DR, SEC]);
    let out = py(
        "submissions",
        &server,
        &["--login", DR, "--sender", DR, "--rcpt", SEC],
    );
    assert_eq!(code(&out["auth"]), 235, "{out}");
    assert_eq!(code(&out["data"]), 250, "{out}");
    assert_eq!(server.messages(SEC, "INBOX").len(), 1);
});

engine_tests_sync!(auth_is_refused_before_tls, |engine| {
    let server = Server::start(engine, &[DR]);
    let out = py("auth_before_tls", &server, &["--login", DR]);
    assert_eq!(
        out["advertised"], false,
        "AUTH must not be advertised before TLS: {out}"
    );
    assert_eq!(code(&out["auth"]), 538, "{out}");
    assert!(text(&out["auth"]).starts_with("5.7.11"), "{out}");
    assert_eq!(
        code(&out["mail_without_auth"]),
        530,
        "submission requires auth: {out}"
    );
});

engine_tests_sync!(ehlo_advertises_the_required_extensions, |engine| {
    let server = Server::start(engine, &[DR]);
    let out = py("ehlo", &server, &[]);
    for ext in [
        "pipelining",
        "size",
        "8bitmime",
        "enhancedstatuscodes",
        "smtputf8",
        "chunking",
        "dsn",
    ] {
        for listener in ["submission_plain", "submission_tls", "submissions", "mx"] {
            assert!(
                out[listener].as_array().unwrap().iter().any(|e| e == ext),
                "{listener} lacks {ext}: {out}"
            );
        }
    }
    let has = |l: &str, e: &str| out[l].as_array().unwrap().iter().any(|x| x == e);
    assert!(has("submission_plain", "starttls") && !has("submission_plain", "auth"));
    assert!(has("submission_tls", "auth") && !has("submission_tls", "starttls"));
    assert!(has("submissions", "auth"));
    assert!(!has("mx", "auth"), "no AUTH on the MX");
    assert_eq!(
        out["auth_mechanisms"],
        serde_json::json!(["PLAIN", "LOGIN"])
    );
    assert_eq!(out["size"], "52428800");
});

engine_tests_sync!(wrong_password_is_refused, |engine| {
    let server = Server::start(engine, &[DR]);
    let out = py("bad_login", &server, &["--login", DR]);
    assert_eq!(code(&out["auth"]), 535, "{out}");
    assert!(text(&out["auth"]).starts_with("5.7.8"), "{out}");
});

engine_tests_sync!(send_as_a_foreign_sender_is_refused, |engine| {
    let server = Server::start(engine, &[DR, SEC]);
    for foreign in [SEC, "ceo@autre-ch.mssante.fr"] {
        let out = py(
            "submit",
            &server,
            &["--login", DR, "--sender", foreign, "--rcpt", SEC],
        );
        assert_eq!(code(&out["mail"]), 550, "{foreign}: {out}");
        assert!(text(&out["mail"]).starts_with("5.7.1"), "{out}");
    }
    assert_eq!(server.message_count(), 0);
});

engine_tests_sync!(relay_is_refused_on_the_mx, |engine| {
    let server = Server::start(engine, &[DR]);
    let out = py(
        "mx",
        &server,
        &[
            "--sender",
            "lab@labo.mssante.fr",
            "--rcpt",
            "someone@elsewhere.mssante.fr",
        ],
    );
    assert_eq!(
        code(&out["rcpt"]["someone@elsewhere.mssante.fr"]),
        550,
        "{out}"
    );
    assert!(
        text(&out["rcpt"]["someone@elsewhere.mssante.fr"]).starts_with("5.7.1"),
        "{out}"
    );
    let port = server.ports.smtp.to_string();
    let (status, transcript) = swaks(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--from",
        "lab@labo.mssante.fr",
        "--to",
        "x@gmail.com",
    ]);
    assert_ne!(status, 0);
    assert!(transcript.contains("550 5.7.1"), "{transcript}");
    assert!(server.queued().is_empty(), "nothing queued for relay");
});

engine_tests_sync!(
    unknown_suspended_and_closed_bals_get_clear_errors,
    |engine| {
        let server = Server::start(engine, &[DR, SEC, "ferme@ch-test.mssante.fr"]);
        server.cli_ok(&["bal", "suspend", SEC]);
        server.cli_ok(&["bal", "close", "ferme@ch-test.mssante.fr"]);
        let port = server.ports.smtp.to_string();
        let (status, transcript) = swaks(&[
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--from",
            "lab@labo.mssante.fr",
            "--to",
            "nobody@ch-test.mssante.fr",
        ]);
        assert_ne!(status, 0);
        assert!(transcript.contains("550 5.1.1"), "{transcript}");
        let out = py(
            "mx",
            &server,
            &[
                "--sender",
                "lab@labo.mssante.fr",
                "--rcpt",
                SEC,
                "--rcpt",
                "ferme@ch-test.mssante.fr",
                "--rcpt",
                DR,
            ],
        );
        assert_eq!(code(&out["rcpt"][SEC]), 550, "{out}");
        assert!(
            text(&out["rcpt"][SEC]).contains("5.2.1")
                && text(&out["rcpt"][SEC]).contains("suspended"),
            "{out}"
        );
        assert!(
            text(&out["rcpt"]["ferme@ch-test.mssante.fr"]).contains("closed"),
            "{out}"
        );
        assert_eq!(
            code(&out["data"]),
            250,
            "the active recipient still gets it: {out}"
        );
        assert_eq!(server.messages(DR, "INBOX").len(), 1);
        assert!(server.messages(SEC, "INBOX").is_empty());
    }
);

engine_tests_sync!(size_limit_is_enforced_before_and_after_data, |engine| {
    let server = Server::start_with(engine, "[smtp]\nmax_message_size = 200000", &[DR]);
    let out = py(
        "size",
        &server,
        &["--sender", "lab@labo.mssante.fr", "--rcpt", DR],
    );
    assert_eq!(out["limit"], 200000);
    assert_eq!(code(&out["declared"]), 552, "{out}");
    assert!(text(&out["declared"]).starts_with("5.3.4"), "{out}");
    assert_eq!(code(&out["data"]), 552, "{out}");
    assert!(text(&out["data"]).starts_with("5.3.4"), "{out}");
    assert_eq!(server.message_count(), 0);
});

engine_tests_sync!(
    a_fully_pipelined_transaction_is_answered_in_order,
    |engine| {
        let server = Server::start(engine, &[DR, SEC]);
        let out = py(
            "pipelining",
            &server,
            &[
                "--sender",
                "lab@labo.mssante.fr",
                "--rcpt",
                DR,
                "--rcpt",
                SEC,
            ],
        );
        // EHLO, MAIL, RCPT, RCPT, DATA(354), end of data, QUIT
        assert_eq!(
            out["codes"],
            serde_json::json!([250, 250, 250, 250, 354, 250, 221]),
            "{out}"
        );
        assert_eq!(server.messages(DR, "INBOX").len(), 1);
        assert_eq!(server.messages(SEC, "INBOX").len(), 1);
        assert_eq!(
            server.message_count(),
            1,
            "stored once for two local recipients"
        );
    }
);

engine_tests_sync!(bdat_chunks_are_stored_byte_for_byte, |engine| {
    let server = Server::start(engine, &[DR]);
    let message = b"Subject: chunked\r\n\r\n.a line starting with a dot is not stuffed in BDAT\r\n.\r\nend\r\n";
    let file = server.db.data_path().join("bdat.eml");
    std::fs::write(&file, message).unwrap();
    let out = py(
        "bdat",
        &server,
        &[
            "--sender",
            "lab@labo.mssante.fr",
            "--rcpt",
            DR,
            "--message-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out["codes"],
        serde_json::json!([250, 250, 250, 250, 250, 221]),
        "{out}"
    );
    let inbox = server.messages(DR, "INBOX");
    assert_eq!(inbox.len(), 1);
    assert_eq!(strip_trace_header(&inbox[0]), message);
});

engine_tests_sync!(utf8_addresses_need_and_work_with_smtputf8, |engine| {
    let server = Server::start(engine, &["élodie.dupré@ch-test.mssante.fr"]);
    let rcpt = "élodie.dupré@ch-test.mssante.fr";
    let without = py(
        "mx",
        &server,
        &["--sender", "lab@labo.mssante.fr", "--rcpt", rcpt],
    );
    assert_eq!(code(&without["rcpt"][rcpt]), 553, "{without}");
    assert!(
        text(&without["rcpt"][rcpt]).starts_with("5.6.7"),
        "{without}"
    );
    let with = py(
        "mx",
        &server,
        &[
            "--sender",
            "labo.étoile@labo.mssante.fr",
            "--rcpt",
            rcpt,
            "--mail-option",
            "SMTPUTF8",
        ],
    );
    assert_eq!(code(&with["mail"]), 250, "{with}");
    assert_eq!(code(&with["data"]), 250, "{with}");
    let inbox = server.messages(rcpt, "INBOX");
    assert_eq!(inbox.len(), 1);
    assert!(
        String::from_utf8_lossy(&inbox[0]).contains("with UTF8SMTP"),
        "RFC 6531 §4.3 protocol name"
    );
});

engine_tests_sync!(
    dot_stuffing_is_undone_and_the_message_kept_byte_for_byte,
    |engine| {
        let server = Server::start(engine, &[DR]);
        // Lines starting with dots, a lone dot inside, trailing spaces, 8-bit text, an empty last line.
        let message = "From: <lab@labo.mssante.fr>\r\nSubject: points\r\nContent-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: 8bit\r\n\r\n.\r\n..\r\n.leading\r\n...three\r\nrésultat  \r\n \r\n.\r\n\r\n";
        let file = server.db.data_path().join("dots.eml");
        std::fs::write(&file, message).unwrap();
        let out = py(
            "mx",
            &server,
            &[
                "--sender",
                "lab@labo.mssante.fr",
                "--rcpt",
                DR,
                "--message-file",
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(code(&out["data"]), 250, "{out}");
        let inbox = server.messages(DR, "INBOX");
        assert_eq!(strip_trace_header(&inbox[0]), message.as_bytes());
    }
);

engine_tests_sync!(
    bare_lf_smuggling_is_refused_and_nothing_is_stored,
    |engine| {
        let server = Server::start(engine, &[DR]);
        for variant in ["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf", "cr-dot-cr"] {
            let out = py(
                "smuggle",
                &server,
                &[
                    "--sender",
                    "lab@labo.mssante.fr",
                    "--rcpt",
                    DR,
                    "--variant",
                    variant,
                ],
            );
            assert_eq!(
                out["before_data"],
                serde_json::json!([250, 250, 250, 354]),
                "{variant}: {out}"
            );
            let after = out["after_body"].as_array().unwrap();
            assert_eq!(
                after.len(),
                1,
                "{variant}: exactly one reply to the whole body, no smuggled commands: {out}"
            );
            assert_eq!(after[0][0], 550, "{variant}: {out}");
            assert!(
                after[0][1][0].as_str().unwrap().starts_with("5.6.0"),
                "{out}"
            );
            assert_eq!(out["noop"], 250, "session still usable");
        }
        assert!(
            server.messages(DR, "INBOX").is_empty(),
            "neither the legit nor the smuggled message is stored"
        );
    }
);

engine_tests_sync!(commands_injected_behind_starttls_are_discarded, |engine| {
    let server = Server::start(engine, &[DR]);
    let out = py("starttls_inject", &server, &[]);
    assert_eq!(out["starttls"], 220, "{out}");
    assert_eq!(out["first_after_tls"][0], 250, "{out}");
    assert_eq!(
        out["first_after_tls"][1][0], HOSTNAME,
        "first reply inside TLS is the EHLO reply: {out}"
    );
    assert_eq!(
        out["extra"],
        serde_json::json!([]),
        "the injected RSET/NOOP were not executed: {out}"
    );
    assert!(
        server
            .log()
            .contains("discarding plaintext pipelined after STARTTLS")
    );
});

engine_tests_sync!(garbage_long_lines_and_error_limit, |engine| {
    let server = Server::start(engine, &[DR]);
    let out = py("errors", &server, &[]);
    assert_eq!(out["unknown"], 500, "{out}");
    assert_eq!(out["syntax"], 501, "{out}");
    assert_eq!(out["sequence"], 503, "{out}");
    assert_eq!(out["too_long"][0], 500, "{out}");
    assert!(
        out["too_long"][1][0].as_str().unwrap().starts_with("5.5.6"),
        "{out}"
    );
    assert_eq!(out["garbage"], 501, "{out}");
    assert_eq!(
        out["still_alive"], 250,
        "the session survives bad input: {out}"
    );
    let codes = out["until_close"].as_array().unwrap();
    assert_eq!(
        codes.last().unwrap(),
        421,
        "closed after too many errors: {out}"
    );
    assert_eq!(out["closed"], true, "{out}");
    // The server is still serving others.
    let again = py(
        "mx",
        &server,
        &["--sender", "lab@labo.mssante.fr", "--rcpt", DR],
    );
    assert_eq!(code(&again["data"]), 250);
});

engine_tests_sync!(too_many_recipients_get_452, |engine| {
    let server = Server::start(engine, &[DR]);
    let mut args = vec![
        "--login".to_string(),
        DR.to_string(),
        "--sender".into(),
        DR.into(),
    ];
    for i in 0..101 {
        args.push("--rcpt".into());
        args.push(format!("dr{i}@autre-ch.mssante.fr"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = py("too_many_rcpts", &server, &args);
    let codes = out["codes"].as_array().unwrap();
    assert!(codes[..100].iter().all(|c| c == 250), "{out}");
    assert_eq!(codes[100], 452, "{out}");
});

engine_tests_sync!(
    a_thousand_messages_over_ten_connections_are_stored_exactly_once,
    |engine| {
        let server = Server::start(engine, &[DR]);
        let out = py(
            "parallel",
            &server,
            &[
                "--sender",
                "lab@labo.mssante.fr",
                "--rcpt",
                DR,
                "--count",
                "1000",
                "--connections",
                "10",
            ],
        );
        assert_eq!(out["errors"], serde_json::json!([]), "{out}");
        assert_eq!(out["acked"].as_array().unwrap().len(), 1000);
        let inbox = server.messages(DR, "INBOX");
        assert_eq!(inbox.len(), 1000);
        let mut seen = std::collections::HashSet::new();
        for m in &inbox {
            let text = String::from_utf8_lossy(m);
            let id = text
                .split("Message-ID: <m")
                .nth(1)
                .and_then(|s| s.split('@').next())
                .unwrap()
                .to_string();
            assert!(seen.insert(id.clone()), "message {id} stored twice");
        }
        assert_eq!(seen.len(), 1000);
        assert_eq!(server.message_count(), 1000);
    }
);

/// SQLite only: on PostgreSQL large bodies go to the database too (ADR 0023); its storage
/// failures are the database outage of `tests/outage_e2e.rs`.
#[test]
fn a_storage_failure_answers_451_and_keeps_nothing() {
    let server = Server::start(Engine::Sqlite, &[DR]);
    let blobs = server.db.data_path().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"a file where the blob directory should be").unwrap();
    // A body too large for the database (ADR 0009) goes through the blob store.
    let big = server.db.data_path().join("big.eml");
    let mut body = format!("From: <lab@labo.mssante.fr>\r\nTo: <{DR}>\r\nSubject: big\r\n\r\n");
    while body.len() <= mssante_store::INLINE_BLOB_MAX {
        body.push_str(&"0123456789".repeat(7));
        body.push_str("\r\n");
    }
    std::fs::write(&big, body).unwrap();
    let out = py(
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
    assert_eq!(code(&out["data"]), 451, "{out}");
    assert!(text(&out["data"]).starts_with("4.3.0"), "{out}");
    std::fs::remove_file(&blobs).unwrap();
    std::fs::create_dir(&blobs).unwrap();
    assert_eq!(server.message_count(), 0, "nothing half-written");
    assert!(server.messages(DR, "INBOX").is_empty());
}

engine_tests_sync!(
    sigterm_tells_idle_sessions_421_and_stops_cleanly,
    |engine| {
        use std::io::{BufRead, BufReader, Write};
        let mut server = Server::start(engine, &[DR]);
        let stream = std::net::TcpStream::connect(("127.0.0.1", server.ports.smtp)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("220 "), "{line}");
        (&stream).write_all(b"NOOP\r\n").unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("250 "), "{line}");
        let status = server.terminate();
        assert!(status.success(), "clean exit after SIGTERM: {status}");
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("421 4.3.2"),
            "idle session told the service is going down: {line:?}"
        );
    }
);

engine_tests_sync!(
    a_local_delivery_reports_success_to_the_sender_without_the_relay,
    |engine| {
        // No [trust] ca_file: the relay is off; reports must not depend on it.
        let server = Server::start(engine, &[DR, SEC]);
        assert!(server.log().contains("relay      off"), "{}", server.log());
        let args = format!(
            "--login {DR} --sender {DR} --rcpt {SEC} --mail-option ENVID=local-1 --rcpt-option NOTIFY=SUCCESS"
        );
        let out = py("submit", &server, &args.split(' ').collect::<Vec<_>>());
        assert_eq!(code(&out["data"]), 250, "{out}");
        let report = wait_for_report(&server, DR);
        for expected in [
            "report-type=delivery-status",
            "Action: delivered",
            &format!("Final-Recipient: rfc822;{SEC}"),
            "Original-Envelope-Id: local-1",
        ] {
            assert!(report.contains(expected), "lacks {expected:?}: {report}");
        }
        assert_eq!(server.messages(SEC, "INBOX").len(), 1);
    }
);

/// The first message of `sender`'s INBOX (where reports arrive), waited for.
fn wait_for_report(server: &Server, sender: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(m) = server.messages(sender, "INBOX").first() {
            return String::from_utf8_lossy(m).to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no DSN reached the sender: {}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
