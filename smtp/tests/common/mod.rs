//! In-process SMTP sessions for transcript tests: the real session engine and a real store
//! (SQLite or PostgreSQL), the client on the other end of an in-memory stream.

use std::sync::Arc;

use mssante_smtp::{ListenerKind, Session, SmtpConfig, SmtpContext, TrustPolicy};
use mssante_store::{BalStatus, BalType, NewBal, Store};
use mssante_testkit::transcript::Transcript;
use mssante_testkit::{Engine, TestDb};
use tokio::io::DuplexStream;
use tokio_util::sync::CancellationToken;

pub const HOSTNAME: &str = "mx.test.mssante.fr";
pub const DOMAIN: &str = "test.mssante.fr";
/// Active BALs of [`DOMAIN`].
pub const DR: &str = "dr.martin@test.mssante.fr";
pub const SEC: &str = "secretariat@test.mssante.fr";
/// A suspended BAL of [`DOMAIN`].
pub const SUSPENDED: &str = "dr.parti@test.mssante.fr";
/// Small enough for a test to exceed it.
pub const MAX_MESSAGE_SIZE: usize = 10_000;

/// A store with one local domain and its BALs, and the session settings under test.
pub struct SmtpHarness {
    pub store: Store,
    ctx: Arc<SmtpContext>,
    _db: TestDb,
}

impl SmtpHarness {
    /// Trust-space checks off: these tests are about the SMTP dialogue, and the checks need
    /// TLS with client certificates (covered end to end in `tests/relay_e2e.rs`).
    pub async fn new(engine: Engine) -> SmtpHarness {
        Self::with_trust(engine, false).await
    }

    pub async fn with_trust(engine: Engine, enforce: bool) -> SmtpHarness {
        let db = TestDb::new(engine);
        let store = Store::open(&db.url, db.data_path())
            .await
            .expect("open store");
        store.add_domain(DOMAIN).await.expect("add domain");
        for address in [DR, SEC, SUSPENDED] {
            store.create_bal(&org(address)).await.expect("create BAL");
        }
        store
            .set_bal_status(SUSPENDED, BalStatus::Suspended)
            .await
            .expect("suspend");
        let ctx = Arc::new(SmtpContext {
            store: store.clone(),
            config: SmtpConfig {
                hostname: HOSTNAME.into(),
                max_message_size: MAX_MESSAGE_SIZE,
                ..SmtpConfig::default()
            },
            tls: None,
            shutdown: CancellationToken::new(),
            trust: TrustPolicy {
                enforce,
                list: None,
                verifier: None,
                mx_tls: None,
            },
        });
        SmtpHarness {
            store,
            ctx,
            _db: db,
        }
    }

    /// Opens a session on a listener of this kind; the transcript starts at the greeting.
    pub fn connect(&self, kind: ListenerKind) -> Transcript<DuplexStream> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer = "192.0.2.25:40000".parse().expect("address");
        tokio::spawn(Session::plain(server, self.ctx.clone(), kind, peer).run());
        Transcript::new(client)
    }

    /// The messages in a BAL's INBOX, as stored (trace header included), oldest first.
    pub async fn inbox(&self, address: &str) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.store.mailbox_messages(address, "INBOX").await.unwrap() {
            let raw = self.store.read_blob(&m.blob_hash).await.unwrap();
            out.push(String::from_utf8(raw).expect("UTF-8 test message"));
        }
        out
    }
}

fn org(address: &str) -> NewBal {
    NewBal {
        address: address.into(),
        bal_type: BalType::Org,
        rpps: None,
        adeli: None,
        finess: Some("750712184".into()),
        siret: None,
        display_name: None,
        password_hash: None,
        liste_rouge: false,
    }
}

/// The body of a stored message: what follows the header section.
pub fn body(stored: &str) -> &str {
    stored
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
}
