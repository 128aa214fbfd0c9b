//! `mssante report monthly` on both engines: every figure matches what the test itself sent
//! through submission and the MX this month, in text, JSON and CSV.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};

const DR: &str = "dr.report@ch-test.mssante.fr";
const NURSE: &str = "ide.report@ch-test.mssante.fr";
const ORG: &str = "secretariat@ch-test.mssante.fr";
const FORMER: &str = "dr.former@ch-test.mssante.fr";

/// One message through `port`, with `X-MSS-NIL: nil` when given; AUTH as DR on submission.
fn send(server: &Server, submission: bool, from: &str, to: &str, nil: Option<&str>) {
    let port = match submission {
        true => server.ports.submission.to_string(),
        false => server.ports.smtp.to_string(),
    };
    let mut args = vec![
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--from",
        from,
        "--to",
        to,
    ];
    if submission {
        args.extend([
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            DR,
            "--auth-password",
            PASSWORD,
        ]);
    }
    let header = nil.map(|n| format!("X-MSS-NIL: {n}"));
    if let Some(h) = &header {
        args.extend(["--add-header", h.as_str()]);
    }
    let (status, transcript) = swaks(&args);
    assert_eq!(status, 0, "{transcript}");
}

fn this_month() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn monthly_report_matches_the_test_sends(engine: Engine) {
    let server = Server::start(engine, &[DR, NURSE, FORMER]);
    server.cli_ok(&[
        "bal",
        "create",
        ORG,
        "--type",
        "ORG",
        "--finess",
        "750000001",
    ]);
    server.cli_ok(&["bal", "close", FORMER]);

    // What the test sends, counted by the test.
    let mut sent = 0;
    let mut received = 0;
    let mut to_domains: BTreeMap<&str, i64> = BTreeMap::new();
    let mut from_domains: BTreeMap<&str, i64> = BTreeMap::new();
    let mut nil_sent: BTreeMap<&str, i64> = BTreeMap::new();
    let mut nil_received: BTreeMap<&str, i64> = BTreeMap::new();
    for _ in 0..3 {
        send(&server, true, DR, NURSE, Some("LogicielA/2.1"));
        sent += 1;
        *to_domains.entry(DOMAIN).or_default() += 1;
        *nil_sent.entry("LogicielA/2.1").or_default() += 1;
    }
    for _ in 0..2 {
        let to = "a@chu-ouest.mssante.fr,b@chu-ouest.mssante.fr,c@labo-sud.mssante.fr";
        send(&server, true, DR, to, Some("LogicielB"));
        sent += 1;
        *to_domains.entry("chu-ouest.mssante.fr").or_default() += 2;
        *to_domains.entry("labo-sud.mssante.fr").or_default() += 1;
        *nil_sent.entry("LogicielB").or_default() += 1;
    }
    send(&server, true, DR, ORG, None);
    sent += 1;
    *to_domains.entry(DOMAIN).or_default() += 1;
    *nil_sent.entry("(none)").or_default() += 1;
    for (from, nil) in [
        ("bio@labo-sud.mssante.fr", "LaboSoft 3"),
        ("bio@labo-sud.mssante.fr", "LaboSoft 3"),
        ("dr.x@chu-ouest.mssante.fr", "DPI, v9"),
    ] {
        send(&server, false, from, NURSE, Some(nil));
        received += 1;
        *from_domains
            .entry(from.split('@').nth(1).unwrap())
            .or_default() += 1;
        *nil_received.entry(nil).or_default() += 1;
    }

    // Of the 6 queued recipients: one removed by the administrator (a bounce), two relayed
    // 90 and 30 seconds after acceptance (what the relay would record).
    let queued: Vec<String> = server
        .sql("SELECT id FROM recipients WHERE status = 'queued' ORDER BY id")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(queued.len(), 6, "{}", server.log());
    server.cli_ok(&["queue", "delete", &queued[0]]);
    for (id, delay) in [(&queued[1], 90), (&queued[2], 30)] {
        server.sql(&format!(
            "UPDATE recipients SET status = 'relayed', updated_at = \
             (SELECT received_at FROM messages WHERE messages.id = recipients.message_id) + {delay} \
             WHERE id = {id}"
        ));
    }

    let month = this_month();
    let report: Value =
        serde_json::from_str(&server.cli_ok(&["report", "monthly", "--month", &month, "--json"]))
            .unwrap();
    let expected = json!({
        "month": month,
        "messages": { "sent": sent, "received": received },
        "sent_to_domains": to_domains,
        "received_from_domains": from_domains,
        "open_bals_by_type": { "ORG": 1, "PER": 2 },
        "x_mss_nil_sent": nil_sent,
        "x_mss_nil_received": nil_received,
        "bounces": 1,
        "relay_delay_seconds": { "relayed": 2, "median": 30, "p95": 90, "max": 90 },
    });
    assert_eq!(report, expected);

    let csv = server.cli_ok(&["report", "monthly", "--month", &month, "--csv"]);
    assert!(csv.starts_with("section,key,value\n"), "{csv}");
    assert!(csv.contains(&format!("messages,sent,{sent}\n")), "{csv}");
    assert!(csv.contains("x_mss_nil_received,\"DPI, v9\",1\n"), "{csv}");
    assert!(
        csv.contains("sent_to_domains,chu-ouest.mssante.fr,4\n"),
        "{csv}"
    );

    let text = server.cli_ok(&["report", "monthly", "--month", &month]);
    assert!(text.contains("LaboSoft 3"), "{text}");
    // Another month has none of it.
    let empty: Value = serde_json::from_str(
        &server.cli_ok(&["report", "monthly", "--month", "2001-01", "--json"]),
    )
    .unwrap();
    assert_eq!(empty["messages"], json!({ "sent": 0, "received": 0 }));
    assert!(
        !server
            .cli(&["report", "monthly", "--month", "2026-13"])
            .status
            .success()
    );
}

#[test]
fn monthly_report_matches_the_test_sends_on_sqlite() {
    monthly_report_matches_the_test_sends(Engine::Sqlite);
}

#[test]
fn monthly_report_matches_the_test_sends_on_postgres() {
    monthly_report_matches_the_test_sends(Engine::Postgres);
}
