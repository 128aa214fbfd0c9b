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
//! and the relay is off: nothing leaves 127.0.0.1.

mod common;

use std::path::Path;
use std::process::Command;

use common::http::*;
use common::*;

const LAB: &str = "resultats@ch-test.mssante.fr";

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
    server.spawn();
    schemathesis(&server, &key, &[]);
    schemathesis(
        &server,
        &webhook_key,
        &["--include-path-regex", "/webhooks"],
    );
}

/// Runs schemathesis against the served document with `key` and `extra` arguments.
fn schemathesis(server: &Server, key: &str, extra: &[&str]) {
    let python = std::env::var("MSSANTE_TEST_PYTHON")
        .expect("MSSANTE_TEST_PYTHON: the test venv's python with schemathesis (scripts/test)");
    let schemathesis = Path::new(&python).with_file_name("schemathesis");
    let out = Command::new(&schemathesis)
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
}
