//! The laboratory flow of the HTTP API, end to end on SQLite and PostgreSQL: an API key
//! sends 1,000 reports in one bulk request, half to a BAL of the same operator, half to a
//! second operator through the relay (two instances in a test trust space, as in
//! tests/relay_e2e.rs). The status endpoint and a webhook (a Python receiver checking the
//! HMAC signatures) report every recipient `delivered`, then `displayed` once the
//! recipients' software sent its read receipts (MDNs over submission). The webhook is
//! down at first (503): its events are retried, and survive a restart of the server.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::Duration;

use common::http::*;
use common::operators::{A, B, TrustSpace, wait_for};
use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::{Value, json};

const REPORTS: usize = 1000;
const LONG: Duration = Duration::from_secs(240);
const SECRET: &str = "un secret partagé de webhook";
/// Fast webhook retries, a receiver on loopback, and a rate the status polling fits in.
const API_CONFIG: &str = "[api]\nrate_per_sec = 100000\nburst = 100000\n\
    webhook_retry_first_secs = 1\nwebhook_retry_max_secs = 2\nwebhook_max_attempts = 100000\n\
    webhook_private_targets = true\n";

struct Receiver {
    child: Child,
    out: std::path::PathBuf,
    port: u16,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// A receiver on `port` checking signatures with `secret`.
    fn start(dir: &std::path::Path, port: u16, secret: &str) -> Receiver {
        let out = dir.join("webhooks.jsonl");
        let child = Command::new("python3")
            .arg(clients_dir().join("api_lab.py"))
            .args(["receiver", &port.to_string(), secret])
            .arg(&out)
            .spawn()
            .unwrap();
        wait_for("the webhook receiver", Duration::from_secs(10), &[], || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Receiver { child, out, port }
    }

    fn set_down(&self, down: bool) {
        let flag = self.out.with_extension("jsonl.down");
        match down {
            true => std::fs::write(flag, b"").unwrap(),
            false => std::fs::remove_file(flag).unwrap(),
        }
    }

    /// Events received so far; every signature must be valid.
    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["valid"], true, "a webhook signature did not verify: {v}");
                assert_eq!(v["fresh"], true, "a webhook signature is not of now: {v}");
                assert_eq!(
                    v["same_id"], true,
                    "X-MSS-Event-Id is not the body's id: {v}"
                );
                v["event"].clone()
            })
            .collect()
    }

    /// Recipients whose latest event (the highest id: events may arrive out of order, and
    /// more than once) satisfies `done`.
    fn count(&self, done: impl Fn(&Value) -> bool) -> usize {
        let mut last: HashMap<(i64, String), Value> = HashMap::new();
        for e in self.events() {
            let key = (
                e["message"].as_i64().unwrap(),
                e["recipient"].as_str().unwrap().to_string(),
            );
            if last
                .get(&key)
                .is_none_or(|seen| seen["id"].as_i64() < e["id"].as_i64())
            {
                last.insert(key, e);
            }
        }
        last.values().filter(|e| done(e)).count()
    }
}

