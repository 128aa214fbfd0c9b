//! SASL EXTERNAL (RFC 4422 Appendix A, ADR 0029) through the real binary, on SQLite and
//! PostgreSQL: application BALs log in with a TLS client certificate, with Python's imaplib
//! (AUTHENTICATE EXTERNAL, IMAP STARTTLS and IMAPS) and smtplib (AUTH EXTERNAL, submission and
//! submissions, also raw `AUTH EXTERNAL =`). Certificates are generated at test time (testkit
//! PKI, rcgen): the configured client CA, and a foreign CA whose certificates get no EXTERNAL.

mod common;

use std::process::Command;

use common::*;
use mssante_testkit::engine_tests_sync;
use mssante_testkit::pki::{Identity, OperatorSpec, TestPki};

/// The laboratory system's certificate subject (bound by DN to `labo`).
const LAB: OperatorSpec = OperatorSpec {
    mta: "sil.labo-exemple.fr",
    siret: "75071218400011",
    org: "Laboratoire Exemple",
    departement: "Paris (75)",
};
/// Another application's subject, bound by its subjectAltName to `imagerie`.
const IMAGING: OperatorSpec = OperatorSpec {
    mta: "pacs.imagerie-exemple.fr",
    siret: "75071218400029",
    org: "Imagerie Exemple",
    departement: "Paris (75)",
};
/// Issued by the configured CA but bound to nothing.
const UNBOUND: OperatorSpec = OperatorSpec {
    mta: "inconnu.exemple.fr",
    siret: "75071218400037",
    org: "Inconnu",
    departement: "Paris (75)",
};

struct Setup {
    server: Server,
    lab: Identity,
    imaging: Identity,
    unbound: Identity,
    /// Same subject as `lab`, from a CA the server does not trust.
    foreign: Identity,
    _dir: tempfile::TempDir,
}

fn bal(local: &str) -> String {
    format!("{local}@{DOMAIN}")
}

/// A server with `[tls] client_ca_file` = the test root, three APP BALs (`labo` bound to the
/// lab certificate's DN, `imagerie` bound to the imaging certificate's DNS SAN, `pharma`
/// bound to nothing) and a PER BAL with a password.
fn setup(engine: Engine) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki"));
    let lab = pki.operator("lab", &LAB);
    let imaging = pki.operator("imaging", &IMAGING);
    let unbound = pki.operator("unbound", &UNBOUND);
    let foreign = pki.foreign_operator("foreign", &LAB);
    let tls = format!("[tls]\nclient_ca_file = \"{}\"\n", pki.root_pem.display());
    let mut server = Server::configure(engine, &tls);
    server.cli_ok(&["domain", "add", DOMAIN]);
    for local in ["labo", "imagerie", "pharma"] {
        server.cli_ok(&[
            "bal",
            "create",
            &bal(local),
            "--type",
            "APP",
            "--finess",
            "750712184",
        ]);
    }
    server.create_bal(&bal("dr.martin"), "10001234567");
    // The DN as an operator might type it: another order and case than the certificate's.
    let typed_dn =
        "c=FR, o=laboratoire exemple, ou=75071218400011, st=Paris (75), cn=SIL.labo-exemple.fr";
    let out = server.cli_ok(&["client-cert", "bind", &bal("labo"), "--dn", typed_dn]);
    assert!(out.contains("opens"), "{out}");
    server.cli_ok(&[
        "client-cert",
        "bind",
        &bal("imagerie"),
        "--san",
        "dns:PACS.imagerie-exemple.fr",
    ]);
    server.spawn();
    Setup {
        server,
        lab,
        imaging,
        unbound,
        foreign,
        _dir: dir,
    }
}

/// One login by the Python client (`imap-login` or `smtp-login`) with `cert` (or none).
fn login(
    s: &Setup,
    case: &str,
    port: u16,
    implicit: bool,
    cert: Option<&Identity>,
    extra: &[&str],
) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(clients_dir().join("external_client.py"))
        .arg(case)
        .args(["--port", &port.to_string()]);
    if implicit {
        cmd.arg("--implicit");
    }
    if let Some(id) = cert {
        cmd.arg("--cert")
            .arg(&id.cert_pem)
            .arg("--key")
            .arg(&id.key_pem);
    }
    let out = cmd.args(extra).output().expect("python3");
    assert!(
        out.status.success(),
        "{case} {extra:?}: {}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.server.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn imap_ports(s: &Setup) -> [(u16, bool); 2] {
    [(s.server.ports.imap, false), (s.server.ports.imaps, true)]
}

