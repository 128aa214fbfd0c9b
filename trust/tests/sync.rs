//! The live list: sync from files and from a loopback HTTP server, last-good-copy semantics,
//! restart and the refresh loop (the `trust` subcommands: tests/cli_commands_e2e.rs).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mssante_trust::sync::{LIST_FILE, RECORD_FILE};
use mssante_trust::{Trust, TrustConfig};
use tokio_util::sync::CancellationToken;

const FIXTURE: &[u8] = include_bytes!("fixtures/listeblanchemssante.xml");
const CHECKSUM: &str = include_str!("fixtures/checksum");
const MIPIH: &str =
    "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR";

/// A data dir plus a folder of source files.
struct Env {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    src: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&src).unwrap();
        Env {
            _tmp: tmp,
            data,
            src,
        }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.src.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    fn kept(&self) -> PathBuf {
        self.data.join("trust").join(LIST_FILE)
    }

    /// The fixture plus its checksum, as configured sources.
    fn good_config(&self) -> TrustConfig {
        TrustConfig {
            whitelist: Some(self.file("liste.xml", FIXTURE)),
            checksum: Some(self.file("checksum", CHECKSUM.as_bytes())),
            ..TrustConfig::default()
        }
    }
}

/// The fixture with one description changed: still a valid list, but not the published one.
fn tampered() -> Vec<u8> {
    String::from_utf8(FIXTURE.to_vec())
        .unwrap()
        .replacen("BREST LA SAUVEGARDE", "BREST LA SAUVEGARDF", 1)
        .into_bytes()
}

fn assert_serves_fixture(trust: &Trust) {
    let list = trust.snapshot().expect("a list is loaded");
    assert_eq!((list.entries().len(), list.domain_count()), (619, 516));
    assert_eq!(list.entries()[0].description, "BREST LA SAUVEGARDE");
}

#[tokio::test]
async fn good_file_is_swapped_in_and_persisted() {
    let env = Env::new();
    let trust = Trust::open(&env.good_config(), &env.data).unwrap();
    assert!(trust.snapshot().is_none());
    let report = trust.sync().await.unwrap();
    assert_eq!((report.entries, report.domains), (619, 516));
    assert_eq!(report.generated_at, "2025-03-13T14:54:10Z");
    assert_eq!(report.sha256, CHECKSUM.trim());
    assert_serves_fixture(&trust);
    assert_eq!(std::fs::read(env.kept()).unwrap(), FIXTURE);
    let record = std::fs::read_to_string(env.data.join("trust").join(RECORD_FILE)).unwrap();
    assert!(
        record.contains(CHECKSUM.trim()) && record.contains("\"entries\": 619"),
        "{record}"
    );
    assert!(
        !env.data
            .join("trust")
            .join(format!(".{LIST_FILE}.tmp"))
            .exists()
    );
}

#[tokio::test]
async fn failures_keep_the_previous_list_and_file() {
    let env = Env::new();
    let trust = Trust::open(&env.good_config(), &env.data).unwrap();
    trust.sync().await.unwrap();
    let before = trust.snapshot().unwrap();
    let checksum = env.file("checksum", CHECKSUM.as_bytes());

    // Checksum mismatch: a valid list that is not the published one.
    let other = env.file("tampered.xml", &tampered());
    let err = trust
        .sync_from(&other, Some(&checksum))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checksum mismatch: expected fcec0113"),
        "{err}"
    );
    assert!(
        err.contains("the previous list (generated 2025-03-13T14:54:10Z, 619 entries"),
        "{err}"
    );

    // Corrupt file (truncated in the middle), no checksum to catch it: the parser does.
    let cut = env.file("cut.xml", &FIXTURE[..FIXTURE.len() / 2]);
    let err = trust.sync_from(&cut, None).await.unwrap_err().to_string();
    assert!(
        err.contains("truncated") && err.contains("previous list"),
        "{err}"
    );

    // Missing file.
    let missing = env.src.join("absent.xml").display().to_string();
    let err = trust
        .sync_from(&missing, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("absent.xml") && err.contains("previous list"),
        "{err}"
    );

    // A well-formed but empty list.
    let empty = env.file(
        "empty.xml",
        b"<ListeBlancheMSSante xmlns=\"https://listeblanche.mssante.fr/schema\">\
          <DateDeGeneration>2025-03-14T00:00:00Z</DateDeGeneration><ListeDomaines/></ListeBlancheMSSante>",
    );
    let err = trust.sync_from(&empty, None).await.unwrap_err().to_string();
    assert!(err.contains("no entry"), "{err}");

    assert!(Arc::ptr_eq(&before, &trust.snapshot().unwrap()));
    assert_eq!(std::fs::read(env.kept()).unwrap(), FIXTURE);
}

