//! A minimal IMAP4rev1 client: tagged commands, literals in responses, IDLE, APPEND.

use anyhow::{Result, bail};

use crate::net::{Conn, TlsMode};

/// The tagged completion and the untagged responses (literals inlined) of one command.
#[derive(Debug, Default)]
pub struct Response {
    pub status: String,
    pub text: String,
    pub untagged: Vec<Vec<u8>>,
}

impl Response {
    pub fn ok(&self) -> bool {
        self.status == "OK"
    }

    /// The number before `word` in an untagged response, e.g. "* 12 EXISTS".
    pub fn number_before(&self, word: &str) -> Option<u32> {
        self.untagged.iter().find_map(|l| {
            let s = String::from_utf8_lossy(l);
            let mut it = s.split_whitespace().skip(1);
            let n = it.next()?.parse().ok()?;
            (it.next()?.eq_ignore_ascii_case(word)).then_some(n)
        })
    }

    /// The number after `key` anywhere in the untagged responses, e.g. "MESSAGES 12".
    pub fn number_after(&self, key: &str) -> Option<u32> {
        self.untagged
            .iter()
            .find_map(|l| number_after(&String::from_utf8_lossy(l), key))
    }
}

pub fn number_after(s: &str, key: &str) -> Option<u32> {
    let upper = s.to_ascii_uppercase();
    let at = upper.find(&format!("{} ", key.to_ascii_uppercase()))? + key.len() + 1;
    let digits: String = s[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The size of a literal announced at the end of a line: "... {123}\r\n" or "{123+}".
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(line)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let inner = s.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

/// (status, text) when `line` is the tagged completion of `tag`.
pub fn tagged(line: &[u8], tag: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix(tag.as_bytes())?.strip_prefix(b" ")?;
    let rest = String::from_utf8_lossy(rest);
    let rest = rest.trim_end();
    let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((status.to_ascii_uppercase(), text.to_string()))
}

/// Quotes a string for IMAP (RFC 3501 quoted).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub struct ImapSession {
    conn: Conn,
    tag: u32,
    line: Vec<u8>,
    lit: Vec<u8>,
}

impl ImapSession {
    pub async fn connect(addr: &str, tls: TlsMode) -> Result<ImapSession> {
        let mut s = ImapSession {
            conn: Conn::connect(addr, tls).await?,
            tag: 0,
            line: Vec::with_capacity(256),
            lit: Vec::new(),
        };
        let greeting = s.read_response_line().await?;
        if !greeting.starts_with(b"* OK") && !greeting.starts_with(b"* PREAUTH") {
            bail!("bad greeting {}", String::from_utf8_lossy(&greeting));
        }
        if tls == TlsMode::Starttls {
            let r = s.command("STARTTLS").await?;
            if !r.ok() {
                bail!("STARTTLS refused: {}", r.text);
            }
            s.conn.upgrade().await?;
        }
        Ok(s)
    }

    pub async fn login(&mut self, user: &str, pass: &str) -> Result<Response> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(pass)))
            .await
    }

    /// AUTHENTICATE PLAIN with an authorization id (RFC 4616, initial response RFC 4959):
    /// `user` logs in with its own password and works in the BAL `authz` names, as a
    /// delegate does (issue 14).
    pub async fn login_as(&mut self, authz: &str, user: &str, pass: &str) -> Result<Response> {
        use base64::Engine as _;
        let blob =
            base64::engine::general_purpose::STANDARD.encode(format!("{authz}\0{user}\0{pass}"));
        self.command(&format!("AUTHENTICATE PLAIN {blob}")).await
    }

    /// Reads one response line, with any literals it announces inlined.
    async fn read_response_line(&mut self) -> Result<Vec<u8>> {
        let mut full = Vec::new();
        loop {
            self.conn.read_line(&mut self.line).await?;
            full.extend_from_slice(&self.line);
            match literal_len(&self.line) {
                Some(n) => {
                    self.conn.read_exact(n, &mut self.lit).await?;
                    full.extend_from_slice(&self.lit);
                }
                None => return Ok(full),
            }
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("b{}", self.tag)
    }

    /// Reads until the tagged completion of `tag`.
    async fn complete(&mut self, tag: &str) -> Result<Response> {
        let mut resp = Response::default();
        loop {
            let l = self.read_response_line().await?;
            if let Some((status, text)) = tagged(&l, tag) {
                resp.status = status;
                resp.text = text;
                return Ok(resp);
            }
            resp.untagged.push(l);
        }
    }

    pub async fn command(&mut self, cmd: &str) -> Result<Response> {
        let tag = self.next_tag();
        self.conn
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await?;
        self.conn.flush().await?;
        self.complete(&tag).await
    }

    /// AUTHENTICATE with a SASL-IR initial response (RFC 4959). A continuation (a failure
    /// challenge, RFC 7628 §3.2.2) is answered with an empty line, then the completion read.
    pub async fn authenticate(&mut self, mechanism: &str, message: &[u8]) -> Result<Response> {
        use base64::Engine;
        let tag = self.next_tag();
        let ir = base64::engine::general_purpose::STANDARD.encode(message);
        self.conn
            .write_all(format!("{tag} AUTHENTICATE {mechanism} {ir}\r\n").as_bytes())
            .await?;
        self.conn.flush().await?;
        let mut resp = Response::default();
        loop {
            let l = self.read_response_line().await?;
            if let Some((status, text)) = tagged(&l, &tag) {
                resp.status = status;
                resp.text = text;
                return Ok(resp);
            }
            if l.starts_with(b"+") {
                self.conn.write_all(b"\r\n").await?;
                self.conn.flush().await?;
                continue;
            }
            resp.untagged.push(l);
        }
    }

    /// APPEND with a synchronising literal.
    pub async fn append(&mut self, mailbox: &str, msg: &[u8]) -> Result<Response> {
        let tag = self.next_tag();
        let head = format!("{tag} APPEND {} {{{}}}\r\n", quote(mailbox), msg.len());
        self.conn.write_all(head.as_bytes()).await?;
        self.conn.flush().await?;
        let cont = self.read_response_line().await?;
        if let Some((status, text)) = tagged(&cont, &tag) {
            return Ok(Response {
                status,
                text,
                untagged: Vec::new(),
            });
        }
        if !cont.starts_with(b"+") {
            bail!(
                "APPEND: unexpected {}",
                String::from_utf8_lossy(&cont).trim_end()
            );
        }
        self.conn.write_all(msg).await?;
        self.conn.write_all(b"\r\n").await?;
        self.conn.flush().await?;
        self.complete(&tag).await
    }

    /// Enters IDLE (RFC 2177) and waits for the continuation.
    pub async fn idle_start(&mut self) -> Result<String> {
        let tag = self.next_tag();
        self.conn
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        self.conn.flush().await?;
        loop {
            let l = self.read_response_line().await?;
            if l.starts_with(b"+") {
                return Ok(tag);
            }
            if l.starts_with(tag.as_bytes()) {
                bail!("IDLE refused: {}", String::from_utf8_lossy(&l).trim_end());
            }
        }
    }

    /// The next line the server sends (in IDLE: its untagged updates).
    pub async fn next_line(&mut self) -> Result<Vec<u8>> {
        self.read_response_line().await
    }

    pub async fn idle_done(&mut self, tag: &str) -> Result<Response> {
        self.conn.write_all(b"DONE\r\n").await?;
        self.conn.flush().await?;
        self.complete(tag).await
    }

    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
        self.conn.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {1234}\r\n"), Some(1234));
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12+}\r\n"), Some(12));
        assert_eq!(literal_len(b"* 1 FETCH (FLAGS (\\Seen))\r\n"), None);
        assert_eq!(literal_len(b"* OK {x}\r\n"), None);
    }

    #[test]
    fn numbers() {
        let r = Response {
            untagged: vec![
                b"* FLAGS (\\Seen)\r\n".to_vec(),
                b"* 17 EXISTS\r\n".to_vec(),
                b"* STATUS INBOX (MESSAGES 42 UNSEEN 3)\r\n".to_vec(),
            ],
            ..Response::default()
        };
        assert_eq!(r.number_before("EXISTS"), Some(17));
        assert_eq!(r.number_after("MESSAGES"), Some(42));
        assert_eq!(r.number_after("UNSEEN"), Some(3));
        assert_eq!(number_after("* 3 FETCH (UID 99 FLAGS ())", "UID"), Some(99));
    }

    #[test]
    fn tagged_lines() {
        assert_eq!(
            tagged(b"b7 OK [READ-WRITE] Select completed.\r\n", "b7"),
            Some(("OK".into(), "[READ-WRITE] Select completed.".into()))
        );
        assert_eq!(tagged(b"b70 OK x\r\n", "b7"), None);
        assert_eq!(tagged(b"* OK x\r\n", "b7"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
