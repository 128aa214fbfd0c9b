//! Accept loops: one per configured listener, all feeding the same session engine.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
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
    let slots = Arc::new(Semaphore::new(ctx.config.max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("{} accept failed: {e}", kind.name());
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tracker.spawn(async move {
                    start_session(stream, peer, kind, ctx).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracker.spawn(refuse_busy(stream));
            }
        }
    }
}

async fn refuse_busy(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    Reply::new(421, "4.7.0", "Too many connections, try again later").write_to(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
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