#[tokio::test]
async fn open_after_restart_serves_the_kept_copy_without_network() {
    let env = Env::new();
    {
        let trust = Trust::open(&env.good_config(), &env.data).unwrap();
        trust.sync().await.unwrap();
    }
    // The source is now unreachable: startup must not need it.
    let config = TrustConfig {
        whitelist: Some("https://127.0.0.1:1/unreachable.xml".into()),
        checksum: None,
        ..TrustConfig::default()
    };
    let trust = Trust::open(&config, &env.data).unwrap();
    assert_serves_fixture(&trust);
    let list = trust.snapshot().unwrap();
    assert!(list.dn_allowed("nddtestasmae.mssante.fr", &MIPIH.parse().unwrap()));
}

#[test]
fn open_refuses_a_damaged_kept_copy_and_plain_http() {
    let env = Env::new();
    std::fs::create_dir_all(env.data.join("trust")).unwrap();
    std::fs::write(env.kept(), &FIXTURE[..1000]).unwrap();
    let err = format!(
        "{:#}",
        Trust::open(&TrustConfig::default(), &env.data).unwrap_err()
    );
    assert!(
        err.contains(LIST_FILE) && err.contains("trust sync"),
        "{err}"
    );

    let config = TrustConfig {
        whitelist: Some("http://listeblanche.example/l.xml".into()),
        ..TrustConfig::default()
    };
    let err = format!("{:#}", Trust::open(&config, &Env::new().data).unwrap_err());
    assert!(err.contains("plain http is refused"), "{err}");
}

/// A tiny HTTP/1.1 server on 127.0.0.1 answering `requests` requests, then stopping.
/// Paths: /liste.xml, /checksum, /cut.xml (announces more than it sends), anything else 404.
fn serve(requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            let (status, body, announced): (&str, &[u8], usize) = match path.as_str() {
                "/liste.xml" => ("200 OK", FIXTURE, FIXTURE.len()),
                "/checksum" => ("200 OK", CHECKSUM.as_bytes(), CHECKSUM.len()),
                "/cut.xml" => ("200 OK", &FIXTURE[..5000], FIXTURE.len()),
                _ => ("404 Not Found", b"not found", 9),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    base
}

#[tokio::test]
async fn sync_over_http_from_loopback() {
    let base = serve(6);
    let env = Env::new();
    let config = TrustConfig {
        whitelist: Some(format!("{base}/liste.xml")),
        checksum: Some(format!("{base}/checksum")),
        ..TrustConfig::default()
    };
    let trust = Trust::open(&config, &env.data).unwrap();
    let report = trust.sync().await.unwrap();
    assert_eq!(report.source, format!("{base}/liste.xml"));
    assert_eq!(report.entries, 619);
    let before = trust.snapshot().unwrap();

    let err = trust
        .sync_from(&format!("{base}/missing.xml"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("404") && err.contains("previous list"),
        "{err}"
    );

    let err = trust
        .sync_from(
            &format!("{base}/cut.xml"),
            Some(&format!("{base}/checksum")),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("download from") && err.contains("previous list"),
        "{err}"
    );

    assert!(Arc::ptr_eq(&before, &trust.snapshot().unwrap()));
    assert_eq!(std::fs::read(env.kept()).unwrap(), FIXTURE);
}

#[tokio::test]
async fn refresh_loop_syncs_at_once_without_a_kept_copy_and_stops_on_cancel() {
    let env = Env::new();
    let trust = Arc::new(Trust::open(&env.good_config(), &env.data).unwrap());
    let token = CancellationToken::new();
    let task = tokio::spawn(trust.clone().run_refresh(token.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while trust.snapshot().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first refresh did not happen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_serves_fixture(&trust);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop stops when cancelled")
        .unwrap();
}
