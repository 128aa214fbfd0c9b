//! Transport pieces shared by the protocol servers: a connection that is plain or TLS and
//! can be upgraded in place (STARTTLS, RFC 3207 / RFC 9051 §6.2.1).

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub mod guard;
pub use guard::{Admission, AuthGuard, GuardConfig};

/// The transport, plain or after the TLS handshake; STARTTLS swaps one for the other.
pub enum Conn<T> {
    Plain(T),
    Tls(Box<tokio_rustls::server::TlsStream<T>>),
    /// Only while STARTTLS moves the stream into the handshake.
    Upgrading,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Conn<T> {
    /// Runs the TLS handshake on a plain connection. On failure the connection is gone.
    pub async fn upgrade(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
        timeout: std::time::Duration,
    ) -> std::io::Result<()> {
        let Conn::Plain(stream) = std::mem::replace(self, Conn::Upgrading) else {
            return Err(std::io::Error::other("not a plain connection"));
        };
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                *self = Conn::Tls(Box::new(tls));
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// The client's certificate chain (leaf first), when it presented one over TLS.
    pub fn peer_certificates(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        match self {
            Conn::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Upgrading => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Upgrading => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
            Conn::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStop {
    Eof,
    Timeout,
    Shutdown,
    Io,
}

/// Bytes asked of the socket per read.
pub const READ_CHUNK: usize = 4096;

/// Reads what the peer sent into the spare capacity of `rbuf`, waiting at most `timeout`.
/// When `shutdown` is given, its cancellation interrupts the wait (a session idle between
/// commands); no fixed-size array lives in the future, so a waiting session costs only its
/// buffers.
pub async fn read_more<T: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<T>,
    rbuf: &mut Vec<u8>,
    timeout: std::time::Duration,
    shutdown: Option<&tokio_util::sync::CancellationToken>,
) -> Result<(), ReadStop> {
    use tokio::io::AsyncReadExt;
    rbuf.reserve(READ_CHUNK);
    let read = tokio::time::timeout(timeout, conn.read_buf(rbuf));
    let result = match shutdown {
        Some(token) => tokio::select! {
            r = read => r,
            _ = token.cancelled() => return Err(ReadStop::Shutdown),
        },
        None => read.await,
    };
    match result {
        Err(_) => Err(ReadStop::Timeout),
        Ok(Err(_)) => Err(ReadStop::Io),
        Ok(Ok(0)) => Err(ReadStop::Eof),
        Ok(Ok(_)) => Ok(()),
    }
}

/// What [`take_line`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its CRLF (or bare LF).
    Complete(Vec<u8>),
    /// A line longer than the limit ended here; it was dropped.
    TooLong,
    /// No line end yet: read more.
    Incomplete,
}

/// Takes the next line out of `rbuf`. A line longer than `max` is dropped as it arrives
/// (`dropping` remembers that across reads), so an endless line never fills memory.
pub fn take_line(rbuf: &mut Vec<u8>, max: usize, dropping: &mut bool) -> Line {
    if let Some(pos) = rbuf.iter().position(|&b| b == b'\n') {
        let mut line: Vec<u8> = rbuf.drain(..=pos).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let too_long = std::mem::take(dropping) || line.len() > max;
        return if too_long {
            Line::TooLong
        } else {
            Line::Complete(line)
        };
    }
    if rbuf.len() > max {
        *dropping = true;
        rbuf.clear();
    }
    Line::Incomplete
}

/// How many connections a listener takes at once: in all, and from one client address (so
/// that one address cannot take every slot; docs/limits.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_address: usize,
}

/// Connections open per client address; an entry goes when its last connection ends.
#[derive(Default)]
struct PerAddress(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One connection counted in [`PerAddress`]; uncounted when dropped.
struct AddressSlot {
    table: std::sync::Arc<PerAddress>,
    ip: std::net::IpAddr,
}

impl PerAddress {
    fn take(
        table: &std::sync::Arc<PerAddress>,
        ip: std::net::IpAddr,
        max: usize,
    ) -> Option<AddressSlot> {
        let mut open = table.0.lock().expect("per-address table");
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().expect("per-address table");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until `shutdown` is cancelled. Each connection runs `session` on
/// `tracker` (so the caller can wait for sessions to end); past `limits` (in all, or from the
/// client's address), a connection gets `busy` (a protocol greeting saying so) and is closed.
pub async fn accept_loop<F, Fut>(
    listener: tokio::net::TcpListener,
    limits: ConnectionLimits,
    shutdown: tokio_util::sync::CancellationToken,
    tracker: tokio_util::task::TaskTracker,
    busy: Vec<u8>,
    session: F,
) where
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.total));
    let per_address = std::sync::Arc::new(PerAddress::default());
    let busy = std::sync::Arc::new(busy);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let admitted = slots.clone().try_acquire_owned().ok().and_then(|permit| {
            PerAddress::take(&per_address, peer.ip(), limits.per_address).map(|slot| (permit, slot))
        });
        match admitted {
            Some(held) => {
                let running = session(stream, peer);
                tracker.spawn(async move {
                    running.await;
                    drop(held);
                });
            }
            None => {
                tracing::debug!(%peer, "connection refused: too many connections");
                let busy = busy.clone();
                tracker.spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let mut stream = stream;
                    let _ = stream.write_all(&busy).await;
                    let _ = stream.shutdown().await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_long_ones_dropped() {
        let mut buf = b"one\r\ntwo\nthr".to_vec();
        let mut dropping = false;
        assert_eq!(
            take_line(&mut buf, 10, &mut dropping),
            Line::Complete(b"one".to_vec())
        );
        assert_eq!(
            take_line(&mut buf, 10, &mut dropping),
            Line::Complete(b"two".to_vec())
        );
        assert_eq!(take_line(&mut buf, 10, &mut dropping), Line::Incomplete);
        let mut long = vec![b'x'; 20];
        assert_eq!(take_line(&mut long, 10, &mut dropping), Line::Incomplete);
        assert!(dropping && long.is_empty());
        long.extend_from_slice(b"xx\r\nnext\r\n");
        assert_eq!(take_line(&mut long, 10, &mut dropping), Line::TooLong);
        assert_eq!(
            take_line(&mut long, 10, &mut dropping),
            Line::Complete(b"next".to_vec())
        );
    }
}
