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
