//! Counting the round trips between the server and PostgreSQL: a TCP proxy on 127.0.0.1 in
//! front of the test cluster. A round trip is the client speaking after the server did (or
//! first on a connection): pipelined messages sent in one go count once, however TCP splits
//! them. This measures what costs latency and server CPU per command on the machine, without
//! timing anything (the build machine is too loaded for timings to mean much).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy counting round trips on every connection made through it, for as long as it lives
/// (it runs on the caller's tokio runtime).
pub struct RoundTrips {
    url: String,
    count: Arc<AtomicU64>,
}

impl RoundTrips {
    /// Starts a proxy in front of the PostgreSQL of `url` (`postgres://user@host:port/db`).
    pub async fn start(url: &str) -> RoundTrips {
        let (prefix, rest) = url.split_once('@').expect("postgres://user@host:port/db");
        let (upstream, database) = rest.split_once('/').expect("a database in the URL");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let local = listener.local_addr().expect("proxy address");
        let count = Arc::new(AtomicU64::new(0));
        tokio::spawn(accept(listener, upstream.to_string(), count.clone()));
        RoundTrips {
            url: format!("{prefix}@{local}/{database}"),
            count,
        }
    }

    /// The database URL through the proxy.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Round trips so far, on all connections.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

async fn accept(listener: TcpListener, upstream: String, count: Arc<AtomicU64>) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(&upstream).await else {
            continue;
        };
        let server_spoke_last = Arc::new(AtomicBool::new(true));
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let (c, s) = (count.clone(), server_spoke_last.clone());
        tokio::spawn(pump(client_read, server_write, move || {
            if s.swap(false, Ordering::SeqCst) {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }));
        tokio::spawn(pump(server_read, client_write, move || {
            server_spoke_last.store(true, Ordering::SeqCst)
        }));
    }
}

/// Copies one direction until it closes, calling `seen` for every chunk before passing it on.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    seen: impl Fn() + Send + 'static,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen();
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
