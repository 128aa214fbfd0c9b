//! The SMTP client that relays to other operators (RFC 5321 §3, §4): STARTTLS is mandatory
//! (docs/mssante.md §3, RFC 3207), DSN parameters are passed on when the peer supports them
//! (RFC 3461 §4), and one connection carries as many transactions as the peer accepts.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use mssante_mail::dsn::{Notify, Ret};
use mssante_mail::reply::ReplyReader;
use mssante_mail::{Reply, dot, xtext};

/// Why a connection or a transaction did not happen; `permanent` decides bounce or retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    pub permanent: bool,
    pub status: String,
    pub message: String,
}

impl ClientError {
    pub fn temporary(status: &str, message: impl Into<String>) -> Self {
        ClientError {
            permanent: false,
            status: status.into(),
            message: message.into(),
        }
    }

    /// The peer's refusal; the message is its reply alone, as DSNs quote it in
    /// Diagnostic-Code (RFC 3464 §2.3.6). `stage` goes to the log.
    fn from_reply(stage: &str, reply: &Reply) -> Self {
        tracing::debug!(stage, reply = %reply.text(), "peer refused");
        ClientError {
            permanent: reply.is_permanent(),
            status: reply.enhanced_status(),
            message: reply.text(),
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

/// ESMTP extensions the peer announced after STARTTLS (RFC 5321 §4.1.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    pub starttls: bool,
    pub dsn: bool,
    pub pipelining: bool,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub size: Option<u64>,
}

impl Extensions {
    fn from_ehlo(reply: &Reply) -> Self {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "STARTTLS" => ext.starttls = true,
                "DSN" => ext.dsn = true,
                "PIPELINING" => ext.pipelining = true,
                "8BITMIME" => ext.eight_bit = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "SIZE" => ext.size = words.next().and_then(|s| s.parse().ok()).filter(|&s| s > 0),
                _ => {}
            }
        }
        ext
    }
}

/// One recipient of a transaction with its DSN parameters (RFC 3461 §4.1, §4.2).
#[derive(Clone, Debug)]
pub struct Rcpt {
    pub address: String,
    pub notify: Option<Notify>,
    /// `addr-type;address`, xtext-decoded (as stored).
    pub orcpt: Option<String>,
}

/// The envelope of one transaction.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// Empty for the null sender (DSNs).
    pub mail_from: String,
    pub ret: Option<Ret>,
    pub envid: Option<String>,
    pub rcpts: Vec<Rcpt>,
}

/// What the peer said for each recipient: accepted (with the final DATA reply) or refused.
pub type RcptResults = Vec<Result<Reply, ClientError>>;

/// The replies to the envelope commands of one transaction.
struct EnvelopeReplies {
    mail: Reply,
    rcpts: Vec<Reply>,
    /// `None` when DATA was not sent (no recipient accepted, without pipelining).
    data: Option<Reply>,
}

enum Transport {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
    /// Only while STARTTLS moves the stream into the handshake, or after it failed.
    Closed,
}

pub struct SmtpClient {
    transport: Transport,
    pub extensions: Extensions,
    /// The peer as named in DSNs: `dns;<mx host>` (RFC 3464 §2.3.5 Remote-MTA).
    pub remote_mta: String,
    peer_certificates: Vec<CertificateDer<'static>>,
    timeouts: Timeouts,
}

/// Time limits of the client (RFC 5321 §4.5.3.2 gives the minimums).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub command: Duration,
    /// Waiting for the reply to the final dot: at least 10 minutes (RFC 5321 §4.5.3.2.6).
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(300),
            data_end: Duration::from_secs(600),
        }
    }
}

fn io_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    // RFC 3463 X.4.2: bad connection.
    ClientError::temporary("4.4.2", format!("{what}: {e}"))
}

