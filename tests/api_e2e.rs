//! The HTTP API (`/api/v1`) over real HTTP with curl, on SQLite and PostgreSQL: API keys
//! from the command line, sending (JSON and raw) with the durability of SMTP, status per
//! recipient, idempotency, bulk NDJSON, the rate limit, and every kind of bad input getting
//! its problem type while changing nothing.

mod common;

use common::http::*;
use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::{Value, json};

const LAB: &str = "resultats@ch-test.mssante.fr";
const DOCTOR: &str = "dr.martin@ch-test.mssante.fr";
const OTHER: &str = "dr.durand@ch-test.mssante.fr";

/// A server with the lab's APP BAL and two doctors, and a key for the lab.
fn lab_server(engine: Engine, extra: &str) -> (Server, String) {
    let mut server = Server::configure(engine, extra);
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(DOCTOR, "10001234567");
    server.create_bal(OTHER, "10001234568");
    create_lab_bal(&server, LAB);
    let key = create_api_key(&server, "SIL", "send,status,read", LAB);
    server.spawn();
    (server, key)
}

fn report(subject: &str) -> Value {
    json!({
        "to": [DOCTOR],
        "subject": subject,
        "text": "Compte rendu de biologie.",
        "headers": {"X-MSS-NIL": "SIL-Test 1.0"},
        "attachments": [{"filename": "cr.pdf", "content_type": "application/pdf",
                          "content_base64": "JVBERi0xLjQK"}]
    })
}

engine_tests_sync!(a_key_sends_json_and_raw_and_reads_the_status, |engine| {
    let (server, key) = lab_server(engine, "");
    let path = format!("/api/v1/bals/{LAB}/messages");
    let sent = post_json(&server, &key, &path, &report("CR 1"), &[]);
    assert_eq!(sent.status, 202, "{}", sent.body);
    let sent = sent.json();
    assert_eq!(
        sent["recipients"],
        json!([{"address": DOCTOR, "state": "delivered"}])
    );
    // Durable before 202: the message is in the doctor's INBOX when the answer arrives.
    let inbox = server.messages(DOCTOR, "INBOX");
    assert_eq!(inbox.len(), 1);
    let text = String::from_utf8_lossy(&inbox[0]).to_string();
    assert!(
        text.contains("Subject: CR 1") && text.contains("X-MSS-NIL: SIL-Test 1.0"),
        "{text}"
    );
    assert!(
        text.contains("cr.pdf") && text.starts_with("Received: from key:"),
        "{text}"
    );
    let status = curl(&[
        "-H",
        &bearer(&key),
        &url(&server, &format!("/api/v1/messages/{}", sent["id"])),
    ]);
    assert_eq!(status.status, 200, "{}", status.body);
    let status = status.json();
    assert_eq!(status["recipients"][0]["address"], DOCTOR);
    assert_eq!(status["recipients"][0]["state"], "delivered");
    assert_eq!(status["message_id"], sent["message_id"]);

    // Raw RFC 5322 with Unix line ends: stored with CRLF, envelope from the query.
    let raw =
        format!("From: <{LAB}>\nTo: <{OTHER}>\nSubject: brut\nMessage-ID: <raw-1@lab>\n\nligne\n");
    let target = url(
        &server,
        &format!("{path}?rcpt={OTHER}&notify=SUCCESS,FAILURE&ret=HDRS"),
    );
    let auth = bearer(&key);
    let sent = curl(&[
        "-H",
        &auth,
        "-H",
        "Content-Type: message/rfc822",
        "--data-binary",
        &raw,
        &target,
    ]);
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.json()["message_id"], "raw-1@lab");
    let stored = server.messages(OTHER, "INBOX");
    assert!(
        strip_trace_header(&stored[0])
            .ends_with(b"Subject: brut\r\nMessage-ID: <raw-1@lab>\r\n\r\nligne\r\n")
    );

    // /me lists the key's BAL with its scopes.
    let me = curl(&["-H", &auth, &url(&server, "/api/v1/me")]).json();
    assert_eq!(me["kind"], "api-key");
    assert_eq!(me["bals"][0]["address"], LAB);
    let info = curl(&["-H", &auth, &url(&server, &format!("/api/v1/bals/{LAB}"))]).json();
    assert_eq!(
        (info["type"].as_str(), info["finess"].as_str()),
        (Some("APP"), Some("750712186"))
    );
});

