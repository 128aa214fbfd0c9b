//! Accept loops: one per configured listener, all feeding the same session engine.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use crate::reply::Reply;
use crate::session::{Conn, Session};
use crate::{Context, ListenerKind};

const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts connections until shutdown; sessions are spawned on `tracker` so the caller can
/// wait for them to finish.
pub async fn serve(listener: TcpListener, kind: ListenerKind, ctx: Context, tracker: TaskTracker) {
    let mut busy = Vec::new();
    Reply::new(421, "4.7.0", "Too many connections, try again later").write_to(&mut busy);
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

async fn start_session(stream: TcpStream, peer: SocketAddr, kind: ListenerKind, ctx: Context) {
    tracing::debug!(%peer, listener = kind.name(), "connection");
    if kind != ListenerKind::Submissions {
        Session::new(Conn::Plain(stream), ctx, kind, peer, false)
            .run()
            .await;
        return;
    }
    // RFC 8314 §3.3: implicit TLS, the handshake comes before the greeting.
    let Some(acceptor) = ctx.tls.clone() else {
        tracing::error!("submissions listener without TLS configuration");
        return;
    };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            Session::new(Conn::Tls(Box::new(tls)), ctx, kind, peer, true)
                .run()
                .await
        }
        _ => tracing::info!(%peer, "TLS handshake failed on submissions"),
    }
}
