//! Every TLS listener of the real binary judged by `testssl.sh` (Debian package `testssl.sh`,
//! command `testssl`): IMAPS, submissions, STARTTLS on IMAP, submission and the MX, and
//! HTTPS. Only TLS 1.2 and 1.3 may be offered, no weak cipher category (NULL, anonymous,
//! export, LOW, 3DES/IDEA, obsolete CBC), and no finding rated HIGH or CRITICAL.
//! Results of a run: docs/testssl.md. No DNS: `--nodns none`, loopback only.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const OFF: [&str; 4] = ["SSLv2", "SSLv3", "TLS1", "TLS1_1"];
const WEAK_CATEGORIES: [&str; 5] = [
    "cipherlist_NULL",
    "cipherlist_aNULL",
    "cipherlist_EXPORT",
    "cipherlist_LOW",
    "cipherlist_3DES_IDEA",
];
/// CBC suites: "AVERAGE" in testssl 3.0 (Debian 12), "OBSOLETED" from 3.1 on.
const CBC_CATEGORY: [&str; 2] = ["cipherlist_AVERAGE", "cipherlist_OBSOLETED"];

/// Runs testssl against one listener; returns its flat JSON findings.
fn testssl(
    name: &str,
    port: u16,
    starttls: Option<&str>,
    out_dir: &Path,
) -> Vec<serde_json::Value> {
    let json = out_dir.join(format!("{name}.json"));
    let mut cmd = Command::new("testssl");
    cmd.args([
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "off",
        "--nodns",
        "none",
    ])
    .args(["--connect-timeout", "10", "--openssl-timeout", "10"])
    .args(["--protocols", "--std", "--fs"])
    .arg("--jsonfile")
    .arg(&json);
    if let Some(protocol) = starttls {
        cmd.args(["--starttls", protocol]);
    }
    let out = cmd
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("testssl is required (Debian package testssl.sh)");
    let findings: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap_or_else(|e| {
            panic!(
                "{name}: no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .unwrap();
    findings
}

fn finding<'a>(findings: &'a [serde_json::Value], id: &str) -> &'a str {
    findings
        .iter()
        .find(|f| f["id"] == id)
        .and_then(|f| f["finding"].as_str())
        .unwrap_or_else(|| {
            let ids: Vec<_> = findings.iter().filter_map(|f| f["id"].as_str()).collect();
            panic!("no {id} in testssl's findings: {ids:?}")
        })
}

fn judge(name: &str, findings: &[serde_json::Value]) {
    for id in OFF {
        let said = finding(findings, id);
        assert!(said.starts_with("not offered"), "{name}: {id} {said}");
    }
    let tls12 = finding(findings, "TLS1_2");
    let tls13 = finding(findings, "TLS1_3");
    assert!(
        tls12.starts_with("offered") && tls13.starts_with("offered"),
        "{name}: TLS 1.2 {tls12}, 1.3 {tls13}"
    );
    for id in WEAK_CATEGORIES {
        let said = finding(findings, id);
        assert!(said.starts_with("not offered"), "{name}: {id} {said}");
    }
    let cbc = CBC_CATEGORY
        .iter()
        .find_map(|id| findings.iter().find(|f| f["id"] == *id))
        .and_then(|f| f["finding"].as_str())
        .unwrap_or_else(|| panic!("{name}: no CBC category among testssl's findings"));
    assert!(cbc.starts_with("not offered"), "{name}: CBC suites {cbc}");
    let bad: Vec<_> = findings
        .iter()
        .filter(|f| f["severity"] == "HIGH" || f["severity"] == "CRITICAL")
        .collect();
    assert!(bad.is_empty(), "{name}: {bad:?}");
    // "PFS" in testssl 3.0, "FS" from 3.1 on.
    let fs = findings
        .iter()
        .find(|f| f["id"] == "PFS" || f["id"] == "FS")
        .and_then(|f| f["finding"].as_str())
        .unwrap_or("?");
    let curves = findings
        .iter()
        .find(|f| f["id"] == "PFS_ECDHE_curves" || f["id"] == "FS_ECDHE_curves")
        .and_then(|f| f["finding"].as_str())
        .unwrap_or("?");
    println!(
        "{name}: SSLv2/SSLv3/TLS 1.0/TLS 1.1 not offered, TLS 1.2: {tls12}, TLS 1.3: {tls13}, forward secrecy: {fs} (curves {curves}), no weak category, no HIGH/CRITICAL finding"
    );
}

#[test]
fn every_tls_listener_offers_tls12_or_better_and_no_weak_suite() {
    let https_port = Server::free_port();
    // Appended inside [listen] by the harness.
    let server = Server::start_with(
        Engine::Sqlite,
        &format!("https = \"127.0.0.1:{https_port}\"\n"),
        &[],
    );
    server.wait_for_port(https_port);
    let out_dir = server.db.data_path().join("testssl");
    std::fs::create_dir_all(&out_dir).unwrap();
    let listeners = [
        ("imaps", server.ports.imaps, None),
        ("submissions", server.ports.submissions, None),
        ("https", https_port, None),
        ("imap STARTTLS", server.ports.imap, Some("imap")),
        ("submission STARTTLS", server.ports.submission, Some("smtp")),
        ("MX STARTTLS", server.ports.smtp, Some("smtp")),
    ];
    // Two at a time: testssl is mostly waiting on its openssl children.
    for pair in listeners.chunks(2) {
        std::thread::scope(|scope| {
            let runs: Vec<_> = pair
                .iter()
                .map(|(name, port, starttls)| {
                    let out_dir = &out_dir;
                    scope.spawn(move || {
                        (
                            *name,
                            testssl(&name.replace(' ', "-"), *port, *starttls, out_dir),
                        )
                    })
                })
                .collect();
            for run in runs {
                let (name, findings) = run.join().unwrap();
                judge(name, &findings);
            }
        });
    }
}
