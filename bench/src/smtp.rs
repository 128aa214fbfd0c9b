//! A minimal SMTP client: EHLO, STARTTLS, AUTH PLAIN, pipelined MAIL/RCPT/DATA or BDAT.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use base64::Engine;

use crate::messages::Template;
use crate::net::{Conn, TlsMode};

/// One SMTP reply (all its lines joined).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
}

/// Parses "250-text" / "250 text"; returns (code, is_last, text).
pub fn parse_reply_line(line: &[u8]) -> Result<(u16, bool, &str)> {
    let line = std::str::from_utf8(line)?.trim_end_matches(['\r', '\n']);
    let code = line
        .get(..3)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad SMTP reply {line:?}"))?;
    let last = line.as_bytes().get(3) != Some(&b'-');
    Ok((code, last, line.get(4..).unwrap_or("")))
}

pub async fn read_reply(conn: &mut Conn, buf: &mut Vec<u8>) -> Result<Reply> {
    let mut text = String::new();
    loop {
        conn.read_line(buf).await?;
        let (code, last, t) = parse_reply_line(buf)?;
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(t);
        if last {
            return Ok(Reply { code, text });
        }
    }
}

/// Connection options shared by all SMTP sessions of a run.
#[derive(Debug, Clone)]
pub struct SessionOpts {
    pub addr: String,
    pub tls: TlsMode,
    pub helo: String,
    /// (user, password) for AUTH PLAIN.
    pub auth: Option<(String, String)>,
}

/// What one transaction gave.
#[derive(Debug, Default)]
pub struct TxOutcome {
    /// The message was accepted for at least one recipient.
    pub accepted: bool,
    pub accepted_rcpts: usize,
    /// Time from the last byte of the message to the final reply.
    pub final_reply: Duration,
    /// Time from MAIL FROM to the final reply.
    pub transaction: Duration,
    /// Negative reply codes met (MAIL, RCPT, DATA or final).
    pub errors: Vec<u16>,
}

/// `addr` may list several servers (`host:port,host:port`, the nodes of one cluster):
/// sessions are opened on them in turn.
fn next_addr(addr: &str) -> &str {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let addrs: Vec<&str> = addr.split(',').collect();
    addrs[NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % addrs.len()]
}

pub struct SmtpSession {
    conn: Conn,
    buf: Vec<u8>,
    pub pipelining: bool,
    pub chunking: bool,
}

fn expect(r: &Reply, what: &str) -> Result<()> {
    if !r.is_positive() {
        bail!("{what}: {} {}", r.code, r.text);
    }
    Ok(())
}

impl SmtpSession {
    pub async fn open(o: &SessionOpts) -> Result<SmtpSession> {
        let mut s = SmtpSession {
            conn: Conn::connect(next_addr(&o.addr), o.tls).await?,
            buf: Vec::with_capacity(512),
            pipelining: false,
            chunking: false,
        };
        let greeting = read_reply(&mut s.conn, &mut s.buf).await?;
        expect(&greeting, "greeting")?;
        s.ehlo(&o.helo).await?;
        if o.tls == TlsMode::Starttls {
            let r = s.command("STARTTLS").await?;
            expect(&r, "STARTTLS")?;
            s.conn.upgrade().await?;
            s.ehlo(&o.helo).await?;
        }
        if let Some((user, pass)) = &o.auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
            let r = s.command(&format!("AUTH PLAIN {token}")).await?;
            expect(&r, "AUTH PLAIN")?;
        }
        Ok(s)
    }

    async fn ehlo(&mut self, helo: &str) -> Result<()> {
        let r = self.command(&format!("EHLO {helo}")).await?;
        expect(&r, "EHLO")?;
        let caps = r.text.to_ascii_uppercase();
        self.pipelining = caps.lines().any(|l| l.trim() == "PIPELINING");
        self.chunking = caps.lines().any(|l| l.trim() == "CHUNKING");
        Ok(())
    }

    pub async fn command(&mut self, line: &str) -> Result<Reply> {
        self.conn
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        self.conn.flush().await?;
        read_reply(&mut self.conn, &mut self.buf).await
    }

    async fn reply(&mut self) -> Result<Reply> {
        read_reply(&mut self.conn, &mut self.buf).await
    }

    /// Sends one message; pipelines the envelope when the server allows it.
    pub async fn send(
        &mut self,
        from: &str,
        rcpts: &[String],
        prefix: &[u8],
        msg: &Template,
        bdat: bool,
    ) -> Result<TxOutcome> {
        let start = Instant::now();
        let mut out = TxOutcome::default();
        let use_bdat = bdat && self.chunking;
        let mut envelope = format!("MAIL FROM:<{from}>\r\n");
        for r in rcpts {
            envelope.push_str(&format!("RCPT TO:<{r}>\r\n"));
        }
        let replies = if self.pipelining {
            if !use_bdat {
                envelope.push_str("DATA\r\n");
            }
            self.conn.write_all(envelope.as_bytes()).await?;
            self.conn.flush().await?;
            let n = rcpts.len() + if use_bdat { 1 } else { 2 };
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(self.reply().await?);
            }
            v
        } else {
            let mut v = Vec::new();
            for line in envelope.lines() {
                v.push(self.command(line).await?);
            }
            if !use_bdat {
                v.push(self.command("DATA").await?);
            }
            v
        };
        let mail_ok = replies[0].is_positive();
        for r in replies.iter().filter(|r| !r.is_positive()) {
            out.errors.push(r.code);
        }
        out.accepted_rcpts = replies[1..=rcpts.len()]
            .iter()
            .filter(|r| r.is_positive())
            .count();
        let final_reply = if use_bdat {
            if !mail_ok || out.accepted_rcpts == 0 {
                self.command("RSET").await?;
                out.transaction = start.elapsed();
                return Ok(out);
            }
            self.send_bdat(prefix, &msg.raw).await?
        } else {
            let data = replies.last().expect("DATA reply");
            if data.code != 354 {
                self.command("RSET").await?;
                out.transaction = start.elapsed();
                return Ok(out);
            }
            self.send_data(prefix, &msg.stuffed).await?
        };
        out.final_reply = final_reply.1;
        let reply = final_reply.0;
        out.accepted = reply.is_positive();
        if !out.accepted {
            out.errors.push(reply.code);
            out.accepted_rcpts = 0;
        }
        out.transaction = start.elapsed();
        Ok(out)
    }

    async fn send_data(&mut self, prefix: &[u8], stuffed: &[u8]) -> Result<(Reply, Duration)> {
        self.conn.write_all(prefix).await?;
        self.conn.write_all(stuffed).await?;
        self.conn.flush().await?;
        let t = Instant::now();
        let r = self.reply().await?;
        Ok((r, t.elapsed()))
    }

    async fn send_bdat(&mut self, prefix: &[u8], raw: &[u8]) -> Result<(Reply, Duration)> {
        let total = prefix.len() + raw.len();
        self.conn
            .write_all(format!("BDAT {total} LAST\r\n").as_bytes())
            .await?;
        self.conn.write_all(prefix).await?;
        self.conn.write_all(raw).await?;
        self.conn.flush().await?;
        let t = Instant::now();
        let r = self.reply().await?;
        Ok((r, t.elapsed()))
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
        self.conn.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line(b"250-PIPELINING\r\n").unwrap(),
            (250, false, "PIPELINING")
        );
        assert_eq!(parse_reply_line(b"250 OK\r\n").unwrap(), (250, true, "OK"));
        assert_eq!(parse_reply_line(b"354\r\n").unwrap(), (354, true, ""));
        assert!(parse_reply_line(b"hello\r\n").is_err());
    }
}