fn statuses(server: &Server, key: &str, ids: &[i64]) -> Value {
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let out = Command::new("python3")
        .arg(clients_dir().join("api_lab.py"))
        .args(["statuses", &url(server, "/api/v1"), key, &ids.join(",")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

engine_tests_sync!(
    a_lab_bulk_sends_1000_reports_tracked_to_displayed,
    |engine| {
        let dir = tempfile::tempdir().unwrap();
        let space = TrustSpace::new(&[&A, &B]);
        let mut a = space.prepare_operator(engine, &A, API_CONFIG, &["dr.local"]);
        let lab = A.user("labo");
        create_lab_bal(&a, &lab);
        let key = create_api_key(&a, "SIL", "send,status", &lab);
        a.spawn();
        let b = space.start_operator(engine, &B, "", &["dr.remote"]);
        let (local, remote) = (A.user("dr.local"), B.user("dr.remote"));

        let receiver = Receiver::start(dir.path(), Server::free_port(), SECRET);
        receiver.set_down(true);
        let hook = post_json(
            &a,
            &key,
            "/api/v1/webhooks",
            &json!({
        "url": format!("http://127.0.0.1:{}/hook", receiver.port), "secret": SECRET}),
            &[],
        );
        assert_eq!(hook.status, 201, "{}", hook.body);

        // 1,000 reports in one request, alternately for the same operator and the other one.
        let text = "Résultat: glycémie 5,2 mmol/L.\n".repeat(60);
        let mut body = String::new();
        for i in 0..REPORTS {
            let to = if i % 2 == 0 { &local } else { &remote };
            body.push_str(
                &json!({
                    "to": [to], "subject": format!("CR {i}"), "text": text, "read_receipt": true,
                    "notify": "SUCCESS,FAILURE", "headers": {"X-MSS-NIL": "SIL-Test 1.0"}
                })
                .to_string(),
            );
            body.push('\n');
        }
        let auth = bearer(&key);
        let target = url(&a, &format!("/api/v1/bals/{lab}/messages/bulk"));
        let body_file = dir.path().join("bulk.ndjson");
        std::fs::write(&body_file, &body).unwrap();
        let data = format!("@{}", body_file.display());
        let answer = curl(&[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/x-ndjson",
            // No `100 Continue` before the answer curl -i shows.
            "-H",
            "Expect:",
            "--data-binary",
            &data,
            &target,
        ]);
        assert_eq!(
            answer.status,
            200,
            "{}",
            &answer.body[..answer.body.len().min(2000)]
        );
        let results: Vec<Value> = answer
            .body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(results.len(), REPORTS);
        assert!(
            results.iter().all(|r| r["status"] == 202),
            "every line is queued"
        );
        let ids: Vec<i64> = results
            .iter()
            .map(|r| r["accepted"]["id"].as_i64().unwrap())
            .collect();

        // Delivered: locally at once, remotely once B's delivery report came back.
        wait_for("1,000 recipients delivered", LONG, &[&a, &b], || {
            let counts = statuses(&a, &key, &ids);
            (counts["delivered"] == REPORTS).then_some(())
        });
        assert_eq!(b.messages(&remote, "INBOX").len(), REPORTS / 2);
        assert_eq!(a.messages(&local, "INBOX").len(), REPORTS / 2);

        // The webhook was down: nothing delivered yet; the outbox keeps the events across a
        // restart of the server, and delivers them once the receiver is back.
        assert!(receiver.events().is_empty());
        a.terminate();
        a.spawn();
        receiver.set_down(false);
        wait_for("webhooks: 1,000 delivered", LONG, &[&a], || {
            (receiver.count(|e| e["state"] == "delivered") == REPORTS).then_some(())
        });

        // The recipients' software sends read receipts.
        let mdns: Vec<Value> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let user = if i % 2 == 0 { &local } else { &remote };
            json!({"user": user, "password": PASSWORD, "to": lab, "msgid": r["accepted"]["message_id"]})
        })
        .collect();
        for (server, user) in [(&a, &local), (&b, &remote)] {
            let mine: Vec<&Value> = mdns.iter().filter(|m| m["user"] == **user).collect();
            let file = dir.path().join("mdns.json");
            std::fs::write(&file, serde_json::to_vec(&mine).unwrap()).unwrap();
            let out = Command::new("python3")
                .arg(clients_dir().join("api_lab.py"))
                .args(["mdns", &server.ports.submission.to_string()])
                .arg(&file)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        wait_for("1,000 recipients displayed", LONG, &[&a, &b], || {
            let counts = statuses(&a, &key, &ids);
            (counts["displayed"] == REPORTS).then_some(())
        });
        wait_for("webhooks: 1,000 displayed", LONG, &[&a], || {
            (receiver.count(|e| e["disposition"] == "displayed" && e["state"] == "delivered")
                == REPORTS)
                .then_some(())
        });
        // Nothing is left behind, and the shared secret never reached the log.
        let hooks = curl(&["-H", &auth, &url(&a, "/api/v1/webhooks")]).json();
        wait_for("an empty outbox", LONG, &[&a], || {
            let hooks = curl(&["-H", &auth, &url(&a, "/api/v1/webhooks")]).json();
            (hooks["items"][0]["pending"] == 0).then_some(())
        });
        assert_eq!(hooks["items"][0]["dead"], 0, "{hooks}");
        assert!(hooks["items"][0].get("secret").is_none(), "{hooks}");
        assert!(
            !a.log().contains(SECRET),
            "the webhook secret is in the log"
        );
    }
);

engine_tests_sync!(webhook_dead_letters_are_listed_and_retried, |engine| {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[api]\nwebhook_retry_first_secs = 1\nwebhook_retry_max_secs = 1\n\
        webhook_max_attempts = 2\nwebhook_private_targets = true\n[relay]\nenabled = false\n";
    let to = format!("dr.local@{DOMAIN}");
    let server = Server::start_with(engine, extra, &[&to]);
    let lab = format!("labo@{DOMAIN}");
    create_lab_bal(&server, &lab);
    let key = create_api_key(&server, "SIL", "send,status", &lab);
    let other_key = create_api_key(&server, "autre SIL", "send,status", &lab);
    let port = Server::free_port();
    let hook_url = format!("http://127.0.0.1:{port}/hook");
    let hook = post_json(
        &server,
        &key,
        "/api/v1/webhooks",
        &json!({"url": hook_url}),
        &[],
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    let hook_id = hook.json()["id"].as_i64().unwrap();
    // The secret was generated and is shown once: the receiver checks with that one.
    let secret = hook.json()["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let receiver = Receiver::start(dir.path(), port, &secret);
    receiver.set_down(true);

    for i in 0..3 {
        let sent = post_json(
            &server,
            &key,
            &format!("/api/v1/bals/{lab}/messages"),
            &json!({"to": [to], "subject": format!("CR {i}"), "text": "Bonjour."}),
            &[],
        );
        assert_eq!(sent.status, 202, "{}", sent.body);
    }
    // Two attempts each, then dead letters, counted in the list and in /metrics.
    let auth = bearer(&key);
    let hooks_url = url(&server, "/api/v1/webhooks");
    wait_for(
        "3 dead letters",
        Duration::from_secs(60),
        &[&server],
        || {
            let hooks = curl(&["-H", &auth, &hooks_url]).json();
            (hooks["items"][0]["dead"] == 3).then_some(())
        },
    );
    let deliveries = url(
        &server,
        &format!("/api/v1/webhooks/{hook_id}/deliveries?state=dead"),
    );
    let dead = curl(&["-H", &auth, &deliveries]).json();
    let items = dead["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{dead}");
    for item in items {
        assert_eq!(item["state"], "dead");
        assert_eq!(item["attempts"], 2);
        assert!(
            item["last_error"].as_str().unwrap().contains("503"),
            "{item}"
        );
        assert_eq!(item["event"]["state"], "delivered");
        assert_eq!(item["event"]["id"], item["id"]);
    }
    let metrics = curl(&[&url(&server, "/metrics")]).body;
    assert!(
        metrics.contains("mssante_webhook_events{state=\"dead\"} 3"),
        "{metrics}"
    );
    // Another client sees neither the webhook nor its events.
    let other = curl(&["-H", &bearer(&other_key), &deliveries]);
    assert_eq!(other.status, 404);
    assert_eq!(other.problem(), "webhook-not-found");

    // Back up: the dead letters retried on demand are delivered; retrying one twice is 404.
    receiver.set_down(false);
    for item in items {
        let retry = format!("/api/v1/webhooks/{hook_id}/deliveries/{}/retry", item["id"]);
        let answer = curl(&["-X", "POST", "-H", &auth, &url(&server, &retry)]);
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    wait_for(
        "3 events delivered",
        Duration::from_secs(30),
        &[&server],
        || (receiver.count(|e| e["state"] == "delivered") == 3).then_some(()),
    );
    let first = &items[0]["id"];
    let again = format!("/api/v1/webhooks/{hook_id}/deliveries/{first}/retry");
    let answer = curl(&["-X", "POST", "-H", &auth, &url(&server, &again)]);
    assert_eq!(answer.status, 404, "{}", answer.body);
    let hooks = curl(&["-H", &auth, &hooks_url]).json();
    assert_eq!(hooks["items"][0]["dead"], 0, "{hooks}");
    assert!(
        !server.log().contains(&secret),
        "the webhook secret is in the log"
    );

    // Revoking the key stops its webhooks.
    let key_id = key.strip_prefix("mss_").unwrap().split('_').next().unwrap();
    server.cli_ok(&["apikey", "revoke", key_id]);
    let active = server.sql("SELECT COUNT(*) FROM api_webhooks WHERE revoked_at IS NULL");
    assert_eq!(active.trim(), "0");
});
