//! Revocation of peer certificates (ADR 0041): two operators of a test trust space, the
//! root's CRL published by a loopback HTTP server (Python's http.server), refreshed by the
//! running servers on their schedule. A revoked peer is refused on the MX and the relay to
//! it defers, without restart; an expired or forged CRL does not replace the kept one.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::operators::{A, B, OperatorDef, TrustSpace, submit, trust_client, wait_for};
use common::{Engine, Server};
use mssante_testkit::pki::{Identity, OperatorSpec, TestPki};

const LONG: Duration = Duration::from_secs(60);

/// An application BAL's certificate subject (SASL EXTERNAL, ADR 0029).
const LAB: OperatorSpec = OperatorSpec {
    mta: "sil.labo-exemple.fr",
    siret: "75071218400011",
    org: "Laboratoire Exemple",
    departement: "Paris (75)",
};

/// `python3 -m http.server` on 127.0.0.1, serving `dir`; killed on drop.
struct Publisher {
    child: Child,
    port: u16,
}

impl Publisher {
    fn start(dir: &Path) -> Publisher {
        let port = Server::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is required for the end-to-end tests");
        let publisher = Publisher { child, port };
        wait_for("the CRL publisher", LONG, &[], || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        publisher
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/root.crl", self.port)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An operator's server whose `[trust]` also downloads the root's CRL every 2 s.
fn start(space: &TrustSpace, op: &OperatorDef, crl_url: &str, bals: &[&str]) -> Server {
    let config = space.server_config(op, "").replacen(
        "[trust]\n",
        &format!("[trust]\ncrl_urls = [\"{crl_url}\"]\ncrl_refresh_secs = 2\n"),
        1,
    );
    let mx = SocketAddr::new(IpAddr::V4(op.ip), space.port);
    let mut server = Server::configure_at(Engine::Sqlite, op.mta, Some(mx), &config);
    server.cli_ok(&["domain", "add", op.domain]);
    for (i, local) in bals.iter().enumerate() {
        server.create_bal(&op.user(local), &format!("1000{:07}", i + 1));
    }
    server.spawn();
    server
}

/// Waits until `server`'s log holds `needle` more often than `before` times.
fn wait_for_log(server: &Server, needle: &str, before: usize) {
    wait_for(&format!("{needle:?} in the log"), LONG, &[server], || {
        (server.log().matches(needle).count() > before).then_some(())
    });
}

fn message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@lps.test>\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         X-MSS-NIL: LPS-TEST/1.0\r\nX-MSS-INS: O\r\n\r\nCorps\r\n"
    )
    .into_bytes()
}

#[test]
fn a_revoked_peer_is_refused_and_relayed_to_never_and_bad_crls_are_not_taken() {
    let space = TrustSpace::new(&[&A, &B]);
    let www = tempfile::tempdir().unwrap();
    let crl_path = www.path().join("root.crl");
    let valid_b = space.identity(B.domain).clone();
    std::fs::write(&crl_path, space.pki.fresh_crl(&[], 1)).unwrap();
    let publisher = Publisher::start(www.path());
    let a = start(&space, &A, &publisher.url(), &["dr.martin"]);
    let b = start(&space, &B, &publisher.url(), &["dr.durand"]);
    wait_for_log(&a, "now in force", 0);

    let (martin, durand) = (A.user("dr.martin"), B.user("dr.durand"));
    let (host, port) = (A.ip.to_string(), space.port.to_string());
    let ca = space.pki.root_pem.display().to_string();
    let (cert, key) = (
        valid_b.cert_pem.display().to_string(),
        valid_b.key_pem.display().to_string(),
    );
    let b_to_a_mx = |subject: &str| {
        let args = [
            "mx",
            "--host",
            &host,
            "--port",
            &port,
            "--from",
            &durand,
            "--to",
            &martin,
            "--ca",
            &ca,
            "--starttls",
            "--cert",
            &cert,
            "--key",
            &key,
        ];
        trust_client(&args, &message(&durand, &martin, subject))
    };
    let out = b_to_a_mx("avant");
    assert_eq!(out["data"][0], 250, "before revocation: {out}");

    // The CA revokes B's certificate; A's next scheduled refresh picks it up.
    let installed = a.log().matches("now in force").count();
    std::fs::write(&crl_path, space.pki.fresh_crl(&[&valid_b], 2)).unwrap();
    wait_for_log(&a, "now in force", installed);
    let out = b_to_a_mx("apres");
    assert_eq!(out["mail"][0], 550, "after revocation: {out}");
    let text = out["mail"][1].as_str().unwrap();
    assert!(text.contains("revoked"), "{out}");
    let serial: String = valid_b
        .serial
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let log = a.log();
    assert!(
        log.contains("revoked by its CA's CRL") && log.to_lowercase().contains(&serial),
        "the refusal names serial {serial} and the CA:\n{log}"
    );
    assert!(log.contains("IGC-Santé TEST"), "{log}");

    // A's relay to B: B's server certificate is revoked, the attempt fails and is retried.
    let out = submit(
        &a,
        &martin,
        &[&durand],
        &message(&martin, &durand, "vers-b"),
        &[],
        &[],
    );
    assert_eq!(out["data"][0], 250, "{out}");
    let item = wait_for("a failed relay attempt to B", LONG, &[&a, &b], || {
        a.queued().into_iter().find(|q| q.attempts >= 1)
    });
    assert_eq!(item.status, "queued", "deferred, not bounced: {item:?}");
    let error = item.last_error.clone().unwrap_or_default();
    assert!(error.to_lowercase().contains("revoked"), "{item:?}");
    assert!(
        a.log().contains("peer server certificate revoked"),
        "{}",
        a.log()
    );
    assert!(b.messages(&durand, "INBOX").is_empty());

    // An expired CRL (listing nobody) does not replace the kept one.
    let expired = a.log().matches("is expired").count();
    std::fs::write(&crl_path, space.pki.crl(&[], -48, -1, 3)).unwrap();
    wait_for_log(&a, "is expired", expired);
    assert_eq!(b_to_a_mx("expiree")["mail"][0], 550);

    // A CRL whose signature does not verify is refused too.
    let forged_count = a.log().matches("signature does not verify").count();
    let mut forged = space.pki.fresh_crl(&[], 4);
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    std::fs::write(&crl_path, forged).unwrap();
    wait_for_log(&a, "signature does not verify", forged_count);
    assert_eq!(b_to_a_mx("falsifiee")["mail"][0], 550);

    // /metrics: one CA with a CRL in force, its nextUpdate about a day ahead.
    let metrics = common::http::curl(&[&common::http::url(&a, "/metrics")]).body;
    assert!(metrics.contains("mssante_crl_in_force 1"), "{metrics}");
    let ahead: i64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("mssante_crl_next_update_seconds{ca=") && l.contains("IGC-Santé TEST")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no CRL gauge for the test CA: {metrics}"));
    assert!((20 * 3600..=24 * 3600).contains(&ahead), "{ahead}");

    // doctor: the kept CRL is reported fresh, with its number.
    let doctor = String::from_utf8_lossy(&a.cli(&["doctor", "--json"]).stdout).into_owned();
    assert!(
        doctor.contains("trust.crl") && doctor.contains("number 2"),
        "{doctor}"
    );
}

/// One AUTHENTICATE EXTERNAL over IMAPS with `id`'s certificate (tests/clients/external_client.py).
fn imaps_external(server: &Server, id: &Identity) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(common::clients_dir().join("external_client.py"))
        .args(["imap-login", "--implicit", "--port"])
        .arg(server.ports.imaps.to_string())
        .arg("--cert")
        .arg(&id.cert_pem)
        .arg("--key")
        .arg(&id.key_pem)
        .output()
        .expect("python3");
    common::client_json("imap-login", out, server)
}

