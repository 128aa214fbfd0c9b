//! `mssante doctor` against a real setup: a test PKI (IGC-Santé stand-in), a whitelist
//! synced by `mssante trust sync`, DNS from a loopback dnsmasq on a non-standard port (never
//! the real DNS), the real binary on SQLite and PostgreSQL. A passing setup is all OK; each
//! broken thing cheap to produce FAILs with its reason, and the exit code says so.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mssante_testkit::dns::{DnsRecord, Dnsmasq};
use mssante_testkit::engine_tests_sync;
use mssante_testkit::pki::{Identity, OperatorSpec, TestPki, whitelist_xml};
use serde_json::Value;

const PEER: &str = "labo-peer.mssante.fr";
const PEER_MX: &str = "mx.labo-peer.mssante.fr";

fn our_spec() -> OperatorSpec<'static> {
    OperatorSpec {
        mta: HOSTNAME,
        siret: "12345678900017",
        org: "CH TEST",
        departement: "Gironde (33)",
    }
}

/// The world one doctor run looks at.
struct Setup {
    _dir: tempfile::TempDir,
    _dns: Dnsmasq,
    server: Server,
}

/// What to break in an otherwise correct setup.
#[derive(Default)]
struct Broken {
    expired_certificate: bool,
    no_mx: bool,
    other_dn_listed: bool,
    /// SRV records left out of the zone (`_imaps`), and published with a wrong port.
    srv_missing: Option<&'static str>,
    srv_wrong_port: Option<&'static str>,
    directory: Directory,
}

/// The local copy of the national directory.
#[derive(Default, PartialEq)]
enum Directory {
    /// Imported just now.
    #[default]
    Fresh,
    /// Imported, ten days ago.
    Stale,
    Never,
}

/// Days the stale import is moved back (doctor FAILs after 7).
const STALE_DAYS: i64 = 10;

/// The first rows of the national extraction sample: enough for an import.
fn small_extraction(dir: &Path) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("directory/tests/fixtures/Extraction_Correspondance_MSSante_sample.txt");
    let text = std::fs::read_to_string(sample).unwrap();
    let path = dir.join("Extraction_Correspondance_MSSante.txt");
    let head: Vec<&str> = text.lines().take(21).collect();
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path
}

/// The SRV records `mssante dns records DOMAIN` prints, as the zone publishes them (minus
/// and plus what `broken` says).
fn srv_records(server: &Server, broken: &Broken) -> Vec<DnsRecord> {
    let zone = server.cli_ok(&["dns", "records", DOMAIN]);
    let owner = |service: Option<&str>| service.map(|s| format!("{s}._tcp.{DOMAIN}"));
    let mut records: Vec<DnsRecord> = zone
        .lines()
        .filter_map(DnsRecord::srv_from_zone_line)
        .filter(|r| !matches!(r, DnsRecord::Srv { owner: o, .. } if Some(o) == owner(broken.srv_missing).as_ref()))
        .collect();
    assert!(records.len() >= 5, "{zone}");
    for record in &mut records {
        if let DnsRecord::Srv { owner: o, port, .. } = record
            && Some(o.as_str()) == owner(broken.srv_wrong_port).as_deref()
        {
            *port += 1;
        }
    }
    records
}

fn setup(engine: Engine, broken: Broken) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki"));
    let ours: Identity = if broken.expired_certificate {
        pki.expired_operator("ours", &our_spec())
    } else {
        pki.operator("ours", &our_spec())
    };
    let listed_dn = if broken.other_dn_listed {
        pki.operator(
            "other",
            &OperatorSpec {
                mta: "mx.autre.fr",
                ..our_spec()
            },
        )
        .dn
    } else {
        ours.dn.clone()
    };
    let whitelist = dir.path().join("listeblanchemssante.xml");
    std::fs::write(&whitelist, whitelist_xml(&[(DOMAIN, &listed_dn)])).unwrap();
    let crl = dir.path().join("root.crl");
    std::fs::write(&crl, pki.fresh_crl(&[], 1)).unwrap();
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n\
         [trust]\nenforce = true\nwhitelist = \"{}\"\nca_file = \"{}\"\ncrl_urls = [\"{}\"]\n",
        ours.chain_pem.display(),
        ours.key_pem.display(),
        whitelist.display(),
        pki.root_pem.display(),
        crl.display(),
    );
    let server = Server::configure(engine, &extra);
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.cli_ok(&["trust", "sync"]);
    server.cli_ok(&["trust", "crl"]);
    if broken.directory != Directory::Never {
        let extraction = small_extraction(dir.path());
        server.cli_ok(&["directory", "import", extraction.to_str().unwrap()]);
    }
    if broken.directory == Directory::Stale {
        let back = STALE_DAYS * 86_400;
        server.sql(&format!(
            "UPDATE directory_imports SET started_at = started_at - {back}, \
             finished_at = finished_at - {back}"
        ));
    }

    // The zone holds what `mssante dns records` prints (the SRV records), then the resolver
    // serving it goes into the configuration.
    let mut records = vec![
        DnsRecord::a(HOSTNAME, Ipv4Addr::LOCALHOST),
        DnsRecord::mx(PEER, PEER_MX, 10),
        DnsRecord::a(PEER_MX, Ipv4Addr::new(127, 0, 0, 9)),
    ];
    if !broken.no_mx {
        records.push(DnsRecord::mx(DOMAIN, HOSTNAME, 10));
    }
    records.extend(srv_records(&server, &broken));
    let dns = Dnsmasq::start(&dir.path().join("dns"), &records);
    let mut config = std::fs::read_to_string(&server.config_path).unwrap();
    config.push_str(&format!("\n[relay]\nnameserver = \"{}\"\n", dns.addr));
    std::fs::write(&server.config_path, config).unwrap();
    Setup {
        _dir: dir,
        _dns: dns,
        server,
    }
}

