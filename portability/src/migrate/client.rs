//! A small IMAP client for `mssante migrate`: TLS first (implicit TLS, or STARTTLS before
//! anything else, RFC 9051 §6.2.1, RFC 8314), AUTHENTICATE PLAIN, LOGIN or XOAUTH2, then
//! commands whose responses are read one at a time (`wire.rs` parses them, without I/O).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::wire::{self, Response, Status, Tagged, Untagged};

/// A response line longer than this is not one we can use.
const LINE_MAX: u64 = 1 << 20;
/// A literal (a message) larger than this is refused: no operator accepts such mail.
pub const LITERAL_MAX: u64 = 512 << 20;
/// Silence from the source this long fails the account instead of hanging the run.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Why talking to the source failed, in words for the operator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

pub type Result<T> = std::result::Result<T, SourceError>;

/// How the connection is protected (RFC 8314: implicit TLS preferred; STARTTLS accepted,
/// never plaintext).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `imaps://`: TLS from the first byte.
    Implicit,
    /// `imap://`: STARTTLS before anything else; a server without it is refused.
    StartTls,
}

/// Where the source server is: `imaps://host[:993]` or `imap://host[:143]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

impl Endpoint {
    pub fn parse(url: &str) -> std::result::Result<Endpoint, String> {
        let (security, rest, default_port) = if let Some(rest) = url.strip_prefix("imaps://") {
            (Security::Implicit, rest, 993)
        } else if let Some(rest) = url.strip_prefix("imap://") {
            (Security::StartTls, rest, 143)
        } else {
            return Err(format!(
                "{url}: the source must be imaps://HOST[:PORT] (implicit TLS) or imap://HOST[:PORT] (STARTTLS)"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
                let port = port
                    .parse()
                    .map_err(|_| format!("{url}: `{port}` is not a port number"))?;
                (host, port)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            security,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.security {
            Security::Implicit => "imaps",
            Security::StartTls => "imap",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// How the account logs in at the source.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Password(String),
    /// An OAuth 2.0 access token for AUTHENTICATE XOAUTH2.
    XOAuth2Token(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.write_str(match self {
            Credential::Password(_) => "Password(…)",
            Credential::XOAuth2Token(_) => "XOAuth2Token(…)",
        })
    }
}

/// The initial response of XOAUTH2: `user=LOGIN^Aauth=Bearer TOKEN^A^A`, in base64.
pub fn xoauth2_response(login: &str, token: &str) -> String {
    BASE64.encode(format!("user={login}\x01auth=Bearer {token}\x01\x01"))
}

/// The initial response of AUTHENTICATE PLAIN (RFC 4616): no authorization identity.
pub fn plain_response(login: &str, password: &str) -> String {
    BASE64.encode(format!("\0{login}\0{password}"))
}

/// An IMAP string for a command argument (RFC 9051 §4.3): quoted when it can be, a
/// literal otherwise (sent by [`Connection::start`] with LITERAL+ or after the server's
/// continuation, see there).
pub fn quote(bytes: &[u8]) -> Option<String> {
    if bytes
        .iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == 0 || !b.is_ascii())
    {
        return None;
    }
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push('\\');
        }
        out.push(char::from(b));
    }
    out.push('"');
    Some(out)
}

/// The TLS client settings for the source: TLS 1.2 or 1.3, the server's certificate checked
/// against `ca_file` (PEM, the source operator's CA) or else Mozilla's roots.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let unreadable =
                |e: &dyn std::fmt::Display| SourceError(format!("{}: {e}", path.display()));
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                roots
                    .add(cert.map_err(|e| unreadable(&e))?)
                    .map_err(|e| unreadable(&e))?;
            }
            if roots.is_empty() {
                return Err(unreadable(&"no certificate in this file"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| SourceError(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An authenticated-or-not IMAP connection to the source.
pub struct Connection {
    stream: BufReader<Box<dyn Stream>>,
    next_tag: u32,
    pub capabilities: Vec<String>,
    endpoint: String,
}

async fn read_response<S: AsyncBufReadExt + Unpin>(stream: &mut S) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    loop {
        let start = buf.len();
        let mut limited = (&mut *stream).take(LINE_MAX);
        let read = limited.read_until(b'\n', &mut buf);
        let n = tokio::time::timeout(READ_TIMEOUT, read)
            .await
            .map_err(|_| SourceError("the source stopped answering (5 minutes)".into()))?
            .map_err(|e| SourceError(format!("connection to the source failed: {e}")))?;
        if n == 0 {
            return Err(SourceError("the source closed the connection".to_string()));
        }
        if !buf.ends_with(b"\n") {
            return Err(SourceError(
                "a response line of the source is too long".into(),
            ));
        }
        let Some(length) = wire::literal_length(&buf[start..]) else {
            return Ok(buf);
        };
        if length > LITERAL_MAX {
            return Err(SourceError(format!(
                "the source sent a literal of {length} bytes (more than {LITERAL_MAX})"
            )));
        }
        let at = buf.len();
        buf.resize(at + length as usize, 0);
        tokio::time::timeout(READ_TIMEOUT, stream.read_exact(&mut buf[at..]))
            .await
            .map_err(|_| SourceError("the source stopped answering (5 minutes)".into()))?
            .map_err(|e| SourceError(format!("connection to the source failed: {e}")))?;
    }
}

fn parse(bytes: &[u8]) -> Result<Response> {
    wire::parse_response(bytes).map_err(|e| SourceError(e.to_string()))
}

fn capabilities_of(text: &str) -> Option<Vec<String>> {
    let code = wire::code_of(text)?;
    let rest = code.strip_prefix("CAPABILITY ")?;
    Some(rest.split_ascii_whitespace().map(str::to_string).collect())
}

impl Connection {
    /// Connects, protects the connection with TLS and reads the capabilities.
    pub async fn connect(
        endpoint: &Endpoint,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Connection> {
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| SourceError(format!("cannot connect to {endpoint}: {e}")))?;
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|_| SourceError(format!("{}: not a valid TLS server name", endpoint.host)))?;
        let connector = tokio_rustls::TlsConnector::from(tls);
        let tls_failed =
            |e: std::io::Error| SourceError(format!("TLS with {endpoint} failed: {e}"));
        let stream: Box<dyn Stream> = match endpoint.security {
            Security::Implicit => Box::new(connector.connect(name, tcp).await.map_err(tls_failed)?),
            Security::StartTls => {
                let tcp = starttls(tcp, endpoint).await?;
                Box::new(connector.connect(name, tcp).await.map_err(tls_failed)?)
            }
        };
        let mut conn = Connection {
            stream: BufReader::new(stream),
            next_tag: 1,
            capabilities: Vec::new(),
            endpoint: endpoint.to_string(),
        };
        if endpoint.security == Security::Implicit {
            conn.greeting().await?;
        }
        // RFC 9051 §6.2.1: capabilities learnt before STARTTLS are discarded.
        conn.refresh_capabilities().await?;
        Ok(conn)
    }

    async fn greeting(&mut self) -> Result<()> {
        let bytes = read_response(&mut self.stream).await?;
        match parse(&bytes)? {
            Response::Untagged(Untagged::Status { status, .. }) if status == "OK" => Ok(()),
            other => Err(SourceError(format!(
                "{} greeted with {other:?} instead of OK",
                self.endpoint
            ))),
        }
    }

    async fn refresh_capabilities(&mut self) -> Result<()> {
        let (untagged, _) = self.run("CAPABILITY").await?;
        for u in untagged {
            if let Untagged::Capability(caps) = u {
                self.capabilities = caps;
            }
        }
        Ok(())
    }

    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Logs in as `login` (RFC 9051 §6.2.2, §6.2.3). A refusal names the source's reason.
    pub async fn authenticate(&mut self, login: &str, credential: &Credential) -> Result<()> {
        let outcome = match credential {
            Credential::XOAuth2Token(token) => {
                self.sasl("XOAUTH2", &xoauth2_response(login, token))
                    .await?
            }
            Credential::Password(password) if self.has_capability("AUTH=PLAIN") => {
                self.sasl("PLAIN", &plain_response(login, password)).await?
            }
            Credential::Password(password) => {
                if self.has_capability("LOGINDISABLED") {
                    return Err(SourceError(
                        "the source offers neither AUTH=PLAIN nor LOGIN".into(),
                    ));
                }
                let (Some(user), Some(pass)) =
                    (quote(login.as_bytes()), quote(password.as_bytes()))
                else {
                    return Err(SourceError(
                        "the login or password holds characters LOGIN cannot carry".into(),
                    ));
                };
                let tag = self.start(&format!("LOGIN {user} {pass}")).await?;
                self.finish(&tag, &mut Vec::new()).await?
            }
        };
        if outcome.status != Status::Ok {
            return Err(SourceError(format!(
                "the source refused the login of {login}: {}",
                outcome.text
            )));
        }
        match capabilities_of(&outcome.text) {
            Some(caps) => self.capabilities = caps,
            None => self.refresh_capabilities().await?,
        }
        Ok(())
    }

    /// AUTHENTICATE with the initial response sent after the server's empty continuation
    /// (RFC 9051 §6.2.2); a continuation carrying an error (XOAUTH2's JSON) is answered
    /// with an empty line, and the server then says NO.
    async fn sasl(&mut self, mechanism: &str, response: &str) -> Result<Tagged> {
        let tag = self.start(&format!("AUTHENTICATE {mechanism}")).await?;
        let mut answered = false;
        loop {
            let bytes = read_response(&mut self.stream).await?;
            match parse(&bytes)? {
                Response::Continuation(_) => {
                    let line = if answered { "" } else { response };
                    answered = true;
                    self.write(format!("{line}\r\n").as_bytes()).await?;
                }
                Response::Tagged(t) if t.tag == tag => return Ok(t),
                _ => {}
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let stream = self.stream.get_mut();
        stream
            .write_all(bytes)
            .await
            .and(stream.flush().await)
            .map_err(|e| SourceError(format!("connection to the source failed: {e}")))
    }

    /// Sends a command; its responses are then read with [`Connection::read`].
    pub async fn start(&mut self, command: &str) -> Result<String> {
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        self.write(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        Ok(tag)
    }

    /// The next response of the source.
    pub async fn read(&mut self) -> Result<Response> {
        let bytes = read_response(&mut self.stream).await?;
        parse(&bytes)
    }

    /// Reads up to the completion of `tag`, keeping the untagged responses.
    async fn finish(&mut self, tag: &str, untagged: &mut Vec<Untagged>) -> Result<Tagged> {
        loop {
            match self.read().await? {
                Response::Tagged(t) if t.tag == tag => return Ok(t),
                Response::Untagged(Untagged::Status { status, text, .. }) if status == "BYE" => {
                    return Err(SourceError(format!(
                        "the source closed the session: {text}"
                    )));
                }
                Response::Untagged(u) => untagged.push(u),
                _ => {}
            }
        }
    }

    /// Runs a command that must succeed; returns its untagged responses.
    pub async fn run(&mut self, command: &str) -> Result<(Vec<Untagged>, Tagged)> {
        let tag = self.start(command).await?;
        let mut untagged = Vec::new();
        let done = self.finish(&tag, &mut untagged).await?;
        if done.status != Status::Ok {
            let verb = command.split(' ').next().unwrap_or(command);
            return Err(SourceError(format!(
                "the source refused {verb}: {}",
                done.text
            )));
        }
        Ok((untagged, done))
    }

    pub async fn logout(mut self) {
        let _ = self.run("LOGOUT").await;
    }
}

/// RFC 9051 §6.2.1: the greeting, STARTTLS (refused if the server does not offer it), and
/// the plain TCP stream back, nothing buffered, for the TLS handshake.
async fn starttls(tcp: TcpStream, endpoint: &Endpoint) -> Result<TcpStream> {
    let mut plain = BufReader::new(tcp);
    let greeting = parse(&read_response(&mut plain).await?)?;
    let Response::Untagged(Untagged::Status { status, code, .. }) = greeting else {
        return Err(SourceError(format!("{endpoint} sent no IMAP greeting")));
    };
    if status != "OK" {
        return Err(SourceError(format!("{endpoint} greeted with {status}")));
    }
    let offers = |caps: &str| {
        caps.split_ascii_whitespace()
            .any(|c| c.eq_ignore_ascii_case("STARTTLS"))
    };
    let mut has_starttls = code
        .as_deref()
        .is_some_and(|c| c.starts_with("CAPABILITY") && offers(c));
    if !has_starttls {
        plain
            .get_mut()
            .write_all(b"s0 CAPABILITY\r\n")
            .await
            .map_err(|e| SourceError(e.to_string()))?;
        loop {
            match parse(&read_response(&mut plain).await?)? {
                Response::Untagged(Untagged::Capability(caps)) => {
                    has_starttls = caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS"));
                }
                Response::Tagged(_) => break,
                _ => {}
            }
        }
    }
    if !has_starttls {
        return Err(SourceError(format!(
            "{endpoint} does not offer STARTTLS: refusing to send credentials in clear (use imaps://)"
        )));
    }
    plain
        .get_mut()
        .write_all(b"s1 STARTTLS\r\n")
        .await
        .map_err(|e| SourceError(e.to_string()))?;
    loop {
        match parse(&read_response(&mut plain).await?)? {
            Response::Tagged(t) if t.status == Status::Ok => break,
            Response::Tagged(t) => {
                return Err(SourceError(format!(
                    "{endpoint} refused STARTTLS: {}",
                    t.text
                )));
            }
            _ => {}
        }
    }
    // Anything the server sent after its OK would be an injection attempt (RFC 9051 §11.1).
    if !plain.buffer().is_empty() {
        return Err(SourceError(format!(
            "{endpoint} sent data after its STARTTLS answer: refused"
        )));
    }
    Ok(plain.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("imaps://imap.example.org").unwrap(),
            Endpoint {
                host: "imap.example.org".into(),
                port: 993,
                security: Security::Implicit
            }
        );
        let e = Endpoint::parse("imap://127.0.0.1:1143/").unwrap();
        assert_eq!((e.port, e.security), (1143, Security::StartTls));
        assert_eq!(Endpoint::parse("imap://[::1]:1143").unwrap().host, "::1");
        assert!(
            Endpoint::parse("pop3://x")
                .unwrap_err()
                .contains("imaps://HOST")
        );
        assert!(
            Endpoint::parse("imaps://h:x")
                .unwrap_err()
                .contains("not a port")
        );
    }

    #[test]
    fn sasl_responses() {
        assert_eq!(plain_response("u", "p"), BASE64.encode("\0u\0p"));
        assert_eq!(
            BASE64.decode(xoauth2_response("dr@x.fr", "tok")).unwrap(),
            b"user=dr@x.fr\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            format!("{:?}", Credential::Password("secret".into())),
            "Password(…)"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("é".as_bytes()), None);
        assert_eq!(quote(b"a\r\nb"), None);
    }
}