impl SmtpClient {
    /// Connects, says EHLO, upgrades with STARTTLS (mandatory) and says EHLO again.
    pub async fn connect(
        addr: SocketAddr,
        mx_host: &str,
        our_name: &str,
        tls: &TlsConnector,
        timeouts: Timeouts,
    ) -> Result<SmtpClient, ClientError> {
        let tcp = tokio::time::timeout(timeouts.connect, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                ClientError::temporary("4.4.1", format!("connection to {addr} timed out"))
            })?
            .map_err(|e| ClientError::temporary("4.4.1", format!("connection to {addr}: {e}")))?;
        let mut client = SmtpClient {
            transport: Transport::Plain(BufReader::new(tcp)),
            extensions: Extensions::default(),
            remote_mta: format!("dns;{mx_host}"),
            peer_certificates: Vec::new(),
            timeouts,
        };
        let greeting = client.read_reply().await?;
        if greeting.code != 220 {
            return Err(ClientError::from_reply("greeting", &greeting));
        }
        client.ehlo(our_name).await?;
        if !client.extensions.starttls {
            // docs/mssante.md §3: MSSanté mail never travels in clear. Temporary: the peer may fix it.
            return Err(ClientError::temporary(
                "4.7.4",
                format!(
                    "{mx_host} does not offer STARTTLS; TLS is mandatory in the MSSanté trust space"
                ),
            ));
        }
        let reply = client.command("STARTTLS").await?;
        if reply.code != 220 {
            return Err(ClientError::from_reply("STARTTLS", &reply));
        }
        client.start_tls(mx_host, tls).await?;
        // RFC 3207 §4.2: the client must discard what it knew and say EHLO again.
        client.ehlo(our_name).await?;
        Ok(client)
    }

    async fn start_tls(&mut self, mx_host: &str, tls: &TlsConnector) -> Result<(), ClientError> {
        let Transport::Plain(tcp) = std::mem::replace(&mut self.transport, Transport::Closed)
        else {
            return Err(io_error("STARTTLS", "not a plain connection"));
        };
        let server_name = ServerName::try_from(mx_host.to_string()).map_err(|e| {
            ClientError::temporary("4.4.2", format!("invalid MX name {mx_host}: {e}"))
        })?;
        let stream = tokio::time::timeout(
            self.timeouts.command,
            tls.connect(server_name, tcp.into_inner()),
        )
        .await
        .map_err(|_| ClientError::temporary("4.7.5", "TLS handshake timed out"))?
        .map_err(|e| {
            // RFC 3463 X.7.5: cryptographic failure (untrusted certificate, no common version).
            ClientError::temporary("4.7.5", format!("TLS handshake with {mx_host} failed: {e}"))
        })?;
        self.peer_certificates = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        self.transport = Transport::Tls(Box::new(BufReader::new(stream)));
        Ok(())
    }

    /// The certificate chain the peer presented (leaf first).
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        &self.peer_certificates
    }

    async fn ehlo(&mut self, our_name: &str) -> Result<(), ClientError> {
        let reply = self.command(&format!("EHLO {our_name}")).await?;
        if reply.code != 250 {
            return Err(ClientError::from_reply("EHLO", &reply));
        }
        self.extensions = Extensions::from_ehlo(&reply);
        Ok(())
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA. The result per recipient is
    /// what happened to it; `Err` when the whole transaction failed before any recipient
    /// could be judged (MAIL refused, connection lost). The connection is left ready for
    /// the next transaction (no RSET needed after a completed one, RFC 5321 §4.1.1.4).
    pub async fn send(&mut self, env: &Envelope, body: &[u8]) -> Result<RcptResults, ClientError> {
        let replies = match self.extensions.pipelining {
            true => self.envelope_pipelined(env, body).await?,
            false => self.envelope_in_turn(env, body).await?,
        };
        if !replies.mail.is_positive() {
            self.abandon_data(replies.data.as_ref()).await?;
            return Err(ClientError::from_reply("MAIL FROM", &replies.mail));
        }
        let results: RcptResults = replies
            .rcpts
            .iter()
            .map(|reply| match reply.is_positive() {
                true => Ok(reply.clone()),
                false => Err(ClientError::from_reply("RCPT TO", reply)),
            })
            .collect();
        if results.iter().all(Result::is_err) {
            self.abandon_data(replies.data.as_ref()).await?;
            self.command("RSET").await?;
            return Ok(results);
        }
        let data = replies
            .data
            .expect("DATA is sent once a recipient is accepted");
        if data.code != 354 {
            self.command("RSET").await?;
            return Ok(fail_accepted(
                results,
                ClientError::from_reply("DATA", &data),
            ));
        }
        self.write_body(body).await?;
        let final_reply = self.read_reply_within(self.timeouts.data_end).await?;
        if !final_reply.is_positive() {
            let failure = ClientError::from_reply("end of DATA", &final_reply);
            return Ok(fail_accepted(results, failure));
        }
        Ok(results
            .into_iter()
            .map(|r| r.map(|_| final_reply.clone()))
            .collect())
    }

    /// RFC 2920 §3.1: MAIL, every RCPT and DATA in one write, then the replies in order.
    async fn envelope_pipelined(
        &mut self,
        env: &Envelope,
        body: &[u8],
    ) -> Result<EnvelopeReplies, ClientError> {
        let mut batch = format!("{}\r\n", self.mail_command(env, body));
        for rcpt in &env.rcpts {
            batch.push_str(&self.rcpt_command(rcpt));
            batch.push_str("\r\n");
        }
        batch.push_str("DATA\r\n");
        self.write_all(batch.as_bytes()).await?;
        let mail = self.read_reply().await?;
        let mut rcpts = Vec::with_capacity(env.rcpts.len());
        for _ in &env.rcpts {
            rcpts.push(self.read_reply().await?);
        }
        let data = Some(self.read_reply().await?);
        Ok(EnvelopeReplies { mail, rcpts, data })
    }

    /// Without PIPELINING: one command, one reply; DATA only when a recipient was accepted.
    async fn envelope_in_turn(
        &mut self,
        env: &Envelope,
        body: &[u8],
    ) -> Result<EnvelopeReplies, ClientError> {
        let mail = self.command(&self.mail_command(env, body)).await?;
        if !mail.is_positive() {
            return Ok(EnvelopeReplies {
                mail,
                rcpts: Vec::new(),
                data: None,
            });
        }
        let mut rcpts = Vec::with_capacity(env.rcpts.len());
        for rcpt in &env.rcpts {
            rcpts.push(self.command(&self.rcpt_command(rcpt)).await?);
        }
        let data = match rcpts.iter().any(Reply::is_positive) {
            true => Some(self.command("DATA").await?),
            false => None,
        };
        Ok(EnvelopeReplies { mail, rcpts, data })
    }

    /// RFC 2920 §3.1: a pipelined DATA accepted although nothing can be sent gets an empty
    /// message (a lone dot), whose reply is read and ignored.
    async fn abandon_data(&mut self, data: Option<&Reply>) -> Result<(), ClientError> {
        if data.is_some_and(|d| d.code == 354) {
            self.write_all(b".\r\n").await?;
            self.read_reply().await?;
        }
        Ok(())
    }

    fn mail_command(&self, env: &Envelope, body: &[u8]) -> String {
        let mut cmd = format!("MAIL FROM:<{}>", env.mail_from);
        if self.extensions.size.is_some() {
            cmd.push_str(&format!(" SIZE={}", body.len()));
        }
        if self.extensions.eight_bit && !body.is_ascii() {
            cmd.push_str(" BODY=8BITMIME");
        }
        if self.extensions.smtputf8 && !env.mail_from.is_ascii() {
            cmd.push_str(" SMTPUTF8");
        }
        // RFC 3461 §4.3, §4.4: passed on only to a DSN-capable peer.
        if self.extensions.dsn {
            if let Some(ret) = &env.ret {
                cmd.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = &env.envid {
                cmd.push_str(&format!(" ENVID={}", xtext::encode(envid)));
            }
        }
        cmd
    }

    fn rcpt_command(&self, rcpt: &Rcpt) -> String {
        let mut cmd = format!("RCPT TO:<{}>", rcpt.address);
        if self.extensions.dsn {
            if let Some(notify) = &rcpt.notify {
                cmd.push_str(&format!(" NOTIFY={notify}"));
            }
            // RFC 3461 §4.2: ORCPT=addr-type;xtext.
            if let Some((kind, addr)) = rcpt.orcpt.as_deref().and_then(|o| o.split_once(';')) {
                cmd.push_str(&format!(" ORCPT={kind};{}", xtext::encode(addr)));
            }
        }
        cmd
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }

    async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.write_all(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply().await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let result = match &mut self.transport {
            Transport::Plain(s) => write_flush(s.get_mut(), bytes).await,
            Transport::Tls(s) => write_flush(s.get_mut(), bytes).await,
            Transport::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        };
        result.map_err(|e| io_error("write", e))
    }

    /// RFC 5321 §4.5.2: a line starting with "." gets one more; the message ends with
    /// CRLF.CRLF.
    async fn write_body(&mut self, body: &[u8]) -> Result<(), ClientError> {
        self.write_all(&dot::stuff(body)).await
    }

    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        self.read_reply_within(self.timeouts.command).await
    }

    async fn read_reply_within(&mut self, limit: Duration) -> Result<Reply, ClientError> {
        let read = async {
            match &mut self.transport {
                Transport::Plain(s) => read_reply(s).await,
                Transport::Tls(s) => read_reply(s.as_mut()).await,
                Transport::Closed => Err(io_error("read", "not connected")),
            }
        };
        tokio::time::timeout(limit, read)
            .await
            .map_err(|_| ClientError::temporary("4.4.2", "timeout waiting for the peer's reply"))?
    }
}

