//! The SMTP session: its state (HELO, authentication, the open transaction) and its
//! connection I/O. One session type for every listener; the command loop is in `dispatch`,
//! the handlers in one file per command family, all building on this module.

use std::net::SocketAddr;

use mssante_mail::dsn::Ret;
use mssante_store::{Address, Bal, RecipientSpec};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::reply::Reply;
use crate::{Context, ListenerKind};

/// Longest command line: RFC 5321 §4.5.3.1.4 says 512 octets, extensions may add to it,
/// and RFC 4954 §4 allows AUTH lines of 12288 octets.
pub(crate) const MAX_COMMAND_LINE: usize = 12_288;

pub(crate) use mssante_net::Conn;

pub(crate) use mssante_net::ReadStop;
use mssante_net::{Line, take_line};

/// What the client said at the start of the session.
pub(crate) struct Helo {
    pub name: String,
    pub extended: bool,
}

/// The mail transaction opened by MAIL FROM (RFC 5321 §3.3).
pub(crate) struct Transaction {
    /// `None` for the null reverse-path `<>`.
    pub from: Option<Address>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    pub envid: Option<String>,
    pub rcpts: Vec<RecipientSpec>,
    /// Message being assembled by BDAT chunks (RFC 3030).
    pub bdat: Option<BdatMessage>,
    /// When MAIL FROM opened it: the transaction log line gives its duration.
    pub started: std::time::Instant,
    /// The message's `Message-ID` (RFC 5322 §3.6.4), once its header is read: the
    /// transaction log line carries it.
    pub message_id: Option<String>,
}

/// A message being assembled from BDAT chunks.
pub(crate) struct BdatMessage {
    /// The queue id, also in the Received header the first chunk started with.
    pub(crate) id: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) too_big: bool,
}

/// Control flow after a command.
pub(crate) enum Flow {
    Continue,
    Close,
}

pub struct Session<T> {
    pub(crate) conn: Conn<T>,
    /// Bytes received and not yet consumed.
    pub(crate) rbuf: Vec<u8>,
    /// Replies not yet sent: flushed before the next read, so pipelined commands
    /// (RFC 2920) get their replies in one write.
    pub(crate) wbuf: Vec<u8>,
    pub(crate) ctx: Context,
    pub(crate) kind: ListenerKind,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) helo: Option<Helo>,
    pub(crate) auth: Option<Bal>,
    pub(crate) txn: Option<Transaction>,
    /// On the MX after STARTTLS: the peer operator's certificate DN, or why it is refused.
    pub(crate) peer_identity: Option<Result<mssante_trust::Dn, String>>,
    /// On submission over TLS: the client certificate, checked against `[tls]
    /// client_ca_file`, that AUTH EXTERNAL logs in with.
    pub(crate) client_cert: Option<mssante_auth::ClientCertificate>,
    /// 5xx replies so far (`SmtpConfig::max_errors`).
    pub(crate) errors: u32,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// A session on a connection; `tls` says whether the transport is already TLS
    /// (implicit TLS listeners hand over the stream after the handshake).
    pub(crate) fn new(
        conn: Conn<T>,
        ctx: Context,
        kind: ListenerKind,
        peer: SocketAddr,
        tls: bool,
    ) -> Self {
        let client_cert = if tls && kind.requires_auth() {
            mssante_auth::external::connection_certificate(
                ctx.client_ca.as_ref(),
                &conn.peer_certificates(),
                peer,
            )
        } else {
            None
        };
        Session {
            client_cert,
            conn,
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(1024),
            ctx,
            kind,
            peer,
            tls,
            helo: None,
            auth: None,
            txn: None,
            peer_identity: None,
            errors: 0,
        }
    }

    pub fn plain(stream: T, ctx: Context, kind: ListenerKind, peer: SocketAddr) -> Self {
        Session::new(Conn::Plain(stream), ctx, kind, peer, false)
    }

    /// Queues a reply; 5xx replies count towards the error limit.
    pub(crate) fn reply(&mut self, r: Reply) {
        if r.code >= 500 {
            self.errors += 1;
        }
        r.write_to(&mut self.wbuf);
    }

    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.conn.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        self.conn.flush().await
    }

    /// Reads more bytes into `rbuf`, flushing pending replies first. While the session
    /// waits for a command (`idle`), a shutdown interrupts the wait.
    pub(crate) async fn fill(&mut self, idle: bool) -> Result<(), ReadStop> {
        self.flush().await.map_err(|_| ReadStop::Io)?;
        let timeout = match idle {
            true => self.ctx.config.command_timeout,
            false => self.ctx.config.data_timeout,
        };
        let shutdown = self.ctx.shutdown.clone();
        mssante_net::read_more(
            &mut self.conn,
            &mut self.rbuf,
            timeout,
            idle.then_some(&shutdown),
        )
        .await
    }

    /// Reads one line (without CRLF). `Ok(None)`: the line was longer than `max`; it was
    /// read to its end and dropped.
    pub(crate) async fn read_line(
        &mut self,
        max: usize,
        idle: bool,
    ) -> Result<Option<Vec<u8>>, ReadStop> {
        let mut dropping = false;
        // Once a line has begun, all of it must come within the command timeout (RFC 5321
        // §4.5.3.2.7's 5 minutes by default): a byte now and then does not hold a connection.
        let mut deadline = None;
        loop {
            match take_line(&mut self.rbuf, max, &mut dropping) {
                Line::Complete(line) => return Ok(Some(line)),
                Line::TooLong => return Ok(None),
                Line::Incomplete => {
                    if deadline.is_none() && (dropping || !self.rbuf.is_empty()) {
                        deadline =
                            Some(tokio::time::Instant::now() + self.ctx.config.command_timeout);
                    }
                    match deadline {
                        Some(at) => tokio::time::timeout_at(at, self.fill(idle))
                            .await
                            .map_err(|_| ReadStop::Timeout)??,
                        None => self.fill(idle).await?,
                    }
                }
            }
        }
    }
}
