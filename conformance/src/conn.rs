//! One IMAP client connection: plain, implicit TLS or STARTTLS, reading whole responses
//! (literals included) with a timeout so a silent or broken server fails a test instead of
//! hanging the run.

use crate::args::{self, Arg};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A response line bigger than this is treated as a broken server, not buffered forever.
const MAX_RESPONSE: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Plain,
    Implicit,
    StartTls,
}

#[derive(Debug)]
pub enum Resp {
    Untagged(Vec<Arg>),
    Tagged { tag: String, args: Vec<Arg> },
    Continuation,
}

/// A response together with its raw text and any parse problem.
#[derive(Debug)]
pub struct Response {
    pub resp: Resp,
    pub raw: String,
    pub parse_error: Option<String>,
}

#[derive(Debug)]
pub enum IoError {
    Closed,
    Timeout,
    Other(String),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::Closed => f.write_str("connection closed by server"),
            IoError::Timeout => f.write_str("timed out waiting for the server"),
            IoError::Other(e) => f.write_str(e),
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

pub struct Conn {
    io: Option<Io>,
    buf: Vec<u8>,
    timeout: Duration,
    /// imaptest tags commands `<client id>.<counter>`; `$tag` in scripts refers to it.
    pub id: u32,
    next_tag: u32,
    pub caps: Vec<String>,
    pub banner: Option<Vec<Arg>>,
    /// Messages this connection knows of in its selected mailbox (EXISTS/EXPUNGE).
    pub msg_count: u32,
    /// The mailbox a bare `append` goes to: the test mailbox, or the last SELECTed one.
    pub storage: String,
    pub seen_bye: bool,
    pub logout_sent: bool,
    pub closed: bool,
}

impl Conn {
    /// Connect, read the greeting and, for STARTTLS, upgrade before anything else.
    pub async fn open(
        host: &str,
        port: u16,
        mode: TlsMode,
        id: u32,
        timeout: Duration,
        mailbox: &str,
    ) -> Result<Self, String> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| format!("connect to {host}:{port} timed out"))?
            .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
        let io = if mode == TlsMode::Implicit {
            Io::Tls(Box::new(tls_handshake(tcp, host, timeout).await?))
        } else {
            Io::Plain(tcp)
        };
        let mut conn = Conn {
            io: Some(io),
            buf: Vec::new(),
            timeout,
            id,
            next_tag: 1,
            caps: Vec::new(),
            banner: None,
            msg_count: 0,
            storage: mailbox.to_string(),
            seen_bye: false,
            logout_sent: false,
            closed: false,
        };
        let greeting = conn.read().await.map_err(|e| format!("greeting: {e}"))?;
        match &greeting.resp {
            Resp::Untagged(a) if is_status(a, &["OK", "PREAUTH"]) => {
                conn.note_capabilities(a);
                conn.banner = Some(a.clone());
            }
            _ => return Err(format!("malformed greeting: {}", greeting.raw)),
        }
        if mode == TlsMode::StartTls {
            conn.starttls(host).await?;
        }
        Ok(conn)
    }

    async fn starttls(&mut self, host: &str) -> Result<(), String> {
        let tag = self.new_tag();
        self.write(format!("{tag} STARTTLS\r\n").as_bytes())
            .await
            .map_err(|e| format!("STARTTLS: {e}"))?;
        loop {
            let r = self.read().await.map_err(|e| format!("STARTTLS: {e}"))?;
            if let Resp::Tagged { args, .. } = &r.resp {
                if !is_status(args, &["OK"]) {
                    return Err(format!("STARTTLS refused: {}", r.raw));
                }
                break;
            }
        }
        if !self.buf.is_empty() {
            return Err("server sent data after STARTTLS OK (plaintext injection)".into());
        }
        let Some(Io::Plain(tcp)) = self.io.take() else {
            return Err("STARTTLS on a TLS connection".into());
        };
        self.io = Some(Io::Tls(Box::new(
            tls_handshake(tcp, host, self.timeout).await?,
        )));
        // Capabilities before TLS are not to be trusted (RFC 9051 §6.2.1).
        self.caps.clear();
        Ok(())
    }

    pub fn new_tag(&mut self) -> String {
        let t = format!("{}.{}", self.id, self.next_tag);
        self.next_tag += 1;
        t
    }

    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Record capabilities from `CAPABILITY …` or `OK [CAPABILITY …]`.
    pub fn note_capabilities(&mut self, args: &[Arg]) {
        let words: Vec<&str> = args.iter().filter_map(Arg::astring).collect();
        let list: Option<Vec<String>> = match words.first() {
            Some(w) if w.eq_ignore_ascii_case("CAPABILITY") => {
                Some(words[1..].iter().map(|s| s.to_string()).collect())
            }
            Some(w) if is_status(args, &["OK", "PREAUTH"]) => {
                let _ = w;
                let start = words
                    .iter()
                    .position(|s| s.eq_ignore_ascii_case("[CAPABILITY"))
                    .map(|p| p + 1);
                start.map(|s| {
                    let mut out = Vec::new();
                    for word in &words[s..] {
                        let (w, end) = match word.split_once(']') {
                            Some((w, _)) => (w, true),
                            None => (*word, false),
                        };
                        if !w.is_empty() {
                            out.push(w.to_string());
                        }
                        if end {
                            break;
                        }
                    }
                    out
                })
            }
            _ => None,
        };
        if let Some(list) = list {
            self.caps = list;
        }
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        let timeout = self.timeout;
        let res = match self.io.as_mut() {
            None => return Err(IoError::Closed),
            Some(Io::Plain(s)) => tokio::time::timeout(timeout, s.write_all(data)).await,
            Some(Io::Tls(s)) => {
                tokio::time::timeout(timeout, async {
                    s.write_all(data).await?;
                    s.flush().await
                })
                .await
            }
        };
        match res {
            Err(_) => Err(IoError::Timeout),
            Ok(Err(e)) => {
                self.closed = true;
                Err(IoError::Other(format!("write: {e}")))
            }
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Read one complete response (line plus any literals) within the timeout.
    pub async fn read(&mut self) -> Result<Response, IoError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.read_raw()).await {
            Err(_) => Err(IoError::Timeout),
            Ok(Err(e)) => {
                if matches!(e, IoError::Closed | IoError::Other(_)) {
                    self.closed = true;
                }
                Err(e)
            }
            Ok(Ok(raw)) => Ok(classify(raw)),
        }
    }

    async fn read_raw(&mut self) -> Result<String, IoError> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let line = self.read_line().await?;
            let lit = literal_size(&line);
            out.extend_from_slice(&line);
            let Some(n) = lit else { break };
            if out.len() + n > MAX_RESPONSE {
                return Err(IoError::Other(format!("literal of {n} bytes is too large")));
            }
            out.extend_from_slice(b"\r\n");
            while self.buf.len() < n {
                self.fill().await?;
            }
            out.extend(self.buf.drain(..n));
        }
        Ok(args::latin1(&out))
    }

    /// One line without its CRLF (a bare LF is accepted).
    async fn read_line(&mut self) -> Result<Vec<u8>, IoError> {
        let mut scanned = 0;
        loop {
            if let Some(p) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + p;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > MAX_RESPONSE {
                return Err(IoError::Other("response line too long".into()));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), IoError> {
        let mut chunk = [0u8; 16384];
        let n = match self.io.as_mut() {
            None => return Err(IoError::Closed),
            Some(Io::Plain(s)) => s.read(&mut chunk).await,
            Some(Io::Tls(s)) => s.read(&mut chunk).await,
        }
        .map_err(|e| IoError::Other(format!("read: {e}")))?;
        if n == 0 {
            return Err(IoError::Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// `… {123}` / `{123+}` / `~{123}` at the end of a line.
pub fn literal_size(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let start = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[start + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn classify(raw: String) -> Response {
    let (tag, rest) = raw.split_once(' ').unwrap_or((raw.as_str(), ""));
    if tag == "+" {
        return Response {
            resp: Resp::Continuation,
            raw,
            parse_error: None,
        };
    }
    let (args, parse_error) = args::parse_lenient(rest);
    let resp = if tag == "*" {
        Resp::Untagged(args)
    } else {
        Resp::Tagged {
            tag: tag.to_string(),
            args,
        }
    };
    Response {
        resp,
        raw,
        parse_error,
    }
}

/// First word is one of `words` (status responses: OK, NO, BAD, BYE, PREAUTH).
pub fn is_status(args: &[Arg], words: &[&str]) -> bool {
    args.first()
        .and_then(Arg::atom)
        .is_some_and(|a| words.iter().any(|w| a.eq_ignore_ascii_case(w)))
}

async fn tls_handshake(
    tcp: TcpStream,
    host: &str,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("valid name"));
    tokio::time::timeout(
        timeout,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| "TLS handshake timed out".to_string())?
    .map_err(|e| format!("TLS handshake: {e}"))
}

/// A test tool talks to servers with throwaway self-signed certificates: any certificate is
/// accepted, signatures are still checked so the handshake itself is real TLS.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_suffixes() {
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_size(b"a APPEND x {3+}"), Some(3));
        assert_eq!(literal_size(b"x ~{0}"), Some(0));
        assert_eq!(literal_size(b"* OK {abc}"), None);
        assert_eq!(literal_size(b"* OK done"), None);
    }

    #[test]
    fn capability_from_resp_code() {
        let mut c = Conn {
            io: None,
            buf: Vec::new(),
            timeout: Duration::from_secs(1),
            id: 1,
            next_tag: 1,
            caps: Vec::new(),
            banner: None,
            msg_count: 0,
            storage: String::new(),
            seen_bye: false,
            logout_sent: false,
            closed: false,
        };
        c.note_capabilities(&args::parse("OK [CAPABILITY IMAP4rev1 LITERAL+ ID] ready").unwrap());
        assert!(c.has_cap("literal+") && c.has_cap("ID") && !c.has_cap("ready"));
        c.note_capabilities(&args::parse("CAPABILITY IMAP4rev2").unwrap());
        assert_eq!(c.caps, vec!["IMAP4rev2"]);
    }
}