fn smtp_ports(s: &Setup) -> [(u16, bool); 2] {
    [
        (s.server.ports.submission, false),
        (s.server.ports.submissions, true),
    ]
}

fn advertises_external(caps: &serde_json::Value) -> bool {
    caps.as_array()
        .unwrap()
        .iter()
        .any(|c| c == "AUTH=EXTERNAL" || c == "EXTERNAL")
}

engine_tests_sync!(a_bound_certificate_opens_its_bal, |engine| {
    let s = setup(engine);
    for (port, implicit) in imap_ports(&s) {
        // An empty authorization identity: the server opens the one bound BAL.
        for authzid in ["", "labo@ch-test.mssante.fr", "LABO@CH-TEST.mssante.fr"] {
            let out = login(
                &s,
                "imap-login",
                port,
                implicit,
                Some(&s.lab),
                &["--authzid", authzid],
            );
            assert!(advertises_external(&out["caps"]), "{out}");
            assert_eq!(out["auth"][0], "OK", "{authzid:?} on {port}: {out}");
            assert_eq!(out["select"], "OK", "{out}");
        }
        let out = login(&s, "imap-login", port, implicit, Some(&s.imaging), &[]);
        assert_eq!(out["auth"][0], "OK", "bound by its DNS SAN: {out}");
    }
    for (port, implicit) in smtp_ports(&s) {
        let labo = bal("labo");
        let out = login(
            &s,
            "smtp-login",
            port,
            implicit,
            Some(&s.lab),
            &["--authzid", &labo],
        );
        assert!(advertises_external(&out["ehlo_auth"]), "{out}");
        assert_eq!(out["auth"][0], 235, "{out}");
        assert_eq!(out["mail"][0], 250, "send-as the opened BAL: {out}");
        let out = login(
            &s,
            "smtp-login",
            port,
            implicit,
            Some(&s.lab),
            &["--raw", "--sender", &labo],
        );
        assert_eq!(out["auth"][0], 235, "AUTH EXTERNAL = : {out}");
        assert_eq!(out["mail"][0], 250, "{out}");
        // smtplib's own exchange with an empty identity (an empty 334 answered empty).
        let out = login(
            &s,
            "smtp-login",
            port,
            implicit,
            Some(&s.imaging),
            &["--sender", &bal("imagerie")],
        );
        assert_eq!(out["auth"][0], 235, "{out}");
        assert_eq!(out["mail"][0], 250, "{out}");
    }
    let log = s.server.log();
    assert!(
        log.contains("login with a client certificate") && log.contains("CN=sil.labo-exemple.fr"),
        "logins are logged with the certificate subject: {log}"
    );
});