async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

fn fail_accepted(results: RcptResults, failure: ClientError) -> RcptResults {
    results
        .into_iter()
        .map(|r| r.and_then(|_| Err(failure.clone())))
        .collect()
}

/// Reads one (possibly multi-line) reply: `250-...` lines then `250 ...` (RFC 5321 §4.2.1).
async fn read_reply<S: AsyncRead + Unpin>(s: &mut BufReader<S>) -> Result<Reply, ClientError> {
    let mut reader = ReplyReader::new();
    loop {
        let mut line = String::new();
        let n = s
            .read_line(&mut line)
            .await
            .map_err(|e| io_error("read", e))?;
        if n == 0 {
            return Err(io_error("read", "connection closed by the peer"));
        }
        if let Some(reply) = reader.push(&line).map_err(|e| io_error("read", e))? {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_extensions() {
        let reply = Reply::from_peer(
            250,
            vec![
                "mx.b hello".into(),
                "PIPELINING".into(),
                "SIZE 1000".into(),
                "dsn".into(),
                "STARTTLS".into(),
            ],
        );
        let ext = Extensions::from_ehlo(&reply);
        assert!(ext.dsn && ext.starttls && ext.pipelining && !ext.smtputf8);
        assert_eq!(ext.size, Some(1000));
    }
}
