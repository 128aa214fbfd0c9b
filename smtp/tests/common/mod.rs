//! In-process SMTP sessions for transcript tests: the real session engine and a real store
//! (SQLite or PostgreSQL), the client on the other end of an in-memory stream.
// Each test file uses its own part of these.
#![allow(dead_code)]

use std::sync::Arc;

use mssante_smtp::{ListenerKind, Session, SmtpConfig, SmtpContext, TrustPolicy};
use mssante_store::{BalStatus, BalType, NewBal, Store, hash_password};
use mssante_testkit::round_trips::RoundTrips;
use mssante_testkit::transcript::Transcript;
use mssante_testkit::{Engine, TestDb};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::DuplexStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

pub const HOSTNAME: &str = "mx.test.mssante.fr";
pub const DOMAIN: &str = "test.mssante.fr";
/// Active BALs of [`DOMAIN`].
pub const DR: &str = "dr.martin@test.mssante.fr";
pub const SEC: &str = "secretariat@test.mssante.fr";
/// A suspended BAL of [`DOMAIN`].
pub const SUSPENDED: &str = "dr.parti@test.mssante.fr";
/// The password of [`DR`].
pub const PASSWORD: &str = "une longue phrase secrète";
/// Small enough for a test to exceed it.
pub const MAX_MESSAGE_SIZE: usize = 10_000;

/// A store with one local domain and its BALs, and the session settings under test.
pub struct SmtpHarness {
    pub store: Store,
    ctx: Arc<SmtpContext>,
    /// Trusts the server's self-signed certificate.
    tls_client: TlsConnector,
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
        let url = db.url.clone();
        Self::on(db, &url, enforce).await
    }

    /// A harness on PostgreSQL whose every database connection goes through a proxy
    /// counting round trips.
    pub async fn counting_round_trips() -> (SmtpHarness, RoundTrips) {
        let db = TestDb::new(Engine::Postgres);
        let round_trips = RoundTrips::start(&db.url).await;
        let harness = Self::on(db, round_trips.url(), false).await;
        (harness, round_trips)
    }

    async fn on(db: TestDb, url: &str, enforce: bool) -> SmtpHarness {
        let store = Store::open(url, db.data_path()).await.expect("open store");
        store.add_domain(DOMAIN).await.expect("add domain");
        for address in [DR, SEC, SUSPENDED] {
            store.create_bal(&org(address)).await.expect("create BAL");
        }
        let hash = hash_password(PASSWORD).expect("hash");
        store.set_bal_password(DR, &hash).await.expect("password");
        store
            .set_bal_status(SUSPENDED, BalStatus::Suspended)
            .await
            .expect("suspend");
        let (tls_server, tls_client) = self_signed_tls();
        let ctx = Arc::new(SmtpContext {
            store: store.clone(),
            config: SmtpConfig {
                hostname: HOSTNAME.into(),
                max_message_size: MAX_MESSAGE_SIZE,
                ..SmtpConfig::default()
            },
            tls: Some(tls_server),
            shutdown: CancellationToken::new(),
            trust: TrustPolicy {
                enforce,
                list: None,
                verifier: None,
                mx_tls: None,
                revocation: None,
            },
            psc: None,
            auth_guard: Default::default(),
            client_ca: None,
        });
        SmtpHarness {
            store,
            ctx,
            tls_client,
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

    /// STARTTLS (RFC 3207) and the client's side of the handshake; the dialogue goes on
    /// inside TLS.
    pub async fn starttls(
        &self,
        mut t: Transcript<DuplexStream>,
    ) -> Transcript<TlsStream<DuplexStream>> {
        t.play("C: STARTTLS\nS: 220 2.0.0 Ready to start TLS").await;
        self.handshake(t).await
    }

    /// The client's side of the TLS handshake, once the server said 220 to STARTTLS.
    pub async fn handshake(
        &self,
        t: Transcript<DuplexStream>,
    ) -> Transcript<TlsStream<DuplexStream>> {
        let name = ServerName::try_from(HOSTNAME).expect("server name");
        let connector = self.tls_client.clone();
        t.upgrade(|plain| async move { connector.connect(name, plain).await })
            .await
    }

    /// The messages in a BAL's INBOX, as stored (trace header included), oldest first.
    pub async fn inbox(&self, address: &str) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.store.folder_messages(address, "INBOX").await.unwrap() {
            let raw = self.store.read_blob(&m.blob_hash).await.unwrap();
            out.push(String::from_utf8(raw).expect("UTF-8 test message"));
        }
        out
    }
}

/// A self-signed certificate for [`HOSTNAME`]: the server's TLS, and a client that trusts it.
fn self_signed_tls() -> (TlsAcceptor, TlsConnector) {
    let certified = rcgen::generate_simple_self_signed(vec![HOSTNAME.to_string()]).expect("cert");
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
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

/// What every listener advertises after its name (RFC 5321 §4.1.1.1 and the extensions).
pub const EXTENSIONS: [&str; 7] = [
    "PIPELINING",
    "SIZE 10000",
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "SMTPUTF8",
    "CHUNKING",
    "DSN",
];

/// EHLO from a peer and our answer: the common extensions, then `last` (STARTTLS before
/// TLS; AUTH on submission once in TLS).
pub fn ehlo(last: &[&str]) -> String {
    let mut lines = vec!["mx.test.mssante.fr"];
    lines.extend(EXTENSIONS);
    lines.extend(last);
    let mut script = String::from("C: EHLO peer.labo.mssante.fr\n");
    for (i, line) in lines.iter().enumerate() {
        let more = if i + 1 < lines.len() { '-' } else { ' ' };
        script.push_str(&format!("S: 250{more}{line}\n"));
    }
    script
}
