//! Export and import as jobs of the HTTP API (issue 15, ADR 0039), driven with curl as an
//! operator's tooling would, against the real binary on SQLite and PostgreSQL:
//!
//! - an export of one BAL started, polled and downloaded (whole and by a byte range): the
//!   archive's size and SHA-256 are those the headers and the job say, a reader sharing no
//!   code with us (Python's tarfile) finds every file's hash as the manifest says, and the
//!   placements equal those of `mssante export` run on the same instance;
//! - a non-admin key gets `403 insufficient-scope` on every job operation;
//! - the first half of that archive uploaded to a fresh instance fails its job with
//!   `archive-corrupt` naming a file, and no BAL shows; the whole archive then imports: same
//!   folders, UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ, UIDs, modseqs, flags, dates and bodies;
//! - a server killed (SIGKILL) while an import job runs queues it again when it starts: the
//!   job ends `done` on its second attempt with the exact BAL.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::http::*;
use common::*;
use mssante_store::{FlagOp, MessageMeta, Store};
use mssante_testkit::engine_tests_sync;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const DOCTOR: &str = "dr.export@ch-test.mssante.fr";
const ADMIN_BAL: &str = "admin.lab@ch-test.mssante.fr";
/// A former secretary who read one message of the doctor's INBOX with her own `\Seen`
/// (ADR 0034) and is known nowhere else: an import reports her entry, never imports it.
const FORMER_READER: &str = "partie@ailleurs.fr";

async fn open(server: &Server) -> Store {
    Store::open(&server.db.url, server.db.data_path())
        .await
        .unwrap()
}

