//! Test support shared by the store, SMTP and end-to-end tests.
//!
//! The whole suite runs on both storage engines. SQLite needs nothing but a temp dir;
//! PostgreSQL is a real, ephemeral cluster that this crate starts once per test process
//! (`initdb` + `pg_ctl`, as user `postgres` when the tests run as root) and removes when
//! the process exits. Every test gets a database of its own in that cluster.
//!
//! For the relay and interoperability tests: [`pki`] (a test IGC-Santé root, operator
//! certificates, whitelists), [`dns`] (a loopback dnsmasq serving MX and A records),
//! [`postfix`] (a throwaway Postfix on a loopback port, the real-MTA peer) and [`dovecot`] (a
//! throwaway Dovecot, the IMAP server `mssante migrate` copies from). For PSC logins:
//! [`oidc`] (a loopback OpenID Connect provider: discovery, JWKS, token minting, introspection).
//!
//! For in-process protocol tests: [`transcript`] plays a session as a dialogue (client
//! line, expected server line) over an in-memory stream.
//!
//! Missing tools are a failure, never a skip: a test that needs PostgreSQL panics with a
//! message saying what to install.

pub mod dns;
pub mod dovecot;
pub mod oidc;
pub mod pki;
pub mod postfix;
pub mod round_trips;
pub mod transcript;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The storage engines every store and protocol test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database for one test: its URL and the temp dir that holds its data (blobs, SQLite file).
pub struct TestDb {
    pub url: String,
    pub data_dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new(engine: Engine) -> TestDb {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let url = match engine {
            Engine::Sqlite => format!("sqlite://{}/mssante.db", data_dir.path().display()),
            Engine::Postgres => postgres_cluster().create_database(),
        };
        TestDb { url, data_dir }
    }

    /// A PostgreSQL database in `cluster` (a private one the test may stop).
    pub fn in_cluster(cluster: &PgCluster) -> TestDb {
        TestDb {
            url: cluster.create_database(),
            data_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn data_path(&self) -> &Path {
        self.data_dir.path()
    }
}

/// Generates one `#[tokio::test]` per engine around an async test body taking an [`Engine`].
///
/// ```ignore
/// engine_tests!(creates_a_bal, |engine| async move { ... });
/// ```
#[macro_export]
macro_rules! engine_tests {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::Engine::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::Engine::Postgres).await
            }
        }
    };
}

/// Same as [`engine_tests!`] for synchronous bodies (end-to-end tests driving the binary).
#[macro_export]
macro_rules! engine_tests_sync {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn sqlite() {
                ($body)($crate::Engine::Sqlite)
            }
            #[test]
            fn postgres() {
                ($body)($crate::Engine::Postgres)
            }
        }
    };
}

/// One ephemeral PostgreSQL cluster per test process (and private ones for the tests that
/// stop their database, [`PgCluster::start_private`]).
pub struct PgCluster {
    port: u16,
    socket_dir: PathBuf,
    next_db: AtomicU32,
    bin: PathBuf,
    root: bool,
    data: PathBuf,
    log: PathBuf,
    options: String,
}

/// Private clusters started by this process so far (their folders are numbered).
static PRIVATE_CLUSTERS: AtomicU32 = AtomicU32::new(0);

static CLUSTER: OnceLock<PgCluster> = OnceLock::new();

pub fn postgres_cluster() -> &'static PgCluster {
    CLUSTER.get_or_init(PgCluster::start)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Finds a PostgreSQL server binary directory: Debian's versioned dirs first, then PATH.
fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MSSANTE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists() && p.join("pg_ctl").exists());
    versions.sort();
    if let Some(newest) = versions.pop() {
        return newest;
    }
    let which = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&which.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "PostgreSQL server binaries not found: install Debian's `postgresql` package \
         (or set MSSANTE_PG_BIN to the directory holding initdb and pg_ctl)"
    );
    PathBuf::from(path).parent().unwrap().to_path_buf()
}

/// Runs a PostgreSQL tool, as user `postgres` when we are root (initdb refuses root).
fn pg_command(bin: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .unwrap()
        .port()
}

impl PgCluster {
    fn start() -> PgCluster {
        PgCluster::start_in(format!("mssante-pg-{}", std::process::id()))
    }

    /// A cluster of the caller's own, for a test that stops and starts its database (the
    /// outage tests): the shared one serves every other test of the process.
    pub fn start_private() -> PgCluster {
        let n = PRIVATE_CLUSTERS.fetch_add(1, Ordering::SeqCst);
        PgCluster::start_in(format!("mssante-pg-{}-private{n}", std::process::id()))
    }

    fn start_in(folder: String) -> PgCluster {
        let bin = pg_bin_dir();
        let root = is_root();
        let base = std::env::temp_dir().join(folder);
        let data = base.join("data");
        let socket_dir = base.join("sock");
        std::fs::create_dir_all(&socket_dir).expect("create pg dirs");
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of {} failed", base.display());
        }
        let out = pg_command(&bin.join("initdb"), root)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
            socket_dir.display()
        );
        let cluster = PgCluster {
            port,
            socket_dir,
            next_db: AtomicU32::new(0),
            log: base.join("log"),
            bin,
            root,
            data,
            options,
        };
        cluster.start_again();
        spawn_reaper(&cluster.bin, root, &cluster.data, &base);
        cluster
    }

    /// Starts the (stopped) cluster on the same port and data.
    pub fn start_again(&self) {
        let out = pg_command(&self.bin.join("pg_ctl"), self.root)
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-l"])
            .arg(&self.log)
            .args(["-o", &self.options, "start"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Stops the cluster at once (`-m immediate`: no checkpoint, clients cut as in a crash
    /// of the database machine).
    pub fn stop(&self) {
        let out = pg_command(&self.bin.join("pg_ctl"), self.root)
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a fresh database and returns its `postgres://` URL.
    pub fn create_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        let out = Command::new("psql")
            .args(["-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("run psql (install Debian's postgresql-client)");
        assert!(
            out.status.success(),
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

/// Stops the cluster and removes its files once this test process has exited: statics are
/// never dropped, so a small watcher process does it.
// The watcher must outlive this process, so it is never waited for.
#[allow(clippy::zombie_processes)]
fn spawn_reaper(bin: &Path, root: bool, data: &Path, base: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if root {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {base}",
        pid = std::process::id(),
        base = base.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn reaper");
}
