//! `mssante db migrate` is the explicit upgrade step (ADR 0021): on both engines, a database
//! left behind by an older binary is refused by the other commands with the advice to
//! migrate, `db migrate` brings it up to date, and a schema newer than the binary is refused
//! by every command, `db migrate` included.

mod common;

use std::process::Output;

use common::*;

fn refused(out: Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal, got success");
    for needle in needles {
        assert!(stderr.contains(needle), "no {needle:?} in:\n{stderr}");
    }
}

/// The migration versions of the binary's folder for this engine.
fn known_versions(engine: Engine) -> Vec<i64> {
    let folder = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql"))
        .map(|n| n.split('_').next().unwrap().parse().unwrap())
        .collect();
    versions.sort();
    versions
}

fn older_schema_waits_for_db_migrate(engine: Engine) {
    let server = Server::configure_uninitialised(engine, "");
    std::fs::create_dir_all(server.db.data_path().join("blobs")).unwrap();
    let versions = known_versions(engine);
    let first = versions[0].to_string();
    let pending: Vec<String> = versions[1..].iter().map(|v| v.to_string()).collect();

    // An instance as a binary that knew only the first migration left it.
    let out = server.cli_ok(&["db", "migrate", "--to", &first]);
    assert!(
        out.contains(&format!("applied migrations {first};")),
        "{out}"
    );

    let older = "database schema is older than this binary";
    let advice = "run `mssante db migrate`";
    refused(
        server.cli(&["domain", "list"]),
        &[older, advice, &pending.join(", ")],
    );
    refused(server.cli(&["serve"]), &[older, advice]);
    refused(server.cli(&["init"]), &[older, advice]);
    refused(server.cli(&["db", "status"]), &[older]);

    let out = server.cli_ok(&["db", "migrate"]);
    assert!(
        out.contains(&format!("applied migrations {};", pending.join(", "))),
        "{out}"
    );
    let out = server.cli_ok(&["db", "migrate"]);
    assert!(out.contains("nothing to apply"), "{out}");
    let out = server.cli_ok(&["db", "status"]);
    assert!(out.contains("state       current"), "{out}");
    server.cli_ok(&["domain", "add", DOMAIN]);
    assert!(server.cli_ok(&["domain", "list"]).contains(DOMAIN));
}

fn newer_schema_is_refused_by_every_command(engine: Engine) {
    let server = Server::configure(engine, "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    // What a newer binary's migration leaves in the table.
    let checksum = match engine {
        Engine::Sqlite => "X'00'",
        Engine::Postgres => "'\\x00'::bytea",
    };
    server.sql(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990001, 'from the future', TRUE, {checksum}, 0)"
    ));
    let newer = "database schema is newer than this binary knows (migrations 99990001";
    for args in [
        &["domain", "list"][..],
        &["db", "migrate"],
        &["db", "status"],
        &["serve"],
        &["init"],
        &["bal", "list"],
    ] {
        refused(server.cli(args), &[newer]);
    }
    if engine == Engine::Sqlite {
        let dest = server.db.data_path().join("backup");
        refused(server.cli(&["backup", dest.to_str().unwrap()]), &[newer]);
    }
}

#[test]
fn older_schema_waits_for_db_migrate_on_sqlite() {
    older_schema_waits_for_db_migrate(Engine::Sqlite);
}

#[test]
fn older_schema_waits_for_db_migrate_on_postgres() {
    older_schema_waits_for_db_migrate(Engine::Postgres);
}

#[test]
fn newer_schema_is_refused_on_sqlite() {
    newer_schema_is_refused_by_every_command(Engine::Sqlite);
}

#[test]
fn newer_schema_is_refused_on_postgres() {
    newer_schema_is_refused_by_every_command(Engine::Postgres);
}