engine_tests_sync!(
    an_idempotency_key_replays_and_refuses_another_body,
    |engine| {
        let (server, key) = lab_server(engine, "");
        let path = format!("/api/v1/bals/{LAB}/messages");
        let idem = ["-H", "Idempotency-Key: cr-2026-0001"];
        let first = post_json(&server, &key, &path, &report("CR idem"), &idem);
        assert_eq!(first.status, 202, "{}", first.body);
        let again = post_json(&server, &key, &path, &report("CR idem"), &idem);
        assert_eq!(
            (again.status, again.body.as_str()),
            (202, first.body.as_str())
        );
        assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
        assert_eq!(server.message_count(), 1, "a replay sends nothing");
        let other = post_json(&server, &key, &path, &report("CR autre"), &idem);
        assert_eq!(
            (other.status, other.problem().as_str()),
            (422, "idempotency-key-reused")
        );
        assert_eq!(server.message_count(), 1);
    }
);

engine_tests_sync!(bad_input_gets_its_problem_and_changes_nothing, |engine| {
    let (server, key) = lab_server(engine, "[smtp]\nmax_message_size = 20000\n");
    let doctor_key = create_api_key(&server, "x", "status", DOCTOR);
    let path = format!("/api/v1/bals/{LAB}/messages");
    let target = url(&server, &path);
    let auth = bearer(&key);
    let big = "x".repeat(30_000);
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "malformed JSON",
            curl(&[
                "-H",
                &auth,
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{\"to\":",
                &target,
            ]),
            400,
            "malformed-json",
        ),
        (
            "unknown field",
            post_json(
                &server,
                &key,
                &path,
                &json!({"to": [DOCTOR], "subject": "s", "bcc_all": true}),
                &[],
            ),
            422,
            "invalid-request",
        ),
        (
            "oversized message",
            post_json(
                &server,
                &key,
                &path,
                &json!({"to": [DOCTOR], "subject": "s", "text": big}),
                &[],
            ),
            413,
            "body-too-large",
        ),
        (
            "wrong media type",
            curl(&[
                "-H",
                &auth,
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                "hi",
                &target,
            ]),
            415,
            "unsupported-media-type",
        ),
        (
            "bad token",
            post_json(&server, "mss_0000_0000", &path, &report("x"), &[]),
            401,
            "unauthorized",
        ),
        (
            "no token",
            curl(&[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{}",
                &target,
            ]),
            401,
            "unauthorized",
        ),
        (
            "BAL out of the key's reach",
            post_json(
                &server,
                &key,
                &format!("/api/v1/bals/{DOCTOR}/messages"),
                &report("x"),
                &[],
            ),
            403,
            "bal-out-of-scope",
        ),
        (
            "scope missing",
            post_json(
                &server,
                &doctor_key,
                &format!("/api/v1/bals/{DOCTOR}/messages"),
                &report("x"),
                &[],
            ),
            403,
            "insufficient-scope",
        ),
        (
            "unknown recipient",
            post_json(
                &server,
                &key,
                &path,
                &json!({"to": ["nobody@ch-test.mssante.fr", DOCTOR], "subject": "s"}),
                &[],
            ),
            422,
            "recipients-refused",
        ),
        (
            "bad address",
            post_json(
                &server,
                &key,
                &path,
                &json!({"to": ["not an address"], "subject": "s"}),
                &[],
            ),
            422,
            "invalid-request",
        ),
        (
            "header outside X-MSS-*",
            post_json(
                &server,
                &key,
                &path,
                &json!({"to": [DOCTOR], "subject": "s", "headers": {"Bcc": "x@y.fr"}}),
                &[],
            ),
            422,
            "invalid-request",
        ),
        (
            "raw without envelope",
            curl(&[
                "-H",
                &auth,
                "-H",
                "Content-Type: message/rfc822",
                "--data-binary",
                "Subject: x\r\n\r\nx\r\n",
                &target,
            ]),
            422,
            "invalid-request",
        ),
        (
            "status of another's message",
            curl(&["-H", &auth, &url(&server, "/api/v1/messages/1")]),
            404,
            "message-not-found",
        ),
        (
            "bad message id",
            curl(&["-H", &auth, &url(&server, "/api/v1/messages/abc")]),
            400,
            "bad-request",
        ),
        (
            "admin list without admin",
            curl(&["-H", &auth, &url(&server, "/api/v1/admin/apikeys")]),
            403,
            "insufficient-scope",
        ),
        (
            "unknown path",
            curl(&[&url(&server, "/api/v1/nothing")]),
            404,
            "not-found",
        ),
    ];
    for (what, answer, status, problem) in cases {
        assert_eq!(
            (answer.status, answer.problem().as_str()),
            (status, problem),
            "{what}: {}",
            answer.body
        );
    }
    let refused = post_json(
        &server,
        &key,
        &path,
        &json!({"to": ["nobody@ch-test.mssante.fr"], "subject": "s"}),
        &[],
    )
    .json();
    assert!(
        refused["recipients"][0]["reply"]
            .as_str()
            .unwrap()
            .starts_with("550 5.1.1"),
        "{refused}"
    );
    assert_eq!(server.message_count(), 0, "no bad request stored anything");
    // A revoked key stops at once.
    let key_id = key.split('_').nth(1).unwrap();
    server.cli_ok(&["apikey", "revoke", key_id]);
    let after = post_json(&server, &key, &path, &report("x"), &[]);
    assert_eq!(
        (after.status, after.problem().as_str()),
        (401, "unauthorized")
    );
    let listed = server.cli_ok(&["apikey", "list"]);
    assert!(
        listed.contains(key_id) && listed.contains("revoked") && !listed.contains(&key[10..]),
        "{listed}"
    );
});

