//! Client autoconfiguration over real HTTP: the binary serves Mozilla autoconfig XML and
//! Apple profiles on its HTTP (and HTTPS) listener, read by Python's XML and plist parsers
//! and by curl; `mssante dns records` prints the zone lines.

mod common;

use std::process::Command;

use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::{Value, json};

const BAL: &str = "dr.martin@ch-test.mssante.fr";
const ISSUER: &str = "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet";

/// `[public]` advertising IMAP with STARTTLS on 143 of another host (a port redirect in
/// front of the server), the rest by default, and PSC's OAuth2 hints.
fn public_with_oauth2() -> String {
    format!(
        "[public]\nimap = \"imap.ch-test.mssante.fr:143\"\n[public.oauth2]\nissuer = \"{ISSUER}\"\n\
         scope = \"openid scope_all\"\nauth_url = \"https://wallet.bas.psc.esante.gouv.fr/auth?x=1&y=2\"\n\
         token_url = \"{ISSUER}/protocol/openid-connect/token\"\n"
    )
}

fn client(case: &str, url: &str, host: Option<&str>) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(clients_dir().join("autoconfig_client.py"))
        .args([case, url]);
    if let Some(h) = host {
        cmd.args(["--host", h]);
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "{case} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn http(server: &Server, path_and_query: &str) -> String {
    format!("http://127.0.0.1:{}{path_and_query}", server.ports.http)
}

/// curl: (status, content type, body).
fn curl(url: &str, extra: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-k", "-w", "\n%{http_code} %{content_type}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl is required for the end-to-end tests (Debian package curl)");
    assert!(out.status.success(), "curl {url}: {:?}", out);
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (status, content_type) = tail.split_once(' ').unwrap();
    (
        status.parse().unwrap(),
        content_type.to_string(),
        body.to_string(),
    )
}

fn server_entry(host: &str, port: u16, socket: &str, auth: &[&str], kind: &str) -> Value {
    json!({
        "type": kind,
        "hostname": host,
        "port": port,
        "socketType": socket,
        "username": "%EMAILADDRESS%",
        "authentication": auth,
    })
}

engine_tests_sync!(thunderbird_reads_servers_ports_and_oauth2_hints, |engine| {
    let server = Server::start_with(engine, &public_with_oauth2(), &[BAL]);
    let auth = ["password-cleartext", "OAuth2"];
    let expected_incoming = json!([
        server_entry(HOSTNAME, server.ports.imaps, "SSL", &auth, "imap"),
        server_entry("imap.ch-test.mssante.fr", 143, "STARTTLS", &auth, "imap"),
    ]);
    let expected_outgoing = json!([
        server_entry(HOSTNAME, server.ports.submissions, "SSL", &auth, "smtp"),
        server_entry(HOSTNAME, server.ports.submission, "STARTTLS", &auth, "smtp"),
    ]);
    let query = format!("?emailaddress={}", BAL.replace('@', "%40"));
    for path in [
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        "/mail/config-v1.1.xml",
    ] {
        let doc = client("mozilla", &http(&server, &format!("{path}{query}")), None);
        assert_eq!(doc["id"], DOMAIN, "{doc}");
        assert_eq!(doc["domains"], json!([DOMAIN]));
        assert!(
            doc["content_type"]
                .as_str()
                .unwrap()
                .starts_with("application/xml")
        );
        assert_eq!(doc["incoming"], expected_incoming, "{path}");
        assert_eq!(doc["outgoing"], expected_outgoing, "{path}");
        assert_eq!(
            doc["oauth2"],
            json!({
                "issuer": ISSUER,
                "scope": "openid scope_all",
                "authURL": "https://wallet.bas.psc.esante.gouv.fr/auth?x=1&y=2",
                "tokenURL": format!("{ISSUER}/protocol/openid-connect/token"),
            })
        );
    }
    // Thunderbird at https://autoconfig.<domain>/mail/config-v1.1.xml without an address:
    // the Host header names the domain.
    let doc = client(
        "mozilla",
        &http(&server, "/mail/config-v1.1.xml"),
        Some(&format!("autoconfig.{DOMAIN}")),
    );
    assert_eq!(doc["id"], DOMAIN);
});

