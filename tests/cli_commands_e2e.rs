//! The `directory` and `trust` command groups through the real binary: parsing, the work
//! done by their library crates, what is printed and the exit status.

mod common;

use std::path::PathBuf;

use common::*;
use mssante_testkit::engine_tests_sync;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn fixture(krate: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(krate)
        .join("tests/fixtures")
        .join(name)
}

const SAMPLE: &str = "Extraction_Correspondance_MSSante_sample.txt";

engine_tests_sync!(directory_imports_refuses_a_drop_and_looks_up, |engine| {
    let sample = fixture("directory", SAMPLE);
    let server = Server::configure(
        engine,
        &format!(
            "[directory]\nextraction = {:?}\nmax_drop = 0.5\n",
            sample.display()
        ),
    );
    let out = server.cli_ok(&["directory", "import"]);
    assert!(
        out.contains("rows=2000"),
        "from the configured location: {out}"
    );
    // 1,500 rows against 2,000 is a 25 % drop: fine with max_drop = 0.5, refused with
    // --max-drop 0.1.
    let text = std::fs::read_to_string(&sample).unwrap();
    let truncated = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        truncated.path(),
        text.lines().take(1501).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let path = truncated.path().to_str().unwrap();
    let refused = server.cli(&["directory", "import", path, "--max-drop", "0.1"]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("drop guard"),
        "{}",
        stderr(&refused)
    );
    let history = server.cli_ok(&["directory", "history"]);
    assert!(
        history.lines().next().unwrap().contains("refused"),
        "{history}"
    );
    let out = server.cli_ok(&["directory", "import", path]);
    assert!(out.contains("rows=1500"), "within max_drop: {out}");
    let by_address = server.cli_ok(&["directory", "lookup", "Antoine.Bernard@adapei.mssante.fr"]);
    assert!(
        by_address
            .to_lowercase()
            .contains("antoine.bernard@adapei.mssante.fr"),
        "{by_address}"
    );
    for query in [
        &["directory", "lookup", "10949939960"][..],
        &[
            "directory",
            "lookup",
            "mar",
            "--profession",
            "10",
            "--postcode",
            "75",
        ],
    ] {
        let out = server.cli_ok(query);
        assert!(!out.trim().is_empty(), "{query:?}: {out}");
    }
    let details = server.cli_ok(&["directory", "history", "1"]);
    assert!(details.starts_with("#1 "), "{details}");
    let ldap = server.cli(&["directory", "sync-ldap"]);
    assert!(
        !ldap.status.success() && stderr(&ldap).contains("[directory.ldap]"),
        "{}",
        stderr(&ldap)
    );
});

const MIPIH: &str =
    "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR";

#[test]
fn trust_sync_show_check() {
    let server = Server::configure(Engine::Sqlite, "");
    let show = server.cli(&["trust", "show"]);
    assert!(
        !show.status.success() && stderr(&show).contains("trust sync"),
        "{}",
        stderr(&show)
    );

    let list = fixture("trust", "listeblanchemssante.xml");
    let checksum = fixture("trust", "checksum");
    let out = server.cli_ok(&[
        "trust",
        "sync",
        "--source",
        list.to_str().unwrap(),
        "--checksum",
        checksum.to_str().unwrap(),
    ]);
    assert!(
        out.contains("entries: 619") && out.contains("domains: 516"),
        "{out}"
    );

    let out = server.cli_ok(&["trust", "show"]);
    assert!(out.starts_with("generated: 2025-03-13T14:54:10Z\nentries: 619\ndomains: 516\n"));
    assert_eq!(out.lines().count(), 3 + 619);

    let out = server.cli_ok(&["trust", "show", "--domain", "15-20.MSSANTE.FR"]);
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("15-20.mssante.fr\t"))
            .count(),
        5,
        "{out}"
    );

    let out = server.cli_ok(&["trust", "check", "nddtestasmae.mssante.fr", "--dn", MIPIH]);
    assert!(
        out.contains("listed with 1 operator certificate") && out.contains("allowed"),
        "{out}"
    );

    let wrong_dn = server.cli(&[
        "trust",
        "check",
        "nddtestasmae.mssante.fr",
        "--dn",
        "CN=mss.enovacom.fr,OU=344368557300034,O=ENOVACOM,ST=Bouches-du-Rhône (13),C=FR",
    ]);
    assert!(
        stdout(&wrong_dn).contains(MIPIH),
        "the listed DNs are shown"
    );
    assert!(
        !wrong_dn.status.success()
            && stderr(&wrong_dn).contains("is not allowed for nddtestasmae.mssante.fr"),
        "{}",
        stderr(&wrong_dn)
    );

    let unknown = server.cli(&["trust", "check", "absent.example.fr"]);
    assert!(
        !unknown.status.success() && stderr(&unknown).contains("absent.example.fr is not listed"),
        "{}",
        stderr(&unknown)
    );
}
