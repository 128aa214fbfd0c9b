//! In-process IMAP transcript harness: real sessions over `tokio::io::duplex`, on a real
//! store (SQLite or PostgreSQL), so that protocol behaviour reads as a dialogue:
//!
//! ```text
//! C: a1 SELECT INBOX
//! S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
//! S: ...
//! S: a1 OK [READ-WRITE] SELECT completed
//! ```
//!
//! The notation is `mssante_testkit::transcript`'s: `C:` lines are sent (CRLF added); the
//! `S:` lines that follow must be the next lines the server writes, in order; `...` in an
//! expected line matches any text (an `S: ...` line, any one line). After each dialogue
//! the harness checks that the server wrote nothing more. Beyond lines, a client here
//! reads whole responses with their literals (`response_to`), NUL octets included.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use mssante_imap::{ImapConfig, ImapContext, run_in_memory_session};
use mssante_store::{BalType, NewBal, Store, hash_password};
use mssante_testkit::round_trips::RoundTrips;
use mssante_testkit::transcript::{Step, line_matches, parse_script};
use mssante_testkit::{Engine, TestDb};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

pub const PASSWORD: &str = "transcript secret";
/// How long a line may take; `MSSANTE_TEST_READ_TIMEOUT` (seconds) lengthens it for long
/// runs on a loaded machine (docs/imap-model-run.md), where a stall is still caught.
fn read_timeout() -> Duration {
    let secs = std::env::var("MSSANTE_TEST_READ_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}
/// How long the harness waits to be sure nothing more is coming.
const QUIET: Duration = Duration::from_millis(30);

/// One server (a store and an IMAP context) that clients connect to in-process.
pub struct Server {
    pub store: Store,
    pub ctx: mssante_imap::Context,
    _db: TestDb,
}

impl Server {
    pub async fn start(engine: Engine) -> Server {
        Self::with_config(engine, ImapConfig::default()).await
    }

    pub async fn with_config(engine: Engine, config: ImapConfig) -> Server {
        let db = TestDb::new(engine);
        let url = db.url.clone();
        Self::on(db, &url, config).await
    }

    /// A server on PostgreSQL whose every database connection goes through a proxy counting
    /// round trips.
    pub async fn counting_round_trips() -> (Server, RoundTrips) {
        let db = TestDb::new(Engine::Postgres);
        let round_trips = RoundTrips::start(&db.url).await;
        let server = Self::on(db, round_trips.url(), ImapConfig::default()).await;
        (server, round_trips)
    }

    async fn on(db: TestDb, url: &str, config: ImapConfig) -> Server {
        let store = Store::open(url, db.data_path()).await.expect("store");
        store.add_domain("hop.mssante.fr").await.expect("domain");
        let ctx = Arc::new(ImapContext {
            store: store.clone(),
            config,
            tls: None,
            shutdown: tokio_util::sync::CancellationToken::new(),
            psc: None,
            auth_guard: Default::default(),
            client_ca: None,
        });
        Server {
            store,
            ctx,
            _db: db,
        }
    }

    /// Creates a BAL `local@hop.mssante.fr` with [`PASSWORD`]; returns the address.
    pub async fn bal(&self, local: &str) -> String {
        let address = format!("{local}@hop.mssante.fr");
        self.store
            .create_bal(&NewBal {
                address: address.clone(),
                bal_type: BalType::Org,
                rpps: None,
                adeli: None,
                finess: None,
                siret: Some("36252187900034".into()),
                display_name: None,
                password_hash: Some(hash_password(PASSWORD).expect("hash")),
                liste_rouge: false,
            })
            .await
            .expect("bal");
        address
    }

    /// A new connection; the greeting is read and checked.
    pub async fn connect(&self) -> Client {
        let (client_end, server_end) = tokio::io::duplex(1 << 20);
        tokio::spawn(run_in_memory_session(server_end, self.ctx.clone()));
        let mut client = Client {
            io: BufReader::new(client_end),
        };
        let greeting = client.line().await;
        assert!(
            greeting.starts_with("* OK [CAPABILITY "),
            "greeting: {greeting}"
        );
        client
    }

    /// A connection logged in as `address`.
    pub async fn login(&self, address: &str) -> Client {
        let mut client = self.connect().await;
        client
            .dialogue(&format!(
                "C: l0 LOGIN {address} \"{PASSWORD}\"\nS: l0 OK [CAPABILITY ...] Logged in"
            ))
            .await;
        client
    }
}

pub struct Client {
    io: BufReader<DuplexStream>,
}

impl Client {
    /// Plays a dialogue (see the module documentation; the notation is
    /// `mssante_testkit::transcript`'s); panics with the transcript so far on the first
    /// difference.
    pub async fn dialogue(&mut self, script: &str) {
        let mut seen = String::new();
        for step in parse_script(script) {
            match step {
                Step::Send(sent) => {
                    self.send(&sent).await;
                    seen.push_str(&format!("C: {sent}\n"));
                }
                Step::Expect(expected) => {
                    let got = self.line().await;
                    seen.push_str(&format!("S: {got}\n"));
                    assert!(
                        line_matches(&expected, &got),
                        "server line differs\n expected: {expected}\n      got: {got}\ntranscript:\n{seen}"
                    );
                }
            }
        }
        self.expect_silence(&seen).await;
    }

    pub async fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let w = self.io.get_mut();
        w.write_all(bytes).await.expect("write");
        w.flush().await.expect("flush");
    }

    /// The next server line as bytes, without CRLF.
    pub async fn line_bytes(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(read_timeout(), self.io.read_until(b'\n', &mut buf))
            .await
            .expect("server answered in time")
            .expect("read");
        assert!(n > 0, "server closed the connection");
        if buf.ends_with(b"\r\n") {
            buf.truncate(buf.len() - 2);
        }
        buf
    }

    /// The next server line, lossily decoded, without CRLF.
    pub async fn line(&mut self) -> String {
        String::from_utf8_lossy(&self.line_bytes().await).into_owned()
    }

    /// Everything the server writes up to and including the line tagged `tag`, with any
    /// literal bytes inline (literals are read by their announced size).
    pub async fn response_to(&mut self, tag: &str) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let line = self.line_bytes().await;
            all.extend_from_slice(&line);
            all.extend_from_slice(b"\r\n");
            if let Some(size) = literal_size(&line) {
                let mut literal = vec![0; size];
                tokio::time::timeout(read_timeout(), self.io.read_exact(&mut literal))
                    .await
                    .expect("literal in time")
                    .expect("literal");
                all.extend_from_slice(&literal);
                // The rest of the response line follows the literal.
                continue;
            }
            if line.starts_with(format!("{tag} ").as_bytes()) {
                return all;
            }
        }
    }

    /// The untagged lines and the tagged one of the next response to `tag`, as text.
    pub async fn lines_until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    async fn expect_silence(&mut self, seen: &str) {
        let mut byte = [0u8; 1];
        if let Ok(Ok(n)) = tokio::time::timeout(QUIET, self.io.read(&mut byte)).await {
            if n == 0 {
                return; // the server closed the connection (LOGOUT)
            }
            let rest = self.line().await;
            panic!(
                "server wrote more than the dialogue expects: {}{rest}\ntranscript:\n{seen}",
                byte[0] as char
            );
        }
    }
}

/// `{123}` or `~{123}` at the end of a server line.
fn literal_size(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}