/// A stopped instance whose BAL `DOCTOR` holds `messages` messages over INBOX and a nested
/// UTF-8 folder, with flags and keywords (one in ten large), plus a lab BAL for the keys.
fn source_instance(engine: mssante_testkit::Engine, messages: u32) -> Server {
    let server = Server::configure(engine, "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    server.create_bal(DOCTOR, "10001234567");
    create_lab_bal(&server, ADMIN_BAL);
    block_on(async {
        let store = open(&server).await;
        let bal = store.bal(DOCTOR).await.unwrap();
        let inbox = store.folder(bal.id, "INBOX").await.unwrap().unwrap();
        let folder = store
            .create_folder(bal.id, "Résultats/Biologie", None)
            .await
            .unwrap();
        let flags: [&[&str]; 3] = [&[], &["\\Seen", "$Labo"], &["\\Flagged", "\\Answered"]];
        for n in 0..messages {
            let body = if n % 10 == 9 {
                "résultat détaillé ".repeat(20_000)
            } else {
                format!("résultat {n}")
            };
            let raw = format!(
                "From: labo@labo.mssante.fr\r\nTo: {DOCTOR}\r\nSubject: bilan {n}\r\n\
                 Message-ID: <bilan{n}@labo>\r\n\r\n{body}\r\n"
            );
            let target = if n % 3 == 0 { folder.id } else { inbox.id };
            let set: Vec<String> = flags[n as usize % 3]
                .iter()
                .map(|f| f.to_string())
                .collect();
            store
                .append(
                    target,
                    raw.into_bytes(),
                    &set,
                    1_700_000_000 + n as i64,
                    MessageMeta::default(),
                )
                .await
                .unwrap();
        }
        if messages > 1 {
            let seen = ["\\Seen".to_string()];
            store
                .update_flags_as(
                    inbox.id,
                    &[1],
                    (FlagOp::Add, &seen),
                    None,
                    Some(FORMER_READER),
                )
                .await
                .unwrap();
        }
        store.close().await;
    });
    server
}

/// A fresh instance with the domain and a lab BAL (the admin key needs one to name).
fn fresh_instance(engine: mssante_testkit::Engine) -> Server {
    let server = Server::configure(engine, "");
    server.cli_ok(&["domain", "add", DOMAIN]);
    create_lab_bal(&server, ADMIN_BAL);
    server
}

/// `DOCTOR` as the store holds it (server stopped), `None` when it does not exist.
fn doctor_contents(server: &Server) -> Option<BalContents> {
    block_on(async {
        let store = open(server).await;
        let found = match store.find_bal(DOCTOR).await.unwrap() {
            Some(_) => Some(bal_contents(&store, DOCTOR).await),
            None => None,
        };
        store.close().await;
        found
    })
}

fn get(server: &Server, key: &str, path: &str) -> Answer {
    curl(&["-H", &bearer(key), &url(server, path)])
}

/// Polls a job until it is `done` or `failed` (60 s at most); returns its last state.
fn wait_for_job(server: &Server, key: &str, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = get(server, key, path);
        assert_eq!(job.status, 200, "{}", job.body);
        let job = job.json();
        if job["state"] == "done" || job["state"] == "failed" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job still {job}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Uploads `archive` as an import job; returns the job's path.
fn start_import(server: &Server, key: &str, archive: &Path, query: &str) -> String {
    let data = format!("@{}", archive.display());
    let answer = curl(&[
        "-H",
        &bearer(key),
        "-H",
        "Content-Type: application/x-tar",
        // No `100 Continue` before the answer: one status line to read.
        "-H",
        "Expect:",
        "--data-binary",
        &data,
        &url(server, &format!("/api/v1/imports{query}")),
    ]);
    assert_eq!(answer.status, 202, "{}", answer.body);
    let location = answer.header("location").unwrap();
    assert_eq!(location, format!("/api/v1/imports/{}", answer.json()["id"]));
    location
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What `tests/clients/archive_check.py` reads in an archive.
fn python_check(archive: &Path) -> Value {
    let out = std::process::Command::new("python3")
        .arg(clients_dir().join("archive_check.py"))
        .arg(archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

engine_tests_sync!(export_and_import_jobs_move_a_bal_exactly, |engine| {
    let mut source = source_instance(engine, 40);
    let admin = create_api_key(&source, "ops", "admin", ADMIN_BAL);
    let reader = create_api_key(&source, "sil", "send,read,status", ADMIN_BAL);
    let work = tempfile::tempdir().unwrap();
    let cli_archive = work.path().join("cli.tar");
    source.cli_ok(&[
        "export",
        "--bal",
        DOCTOR,
        "-o",
        cli_archive.to_str().unwrap(),
    ]);
    source.spawn();

    // Without the admin scope: 403 on every job operation.
    let refused = post_json(
        &source,
        &reader,
        "/api/v1/exports",
        &json!({"bal": DOCTOR}),
        &[],
    );
    assert_eq!(
        (refused.status, refused.problem()),
        (403, "insufficient-scope".into())
    );
    let refused = get(&source, &reader, "/api/v1/exports/1");
    assert_eq!(
        (refused.status, refused.problem()),
        (403, "insufficient-scope".into())
    );
    // Nothing to export is refused before any job exists.
    let invalid = post_json(
        &source,
        &admin,
        "/api/v1/exports",
        &json!({"bal": "nobody@ch-test.mssante.fr"}),
        &[],
    );
    assert_eq!(
        (invalid.status, invalid.problem()),
        (422, "invalid-request".into())
    );

    let started = post_json(
        &source,
        &admin,
        "/api/v1/exports",
        &json!({"bal": DOCTOR}),
        &[],
    );
    assert_eq!(started.status, 202, "{}", started.body);
    let location = started.header("location").unwrap();
    let job = wait_for_job(&source, &admin, &location);
    assert_eq!(job["state"], "done", "{job}\n{}", source.log());
    assert_eq!(job["progress"]["bals_done"], 1);
    assert_eq!(job["progress"]["bals_total"], 1);
    assert_eq!(job["progress"]["messages_done"], 40);
    assert_eq!(job["progress"]["messages_total"], 40);
    assert_eq!(job["result"]["messages"], 40);

    // The download: its length and SHA-256 as the headers and the job say.
    let archive = work.path().join("http.tar");
    let headers = work.path().join("headers");
    let archive_url = url(&source, job["archive"].as_str().unwrap());
    let auth = bearer(&admin);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-f", "-H", &auth, "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&archive)
        .arg(&archive_url)
        .status()
        .unwrap();
    assert!(out.success());
    let bytes = std::fs::read(&archive).unwrap();
    let head = std::fs::read_to_string(&headers).unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    assert_eq!(header("content-length"), bytes.len().to_string());
    assert_eq!(header("x-archive-sha256"), sha256_hex(&bytes));
    assert_eq!(job["result"]["archive_sha256"], sha256_hex(&bytes));
    assert_eq!(job["result"]["archive_size"], bytes.len());
    use base64::Engine as _;
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
    assert_eq!(header("repr-digest"), format!("sha-256=:{digest}:"));
    // A download resumed at byte 512 (the manifest's first bytes).
    let partial = curl(&["-H", &auth, "-H", "Range: bytes=512-521", &archive_url]);
    assert_eq!(partial.status, 206);
    assert_eq!(partial.body.as_bytes(), &bytes[512..522]);
    assert_eq!(
        partial.header("content-range").unwrap(),
        format!("bytes 512-521/{}", bytes.len())
    );

    // Checked by another reader; the same placements as the CLI's export.
    let http_view = python_check(&archive);
    let cli_view = python_check(&cli_archive);
    assert_eq!(http_view["files_ok"], true, "{http_view}");
    assert_eq!(http_view["messages_ok"], true, "{http_view}");
    assert_eq!(
        http_view["manifest_sha256"],
        job["result"]["manifest_sha256"]
    );
    assert_eq!(http_view["placements"].as_array().unwrap().len(), 40);
    assert_eq!(http_view["placements"], cli_view["placements"]);

    // A fresh instance: the first half of the archive fails, naming a file; nothing shows.
    let mut target = fresh_instance(engine);
    let target_admin = create_api_key(&target, "ops", "admin", ADMIN_BAL);
    target.spawn();
    let truncated = work.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let job = wait_for_job(
        &target,
        &target_admin,
        &start_import(&target, &target_admin, &truncated, ""),
    );
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(
        job["error"]["type"], "urn:mssante:problem:archive-corrupt",
        "{job}"
    );
    assert!(
        job["error"]["file"].as_str().unwrap().starts_with("bals/"),
        "{job}"
    );
    let hidden = get(&target, &target_admin, &format!("/api/v1/bals/{DOCTOR}"));
    assert_eq!(
        (hidden.status, hidden.problem()),
        (403, "bal-out-of-scope".into())
    );

    // A dry run writes nothing and says what would happen.
    let job = wait_for_job(
        &target,
        &target_admin,
        &start_import(&target, &target_admin, &archive, "?dry_run=true"),
    );
    assert_eq!(
        job["result"]["bals"],
        json!([{"address": DOCTOR, "outcome": "valid", "messages": 40}]),
        "{job}"
    );
    let dropped = json!([{"address": DOCTOR, "reader": FORMER_READER, "entries": 1}]);
    assert_eq!(job["result"]["dropped_seen"], dropped, "{job}");
    let hidden = get(&target, &target_admin, &format!("/api/v1/bals/{DOCTOR}"));
    assert_eq!(hidden.status, 403);

    // The whole archive imports.
    let job = wait_for_job(
        &target,
        &target_admin,
        &start_import(&target, &target_admin, &archive, ""),
    );
    assert_eq!(job["state"], "done", "{job}\n{}", target.log());
    assert_eq!(
        job["result"]["bals"],
        json!([{"address": DOCTOR, "outcome": "imported", "messages": 40}]),
        "{job}"
    );
    assert_eq!(job["result"]["conflicts"], 0);
    assert_eq!(job["result"]["dropped_seen"], dropped, "{job}");
    assert_eq!(job["progress"]["messages_done"], 40);
    let shown = get(&target, &target_admin, &format!("/api/v1/bals/{DOCTOR}"));
    assert_eq!(shown.status, 200, "{}", shown.body);

    // Removing the export job removes its archive: the download is gone.
    let removed = curl(&["-X", "DELETE", "-H", &auth, &url(&source, &location)]);
    assert_eq!(removed.status, 204);
    assert_eq!(get(&source, &admin, &location).problem(), "job-not-found");

    source.terminate();
    target.terminate();
    let expected = doctor_contents(&source).unwrap();
    assert_eq!(expected.placements.len(), 40);
    assert_eq!(doctor_contents(&target), Some(expected));
});

engine_tests_sync!(
    import_job_interrupted_by_a_kill_resumes_at_restart,
    |engine| {
        let source = source_instance(engine, 600);
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("doctor.tar");
        source.cli_ok(&["export", "--bal", DOCTOR, "-o", archive.to_str().unwrap()]);

        let mut target = fresh_instance(engine);
        let admin = create_api_key(&target, "ops", "admin", ADMIN_BAL);
        target.spawn();
        let location = start_import(&target, &admin, &archive, "");
        // Killed once the job has checked the archive (its row says so), before it ends.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let job = get(&target, &admin, &location).json();
            assert_ne!(
                job["state"], "done",
                "the import ended before the kill: make it larger"
            );
            // The archive checked (the step is saved at once): the kill lands while staging.
            if job["state"] == "running" && job["progress"]["step"].is_string() {
                break;
            }
            assert!(Instant::now() < deadline, "{job}");
            std::thread::sleep(Duration::from_millis(20));
        }
        target.kill();
        target.spawn();
        let job = wait_for_job(&target, &admin, &location);
        assert_eq!(job["state"], "done", "{job}\n{}", target.log());
        assert_eq!(job["attempts"], 2, "{job}");
        assert_eq!(job["result"]["bals"][0]["outcome"], "imported", "{job}");
        target.terminate();
        assert_eq!(doctor_contents(&target), doctor_contents(&source));
        // The upload is removed once the job ended.
        let jobs_dir = target.db.data_path().join("jobs");
        let left: Vec<_> = std::fs::read_dir(&jobs_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("import-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
);
