//! Pro Santé Connect logins through the real binary, on SQLite and PostgreSQL: a loopback
//! OIDC provider (testkit) issues tokens; Python's smtplib and curl log in with XOAUTH2 and
//! OAUTHBEARER on both submission listeners. One token opens each BAL its identity may open
//! (its PER BAL, an ORG BAL it is habilitated on) and no other; no bearer login before TLS.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mssante_testkit::engine_tests_sync;
use mssante_testkit::oidc::{OidcOptions, OidcProvider};

const RPPS: &str = "10001234567";
const IDENTITY: &str = "810001234567";

struct Setup {
    server: Server,
    provider: OidcProvider,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn bal(&self, local: &str) -> String {
        format!("{local}@{DOMAIN}")
    }

    fn token(&self) -> String {
        self.provider
            .token("rsa-1", &self.provider.psc_claims(IDENTITY))
    }
}

/// A server whose `[psc]` trusts the provider (HTTPS, its test root as `ca_file`), with the
/// holder's PER BAL, an ORG BAL the identity is habilitated on, and two it may not open.
fn setup(engine: Engine) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (options, ca_file) = OidcOptions::tls(dir.path());
    let provider = OidcProvider::start(options);
    provider.add_rsa_key("rsa-1");
    let mut server = Server::configure(engine, &psc_section(&provider, &ca_file));
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(&format!("dr.martin@{DOMAIN}"), RPPS);
    server.create_bal(&format!("dr.other@{DOMAIN}"), "10009999999");
    for org in ["cardio", "urgences"] {
        let address = format!("{org}@{DOMAIN}");
        server.cli_ok(&[
            "bal",
            "create",
            &address,
            "--type",
            "ORG",
            "--finess",
            "750712184",
        ]);
    }
    server.cli_ok(&[
        "access",
        "grant",
        &format!("cardio@{DOMAIN}"),
        "--national-id",
        IDENTITY,
    ]);
    server.spawn();
    Setup {
        server,
        provider,
        _dir: dir,
    }
}

fn psc_section(provider: &OidcProvider, ca_file: &Path) -> String {
    format!(
        "[psc]\ndiscovery_url = \"{}\"\nissuers = [\"{}\"]\nca_file = \"{}\"\n",
        provider.discovery_url(),
        provider.issuer(),
        ca_file.display()
    )
}

fn psc_client(case: &str, server: &Server, args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(clients_dir().join("psc_client.py"))
        .arg(case)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{case}: {}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One SASL bearer login by the Python client: `command` is `smtp-login` (smtplib) or
/// `imap-login` (imaplib), against `port`, with implicit TLS or STARTTLS.
fn bearer_login(
    s: &Setup,
    command: &str,
    port: u16,
    implicit: bool,
    mechanism: &str,
    bal: &str,
    token: &str,
) -> serde_json::Value {
    let port = port.to_string();
    let mut args = vec![
        "--port",
        &port,
        "--mechanism",
        mechanism,
        "--user",
        bal,
        "--token",
        token,
    ];
    if implicit {
        args.push("--implicit");
    }
    psc_client(command, &s.server, &args)
}

fn smtp_login(
    s: &Setup,
    port: u16,
    implicit: bool,
    mechanism: &str,
    bal: &str,
    token: &str,
) -> serde_json::Value {
    bearer_login(s, "smtp-login", port, implicit, mechanism, bal, token)
}

engine_tests_sync!(
    smtplib_logs_in_to_each_bal_the_identity_may_open,
    |engine| {
        let s = setup(engine);
        let token = s.token();
        let ports = [
            (s.server.ports.submission, false),
            (s.server.ports.submissions, true),
        ];
        for (port, implicit) in ports {
            for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
                for bal in [s.bal("dr.martin"), s.bal("cardio")] {
                    let out = smtp_login(&s, port, implicit, mechanism, &bal, &token);
                    let advertised = out["ehlo_auth"].as_str().unwrap();
                    assert!(
                        advertised.contains("XOAUTH2") && advertised.contains("OAUTHBEARER"),
                        "{out}"
                    );
                    assert_eq!(out["auth"][0], 235, "{mechanism} {bal} on {port}: {out}");
                    assert_eq!(out["mail"][0], 250, "send-as the opened BAL: {out}");
                }
            }
        }
    }
);

engine_tests_sync!(
    a_token_is_refused_on_a_bal_its_identity_may_not_open,
    |engine| {
        let s = setup(engine);
        let token = s.token();
        for bal in [s.bal("dr.other"), s.bal("urgences"), s.bal("nobody")] {
            for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
                let out = smtp_login(
                    &s,
                    s.server.ports.submission,
                    false,
                    mechanism,
                    &bal,
                    &token,
                );
                assert_eq!(out["auth"][0], 535, "{mechanism} {bal}: {out}");
                assert_eq!(out["auth"][1], "5.7.8 Authentication credentials invalid");
                assert!(
                    out["challenge"]["status"].is_string(),
                    "error challenge first: {out}"
                );
                assert_ne!(out["mail"][0], 250, "no BAL opened: {out}");
            }
        }
        let log = s.server.log();
        assert!(log.contains("may not open"), "the reason is logged: {log}");
        assert!(!log.contains(&token), "the token is never logged");
    }
);