/// Runs `doctor --json`: (exit status success, the document).
fn doctor(server: &Server) -> (bool, Value) {
    let out = server.cli(&["doctor", "--json", "--peer", PEER]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), doc)
}

/// The check named `name`: (status, message).
fn check(doc: &Value, name: &str) -> (String, String) {
    let found = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {doc:#}"));
    (
        found["status"].as_str().unwrap().to_string(),
        found["message"].as_str().unwrap().to_string(),
    )
}

fn assert_fails(doc: &Value, name: &str, words: &str) {
    let (status, message) = check(doc, name);
    assert_eq!(status, "FAIL", "{name}: {message}\n{doc:#}");
    assert!(
        message.contains(words),
        "{name}: {message:?} lacks {words:?}"
    );
    assert_eq!(doc["ok"], false);
}

fn passing_setup_is_all_ok(engine: Engine) {
    let mut setup = setup(engine, Broken::default());
    let (ok, doc) = doctor(&setup.server);
    let not_ok: Vec<&Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "OK")
        // The free space is this machine's, shared with other jobs: not the setup's to pass.
        .filter(|c| !(c["name"] == "disk" && c["status"] == "WARN"))
        .collect();
    assert!(ok && not_ok.is_empty(), "{not_ok:#?}");
    for name in [
        "config",
        "database",
        "migrations",
        "data_dir",
        "disk",
        "tls.certificate",
        "tls.chain",
        "trust.whitelist",
        &format!("trust.dn {DOMAIN}"),
        &format!("dns.address {HOSTNAME}"),
        "listen.smtp",
        "listen.imaps",
    ] {
        check(&doc, name);
    }
    let crl = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("trust.crl "))
        .unwrap_or_else(|| panic!("no trust.crl check per CA in {doc:#}"));
    assert!(
        crl["name"].as_str().unwrap().contains("IGC-Santé TEST")
            && crl["message"].as_str().unwrap().contains("nextUpdate"),
        "{crl}"
    );
    for service in ["_submission", "_submissions", "_imap", "_imaps"] {
        let (_, message) = check(&doc, &format!("dns.srv {service}._tcp.{DOMAIN}"));
        assert!(message.contains(&format!(" {HOSTNAME}.")), "{message}");
    }
    assert!(
        check(&doc, "directory")
            .1
            .contains("last extraction import #1 (20 rows) finished 0 h ago"),
        "{doc:#}"
    );
    assert!(check(&doc, "tls.expiry").1.contains("days left"));
    assert_eq!(
        check(&doc, &format!("dns.mx {DOMAIN}")).1,
        format!("MX 10 {HOSTNAME}")
    );
    assert!(
        check(&doc, &format!("dns.peer {PEER}"))
            .1
            .contains("127.0.0.9")
    );
    assert!(check(&doc, "listen.smtp").1.contains("free"));

    // With the server running, its listeners are found listening; the text output has one
    // line per check.
    setup.server.spawn();
    let (_, doc) = doctor(&setup.server);
    assert!(
        check(&doc, "listen.submission")
            .1
            .contains("listening (serve"),
        "{doc:#}"
    );
    let out = setup.server.cli(&["doctor", "--peer", PEER]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        doc["checks"].as_array().unwrap().len()
    );
    assert!(
        text.lines()
            .all(|l| l.starts_with("OK   ") || l.starts_with("WARN disk:")),
        "{text}"
    );
}

#[test]
fn a_correct_setup_passes_on_sqlite() {
    passing_setup_is_all_ok(Engine::Sqlite);
}

#[test]
fn a_correct_setup_passes_on_postgres() {
    passing_setup_is_all_ok(Engine::Postgres);
}

#[test]
fn an_expired_certificate_fails() {
    let setup = setup(
        Engine::Sqlite,
        Broken {
            expired_certificate: true,
            ..Broken::default()
        },
    );
    let (ok, doc) = doctor(&setup.server);
    assert!(!ok);
    assert_fails(&doc, "tls.expiry", "expired 1 day(s) ago");
    assert_fails(&doc, "tls.chain", "expired");
}

