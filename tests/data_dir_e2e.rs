//! The instance a command works on: relative paths taken from the configuration file, admin
//! commands that refuse an uninitialised data dir and say which one they use, one server per
//! data dir, and a database that cannot be reached reported at once with its cause.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

const NO_LISTENERS: &str = "[listen]\nsmtp = \"off\"\nsubmission = \"off\"\nsubmissions = \"off\"\n\
                            imap = \"off\"\nimaps = \"off\"\nhttp = \"off\"\n";

/// `mssante --config CONFIG ARGS`, run from `cwd`.
fn mssante(cwd: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(cwd)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MSSANTE_CONFIG")
        .output()
        .unwrap()
}

/// `mssante serve` from `cwd`, its output in `log`.
fn serve(cwd: &Path, config: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(binary())
        .current_dir(cwd)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove("MSSANTE_CONFIG")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn the_data_dir_follows_the_configuration_file_and_is_locked_by_one_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (etc, elsewhere) = (tmp.path().join("etc"), tmp.path().join("elsewhere"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let config = etc.join("mssante.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"./data\"\n{NO_LISTENERS}[trust]\nenforce = false\n"),
    )
    .unwrap();
    let data = etc.join("data");

    // Before any server ran: refused, with the data dir named, and nothing created.
    let out = mssante(&elsewhere, &config, &["domain", "list"]);
    assert!(!out.status.success(), "an uninitialised data dir was used");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("data dir {}", data.display()))
            && err.contains("not an initialised data dir"),
        "{err}"
    );
    assert!(!data.exists() && !elsewhere.join("data").exists());

    // `init` creates it beside the configuration, for provisioning before the first serve.
    let out = mssante(&elsewhere, &config, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("initialised"),
        "{out:?}"
    );
    assert!(data.join("blobs").is_dir() && !elsewhere.join("data").exists());
    let out = mssante(&elsewhere, &config, &["domain", "add", DOMAIN]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The server, started from yet another folder, keeps its state beside the configuration.
    let log = tmp.path().join("first.log");
    let first = serve(tmp.path(), &config, &log);
    wait_for("the first server never finished starting", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("relay ")
    });
    assert!(data.join("blobs").is_dir() && data.join("mssante.db").exists());
    assert!(!tmp.path().join("data").exists());

    // A second server on the same data dir stops at once and says why.
    let started = Instant::now();
    let second = mssante(&elsewhere, &config, &["serve"]);
    assert!(!second.status.success(), "two servers on one data dir");
    assert!(started.elapsed() < Duration::from_secs(15));
    let err = stderr(&second);
    assert!(
        err.contains("in use by another `mssante serve`")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );

    // Administration still works while the server runs, on the same instance.
    let out = mssante(&elsewhere, &config, &["domain", "add", "autre.mssante.fr"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("data dir {}", data.display())),
        "{}",
        stderr(&out)
    );
    let out = mssante(&etc, &config, &["domain", "list"]);
    let mut domains: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    domains.sort();
    assert_eq!(domains, ["autre.mssante.fr", DOMAIN]);
    assert!(!elsewhere.join("data").exists());
    terminate(first);

    // Once the first server is gone, the data dir can be served again.
    let log = tmp.path().join("again.log");
    let again = serve(&elsewhere, &config, &log);
    wait_for(
        "the data dir stayed locked after its server stopped",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("relay ")
        },
    );
    terminate(again);
}

/// A port below 1024 that refuses connections now. Not a port freed by binding port 0: that
/// one is in the ephemeral range, where another test's listener, or the server's own
/// connection to itself (TCP simultaneous open), can take it before the server connects
/// (seen in CI: "Connection reset by peer" instead of "refused").
fn refused_port() -> u16 {
    (1..1024)
        .find(|port| {
            std::net::TcpStream::connect(("127.0.0.1", *port))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
        .expect("a privileged port that refuses connections")
}

#[test]
fn an_unreachable_postgresql_is_reported_at_once_with_its_cause() {
    let port = refused_port();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mssante.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"postgres://mssante:pg-s3cret@127.0.0.1:{port}/mssante\"\n{NO_LISTENERS}"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}: {err}");
    assert!(
        err.contains("database_url") && err.to_lowercase().contains("connection refused"),
        "the cause is given: {err}"
    );
    assert!(
        !err.contains("pool timed out") && !err.contains("pg-s3cret"),
        "{err}"
    );
}
