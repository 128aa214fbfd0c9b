//! End-to-end harness: starts the real `mssante` binary on free loopback ports with a
//! temporary data dir, on SQLite or on the ephemeral PostgreSQL cluster, and drives it with
//! clients nobody here wrote (Python's smtplib, swaks).

#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod faults;
pub mod http;
pub mod operators;

pub use mssante_testkit::{Engine, TestDb};

pub const DOMAIN: &str = "ch-test.mssante.fr";
pub const HOSTNAME: &str = "mx.ch-test.mssante.fr";
pub const PASSWORD: &str = "correct horse battery";

pub struct Ports {
    pub smtp_ip: std::net::IpAddr,
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub imap: u16,
    pub imaps: u16,
    /// The HTTP listener (autoconfiguration).
    pub http: u16,
}

pub struct Server {
    pub db: TestDb,
    pub config_path: PathBuf,
    pub ports: Ports,
    child: Option<Child>,
    pub log_path: PathBuf,
    /// The server's `RUST_LOG` (`info` unless a test wants more).
    pub rust_log: &'static str,
}

/// `n` distinct free loopback ports: all are held open until every one is picked, so that
/// the kernel cannot hand the same port out twice (it did: two listeners of one server on
/// one port).
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mssante")
}

impl Server {
    /// A configured but not yet running server with `extra` TOML appended to the config.
    pub fn configure(engine: Engine, extra: &str) -> Server {
        Server::configure_host(engine, HOSTNAME, extra)
    }

    /// Like [`Server::configure`] with another host name (its self-signed certificate is
    /// issued for it: clients that check names connect to that name).
    pub fn configure_host(engine: Engine, hostname: &str, extra: &str) -> Server {
        Server::configure_at(engine, hostname, None, extra)
    }

    /// Like [`Server::configure_host`] with the MX listener on `mx` (operators in the trust
    /// tests each get their own loopback address and share one port, like port 25).
    pub fn configure_at(
        engine: Engine,
        hostname: &str,
        mx: Option<SocketAddr>,
        extra: &str,
    ) -> Server {
        let server = Server::configure_uninitialised_at(engine, hostname, mx, extra);
        // An initialised instance, as `serve` leaves it on first start: administration
        // commands refuse a data dir that is not one. Not asserted: tests of bad
        // configurations see their error from the command they run.
        server.cli(&["init"]);
        server
    }

    /// A configuration whose data dir holds no instance yet (what `restore` fills).
    pub fn configure_uninitialised(engine: Engine, extra: &str) -> Server {
        Server::configure_uninitialised_at(engine, HOSTNAME, None, extra)
    }

    fn configure_uninitialised_at(
        engine: Engine,
        hostname: &str,
        mx: Option<SocketAddr>,
        extra: &str,
    ) -> Server {
        Server::configure_on(TestDb::new(engine), hostname, mx, extra)
    }