#[test]
fn a_revoked_application_certificate_no_longer_logs_in_with_sasl_external() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki"));
    let lab = pki.operator("lab", &LAB);
    // A file as CRL source: the CRL of `[tls] client_ca_file` is fetched like the others.
    let crl_path = dir.path().join("root.crl");
    std::fs::write(&crl_path, pki.fresh_crl(&[], 1)).unwrap();
    let config = format!(
        "[tls]\nclient_ca_file = \"{}\"\n[trust]\nenforce = false\ncrl_urls = [\"{}\"]\ncrl_refresh_secs = 2\n",
        pki.root_pem.display(),
        crl_path.display()
    );
    let mut server = Server::configure(Engine::Sqlite, &config);
    server.cli_ok(&["domain", "add", common::DOMAIN]);
    let labo = format!("labo@{}", common::DOMAIN);
    server.cli_ok(&[
        "bal",
        "create",
        &labo,
        "--type",
        "APP",
        "--finess",
        "750712184",
    ]);
    server.cli_ok(&["client-cert", "bind", &labo, "--dn", &lab.dn]);
    server.spawn();
    wait_for_log(&server, "now in force", 0);
    let out = imaps_external(&server, &lab);
    assert_eq!(out["auth"][0], "OK", "before revocation: {out}");

    std::fs::write(&crl_path, pki.fresh_crl(&[&lab], 2)).unwrap();
    wait_for_log(&server, "now in force", 1);
    let out = imaps_external(&server, &lab);
    assert_eq!(out["auth"][0], "NO", "after revocation: {out}");
    let log = server.log();
    assert!(log.contains("revoked"), "the refusal is logged: {log}");
}
