//! `mssante access grant|revoke|list` through the real binary, on SQLite and PostgreSQL:
//! what is printed, the end date, refusals with a message and a failing exit status.

mod common;

use common::*;
use mssante_testkit::engine_tests_sync;

const SECRETARY: &str = "810009999999";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

engine_tests_sync!(grant_list_revoke_a_habilitation, |engine| {
    let server = Server::configure(engine, "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    let org = format!("cardio@{DOMAIN}");
    let per = format!("dr.martin@{DOMAIN}");
    server.cli_ok(&[
        "bal",
        "create",
        &org,
        "--type",
        "ORG",
        "--finess",
        "750712184",
    ]);
    server.create_bal(&per, "10001234567");

    let granted = server.cli_ok(&["access", "grant", &org, "--national-id", SECRETARY]);
    assert_eq!(
        granted.trim(),
        format!("{SECRETARY} may open {org} (until revoked)")
    );
    let dated = server.cli_ok(&[
        "access",
        "grant",
        &org,
        "--national-id",
        "810001111111",
        "--until",
        "2099-01-31",
    ]);
    assert!(dated.contains("until 2099-01-31 included"), "{dated}");

    let listed = server.cli_ok(&["access", "list", "--bal", &org]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert_eq!(
        lines[1],
        format!("{org}\t{SECRETARY}\thabilitation\tlrswipkxte\tuntil revoked")
    );
    let by_identity = server.cli_ok(&["access", "list", "--national-id", SECRETARY]);
    assert_eq!(by_identity.lines().count(), 1, "{by_identity}");

    // A PER BAL is its holder's: others get there by delegation, not habilitation.
    let refused = server.cli(&["access", "grant", &per, "--national-id", SECRETARY]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("PER BAL"), "{}", stderr(&refused));
    let bad_date = server.cli(&[
        "access",
        "grant",
        &org,
        "--national-id",
        SECRETARY,
        "--until",
        "2099-02-30",
    ]);
    assert!(!bad_date.status.success());
    assert!(
        stderr(&bad_date).contains("--until"),
        "{}",
        stderr(&bad_date)
    );

    let revoked = server.cli_ok(&["access", "revoke", &org, "--national-id", SECRETARY]);
    assert!(revoked.contains("may no longer open"), "{revoked}");
    let again = server.cli(&["access", "revoke", &org, "--national-id", SECRETARY]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("had no habilitation"),
        "{}",
        stderr(&again)
    );
    assert_eq!(server.cli_ok(&["access", "list"]).lines().count(), 1);
});

engine_tests_sync!(delegate_list_revoke_and_the_audit_trail, |engine| {
    let server = Server::configure(engine, "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    let doctor = format!("dr.martin@{DOMAIN}");
    let secretary = format!("sec.dupont@{DOMAIN}");
    server.create_bal(&doctor, "10001234567");
    server.create_bal(&secretary, "10009876543");

    let granted = server.cli_ok(&["delegation", "grant", &doctor, "--to", &secretary]);
    assert_eq!(
        granted.trim(),
        format!("{doctor}\t{secretary}\tbal\tsecretary\tuntil revoked")
    );
    let holiday = server.cli_ok(&[
        "delegation",
        "grant",
        &doctor,
        "--to",
        SECRETARY,
        "--rights",
        "read",
        "--folder",
        "INBOX",
        "--until",
        "2099-08-31",
    ]);
    assert!(
        holiday.contains("national_id\tINBOX:read\tuntil 2099-08-31 included"),
        "{holiday}"
    );
    let listed = server.cli_ok(&["delegation", "list", "--bal", &doctor]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let to_one = server.cli_ok(&["delegation", "list", "--to", &secretary]);
    assert_eq!(to_one.lines().count(), 1, "{to_one}");

    let bad = server.cli(&[
        "delegation",
        "grant",
        &doctor,
        "--to",
        &secretary,
        "--rights",
        "lrq",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--rights") && stderr(&bad).contains("'q'"),
        "{}",
        stderr(&bad)
    );

    server.cli_ok(&["delegation", "revoke", &doctor, "--to", &secretary]);
    let again = server.cli(&["delegation", "revoke", &doctor, "--to", &secretary]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("had no delegation"),
        "{}",
        stderr(&again)
    );

    let trail = server.cli_ok(&["audit", &doctor]);
    let actions: Vec<&str> = trail
        .lines()
        .map(|l| l.split('\t').nth(3).unwrap())
        .collect();
    assert_eq!(actions, ["grant", "grant", "revoke"], "{trail}");
    let json = server.cli_ok(&["audit", &doctor, "--json", "--author", "operator"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["action"], "grant");
    assert_eq!(first["detail"], format!("{secretary} secretary"));
    assert_eq!(first["seq"], 1);
    let none = server.cli_ok(&["audit", &doctor, "--author", "nobody"]);
    assert!(none.is_empty(), "{none}");

    let verified = server.cli_ok(&["audit", "verify"]);
    assert!(verified.contains("intact: 3 entries"), "{verified}");
});
