//! The command line: running on embedded defaults, configuration errors, administration.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mssante_testkit::engine_tests_sync;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The embedded default ports must be free for the test of the defaults (every other test
/// picks free ports): a server started from the README holds them, and is named here.
fn assert_default_ports_free() {
    for port in [2525, 5587, 5465, 1143, 1993, 8080] {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            continue;
        }
        let holder = Command::new("ss")
            .args(["-Hltnp", &format!("sport = :{port}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        panic!(
            "127.0.0.1:{port}, a default port of mssante, is in use ({}): this test starts \
             the server on its embedded defaults. Stop that process (a `mssante serve` started \
             from the README?) and run the tests again.",
            if holder.is_empty() {
                "by another process"
            } else {
                &holder
            }
        );
    }
}

#[test]
fn serve_starts_on_embedded_defaults_without_configuration() {
    assert_default_ports_free();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(binary())
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("MSSANTE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect("127.0.0.1:2525").is_err()
        || !dir.path().join("data/mssante.db").exists()
    {
        assert!(
            Instant::now() < deadline,
            "default listener 127.0.0.1:2525 never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for port in [5587, 5465] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "port {port}"
        );
    }
    assert!(
        dir.path().join("data/tls/cert.pem").exists(),
        "self-signed certificate generated"
    );
    assert!(dir.path().join("data/blobs").is_dir());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("127.0.0.1:2525")
            && stdout.contains("127.0.0.1:5587")
            && stdout.contains("127.0.0.1:5465"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bal create"),
        "tells how to create a first mailbox: {stdout}"
    );
}

#[test]
fn config_example_is_complete_and_accepted() {
    let out = Command::new(binary())
        .args(["config", "example"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = String::from_utf8(out.stdout).unwrap();
    for key in [
        "hostname",
        "data_dir",
        "database_url",
        "[listen]",
        "smtp =",
        "submission =",
        "submissions =",
        "imap =",
        "imaps =",
        "http =",
        "[tls]",
        "cert",
        "key",
    ] {
        assert!(example.contains(key), "example lacks {key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.toml");
    std::fs::write(&path, &example).unwrap();
    let check = Command::new(binary())
        .arg("--config")
        .arg(&path)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn a_bad_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[listen]\nsmtp = \"127.0.0.1\"\n", "listen.smtp"),
        ("database_url = \"mysql://localhost/x\"\n", "database_url"),
        ("[smtp]\nmax_message_size = \"big\"\n", "max_message_size"),
        (
            "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
            "tls.cert",
        ),
        ("hostnme = \"typo\"\n", "hostnme"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            format!(
                "data_dir = \"{}\"\n{text}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let out = Command::new(binary())
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text:?} accepted");
        assert!(
            stderr(&out).contains(key),
            "{text:?}: error does not name {key}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_busy_port_is_reported_with_its_key() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut server = Server::configure(Engine::Sqlite, "");
    let text = std::fs::read_to_string(&server.config_path).unwrap();
    std::fs::write(
        &server.config_path,
        text.replace(
            &format!("127.0.0.1:{}", server.ports.submission),
            &format!("127.0.0.1:{port}"),
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&server.config_path)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("listen.submission"),
        "{}",
        stderr(&out)
    );
    server.kill();
}

engine_tests_sync!(domain_and_bal_administration_with_clear_errors, |engine| {
    let server = Server::configure(engine, "");
    let out = server.cli_ok(&["domain", "add", "CH-Test.MSSante.fr"]);
    assert!(out.contains("ch-test.mssante.fr added"), "{out}");
    let dup = server.cli(&["domain", "add", "ch-test.mssante.fr"]);
    assert!(
        !dup.status.success() && stderr(&dup).contains("already exists"),
        "{}",
        stderr(&dup)
    );
    assert_eq!(
        server.cli_ok(&["domain", "list"]).trim(),
        "ch-test.mssante.fr"
    );

    let unknown = server.cli(&[
        "bal",
        "create",
        "a@other.mssante.fr",
        "--type",
        "PER",
        "--rpps",
        "10000000001",
    ]);
    assert!(
        stderr(&unknown).contains("not a local domain"),
        "{}",
        stderr(&unknown)
    );
    let bad = server.cli(&[
        "bal",
        "create",
        "not an address",
        "--type",
        "PER",
        "--rpps",
        "10000000001",
    ]);
    assert!(stderr(&bad).contains("invalid address"), "{}", stderr(&bad));
    let no_rpps = server.cli(&["bal", "create", "a@ch-test.mssante.fr", "--type", "PER"]);
    assert!(stderr(&no_rpps).contains("--rpps"), "{}", stderr(&no_rpps));
    let bad_type = server.cli(&["bal", "create", "a@ch-test.mssante.fr", "--type", "XYZ"]);
    assert!(
        stderr(&bad_type).contains("PER, ORG, APP or CAB"),
        "{}",
        stderr(&bad_type)
    );
    let short = server.cli_stdin(
        &[
            "bal",
            "create",
            "a@ch-test.mssante.fr",
            "--type",
            "PER",
            "--rpps",
            "10000000001",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(
        stderr(&short).contains("at least 8 characters"),
        "{}",
        stderr(&short)
    );

    let created = server.cli_stdin(
        &[
            "bal",
            "create",
            "Dr.Martin@ch-test.mssante.fr",
            "--type",
            "PER",
            "--rpps",
            "10000000001",
            "--name",
            "Dr Martin",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(created.status.success(), "{}", stderr(&created));
    server.cli_ok(&[
        "bal",
        "create",
        "secretariat@ch-test.mssante.fr",
        "--type",
        "ORG",
        "--finess",
        "750712184",
    ]);
    let dup = server.cli(&[
        "bal",
        "create",
        "DR.MARTIN@ch-test.mssante.fr",
        "--type",
        "PER",
        "--rpps",
        "10000000002",
    ]);
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));

    let list = server.cli_ok(&["bal", "list"]);
    assert!(
        list.contains("dr.martin@ch-test.mssante.fr")
            && list.contains("810000000001")
            && list.contains("750712184"),
        "{list}"
    );
    let show = server.cli_ok(&["bal", "show", "dr.martin@ch-test.mssante.fr"]);
    for expected in [
        "type:         PER",
        "status:       active",
        "password:     set",
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
    ] {
        assert!(show.contains(expected), "show lacks {expected:?}: {show}");
    }
    assert!(
        !show.contains(PASSWORD) && !show.contains("argon2"),
        "secrets never printed"
    );

    assert!(
        server
            .cli_ok(&["bal", "suspend", "dr.martin@ch-test.mssante.fr"])
            .contains("suspended")
    );
    let again = server.cli(&["bal", "suspend", "dr.martin@ch-test.mssante.fr"]);
    assert!(!again.status.success() && stderr(&again).contains("cannot make it suspended"));
    assert!(
        server
            .cli_ok(&["bal", "reactivate", "dr.martin@ch-test.mssante.fr"])
            .contains("active")
    );
    assert!(
        server
            .cli_ok(&["bal", "close", "dr.martin@ch-test.mssante.fr"])
            .contains("closed")
    );
    let reopen = server.cli(&["bal", "reactivate", "dr.martin@ch-test.mssante.fr"]);
    assert!(!reopen.status.success(), "closed is final");
    let missing = server.cli(&["bal", "show", "nobody@ch-test.mssante.fr"]);
    assert!(
        stderr(&missing).contains("not found"),
        "{}",
        stderr(&missing)
    );
});

engine_tests_sync!(passwd_changes_the_login_password, |engine| {
    let mut server = Server::start(engine, &["dr.martin@ch-test.mssante.fr"]);
    let bal = "dr.martin@ch-test.mssante.fr";
    let no_flag = server.cli(&["bal", "passwd", bal]);
    assert!(!no_flag.status.success() && stderr(&no_flag).contains("--password-stdin"));
    let ok = server.cli_stdin(
        &["bal", "passwd", bal, "--password-stdin"],
        "a brand new passphrase\n",
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let old = py("bad_login", &server, &["--login", bal]);
    assert_eq!(old["auth"][0], 535);
    // The old password (PASSWORD) no longer works through a real client either.
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import smtplib,ssl\nc=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE\n\
             s=smtplib.SMTP('127.0.0.1',{port});s.starttls(context=c);s.ehlo()\n\
             for p in ['{PASSWORD}','a brand new passphrase']:\n  print(s.docmd('AUTH','PLAIN '+__import__('base64').b64encode(('\\0{bal}\\0'+p).encode()).decode())[0])",
            port = server.ports.submission
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["535", "235"],
        "{}",
        stderr(&out)
    );
    server.kill();
});

engine_tests_sync!(
    bal_creation_and_closure_are_queued_for_the_national_directory,
    |engine| {
        // The endpoint is never contacted here (no server runs); the outbox is what is checked.
        let server = Server::configure(
            engine,
            "[directory.publication]\nbase_url = \"http://127.0.0.1:9/fhir/v2\"",
        );
        server.cli_ok(&["domain", "add", "ch-test.mssante.fr"]);
        let created = server.cli_ok(&[
            "bal",
            "create",
            "dr.x@ch-test.mssante.fr",
            "--type",
            "PER",
            "--rpps",
            "10000000001",
        ]);
        assert!(created.contains("queued for publication"), "{created}");
        let closed = server.cli_ok(&["bal", "close", "dr.x@ch-test.mssante.fr"]);
        assert!(closed.contains("queued for publication"), "{closed}");
        // Without the section nothing is queued.
        let plain = Server::configure(engine, "");
        plain.cli_ok(&["domain", "add", "ch-test.mssante.fr"]);
        let out = plain.cli_ok(&[
            "bal",
            "create",
            "dr.y@ch-test.mssante.fr",
            "--type",
            "PER",
            "--rpps",
            "10000000002",
        ]);
        assert!(!out.contains("queued"), "{out}");
    }
);

/// Runs `mssante --config PATH ARGS` and returns its output.
fn run_with(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn config_check_prints_toml_with_the_file_keys_and_secrets_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mssante.toml");
    std::fs::write(
        &path,
        "data_dir = \"./var\"\n\
         database_url = \"postgres://mssante:pg-s3cret@127.0.0.1:5432/mssante\"\n\
         [directory.ldap]\nurl = \"ldaps://annuaire.example:636\"\nbase = \"dc=x\"\n\
         bind_dn = \"cn=reader,dc=x\"\nbind_password = \"ldap-s3cret\"\n\
         [directory.fhir]\nbase_url = \"https://fhir.example/fhir/v2\"\napi_key = \"fhir-s3cret\"\n\
         [directory.publication]\nbase_url = \"https://fhir.example/fhir/v2\"\napi_key = \"pub-s3cret\"\n\
         [psc]\njwks_url = \"https://psc.example/jwks\"\nissuers = [\"https://psc.example\"]\n\
         introspect = true\nintrospection_endpoint = \"https://psc.example/introspect\"\nclient_id = \"mss\"\nclient_secret = \"psc-s3cret\"\n",
    )
    .unwrap();
    let out = run_with(&path, &["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for secret in [
        "pg-s3cret",
        "ldap-s3cret",
        "fhir-s3cret",
        "pub-s3cret",
        "psc-s3cret",
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    for expected in [
        "database_url = \"postgres://mssante:***@127.0.0.1:5432/mssante\"",
        "bind_password = \"***\"",
        "bind_dn = \"cn=reader,dc=x\"",
        "[listen]",
        "submission = \"127.0.0.1:5587\"",
        "http = \"127.0.0.1:8080\"",
        "[smtp]",
        "max_recipients = 100",
        "[imap]",
        "autologout_secs = 1800",
        "[log]",
        "level = \"info\"",
        "[relay]",
        "give_up_after_secs = 432000",
        "[directory.fhir]",
        "client_secret = \"***\"",
    ] {
        assert!(text.contains(expected), "lacks {expected:?}:\n{text}");
    }
    assert_eq!(text.matches("api_key = \"***\"").count(), 2, "{text}");
    // The data dir is resolved against the file's folder, whatever the current directory.
    let data = dir.path().join("var");
    assert!(
        text.contains(&format!("data_dir = \"{}\"", data.display())),
        "{text}"
    );
    assert!(!text.contains("Config {"), "no Rust debug dump: {text}");
    // The output is itself a configuration file with the same keys: it checks again.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &text).unwrap();
    let out = run_with(&again, &["config", "check"]);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
}

#[test]
fn missing_tls_files_and_an_unknown_log_level_are_refused_at_check_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let openssl = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=mx.test", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(openssl.status.success(), "{}", stderr(&openssl));
    let cases = [
        (
            "[tls]\ncert = \"missing-cert.pem\"\nkey = \"missing-key.pem\"\n".to_string(),
            "tls.cert",
        ),
        (
            format!(
                "[tls]\ncert = {:?}\nkey = {:?}\n",
                junk.display(),
                key.display()
            ),
            "tls.cert",
        ),
        (
            format!(
                "[tls]\ncert = {:?}\nkey = \"missing-key.pem\"\n",
                cert.display()
            ),
            "tls.key",
        ),
        ("[log]\nlevel = \"verbose\"\n".to_string(), "log.level"),
        (
            "[trust]\nca_file = \"missing-roots.pem\"\n".to_string(),
            "trust.ca_file",
        ),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            format!("data_dir = \"data\"\n[listen]\nsmtp = \"off\"\nsubmission = \"off\"\nsubmissions = \"off\"\nimap = \"off\"\nimaps = \"off\"\nhttp = \"off\"\n{text}"),
        )
        .unwrap();
        for command in [&["config", "check"][..], &["serve"]] {
            let out = run_with(&path, command);
            assert!(!out.status.success(), "{command:?} accepted {text:?}");
            assert!(
                stderr(&out).contains(key),
                "{command:?} {text:?}: error does not name {key}: {}",
                stderr(&out)
            );
        }
    }
}
