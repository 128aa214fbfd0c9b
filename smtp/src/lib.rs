//! SMTP for mssante (RFC 5321): one session engine behind every listener — MX (other
//! operators), submission with STARTTLS and submissions with implicit TLS (clients).
//!
//! Layout: `command` and `body` parse without I/O; `session` holds a session's state and
//! connection; `dispatch` runs the command loop and hands each command to one file per
//! command family (`ehlo`, `envelope`, `data`, `auth`, `starttls`, `misc`), which build on
//! `session` and never on each other's loop; `listener` accepts connections; the store does
//! all storage.

mod auth;
mod auth_external;
pub mod body;
pub mod command;
mod data;
mod dispatch;
mod ehlo;
mod envelope;
mod listener;
mod misc;
mod peer;
pub mod reply;
mod session;
mod starttls;
pub mod submit;
mod trace;

use std::sync::Arc;
use std::time::Duration;

/// For the fuzz harness (`fuzz/`): the SASL PLAIN decoder of AUTH.
#[doc(hidden)]
pub use auth::{PlainCredentials, decode_plain};
pub use listener::{bind, serve};
pub use session::Session;

/// What a listener is for; decides authentication, TLS and recipient policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// Inbound from other MTAs: no authentication, local recipients only.
    Mx,
    /// Client submission on a plaintext port with STARTTLS (RFC 6409).
    Submission,
    /// Client submission over implicit TLS (RFC 8314 §3.3).
    Submissions,
}

impl ListenerKind {
    pub fn requires_auth(self) -> bool {
        !matches!(self, ListenerKind::Mx)
    }

    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Mx => "smtp",
            ListenerKind::Submission => "submission",
            ListenerKind::Submissions => "submissions",
        }
    }
}

/// SMTP settings (the `[smtp]` section of the configuration).
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// Our name in the greeting, EHLO reply and Received headers.
    pub hostname: String,
    /// Largest message accepted, in bytes (EHLO SIZE, RFC 1870).
    pub max_message_size: usize,
    /// Recipients per transaction before 452 (RFC 5321 §4.5.3.1.8 requires at least 100).
    pub max_recipients: usize,
    /// 5xx replies in one session before it is closed.
    pub max_errors: u32,
    /// Waiting for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    pub command_timeout: Duration,
    /// Waiting for the next block of a message body (RFC 5321 §4.5.3.2.5/6).
    pub data_timeout: Duration,
    /// Concurrent sessions per listener; more get 421.
    pub max_connections: usize,
    /// Concurrent sessions per listener from one client address; more get 421.
    pub max_connections_per_address: usize,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            hostname: "localhost".into(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 20,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            max_connections: 1000,
            max_connections_per_address: 100,
        }
    }
}

/// Everything a session needs, shared by all sessions of all listeners.
pub struct SmtpContext {
    pub store: mssante_store::Store,
    pub config: SmtpConfig,
    /// TLS server configuration; `None` disables STARTTLS and the implicit-TLS listener.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Cancelled on SIGTERM/SIGINT: stop accepting, finish messages in flight, say 421.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The MSSanté trust space (docs/mssante.md §3): who may send to our MX, where we may relay.
    pub trust: TrustPolicy,
    /// Pro Santé Connect login (AUTH XOAUTH2 / OAUTHBEARER); `None` when `[psc]` is off.
    pub psc: Option<Arc<mssante_auth::PscVerifier>>,
    /// Password failures slowed then locked (shared with IMAP; docs/limits.md).
    pub auth_guard: Arc<mssante_net::AuthGuard>,
    /// `[tls] client_ca_file`: client certificates for AUTH EXTERNAL on submission (ADR
    /// 0029); `None`: no EXTERNAL.
    pub client_ca: Option<mssante_auth::external::PeerVerifier>,
}

/// How the trust space is enforced on the SMTP listeners.
pub struct TrustPolicy {
    /// `false` turns every trust check off (development and tests of other features only).
    pub enforce: bool,
    /// The live whitelist.
    pub list: Option<Arc<mssante_trust::Trust>>,
    /// Validates the client certificates of peer operators on the MX.
    pub verifier: Option<mssante_trust::PeerVerifier>,
    /// TLS for the MX listener: asks the peer for its client certificate.
    pub mx_tls: Option<tokio_rustls::TlsAcceptor>,
    /// The CRLs in force (ADR 0041), for `/metrics`; `None` when no CA is configured.
    pub revocation: Option<Arc<mssante_trust::Revocation>>,
}

impl TrustPolicy {
    /// The current whitelist, if one was ever loaded.
    pub fn snapshot(&self) -> Option<Arc<mssante_trust::TrustList>> {
        self.list.as_ref().and_then(|t| t.snapshot())
    }
}

pub type Context = Arc<SmtpContext>;