#[test]
fn a_missing_mx_fails_and_the_text_says_the_fix() {
    let setup = setup(
        Engine::Sqlite,
        Broken {
            no_mx: true,
            ..Broken::default()
        },
    );
    let (ok, doc) = doctor(&setup.server);
    assert!(!ok);
    let name = format!("dns.mx {DOMAIN}");
    let (status, _) = check(&doc, &name);
    assert_eq!(status, "FAIL", "{doc:#}");
    let out = setup.server.cli(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.contains(&name)).unwrap();
    assert!(
        line.starts_with("FAIL ")
            && line.contains(&format!(
                "fix: publish the lines of `mssante dns records {DOMAIN}`"
            )),
        "{line}"
    );
}

/// The `doctor` text line of check `name` (printed, for the test's output).
fn doctor_line(server: &Server, name: &str) -> String {
    let out = server.cli(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!(" {name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string();
    eprintln!("doctor prints: {line}");
    line
}

#[test]
fn a_missing_srv_record_fails_with_the_line_to_publish() {
    let setup = setup(
        Engine::Sqlite,
        Broken {
            srv_missing: Some("_imaps"),
            srv_wrong_port: Some("_submission"),
            ..Broken::default()
        },
    );
    let zone = setup.server.cli_ok(&["dns", "records", DOMAIN]);
    for (service, why) in [
        ("_imaps", "no SRV record (asked 127.0.0.1:"),
        ("_submission", "does not name this server's port"),
    ] {
        let owner = format!("{service}._tcp.{DOMAIN}");
        let line = doctor_line(&setup.server, &format!("dns.srv {owner}"));
        let to_publish = zone
            .lines()
            .find(|l| l.starts_with(&format!("{owner}. ")))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            line.starts_with("FAIL ")
                && line.contains(why)
                && line.contains(&format!(
                    "fix: publish `{to_publish}` in the zone of {DOMAIN}"
                )),
            "{line}"
        );
    }
    let (ok, doc) = doctor(&setup.server);
    assert!(!ok);
    for service in ["_submissions", "_imap"] {
        let (status, message) = check(&doc, &format!("dns.srv {service}._tcp.{DOMAIN}"));
        assert_eq!(status, "OK", "{message}");
    }
}

engine_tests_sync!(a_stale_directory_fails, |engine| {
    for (directory, words) in [
        (
            Directory::Stale,
            format!(
                "finished {} h ago: stale, more than 7 days",
                STALE_DAYS * 24
            ),
        ),
        (
            Directory::Never,
            "the national directory was never imported".to_string(),
        ),
    ] {
        let setup = setup(
            engine,
            Broken {
                directory,
                ..Broken::default()
            },
        );
        let line = doctor_line(&setup.server, "directory");
        assert!(
            line.starts_with("FAIL ")
                && line.contains(&words)
                && line.contains("fix: `mssante directory import`"),
            "{line}"
        );
    }
});

#[test]
fn a_dn_the_whitelist_does_not_list_fails() {
    let setup = setup(
        Engine::Sqlite,
        Broken {
            other_dn_listed: true,
            ..Broken::default()
        },
    );
    let (_, doc) = doctor(&setup.server);
    assert_fails(
        &doc,
        &format!("trust.dn {DOMAIN}"),
        "is not the listed one (CN=mx.autre.fr",
    );
}

#[test]
fn a_wrong_database_url_fails() {
    let setup = setup(Engine::Sqlite, Broken::default());
    let config = std::fs::read_to_string(&setup.server.config_path).unwrap();
    let closed = Server::free_port();
    let wrong: String = config
        .lines()
        .map(|l| match l.starts_with("database_url") {
            true => {
                format!("database_url = \"postgres://mssante:s3cret@127.0.0.1:{closed}/mssante\"\n")
            }
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&setup.server.config_path, wrong).unwrap();
    let out = setup.server.cli(&["doctor", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!out.status.success());
    assert_fails(&doc, "database", &format!("127.0.0.1:{closed}"));
    assert!(
        !doc.to_string().contains("s3cret"),
        "the password is never printed: {doc}"
    );
}

#[test]
fn an_unwritable_data_dir_fails() {
    let setup = setup(Engine::Sqlite, Broken::default());
    let data_dir = setup.server.db.data_path().to_path_buf();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root writes anywhere: run the doctor as nobody, for whom the folder is read-only.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", binary()]);
        c
    } else {
        Command::new(binary())
    };
    let out = cmd
        .arg("--config")
        .arg(&setup.server.config_path)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("{}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(!out.status.success());
    assert_fails(&doc, "data_dir", "is not writable by this user");
}

#[test]
fn a_bad_configuration_line_is_named() {
    let setup = setup(Engine::Sqlite, Broken::default());
    let mut config = std::fs::read_to_string(&setup.server.config_path).unwrap();
    config.push_str("[smtp]\nmax_recipients = \"many\"\n");
    std::fs::write(&setup.server.config_path, &config).unwrap();
    let line = config.lines().count();
    let out = setup.server.cli(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("FAIL config: ") && text.contains(&format!("line {line}")),
        "{text}"
    );
}
