//! The README's "A first session", run as written (ports aside) against the real binary: the
//! commands a new user types first must work, and the server's first-mailbox hint must match.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The shell blocks of the README section `heading`, in order.
fn shell_blocks(heading: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .flat_map(|s| s.split("\n### "))
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// Runs `script` with bash, `mssante` on the PATH and the server's configuration in force.
fn run_shell(server: &Server, script: &str) -> String {
    let bin = Path::new(binary()).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("MSSANTE_CONFIG", &server.config_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "README commands failed:\n{script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    stdout
}

#[test]
fn the_readme_first_session_works_as_written() {
    let mut server = Server::configure(Engine::Sqlite, "");
    server.spawn();
    let blocks = shell_blocks("A first session");
    let session = blocks[0]
        .replace(
            "127.0.0.1:5587",
            &format!("127.0.0.1:{}", server.ports.submission),
        )
        .replace(
            "IMAP4('127.0.0.1',1143)",
            &format!("IMAP4('127.0.0.1',{})", server.ports.imap),
        );

    // On an empty instance the server shows the README's own first commands.
    let banner = server.log();
    assert!(banner.contains("No mailbox yet"), "{banner}");
    for line in banner
        .lines()
        .filter(|l| l.contains("domain add") || l.contains("echo '"))
    {
        let command = line.trim().replace(
            &format!("mssante --config {} ", server.config_path.display()),
            "mssante ",
        );
        let first_words: String = command.split(" --").next().unwrap().to_string();
        assert!(
            blocks[0].contains(&first_words),
            "the banner's {first_words:?} is not in the README"
        );
    }

    let out = run_shell(&server, &session);
    assert!(out.contains("('OK', [b'1'])"), "INBOX selected: {out}");
    assert!(out.contains("Compte rendu"), "the message was read: {out}");
    assert!(out.contains("folders:"), "bal show ran: {out}");

    // The MX line of the development try (the test server runs without the trust space).
    let mx = blocks[1]
        .lines()
        .filter(|l| l.starts_with("swaks"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "127.0.0.1:2525",
            &format!("{}:{}", server.ports.smtp_ip, server.ports.smtp),
        );
    assert!(!mx.is_empty(), "the README shows a swaks to the MX");
    run_shell(&server, &mx);
    assert_eq!(
        server
            .messages("dr.martin@ch-exemple.mssante.fr", "INBOX")
            .len(),
        1
    );

    // The README's note on UTF-8 passwords: its AUTHENTICATE PLAIN call carries them.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let authenticate = readme
        .split('`')
        .find(|s| s.starts_with("m.authenticate('PLAIN'"))
        .expect("the README shows AUTHENTICATE PLAIN for UTF-8 passwords");
    let passwd = server.cli_stdin(
        &[
            "bal",
            "passwd",
            "dr.martin@ch-exemple.mssante.fr",
            "--password-stdin",
        ],
        "une phrase secrète\n",
    );
    assert!(passwd.status.success());
    let utf8 = format!(
        "python3 -c \"import imaplib,ssl; c=ssl._create_unverified_context(); \
         m=imaplib.IMAP4('127.0.0.1',{}); m.starttls(ssl_context=c); \
         user,password='dr.martin@ch-exemple.mssante.fr','une phrase secrète'; \
         print({authenticate}[0])\"",
        server.ports.imap
    );
    assert!(run_shell(&server, &utf8).contains("OK"));

    // With mailboxes, no first-mailbox hint.
    server.terminate();
    server.spawn();
    assert!(!server.log().contains("No mailbox yet"), "{}", server.log());
}

/// The README's HTTP API example, run as written (the port aside) after the first session's
/// commands: the key is created, the report sent, listed in the INBOX, counted in metrics;
/// then the delegation example: a grant and its revocation over HTTP, read back in the trail.
#[test]
fn the_readme_http_api_example_works_as_written() {
    let mut server = Server::configure(Engine::Sqlite, "");
    server.spawn();
    let first = shell_blocks("A first session")[0].replace(
        "127.0.0.1:5587",
        &format!("127.0.0.1:{}", server.ports.submission),
    );
    // Only the provisioning lines of the first session: the API example needs its BALs.
    let provisioning: String = first.split("\n\n").next().unwrap().to_string();
    run_shell(&server, &provisioning);
    let example = shell_blocks("HTTP API for software")[0].replace(
        "127.0.0.1:8080",
        &format!("127.0.0.1:{}", server.ports.http),
    );
    let out = run_shell(&server, &example);
    assert!(out.contains("\"kind\":\"api-key\""), "{out}");
    assert!(out.contains("\"state\":\"delivered\""), "{out}");
    assert!(out.contains("\"subject\":\"Compte rendu\""), "{out}");
    assert!(
        out.contains("mssante_x_mss_nil_messages_total{software=\"SIL 1.0\"} 1"),
        "{out}"
    );

    // The delegation example: granted, revoked, the revocation in the trail, the chain intact.
    let delegation = shell_blocks("HTTP API for software")[1].replace(
        "127.0.0.1:8080",
        &format!("127.0.0.1:{}", server.ports.http),
    );
    let out = run_shell(&server, &delegation);
    assert!(out.contains("\"name\":\"secretary\""), "{out}");
    assert!(out.contains("\"action\":\"revoke\""), "{out}");
    assert!(out.contains("\"intact\":true"), "{out}");
}
