//! A line-oriented client connection, plaintext or TLS, with STARTTLS upgrade.
//! Certificates are not verified: this is a load tool for loopback servers.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    None,
    Starttls,
    Implicit,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Conn {
    io: BufReader<Box<dyn Io>>,
    host: String,
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let cfg = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        Arc::new(cfg)
    });
    TlsConnector::from(cfg.clone())
}

impl Conn {
    /// Connects; with `Implicit` the TLS handshake happens at once.
    pub async fn connect(addr: &str, tls: TlsMode) -> Result<Conn> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        tcp.set_nodelay(true)?;
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_matches(|c| c == '[' || c == ']').to_string();
        let mut conn = Conn {
            io: BufReader::new(Box::new(tcp)),
            host,
        };
        if tls == TlsMode::Implicit {
            conn.upgrade().await?;
        }
        Ok(conn)
    }

    /// Switches the connection to TLS (after STARTTLS was accepted).
    pub async fn upgrade(&mut self) -> Result<()> {
        if !self.io.buffer().is_empty() {
            bail!("data pipelined before the TLS handshake");
        }
        let name = ServerName::try_from(self.host.clone())
            .unwrap_or_else(|_| ServerName::try_from("localhost").expect("valid name"));
        let placeholder: Box<dyn Io> = Box::new(empty::EmptyDuplex);
        let plain = std::mem::replace(&mut self.io, BufReader::new(placeholder)).into_inner();
        let tls = connector()
            .connect(name, plain)
            .await
            .context("TLS handshake")?;
        self.io = BufReader::new(Box::new(tls));
        Ok(())
    }

    /// Reads one line including its CRLF; errors on end of stream.
    pub async fn read_line(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        let n = self.io.read_until(b'\n', buf).await?;
        if n == 0 {
            bail!("connection closed by server");
        }
        Ok(())
    }

    /// Reads exactly `n` bytes (an IMAP literal).
    pub async fn read_exact(&mut self, n: usize, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(n, 0);
        self.io.read_exact(buf).await?;
        Ok(())
    }

    pub async fn write_all(&mut self, data: &[u8]) -> Result<()> {
        self.io.get_mut().write_all(data).await?;
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<()> {
        self.io.get_mut().flush().await?;
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.io.get_mut().shutdown().await;
    }
}

mod empty {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// A stand-in stream used only while swapping plaintext for TLS.
    pub struct EmptyDuplex;

    impl AsyncRead for EmptyDuplex {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for EmptyDuplex {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
