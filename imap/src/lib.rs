//! IMAP4rev2 / IMAP4rev1 server (RFC 9051, RFC 3501) for mssante.
//!
//! Layout: `parse` (grammar, no I/O; one file per command or family, each with its typed
//! arguments) and `message` (FETCH/SEARCH rendering of stored bytes, no I/O) are pure;
//! `session` owns the connection, the states and the order of responses, holding what
//! `state` defines (access, live searches, compression); `cmd/` holds one
//! file per command (`cmd/fetch.rs` is FETCH); `view` is the selected mailbox as a session
//! sees it; the store does all storage and tells sessions about changes.
pub mod message;
pub mod parse;

mod access;
mod cmd;
mod mailbox_names;
mod session;
mod state;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

pub use session::Session;
/// For the fuzz harness (`fuzz/`): how a command line announces a literal.
#[doc(hidden)]
pub use session::trailing_literal;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// Port 143 style: plaintext, STARTTLS before any login.
    Imap,
    /// Port 993 style: implicit TLS (RFC 8314).
    Imaps,
}

impl ListenerKind {
    /// The `[listen]` key of the listener (for logs).
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Imap => "imap",
            ListenerKind::Imaps => "imaps",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ImapConfig {
    pub hostname: String,
    /// Largest literal (and APPEND message) accepted; advertised as APPENDLIMIT.
    pub max_literal: usize,
    /// Longest command line.
    pub max_line: usize,
    /// RFC 9051 §5.4: at least 30 minutes of inactivity before autologout.
    pub autologout: Duration,
    /// Once a command line has begun, the time the rest of it may take (slow clients).
    pub line_timeout: Duration,
    pub max_connections: usize,
    /// Concurrent connections per listener from one client address.
    pub max_connections_per_address: usize,
    /// How long IDLE (and NOTIFY between commands) gathers a watched mailbox's changes
    /// after the first before reporting them together (ADR 0058; RFC 2177 leaves the moment
    /// to the server). Input, a grant change and shutdown are not delayed.
    pub idle_report_delay: Duration,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".into(),
            max_literal: 50 * 1024 * 1024,
            max_line: 64 * 1024,
            autologout: Duration::from_secs(30 * 60),
            line_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            max_connections_per_address: 100,
            idle_report_delay: Duration::from_millis(100),
        }
    }
}

pub struct ImapContext {
    pub store: mssante_store::Store,
    pub config: ImapConfig,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Pro Santé Connect login (AUTHENTICATE XOAUTH2 / OAUTHBEARER); `None` when `[psc]` is off.
    pub psc: Option<Arc<mssante_auth::PscVerifier>>,
    /// Password failures slowed then locked (shared with SMTP; docs/limits.md).
    pub auth_guard: Arc<mssante_net::AuthGuard>,
    /// `[tls] client_ca_file`: client certificates for AUTHENTICATE EXTERNAL (ADR 0029);
    /// `None`: no EXTERNAL.
    pub client_ca: Option<mssante_auth::external::PeerVerifier>,
}

pub type Context = Arc<ImapContext>;

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts connections until shutdown.
pub async fn serve(listener: TcpListener, kind: ListenerKind, ctx: Context, tracker: TaskTracker) {
    let busy = b"* BYE [UNAVAILABLE] Too many connections\r\n".to_vec();
    let limits = mssante_net::ConnectionLimits {
        total: ctx.config.max_connections,
        per_address: ctx.config.max_connections_per_address,
    };
    let shutdown = ctx.shutdown.clone();
    mssante_net::accept_loop(
        listener,
        limits,
        shutdown,
        tracker,
        busy,
        move |stream, peer| start_session(stream, peer, kind, ctx.clone()),
    )
    .await;
}

/// Runs one session on an already secured in-process stream (the transcript tests use a
/// `tokio::io::duplex` pair): LOGIN is allowed at once, as after STARTTLS. Never used by a
/// listener: a network stream goes through [`serve`].
pub async fn run_in_memory_session<S>(stream: S, ctx: Context)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let peer = SocketAddr::from(([127, 0, 0, 1], 0));
    Session::new(
        mssante_net::Conn::Plain(stream),
        ctx,
        ListenerKind::Imaps,
        peer,
        true,
    )
    .run()
    .await
}

async fn start_session(stream: TcpStream, peer: SocketAddr, kind: ListenerKind, ctx: Context) {
    use mssante_net::Conn;
    match kind {
        ListenerKind::Imap => {
            Session::new(Conn::Plain(stream), ctx, kind, peer, false)
                .run()
                .await
        }
        ListenerKind::Imaps => {
            let Some(acceptor) = ctx.tls.clone() else {
                return;
            };
            match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    Session::new(Conn::Tls(Box::new(tls)), ctx, kind, peer, true)
                        .run()
                        .await
                }
                _ => tracing::info!(%peer, "TLS handshake failed on imaps"),
            }
        }
    }
}
