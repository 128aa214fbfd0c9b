//! Sending on behalf of a BAL through the HTTP API (ADR 0016), on SQLite and PostgreSQL: the
//! key of a secretariat's BAL, delegated the doctor's BAL with the send right, sends as the
//! doctor (JSON and raw): `From:` the doctor, `Sender:` the secretariat, the send in the
//! doctor's audit trail. A key whose BAL holds a read-only delegation gets
//! `send-on-behalf-refused` (403), a key with no delegation `bal-out-of-scope`, and nothing
//! is sent; revoking the delegation refuses the next send.

mod common;

use common::http::*;
use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::{Value, json};

/// The header section of a stored message, as text.
fn header_of(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(strip_trace_header(raw)).to_string();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

engine_tests_sync!(
    a_delegate_key_sends_on_behalf_with_sender_and_audit,
    |engine| {
        let doctor = format!("dr.martin@{DOMAIN}");
        let secretary = format!("secretariat@{DOMAIN}");
        let reader = format!("lecteur@{DOMAIN}");
        let stranger = format!("autre@{DOMAIN}");
        let to = format!("dr.durand@{DOMAIN}");
        let mut server = Server::configure(engine, "[relay]\nenabled = false\n");
        server.cli_ok(&["domain", "add", DOMAIN]);
        for (i, bal) in [&doctor, &secretary, &reader, &stranger, &to]
            .iter()
            .enumerate()
        {
            server.create_bal(bal, &format!("1000123456{i}"));
        }
        server.cli_ok(&["delegation", "grant", &doctor, "--to", &secretary]);
        server.cli_ok(&[
            "delegation",
            "grant",
            &doctor,
            "--to",
            &reader,
            "--rights",
            "read",
        ]);
        let secretary_key = create_api_key(&server, "secretariat", "send", &secretary);
        let reader_key = create_api_key(&server, "lecteur", "send", &reader);
        let stranger_key = create_api_key(&server, "autre", "send", &stranger);
        server.spawn();
        let path = format!("/api/v1/bals/{doctor}/messages");
        let message = json!({"to": [to], "subject": "Rendez-vous", "text": "Bonjour."});

        // JSON, built here: From the doctor, Sender the secretariat.
        let sent = post_json(&server, &secretary_key, &path, &message, &[]);
        assert_eq!(sent.status, 202, "{}", sent.body);
        let json_msgid = sent.json()["message_id"].as_str().unwrap().to_string();
        let inbox = server.messages(&to, "INBOX");
        assert_eq!(inbox.len(), 1);
        let header = header_of(&inbox[0]);
        assert!(header.contains(&format!("<{doctor}>")), "{header}");
        assert!(
            header.contains(&format!("Sender: <{secretary}>")),
            "{header}"
        );

        // Raw: Sender added when missing.
        let raw = format!(
            "From: <{doctor}>\r\nTo: <{to}>\r\nSubject: brut\r\nMessage-ID: <brut-1@{DOMAIN}>\r\n\r\nBonjour.\r\n"
        );
        let target = url(&server, &format!("{path}?rcpt={to}"));
        let auth = bearer(&secretary_key);
        let answer = curl(&[
            "-H",
            &auth,
            "-H",
            "Content-Type: message/rfc822",
            "--data-binary",
            &raw,
            &target,
        ]);
        assert_eq!(answer.status, 202, "{}", answer.body);
        let inbox = server.messages(&to, "INBOX");
        assert_eq!(inbox.len(), 2);
        let header = header_of(&inbox[1]);
        assert!(
            header.contains(&format!("Sender: <{secretary}>")),
            "{header}"
        );

        // Both sends are in the doctor's trail, by the secretariat, with their Message-IDs.
        let trail = server.cli_ok(&["audit", &doctor, "--json", "--author", &secretary]);
        let sends: Vec<Value> = trail
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["action"] == "send")
            .collect();
        assert_eq!(sends.len(), 2, "{trail}");
        assert_eq!(sends[0]["message_ids"][0], json_msgid.as_str());
        assert_eq!(sends[1]["message_ids"][0], format!("brut-1@{DOMAIN}"));
        assert!(
            sends[0]["client"].as_str().unwrap().contains("key:"),
            "{trail}"
        );
        let verified = server.cli_ok(&["audit", "verify"]);
        assert!(verified.contains("intact"), "{verified}");

        // A read-only delegation does not send; no delegation at all is out of scope.
        let refused = post_json(&server, &reader_key, &path, &message, &[]);
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(refused.problem(), "send-on-behalf-refused");
        assert!(refused.body.contains("send right"), "{}", refused.body);
        let outside = post_json(&server, &stranger_key, &path, &message, &[]);
        assert_eq!(outside.status, 403, "{}", outside.body);
        assert_eq!(outside.problem(), "bal-out-of-scope");
        // Revoked: the next send is refused.
        server.cli_ok(&["delegation", "revoke", &doctor, "--to", &secretary]);
        let revoked = post_json(&server, &secretary_key, &path, &message, &[]);
        assert_eq!(revoked.status, 403, "{}", revoked.body);
        assert_eq!(
            server.messages(&to, "INBOX").len(),
            2,
            "nothing else was sent"
        );
    }
);
