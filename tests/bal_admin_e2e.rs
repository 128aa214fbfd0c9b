//! `mssante bal alias` and `bal rename` against the running server, on SQLite and
//! PostgreSQL: mail to an alias reaches the BAL (swaks on the MX), a renamed BAL keeps its
//! messages, logs in with its new address only, and still gets mail sent to the old one
//! until that alias is removed.

mod common;

use common::*;
use mssante_testkit::engine_tests_sync;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const ALIAS: &str = "jeanne.martin@ch-test.mssante.fr";
const RENAMED: &str = "dr.jeanne.martin@ch-test.mssante.fr";
const LAST: &str = "j.martin@ch-test.mssante.fr";
const SECRETARIAT: &str = "secretariat@ch-test.mssante.fr";

/// A message from another operator to `to` on the MX: (accepted, transcript).
fn mx_send(server: &Server, to: &str) -> (bool, String) {
    let (code, transcript) = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", server.ports.smtp),
        "--from",
        "labo@labo.mssante.fr",
        "--to",
        to,
    ]);
    (code == 0, transcript)
}

/// An authenticated submission as `login` (from the BAL's current address).
fn login_works(server: &Server, login: &str, from: &str) -> bool {
    let (code, _) = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", server.ports.submission),
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        login,
        "--auth-password",
        PASSWORD,
        "--from",
        from,
        "--to",
        from,
    ]);
    code == 0
}

fn refused(server: &Server, args: &[&str], words: &str) {
    let out = server.cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(words),
        "{args:?}: {stderr}"
    );
}

engine_tests_sync!(aliases_and_rename_keep_mail_arriving, |engine| {
    let server = Server::start(engine, &[DR, SECRETARIAT]);
    server.cli_ok(&["delegation", "grant", SECRETARIAT, "--to", DR]);
    let out = server.cli_ok(&["bal", "alias", "add", DR, ALIAS]);
    assert!(
        out.contains(&format!("{ALIAS} is now an alias of {DR}")),
        "{out}"
    );
    assert_eq!(
        server.cli_ok(&["bal", "alias", "list", DR]).trim(),
        format!("{ALIAS:<45} -> {DR}")
    );
    let (ok, transcript) = mx_send(&server, ALIAS);
    assert!(ok, "{transcript}");
    assert_eq!(server.messages(DR, "INBOX").len(), 1);

    // What may not be an alias, and what an alias may not become.
    refused(
        &server,
        &["bal", "alias", "add", DR, "x@elsewhere.fr"],
        "not a local domain",
    );
    refused(&server, &["bal", "alias", "add", DR, DR], "already exists");
    refused(
        &server,
        &["bal", "alias", "add", DR, ALIAS],
        "already an alias of",
    );
    refused(
        &server,
        &[
            "bal",
            "create",
            ALIAS,
            "--type",
            "PER",
            "--rpps",
            "10009999999",
        ],
        "already an alias of",
    );

    // Rename: same folders, new login, old address kept as an alias.
    let out = server.cli_ok(&["bal", "rename", DR, RENAMED]);
    assert!(out.contains(&format!("({DR} stays an alias)")), "{out}");
    assert_eq!(server.messages(RENAMED, "INBOX").len(), 1);
    assert!(login_works(&server, RENAMED, RENAMED));
    assert!(
        !login_works(&server, DR, RENAMED),
        "the old address no longer logs in"
    );
    let (ok, transcript) = mx_send(&server, DR);
    assert!(ok, "{transcript}");
    let (ok, transcript) = mx_send(&server, ALIAS);
    assert!(ok, "{transcript}");
    // Two from the MX, one submitted to itself by the login check.
    assert_eq!(server.messages(RENAMED, "INBOX").len(), 4);
    let delegations = server.cli_ok(&["delegation", "list", "--bal", SECRETARIAT]);
    assert!(
        delegations.contains(RENAMED) && !delegations.contains(DR),
        "the delegation follows the renamed BAL: {delegations}"
    );
    let aliases = server.cli_ok(&["bal", "alias", "list"]);
    assert!(aliases.contains(DR) && aliases.contains(ALIAS), "{aliases}");

    // A removed alias refuses mail; renaming without keeping the old address too.
    server.cli_ok(&["bal", "alias", "remove", DR]);
    let (ok, transcript) = mx_send(&server, DR);
    assert!(!ok && transcript.contains("550"), "{transcript}");
    refused(&server, &["bal", "alias", "remove", DR], "not found");
    server.cli_ok(&["bal", "rename", RENAMED, LAST, "--drop-old-address"]);
    let (ok, transcript) = mx_send(&server, RENAMED);
    assert!(!ok && transcript.contains("550"), "{transcript}");
    let (ok, transcript) = mx_send(&server, LAST);
    assert!(ok, "{transcript}");
    assert_eq!(server.messages(LAST, "INBOX").len(), 5);
    refused(
        &server,
        &["bal", "rename", LAST, ALIAS],
        "already an alias of",
    );
});