engine_tests_sync!(
    unbound_foreign_and_misdirected_certificates_are_refused,
    |engine| {
        let s = setup(engine);
        for (port, implicit) in imap_ports(&s) {
            // Issued by the client CA but bound to no BAL: offered, then refused.
            let out = login(&s, "imap-login", port, implicit, Some(&s.unbound), &[]);
            assert!(advertises_external(&out["caps"]), "{out}");
            assert_eq!(out["auth"][0], "NO", "{out}");
            assert!(
                out["auth"][1]
                    .as_str()
                    .unwrap()
                    .contains("[AUTHENTICATIONFAILED]"),
                "{out}"
            );
            // The lab's subject from another CA: no EXTERNAL at all, and a try is refused.
            let out = login(&s, "imap-login", port, implicit, Some(&s.foreign), &[]);
            assert!(!advertises_external(&out["caps"]), "{out}");
            assert_eq!(out["auth"][0], "NO", "{out}");
            // No certificate: an ordinary client still connects, without EXTERNAL.
            let out = login(&s, "imap-login", port, implicit, None, &[]);
            assert!(!advertises_external(&out["caps"]), "{out}");
            assert!(
                out["caps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c == "AUTH=PLAIN")
            );
            assert_eq!(out["auth"][0], "NO", "{out}");
            // A bound certificate naming another APP BAL, or a PER BAL.
            for other in [bal("pharma"), bal("dr.martin"), bal("nobody")] {
                let out = login(
                    &s,
                    "imap-login",
                    port,
                    implicit,
                    Some(&s.lab),
                    &["--authzid", &other],
                );
                assert_eq!(out["auth"][0], "NO", "{other}: {out}");
                assert!(
                    out["auth"][1]
                        .as_str()
                        .unwrap()
                        .contains("[AUTHORIZATIONFAILED]"),
                    "{other}: {out}"
                );
            }
        }
        for (port, implicit) in smtp_ports(&s) {
            let pharma = bal("pharma");
            let cases: [(Option<&Identity>, &str, bool); 4] = [
                (Some(&s.unbound), "", true),
                (Some(&s.foreign), "", false),
                (None, "", false),
                (Some(&s.lab), &pharma, true),
            ];
            for (cert, authzid, offered) in cases {
                let out = login(
                    &s,
                    "smtp-login",
                    port,
                    implicit,
                    cert,
                    &["--authzid", authzid, "--sender", &pharma],
                );
                assert_eq!(advertises_external(&out["ehlo_auth"]), offered, "{out}");
                assert_eq!(out["auth"][0], 535, "{out}");
                assert_eq!(out["auth"][1], "5.7.8 Authentication credentials invalid");
                assert_ne!(out["mail"][0], 250, "nothing opened: {out}");
            }
        }
        let log = s.server.log();
        assert!(log.contains("NotBound"), "{log}");
        assert!(log.contains("NotAuthorized"), "{log}");
        assert!(
            log.contains("client certificate not usable for SASL EXTERNAL")
                && log.contains("not issued by a trusted"),
            "the foreign certificate's refusal is logged: {log}"
        );
        assert!(
            !log.contains("BEGIN") && !log.contains("PRIVATE"),
            "no key material in the log"
        );
    }
);

engine_tests_sync!(bindings_are_managed_by_the_operator, |engine| {
    let s = setup(engine);
    let listed = s.server.cli_ok(&["client-cert", "list"]);
    assert!(
        listed.contains(&format!("{}\tDN C=FR,", bal("labo")))
            && listed.contains("CN=SIL.labo-exemple.fr")
            && listed.contains(&format!(
                "{}\tdns:PACS.imagerie-exemple.fr",
                bal("imagerie")
            )),
        "{listed}"
    );
    // Certificates open application BALs only.
    let out = s.server.cli(&[
        "client-cert",
        "bind",
        &bal("dr.martin"),
        "--cert",
        s.lab.cert_pem.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PER BAL") && err.contains("APP"), "{err}");
    let out = s
        .server
        .cli(&["client-cert", "bind", &bal("pharma"), "--san", "ip:1.2.3.4"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("email:ADDRESS"));

    // Bound from its PEM file, the lab certificate opens pharma too; with two BALs bound,
    // an empty authorization identity no longer says which.
    let lab_pem = s.lab.cert_pem.to_str().unwrap().to_string();
    s.server
        .cli_ok(&["client-cert", "bind", &bal("pharma"), "--cert", &lab_pem]);
    let imaps = s.server.ports.imaps;
    let out = login(
        &s,
        "imap-login",
        imaps,
        true,
        Some(&s.lab),
        &["--authzid", &bal("pharma")],
    );
    assert_eq!(out["auth"][0], "OK", "{out}");
    let out = login(&s, "imap-login", imaps, true, Some(&s.lab), &[]);
    assert_eq!(out["auth"][0], "NO", "ambiguous: {out}");

    // Unbound: the next login is refused, without a restart.
    for local in ["labo", "pharma"] {
        let out = s
            .server
            .cli_ok(&["client-cert", "unbind", &bal(local), "--cert", &lab_pem]);
        assert!(out.contains("no longer opens"), "{out}");
    }
    let out = s
        .server
        .cli(&["client-cert", "unbind", &bal("labo"), "--cert", &lab_pem]);
    assert!(!out.status.success(), "unbinding twice is an error");
    let out = login(&s, "imap-login", imaps, true, Some(&s.lab), &[]);
    assert_eq!(out["auth"][0], "NO", "{out}");
    let audit = s.server.cli_ok(&["audit", &bal("labo")]);
    assert!(audit.contains("client certificate"), "{audit}");
});