    /// Another node of this server's instance: the same PostgreSQL database, a data dir and
    /// ports of its own, the same configuration otherwise (ADR 0023). Not started.
    pub fn another_node(&self, extra: &str) -> Server {
        let db = TestDb {
            url: self.db.url.clone(),
            data_dir: tempfile::tempdir().unwrap(),
        };
        // The same mail host name as this node (the operator's, in the trust tests).
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        let hostname = config
            .lines()
            .find_map(|l| l.strip_prefix("hostname = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or(HOSTNAME)
            .to_string();
        let node = Server::configure_on(db, &hostname, None, extra);
        node.cli(&["init"]);
        node
    }

    /// A configured, initialised server on a database the test made (a private cluster).
    pub fn configure_db(db: TestDb, extra: &str) -> Server {
        let server = Server::configure_on(db, HOSTNAME, None, extra);
        server.cli(&["init"]);
        server
    }

    fn configure_on(db: TestDb, hostname: &str, mx: Option<SocketAddr>, extra: &str) -> Server {
        let [smtp, submission, submissions, imap, imaps, http] = free_ports::<6>();
        let mx = mx.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], smtp)));
        let ports = Ports {
            smtp_ip: mx.ip(),
            smtp: mx.port(),
            submission,
            submissions,
            imap,
            imaps,
            http,
        };
        let config_path = db.data_path().join("mssante.toml");
        let config = format!(
            "hostname = \"{hostname}\"\ndata_dir = \"{data}\"\ndatabase_url = \"{url}\"\n\
             [listen]\nsmtp = \"{}:{}\"\nsubmission = \"127.0.0.1:{}\"\nsubmissions = \"127.0.0.1:{}\"\n\
             imap = \"127.0.0.1:{}\"\nimaps = \"127.0.0.1:{}\"\nhttp = \"127.0.0.1:{}\"\n{extra}\n{trust}",
            ports.smtp_ip,
            ports.smtp,
            ports.submission,
            ports.submissions,
            ports.imap,
            ports.imaps,
            ports.http,
            data = db.data_path().display(),
            url = db.url,
            // Tests of other features use the MX without the trust space; the trust tests
            // configure their own [trust] section.
            trust = if extra.contains("[trust]") {
                ""
            } else {
                "[trust]\nenforce = false\n"
            },
        );
        std::fs::write(&config_path, config).unwrap();
        let log_path = db.data_path().join("server.log");
        Server {
            db,
            config_path,
            ports,
            child: None,
            log_path,
            rust_log: "info",
        }
    }

    /// A running server with one local domain and the BALs given (PER, password PASSWORD).
    pub fn start_with(engine: Engine, extra: &str, bals: &[&str]) -> Server {
        let mut s = Server::configure(engine, extra);
        s.cli_ok(&["domain", "add", DOMAIN]);
        for (i, bal) in bals.iter().enumerate() {
            s.create_bal(bal, &format!("1000{:07}", i + 1));
        }
        s.spawn();
        s
    }

    pub fn start(engine: Engine, bals: &[&str]) -> Server {
        Server::start_with(engine, "", bals)
    }

    pub fn create_bal(&self, address: &str, rpps: &str) {
        let out = self.cli_stdin(
            &[
                "bal",
                "create",
                address,
                "--type",
                "PER",
                "--rpps",
                rpps,
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "bal create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `mssante serve`. A loopback port picked free may be taken by another test
    /// before the server binds it: then the ports are picked again (twice at most).
    pub fn spawn(&mut self) {
        for attempt in 0..3 {
            let log = std::fs::File::create(&self.log_path).unwrap();
            let child = Command::new(binary())
                .args(["serve", "--config"])
                .arg(&self.config_path)
                .env("RUST_LOG", self.rust_log)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start mssante serve");
            self.child = Some(child);
            match self.wait_until_listening() {
                Ok(()) => return,
                Err(status) if attempt < 2 && self.log().contains("cannot listen on") => {
                    eprintln!("server exited with {status} (port taken meanwhile); new ports");
                    self.child = None;
                    self.pick_new_ports();
                }
                Err(status) => panic!("server exited with {status}: {}", self.log()),
            }
        }
    }

    /// New free loopback ports for the listeners on 127.0.0.1, rewritten in the config.
    fn pick_new_ports(&mut self) {
        let mut config = std::fs::read_to_string(&self.config_path).unwrap();
        let loopback: std::net::IpAddr = [127, 0, 0, 1].into();
        let mut ports = vec![
            &mut self.ports.submission,
            &mut self.ports.submissions,
            &mut self.ports.imap,
            &mut self.ports.imaps,
            &mut self.ports.http,
        ];
        if self.ports.smtp_ip == loopback {
            ports.push(&mut self.ports.smtp);
        }
        // Old → placeholder first, then placeholder → new: a new port equal to an old one
        // of another listener cannot be rewritten twice.
        let fresh = free_ports::<6>();
        for (i, port) in ports.iter().enumerate() {
            config = config.replace(
                &format!("127.0.0.1:{port}\""),
                &format!("127.0.0.1:@{i}@\""),
            );
        }
        for (i, port) in ports.into_iter().enumerate() {
            config = config.replace(
                &format!("127.0.0.1:@{i}@\""),
                &format!("127.0.0.1:{}\"", fresh[i]),
            );
            *port = fresh[i];
        }
        std::fs::write(&self.config_path, config).unwrap();
    }

    /// Waits for every listener; `Err(exit status)` when the server stopped instead.
    fn wait_until_listening(&mut self) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [
            self.ports.smtp,
            self.ports.submission,
            self.ports.submissions,
            self.ports.imap,
            self.ports.imaps,
            self.ports.http,
        ] {
            let ip = match port == self.ports.smtp {
                true => self.ports.smtp_ip,
                false => [127, 0, 0, 1].into(),
            };
            let addr = SocketAddr::new(ip, port);
            // Our server's own "listening" line, not only a connection: another test's
            // listener (or PostgreSQL) may have taken the port picked free, and then answers
            // the connection while this server exits on its bind error.
            let ours = format!(" {addr} ");
            while !self
                .log()
                .lines()
                .any(|l| l.starts_with("listening") && l.contains(&ours))
                || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
            {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    return Err(status);
                }
                assert!(
                    Instant::now() < deadline,
                    "server not listening on {port}: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// A free loopback port for a listener the harness does not start (`https`).
    pub fn free_port() -> u16 {
        free_ports::<1>()[0]
    }

    /// Waits until something listens on `port` (a listener bound after the ones
    /// [`Server::spawn`] waits for); panics with the log after 10 s.
    pub fn wait_for_port(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nothing on port {port}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether `serve` was started and not killed or stopped since.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, "")
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Delivers `message` from `sender` to `rcpt` through the MX (Python's smtplib), which
    /// must answer 250.
    pub fn deliver_mx(&self, sender: &str, rcpt: &str, message: &str) {
        let file = self.db.data_path().join("deliver_mx.eml");
        std::fs::write(&file, message).unwrap();
        let out = py(
            "mx",
            self,
            &[
                "--sender",
                sender,
                "--rcpt",
                rcpt,
                "--message-file",
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(out["data"][0], 250, "{out}");
    }

    /// The messages of a folder, with their bytes, read through the store API.
    pub fn messages(&self, address: &str, folder: &str) -> Vec<Vec<u8>> {
        block_on(async {
            let store = self.open_store().await;
            let mut out = Vec::new();
            for m in store.folder_messages(address, folder).await.unwrap() {
                out.push(store.read_blob(&m.blob_hash).await.unwrap());
            }
            store.close().await;
            out
        })
    }

    /// [`Server::messages`] with the INTERNALDATE of each (seconds since the epoch).
    pub fn messages_dated(&self, address: &str, folder: &str) -> Vec<(i64, Vec<u8>)> {
        block_on(async {
            let store = self.open_store().await;
            let mut out = Vec::new();
            for m in store.folder_messages(address, folder).await.unwrap() {
                out.push((m.internaldate, store.read_blob(&m.blob_hash).await.unwrap()));
            }
            store.close().await;
            out
        })
    }

    /// What `mssante message status` shows for each Message-ID: per copy sent from here,
    /// the state of each recipient (`queued`, `relayed`, `failed`...), and its attempts.
    pub fn sent_states(&self, message_ids: &[String]) -> Vec<Vec<Vec<(String, String, i64)>>> {
        block_on(async {
            let store = self.open_store().await;
            let mut out = Vec::new();
            for mid in message_ids {
                let copies = store.message_status(mid).await.unwrap();
                out.push(
                    copies
                        .into_iter()
                        .map(|c| {
                            c.recipients
                                .into_iter()
                                .map(|r| (r.address, r.state, r.attempts))
                                .collect()
                        })
                        .collect(),
                );
            }
            store.close().await;
            out
        })
    }

    /// UID → Message-ID header value of the messages of `address`'s INBOX.
    pub fn inbox_uids(&self, address: &str) -> std::collections::BTreeMap<u64, String> {
        block_on(async {
            let store = self.open_store().await;
            let mut out = std::collections::BTreeMap::new();
            for m in store.folder_messages(address, "INBOX").await.unwrap() {
                let bytes = store.read_blob(&m.blob_hash).await.unwrap();
                let text = String::from_utf8_lossy(&bytes);
                let mid = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID:"))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                out.insert(m.uid as u64, mid);
            }
            store.close().await;
            out
        })
    }

    pub fn message_count(&self) -> i64 {
        block_on(async {
            let store = self.open_store().await;
            let n = store.message_count().await.unwrap();
            store.close().await;
            n
        })
    }

    pub fn queued(&self) -> Vec<mssante_store::QueueItem> {
        block_on(async {
            let store = self.open_store().await;
            let q = store.queue_list().await.unwrap();
            store.close().await;
            q
        })
    }

    /// Runs SQL on the server's database with the engine's own client (sqlite3, psql) and
    /// returns its output, one row a line, columns separated by `|`: for tests that set
    /// up states no command makes (rows dated in the past, a newer binary's migration).
    pub fn sql(&self, statement: &str) -> String {
        let url = &self.db.url;
        let out = match url.strip_prefix("sqlite://") {
            Some(file) => Command::new("sqlite3").arg(file).arg(statement).output(),
            None => Command::new("psql")
                .args([
                    url.as_str(),
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-q",
                    "-At",
                    "-c",
                    statement,
                ])
                .output(),
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn open_store(&self) -> mssante_store::Store {
        mssante_store::Store::open(&self.db.url, self.db.data_path())
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The body of a stored message: what follows our Received trace header.
pub fn strip_trace_header(stored: &[u8]) -> &[u8] {
    assert!(
        stored.starts_with(b"Received: from "),
        "no trace header: {:?}",
        String::from_utf8_lossy(&stored[..stored.len().min(80)])
    );
    // The trace header is folded on lines starting with a tab.
    let mut pos = 0;
    loop {
        let eol = stored[pos..].windows(2).position(|w| w == b"\r\n").unwrap() + pos + 2;
        if stored.get(eol) != Some(&b'\t') {
            return &stored[eol..];
        }
        pos = eol;
    }
}

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("clients")
}

/// Runs `tests/clients/smtp_client.py CASE` against the server and returns its JSON output.
pub fn py(case: &str, server: &Server, args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(clients_dir().join("smtp_client.py"))
        .arg(case)
        .args(["--smtp", &server.ports.smtp.to_string()])
        .args(["--submission", &server.ports.submission.to_string()])
        .args(["--submissions", &server.ports.submissions.to_string()])
        .args(["--password", PASSWORD])
        .args(args)
        .output()
        .expect("python3 is required for the end-to-end tests (Debian package python3)");
    client_json(case, out, server)
}

/// The JSON object a client case printed, once it exited successfully (else its stderr and
/// the server's log).
pub fn client_json(case: &str, out: Output, server: &Server) -> serde_json::Value {
    assert!(
        out.status.success(),
        "python case {case} failed: {}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{case}: bad JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `tests/clients/SCRIPT CASE` for a doctor's BAL and a secretary (the delegation and
/// NOTIFY flows) with the interpreter that has `imapclient`; returns its JSON output.
pub fn doctor_secretary_flow(
    server: &Server,
    script: &str,
    case: &str,
    (doctor, secretary): (&str, &str),
    extra: &[&str],
) -> serde_json::Value {
    let python = std::env::var("MSSANTE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(clients_dir().join(script))
        .arg(case)
        .args(["--imap", &server.ports.imap.to_string()])
        .args(["--doctor", doctor, "--secretary", secretary])
        .args(["--password", PASSWORD])
        .args(extra)
        .output()
        .expect("python3");
    client_json(case, out, server)
}

/// Runs `tests/clients/imap_client.py CASE` (Python's imaplib) and returns its JSON output.
pub fn py_imap(case: &str, server: &Server, user: &str, args: &[&str]) -> serde_json::Value {
    let out = imap_command(case, server, user, args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "imap case {case} failed: {}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{case}: bad JSON ({e}): {stdout}"))
}

pub fn imap_command(case: &str, server: &Server, user: &str, args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(clients_dir().join("imap_client.py"))
        .arg(case)
        .args(["--imap", &server.ports.imap.to_string()])
        .args(["--imaps", &server.ports.imaps.to_string()])
        .args(["--user", user, "--password", PASSWORD])
        .args(args);
    c
}

/// Runs swaks (a real, independent SMTP client) and returns (exit code, transcript).
pub fn swaks(args: &[&str]) -> (i32, String) {
    let out = Command::new("swaks")
        .args(args)
        .args(["--timeout", "30"])
        .output()
        .expect("swaks is required for the end-to-end tests (Debian package swaks)");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), transcript)
}

/// Message numbers written one per line by `smtp_client.py durability` (acknowledged or in
/// flight); a missing file is an empty set.
pub fn acked_numbers(path: &Path) -> std::collections::BTreeSet<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `smtp_client.py durability` on the MX: `connections` connections send numbered messages
/// from `sender` to `rcpt` until `count` or until the server goes away, writing each number
/// to `ack_file` when acknowledged and to `inflight_file` before it is sent.
pub fn spawn_durability_client(
    server: &Server,
    (sender, rcpt): (&str, &str),
    count: u64,
    connections: usize,
    ack_file: &Path,
    inflight_file: &Path,
) -> Child {
    Command::new("python3")
        .arg(clients_dir().join("smtp_client.py"))
        .args(["durability", "--smtp", &server.ports.smtp.to_string()])
        .args([
            "--sender",
            sender,
            "--rcpt",
            rcpt,
            "--count",
            &count.to_string(),
        ])
        .args(["--connections", &connections.to_string()])
        .arg("--ack-file")
        .arg(ack_file)
        .arg("--inflight-file")
        .arg(inflight_file)
        .stdout(Stdio::null())
        .spawn()
        .expect("python3")
}

/// Folder name, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ.
pub type FolderState = (String, i64, i64, i64);
/// Folder, UID, modseq, flags, INTERNALDATE, SHA-256 of the bytes read back.
pub type Placement = (String, i64, i64, String, i64, String);

/// What must be identical on both sides for one BAL; `None` when the BAL does not show.
#[derive(Debug, PartialEq)]
pub struct BalContents {
    pub folders: Vec<FolderState>,
    pub subscriptions: Vec<String>,
    pub placements: Vec<Placement>,
}

/// What the store holds of `address`: folders with their IMAP counters, subscriptions, and
/// each placement with the SHA-256 of its bytes (export and import round trips compare them).
pub async fn bal_contents(store: &mssante_store::Store, address: &str) -> BalContents {
    let (bal_id, snapshot) = store.bal_snapshot(address).await.unwrap();
    let mut folders = Vec::new();
    let mut placements = Vec::new();
    for f in &snapshot.folders {
        folders.push((f.name.clone(), f.uidvalidity, f.uidnext, f.highestmodseq));
        for e in store
            .folder_entries_page(bal_id, f.id, 0, i64::MAX)
            .await
            .unwrap()
        {
            let bytes = store.read_blob(&e.blob_hash).await.unwrap();
            placements.push((
                f.name.clone(),
                e.uid,
                e.modseq,
                e.flags,
                e.internaldate,
                mssante_store::blob_hash(&bytes),
            ));
        }
    }
    BalContents {
        folders,
        subscriptions: snapshot.subscriptions,
        placements,
    }
}