engine_tests_sync!(bulk_ndjson_answers_one_line_per_message, |engine| {
    let (server, key) = lab_server(engine, "");
    let auth = bearer(&key);
    let target = url(&server, &format!("/api/v1/bals/{LAB}/messages/bulk"));
    let post = |body: &str| {
        curl(&[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            body,
            &target,
        ])
    };
    let lines_of = |skip: Option<usize>| {
        let mut body = String::new();
        for i in 0..20 {
            match i {
                7 => {
                    body.push_str("{\"to\": [\"nobody@ch-test.mssante.fr\"], \"subject\": \"x\"}\n")
                }
                12 if skip.is_none() => body.push_str("not json\n"),
                12 => {}
                _ => body.push_str(&format!("{}\n", report(&format!("CR {i}")))),
            }
        }
        body
    };
    // A line that is not a SendRequest refuses the whole request: nothing is sent.
    let refused = post(&lines_of(None));
    assert_eq!(refused.problem(), "malformed-json", "{}", refused.body);
    assert!(refused.body.contains("line 13"), "{}", refused.body);
    assert_eq!(server.messages(DOCTOR, "INBOX").len(), 0);
    // A line refused for what it asks does not stop the others.
    let answer = post(&lines_of(Some(12)));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let lines: Vec<Value> = answer
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 19);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["line"], i + 1);
        match i {
            7 => assert_eq!(
                line["problem"]["type"], "urn:mssante:problem:recipients-refused",
                "{line}"
            ),
            _ => assert_eq!(line["status"], 202, "{line}"),
        }
    }
    assert_eq!(server.messages(DOCTOR, "INBOX").len(), 18);
});

engine_tests_sync!(a_client_past_its_rate_gets_429_with_retry_after, |engine| {
    let (server, key) = lab_server(engine, "[api]\nrate_per_sec = 1\nburst = 3\n");
    let me = url(&server, "/api/v1/me");
    let auth = bearer(&key);
    let answers: Vec<Answer> = (0..5).map(|_| curl(&["-H", &auth, &me])).collect();
    assert!(answers[..3].iter().all(|a| a.status == 200));
    let limited = answers.last().unwrap();
    assert_eq!(
        (limited.status, limited.problem().as_str()),
        (429, "rate-limited")
    );
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
});

engine_tests_sync!(openapi_health_readiness_and_metrics_are_served, |engine| {
    let (server, key) = lab_server(engine, "");
    let served = curl(&[&url(&server, "/api/v1/openapi.json")]);
    assert_eq!(served.status, 200);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    assert!(
        served.body == committed,
        "served document differs from docs/openapi.json"
    );
    assert_eq!(curl(&[&url(&server, "/healthz")]).body, "ok\n");
    let ready = curl(&[&url(&server, "/readyz")]);
    assert_eq!(
        (ready.status, ready.json()["database"].as_str()),
        (200, Some("ok"))
    );
    let sent = post_json(
        &server,
        &key,
        &format!("/api/v1/bals/{LAB}/messages"),
        &report("m"),
        &[],
    );
    assert_eq!(sent.status, 202);
    let metrics = curl(&[&url(&server, "/metrics")]);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    for line in [
        "mssante_messages_total{source=\"submission\"} 1",
        "mssante_recipients{state=\"delivered\"} 1",
        "mssante_queue_depth 0",
        "mssante_x_mss_nil_messages_total{software=\"SIL-Test 1.0\"} 1",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} in\n{}",
            metrics.body
        );
    }
});