engine_tests_sync!(expired_and_foreign_tokens_are_refused, |engine| {
    let s = setup(engine);
    let mut claims = s.provider.psc_claims(IDENTITY);
    claims["exp"] = serde_json::json!(claims["iat"].as_i64().unwrap() - 300);
    let expired = s.provider.token("rsa-1", &claims);
    let forged = s.provider.mint(
        &serde_json::json!({"alg": "HS256", "kid": "rsa-1"}),
        &s.provider.psc_claims(IDENTITY),
    );
    for token in [expired, forged] {
        let out = smtp_login(
            &s,
            s.server.ports.submissions,
            true,
            "XOAUTH2",
            &s.bal("dr.martin"),
            &token,
        );
        assert_eq!(out["auth"][0], 535, "{out}");
    }
    let log = s.server.log();
    assert!(
        log.contains("expired") && log.contains("unsupported_alg"),
        "{log}"
    );
});

engine_tests_sync!(no_bearer_login_before_tls, |engine| {
    let s = setup(engine);
    let port = s.server.ports.submission.to_string();
    let out = psc_client(
        "smtp-before-tls",
        &s.server,
        &[
            "--port",
            &port,
            "--user",
            &s.bal("dr.martin"),
            "--token",
            &s.token(),
        ],
    );
    assert_eq!(
        out["ehlo_auth"], "",
        "no AUTH offered before STARTTLS: {out}"
    );
    assert_eq!(out["auth"][0], 538, "{out}");
});

engine_tests_sync!(curl_sends_with_oauth2_bearer_over_smtps, |engine| {
    let s = setup(engine);
    let token = s.token();
    let send = |from: &str| {
        Command::new("curl")
            .args(["--silent", "--show-error", "--insecure", "--max-time", "30"])
            .arg("--url")
            .arg(format!("smtps://127.0.0.1:{}", s.server.ports.submissions))
            .args(["--user", &format!("{from}:"), "--oauth2-bearer", &token])
            .args(["--mail-from", from, "--mail-rcpt", &s.bal("dr.martin")])
            .args(["--upload-file", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(b"Subject: par curl\r\n\r\nBonjour.\r\n")?;
                child.wait_with_output()
            })
            .expect("curl")
    };
    let opened = send(&s.bal("cardio"));
    assert!(
        opened.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&opened.stderr),
        s.server.log()
    );
    let refused = send(&s.bal("urgences"));
    // curl: 67 = "the user name, password, or similar was not accepted".
    assert_eq!(
        refused.status.code(),
        Some(67),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let inbox = s.server.messages(&s.bal("dr.martin"), "INBOX");
    assert_eq!(inbox.len(), 1, "one message got through");
});

fn imap_login(
    s: &Setup,
    port: u16,
    implicit: bool,
    mechanism: &str,
    bal: &str,
    token: &str,
) -> serde_json::Value {
    bearer_login(s, "imap-login", port, implicit, mechanism, bal, token)
}

engine_tests_sync!(
    imaplib_authenticates_to_each_bal_the_identity_may_open,
    |engine| {
        let s = setup(engine);
        let token = s.token();
        let ports = [(s.server.ports.imap, false), (s.server.ports.imaps, true)];
        for (port, implicit) in ports {
            for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
                for bal in [s.bal("dr.martin"), s.bal("cardio")] {
                    let out = imap_login(&s, port, implicit, mechanism, &bal, &token);
                    let caps = out["capabilities"].to_string();
                    assert!(
                        caps.contains("AUTH=XOAUTH2") && caps.contains("AUTH=OAUTHBEARER"),
                        "{out}"
                    );
                    assert_eq!(out["auth"][0], "OK", "{mechanism} {bal} on {port}: {out}");
                    assert_eq!(out["select"][0], "OK", "{out}");
                }
                for bal in [s.bal("dr.other"), s.bal("urgences")] {
                    let out = imap_login(&s, port, implicit, mechanism, &bal, &token);
                    assert_eq!(out["auth"][0], "NO", "{mechanism} {bal}: {out}");
                    assert!(
                        out["auth"][1]
                            .as_str()
                            .unwrap()
                            .contains("AUTHENTICATIONFAILED"),
                        "{out}"
                    );
                }
            }
        }
    }
);

engine_tests_sync!(no_imap_bearer_login_before_starttls, |engine| {
    let s = setup(engine);
    let port = s.server.ports.imap.to_string();
    let out = psc_client(
        "imap-before-tls",
        &s.server,
        &[
            "--port",
            &port,
            "--user",
            &s.bal("dr.martin"),
            "--token",
            &s.token(),
        ],
    );
    assert!(
        !out["greeting"].as_str().unwrap().contains("AUTH="),
        "{out}"
    );
    assert!(
        out["auth"]
            .as_str()
            .unwrap()
            .starts_with("a1 NO [PRIVACYREQUIRED]"),
        "{out}"
    );
});

engine_tests_sync!(curl_reads_with_oauth2_bearer_over_imaps, |engine| {
    let s = setup(engine);
    let token = s.token();
    let list = |bal: &str| {
        Command::new("curl")
            .args(["--silent", "--show-error", "--insecure", "--max-time", "30"])
            .arg("--url")
            .arg(format!("imaps://127.0.0.1:{}/INBOX", s.server.ports.imaps))
            .args(["--user", &format!("{bal}:"), "--oauth2-bearer", &token])
            .output()
            .expect("curl")
    };
    let opened = list(&s.bal("cardio"));
    assert!(
        opened.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&opened.stderr),
        s.server.log()
    );
    let refused = list(&s.bal("dr.other"));
    assert_eq!(
        refused.status.code(),
        Some(67),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
});