#[test]
fn without_oauth2_hints_only_passwords_are_offered() {
    let server = Server::start(Engine::Sqlite, &[BAL]);
    let doc = client(
        "mozilla",
        &http(
            &server,
            &format!("/mail/config-v1.1.xml?emailaddress={BAL}"),
        ),
        None,
    );
    assert_eq!(doc["oauth2"], Value::Null, "{doc}");
    for s in doc["incoming"]
        .as_array()
        .unwrap()
        .iter()
        .chain(doc["outgoing"].as_array().unwrap())
    {
        assert_eq!(s["authentication"], json!(["password-cleartext"]), "{s}");
    }
    assert_eq!(doc["incoming"][0]["port"], server.ports.imaps);
    assert_eq!(doc["incoming"][1]["port"], server.ports.imap);
}

#[test]
fn unknown_domains_and_bad_addresses_get_problem_documents() {
    let server = Server::start(Engine::Sqlite, &[BAL]);
    let (status, content_type, body) = curl(
        &http(
            &server,
            "/mail/config-v1.1.xml?emailaddress=x%40other-operator.fr",
        ),
        &[],
    );
    assert_eq!(
        (status, content_type.as_str()),
        (404, "application/problem+json")
    );
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["type"], "urn:mssante:problem:unknown-domain");
    assert_eq!(problem["status"], 404);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("other-operator.fr")
    );

    let (status, _, body) = curl(
        &http(
            &server,
            "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=no-at-sign",
        ),
        &[],
    );
    assert_eq!(status, 400);
    assert!(body.contains("urn:mssante:problem:bad-address"), "{body}");
    let (status, _, body) = curl(&http(&server, "/mail/mssante.mobileconfig"), &[]);
    assert_eq!(status, 400);
    assert!(
        body.contains("urn:mssante:problem:missing-address"),
        "{body}"
    );
    let (status, content_type, _) = curl(&http(&server, "/api/nothing-here"), &[]);
    assert_eq!(
        (status, content_type.as_str()),
        (404, "application/problem+json")
    );
}

engine_tests_sync!(apple_profile_is_a_mail_payload_plist, |engine| {
    let server = Server::start(engine, &[BAL]);
    // Markup and an ampersand in the local part: escaped in the XML, intact once parsed.
    let address = format!("a&b<c>'\"@{DOMAIN}");
    let encoded: String = address
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect::<String>();
    let got = client(
        "apple",
        &http(
            &server,
            &format!("/mail/mssante.mobileconfig?emailaddress={encoded}"),
        ),
        None,
    );
    assert_eq!(got["content_type"], "application/x-apple-aspen-config");
    assert_eq!(
        got["disposition"],
        format!("attachment; filename=\"{DOMAIN}.mobileconfig\"")
    );
    let profile = &got["profile"];
    assert_eq!(profile["PayloadType"], "Configuration");
    assert_eq!(profile["PayloadVersion"], 1);
    let payloads = profile["PayloadContent"].as_array().unwrap();
    assert_eq!(payloads.len(), 1);
    let mail = &payloads[0];
    assert_eq!(mail["PayloadType"], "com.apple.mail.managed");
    assert_eq!(mail["EmailAccountType"], "EmailTypeIMAP");
    assert_eq!(mail["EmailAddress"], address.as_str());
    assert_eq!(mail["IncomingMailServerUsername"], address.as_str());
    assert_eq!(mail["IncomingMailServerHostName"], HOSTNAME);
    assert_eq!(mail["IncomingMailServerPortNumber"], server.ports.imaps);
    assert_eq!(mail["IncomingMailServerUseSSL"], true);
    assert_eq!(
        mail["IncomingMailServerAuthentication"],
        "EmailAuthPassword"
    );
    assert_eq!(
        mail["OutgoingMailServerPortNumber"],
        server.ports.submissions
    );
    assert_eq!(mail["OutgoingMailServerUseSSL"], true);
    assert_ne!(mail["PayloadUUID"], profile["PayloadUUID"]);
    // The same address gets the same identifiers: installing again replaces the profile.
    let again = client(
        "apple",
        &http(
            &server,
            &format!("/mail/mssante.mobileconfig?emailaddress={encoded}"),
        ),
        None,
    );
    assert_eq!(again["profile"]["PayloadUUID"], profile["PayloadUUID"]);
    let (status, _, _) = curl(
        &http(
            &server,
            "/mail/mssante.mobileconfig?emailaddress=x%40other-operator.fr",
        ),
        &[],
    );
    assert_eq!(status, 404);
});