/// An IMAP login (imaplib over implicit TLS): `OK`, or `NO` and the server's answer.
fn imap_login(server: &Server, user: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import imaplib,ssl,sys\n\
             c = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ssl._create_unverified_context())\n\
             try:\n    c.login(sys.argv[2], sys.argv[3]); print('OK')\n\
             except imaplib.IMAP4.error as e:\n    print('NO', e)",
            &server.ports.imaps.to_string(),
            user,
            PASSWORD,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The audit actions of a BAL's trail, oldest first.
fn audit_actions(server: &Server, bal: &str) -> Vec<String> {
    server
        .cli_ok(&["audit", bal])
        .lines()
        .map(|l| l.split('\t').nth(3).unwrap().to_string())
        .collect()
}

engine_tests_sync!(
    removing_a_closed_bal_refuses_its_mail_and_logins,
    |engine| {
        let server = Server::start(engine, &[DR, SECRETARIAT]);
        server.cli_ok(&["bal", "alias", "add", DR, ALIAS]);
        server.cli_ok(&["delegation", "grant", DR, "--to", SECRETARIAT]);
        server.cli_ok(&["delegation", "grant", SECRETARIAT, "--to", DR]);
        let key_line = server.cli_ok(&[
            "apikey", "create", "--name", "SIL", "--scope", "status", "--bal", DR,
        ]);
        assert!(mx_send(&server, DR).0 && mx_send(&server, ALIAS).0);
        assert_eq!(imap_login(&server, DR), "OK");

        // Only a closed BAL: closing is the reversible-looking step that deletes nothing.
        refused(&server, &["bal", "remove", DR, "--yes"], "close it first");
        server.cli_ok(&["bal", "close", DR]);

        // Without --yes: what would go, the export to make first, and nothing done.
        let dry = server.cli(&["bal", "remove", DR]);
        let said = String::from_utf8_lossy(&dry.stdout).to_string();
        eprintln!(
            "bal remove (no --yes) prints:\n{said}{}",
            String::from_utf8_lossy(&dry.stderr)
        );
        assert!(!dry.status.success());
        assert!(
            said.contains(
                "would delete 4 folders with 2 messages, 1 aliases, 1 grants, 1 delegations it \
             received, 1 API key bindings (1 keys revoked), 0 client certificates"
            ) && said.contains(&format!("mssante export --bal {DR}")),
            "{said}"
        );
        assert!(String::from_utf8_lossy(&dry.stderr).contains("--yes"));
        assert!(server.cli_ok(&["bal", "alias", "list"]).contains(ALIAS));

        let done = server.cli_ok(&["bal", "remove", DR, "--yes"]);
        eprintln!("bal remove --yes prints:\n{done}");
        assert!(done.contains(&format!("BAL {DR} removed")), "{done}");

        // Mail to it and to its former alias: no such mailbox; its login is refused.
        for to in [DR, ALIAS] {
            let (accepted, transcript) = mx_send(&server, to);
            assert!(
                !accepted && transcript.contains("550 5.1.1"),
                "{transcript}"
            );
        }
        let login = imap_login(&server, DR);
        assert!(login.starts_with("NO"), "{login}");
        assert!(server.cli_ok(&["bal", "show", DR]).contains("removed at:"));

        // The audit trails are kept, each with what happened, and still verify.
        let actions = audit_actions(&server, DR);
        assert_eq!(
            actions.first().map(String::as_str),
            Some("grant"),
            "{actions:?}"
        );
        assert_eq!(
            actions.last().map(String::as_str),
            Some("remove"),
            "{actions:?}"
        );
        assert_eq!(
            audit_actions(&server, SECRETARIAT)
                .last()
                .map(String::as_str),
            Some("revoke")
        );
        let verified = server.cli_ok(&["audit", "verify"]);
        assert!(verified.contains("audit trail intact"), "{verified}");

        // The key that acted on it alone is revoked; the address is not given again.
        let keys = server.cli_ok(&["apikey", "list"]);
        let key_id = key_line.split_whitespace().next().unwrap_or_default();
        assert!(
            keys.lines()
                .any(|l| l.contains("SIL") && l.contains("revoked")),
            "{key_id}: {keys}"
        );
        refused(&server, &["bal", "remove", DR, "--yes"], "removed already");
        assert!(
            !server
                .cli(&[
                    "bal",
                    "create",
                    DR,
                    "--type",
                    "PER",
                    "--rpps",
                    "10001234567"
                ])
                .status
                .success()
        );
        // The other BAL lives on.
        assert!(mx_send(&server, SECRETARIAT).0);
    }
);
