//! schemathesis (PyPI, installed in the test venv by scripts/test) against the OpenAPI
//! document the server serves: generated requests for every operation (examples, coverage,
//! fuzzing and stateful phases, bounded examples, deterministic), each answer checked
//! against the document (status codes, media types, schemas, headers, auth).
//!
//! One check is left out: `positive_data_acceptance` wants every schema-valid request
//! accepted, but some rules cannot be said in JSON Schema (a message needs one recipient
//! among `to`, `cc`, `bcc`; a search needs one criterion; flags are IMAP atoms), and their
//! refusals are documented `422` problems. The sending key has no `status` or `admin` scope,
//! and the webhook key (status only) sends nothing: no generated webhook URL is ever called,
//! and the relay is off: nothing leaves 127.0.0.1. Delegations and the audit trail get a
//! key of a doctor's BAL with the `delegation` and `audit` scopes (its holder's standing).
//! The export and import jobs (ADR 0039) run with an admin key of their own: exports of
//! this small instance, imports of generated bodies (which fail as damaged archives), at most
//! a few jobs at once (`too-many-jobs`).

mod common;

use std::path::Path;
use std::process::Command;

use common::http::*;
use common::*;

const LAB: &str = "resultats@ch-test.mssante.fr";
const DOCTOR: &str = "dr.martin@ch-test.mssante.fr";
const SECRETARY: &str = "sec.dupont@ch-test.mssante.fr";

#[test]
fn schemathesis_finds_no_failure_against_the_served_document() {
    let mut server = Server::configure(
        Engine::Sqlite,
        "[api]\nrate_per_sec = 100000\nburst = 100000\n[relay]\nenabled = false\n",
    );
    server.cli_ok(&["domain", "add", DOMAIN]);
    create_lab_bal(&server, LAB);
    let key = create_api_key(&server, "st", "send,read,directory", LAB);
    // Webhooks get a key of their own with the status scope only: it registers, lists and
    // stops webhooks (generated URLs) but sends nothing, so no webhook is ever called.
    let webhook_key = create_api_key(&server, "st-hooks", "status", LAB);
    server.create_bal(DOCTOR, "10001234567");
    server.create_bal(SECRETARY, "10001234568");
    server.cli_ok(&["delegation", "grant", DOCTOR, "--to", SECRETARY]);
    let holder_key = create_api_key(&server, "st-holder", "delegation,audit", DOCTOR);
    let admin_key = create_api_key(&server, "st-jobs", "admin", LAB);
    server.spawn();
    schemathesis(&server, &key, &[], &[]);
    schemathesis(
        &server,
        &webhook_key,
        &[],
        &["--include-path-regex", "/webhooks"],
    );
    let report = schemathesis(
        &server,
        &holder_key,
        &[("ST_PATH_ADDRESS", DOCTOR), ("ST_PATH_GRANTEE", SECRETARY)],
        &["--include-path-regex", "/delegations|/audit"],
    );
    // The six operations of delegations and audit, each tested past authorization (the
    // hooks name the doctor's BAL and the secretary's delegation in every path).
    assert!(report.contains("6 selected"), "{report}");
    assert!(!report.contains("Authentication failed"), "{report}");
    schemathesis(
        &server,
        &admin_key,
        &[],
        &["--include-path-regex", "/(exports|imports)"],
    );
}

/// Runs schemathesis against the served document with `key`, `env` for the hooks
/// (`tests/clients/st_hooks.py`) and `extra` arguments.
fn schemathesis(server: &Server, key: &str, env: &[(&str, &str)], extra: &[&str]) -> String {
    let python = std::env::var("MSSANTE_TEST_PYTHON")
        .expect("MSSANTE_TEST_PYTHON: the test venv's python with schemathesis (scripts/test)");
    let schemathesis = Path::new(&python).with_file_name("schemathesis");
    let out = Command::new(&schemathesis)
        .envs(env.iter().copied())
        .args([
            "run",
            &url(server, "/api/v1/openapi.json"),
            "-H",
            &bearer(key),
        ])
        .args(["--max-examples", "10", "--generation-deterministic"])
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(extra)
        .env("SCHEMATHESIS_HOOKS", "st_hooks")
        .env("PYTHONPATH", clients_dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", schemathesis.display()));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis {extra:?} found failures:\n{report}\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(report.contains("Tested: "), "{report}");
    report.into_owned()
}