#[test]
fn https_listener_serves_the_same_documents_with_the_server_certificate() {
    let port = Server::free_port();
    // Appended inside [listen] by the harness.
    let server = Server::start_with(
        Engine::Sqlite,
        &format!("https = \"127.0.0.1:{port}\"\n"),
        &[BAL],
    );
    // The harness waits for the plain listeners; HTTPS is bound just after HTTP.
    server.wait_for_port(port);
    let url = format!("https://127.0.0.1:{port}/mail/config-v1.1.xml?emailaddress={BAL}");
    let doc = client("mozilla", &url, None);
    assert_eq!(doc["id"], DOMAIN);
    // curl over TLS, the certificate being the self-signed one of the server's host name.
    let (status, content_type, body) = curl(&url, &["--http1.1"]);
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/xml"),
        "{content_type}"
    );
    assert!(
        body.contains(&format!("<port>{}</port>", server.ports.imaps)),
        "{body}"
    );
    let cert = server.db.data_path().join("tls/cert.pem");
    let (status, _, _) = curl(
        &url.replace("127.0.0.1", HOSTNAME),
        &[
            "--cacert",
            cert.to_str().unwrap(),
            "--resolve",
            &format!("{HOSTNAME}:{port}:127.0.0.1"),
        ],
    );
    assert_eq!(
        status, 200,
        "verified against the server certificate by name"
    );
}

#[test]
fn dns_records_list_mx_srv_and_autoconfig_with_the_advertised_names() {
    let server = Server::configure(
        Engine::Sqlite,
        "[public]\nmx = \"mx.ch-test.mssante.fr\"\nimaps = \"imap.ch-test.mssante.fr:993\"\n\
         submission = \"off\"\nautoconfig = \"www.ch-test.mssante.fr\"\n",
    );
    server.cli_ok(&["domain", "add", DOMAIN]);
    let out = server.cli_ok(&["dns", "records", DOMAIN]);
    let records: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let p = &server.ports;
    assert_eq!(
        records,
        [
            format!("{DOMAIN}. 3600 IN MX 10 mx.ch-test.mssante.fr."),
            format!(
                "_submissions._tcp.{DOMAIN}. 3600 IN SRV 0 1 {} {HOSTNAME}.",
                p.submissions
            ),
            format!("_submission._tcp.{DOMAIN}. 3600 IN SRV 0 0 0 ."),
            format!("_imaps._tcp.{DOMAIN}. 3600 IN SRV 0 1 993 imap.ch-test.mssante.fr."),
            format!(
                "_imap._tcp.{DOMAIN}. 3600 IN SRV 10 1 {} {HOSTNAME}.",
                p.imap
            ),
            format!("_pop3s._tcp.{DOMAIN}. 3600 IN SRV 0 0 0 ."),
            format!("_pop3._tcp.{DOMAIN}. 3600 IN SRV 0 0 0 ."),
            format!("autoconfig.{DOMAIN}. 3600 IN CNAME www.ch-test.mssante.fr."),
        ],
        "{out}"
    );
    assert!(
        out.contains(&format!("WARNING: the MX listener is on port {}", p.smtp)),
        "{out}"
    );
    let unknown = server.cli(&["dns", "records", "other-operator.fr"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("not a local domain"),
        "{unknown:?}"
    );
    let bad = Server::configure(
        Engine::Sqlite,
        "[public]\nimap = \"imap.ch-test.mssante.fr:0\"\n",
    );
    let out = bad.cli(&["dns", "records", DOMAIN]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("public.imap"),
        "{out:?}"
    );
}
