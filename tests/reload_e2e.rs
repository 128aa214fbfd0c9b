//! SIGHUP reloads the TLS certificate without dropping sessions: an IMAPS session opened
//! before keeps working, IMAPS and submission sessions opened after get the new certificate,
//! a certificate that does not load leaves the one in force, and the server keeps running.

mod common;

use std::process::Command;

use common::*;
use mssante_testkit::pki::{OperatorSpec, TestPki};

fn spec(org: &str) -> OperatorSpec<'_> {
    OperatorSpec {
        mta: HOSTNAME,
        siret: "12345678900011",
        org,
        departement: "Gironde (33)",
    }
}

#[test]
fn sighup_swaps_the_certificate_for_new_sessions_only() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path());
    let first = pki.operator("first", &spec("CH Premier"));
    let second = pki.operator("second", &spec("CH Second"));
    let tls_dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        tls_dir.path().join("cert.pem"),
        tls_dir.path().join("key.pem"),
    );
    std::fs::copy(&first.chain_pem, &cert).unwrap();
    std::fs::copy(&first.key_pem, &key).unwrap();
    let mut server = Server::configure(
        Engine::Sqlite,
        &format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    server.spawn();

    let out = Command::new("python3")
        .arg(clients_dir().join("reload_client.py"))
        .args([
            server.ports.imaps.to_string(),
            server.ports.submission.to_string(),
            server.pid().to_string(),
        ])
        .args([&second.chain_pem, &second.key_pem, &cert, &key])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(r["before"], r["new_leaf"], "{r}");
    assert_eq!(r["after_imaps"], r["new_leaf"], "{r}");
    assert_eq!(r["after_submission"], r["new_leaf"], "{r}");
    assert_eq!(r["after_bad_reload"], r["new_leaf"], "{r}");
    assert!(
        r["old_session_noop"].as_str().unwrap().contains("a1 OK"),
        "{r}"
    );
    let log = server.log();
    assert!(log.contains("reload: TLS certificate reloaded"), "{log}");
    assert!(log.contains("reload: TLS certificate kept"), "{log}");
    // Still serving, and SIGTERM still stops it cleanly.
    assert!(server.terminate().success(), "{}", server.log());
}
