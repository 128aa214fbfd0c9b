//! The HTTP and HTTPS listeners: the accept loop shared with SMTP and IMAP
//! (`mssante_net::accept_loop`), HTTP/1.1 on each connection, TLS when a server
//! configuration is given, graceful stop on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connections served at once per listener; past it, a 503 and the connection closes.
const MAX_CONNECTIONS: usize = 1024;
/// From one client address (docs/limits.md).
const MAX_CONNECTIONS_PER_ADDRESS: usize = 100;
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
/// A client that has not finished its TLS handshake or sent a request's headers in this
/// time is dropped (slowloris).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `router` on `listener` until `shutdown`; connections run on `tracker`, so the
/// caller can wait for requests in flight to finish. `tls`: HTTPS with this server
/// configuration (ALPN `http/1.1` is set here).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let tls = tls.map(|config| {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let stop = shutdown.clone();
    mssante_net::accept_loop(
        listener,
        mssante_net::ConnectionLimits {
            total: MAX_CONNECTIONS,
            per_address: MAX_CONNECTIONS_PER_ADDRESS,
        },
        shutdown,
        tracker,
        BUSY.to_vec(),
        move |stream, peer| {
            let (router, tls, shutdown) = (router.clone(), tls.clone(), stop.clone());
            async move {
                let Some(acceptor) = tls else {
                    return connection(stream, peer, router, shutdown).await;
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => connection(tls_stream, peer, router, shutdown).await,
                    Ok(Err(e)) => tracing::debug!(%peer, "https: handshake failed: {e}"),
                    Err(_) => tracing::debug!(%peer, "https: handshake timed out"),
                }
            }
        },
    )
    .await
}

/// One HTTP/1.1 connection, keep-alive included; on shutdown the request in flight
/// finishes and the connection closes. Each request carries the client's address
/// (`ConnectInfo`), which audit entries record.
async fn connection<S>(stream: S, peer: SocketAddr, router: Router, shutdown: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        tower_service::Service::call(&mut router.clone(), request)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("http: connection ended: {e}");
    }
}
