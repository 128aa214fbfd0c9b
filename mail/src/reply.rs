//! SMTP replies (RFC 5321 §4.2) with RFC 3463 enhanced status codes: the server writes them
//! (RFC 2034: on every reply once ENHANCEDSTATUSCODES is advertised; we send them always)
//! and the relay client reads them from peers.

use std::borrow::Cow;
use std::fmt::Write;

/// A reply: the three-digit code, the enhanced status code when there is one, and the text
/// of each line without code or status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (`x.y.z`). Ours is absent only on the greeting and on 334
    /// challenges (RFC 2034 §3 and RFC 4954 §4 exempt them); a peer's is absent when its
    /// first line does not start with one of the reply's class.
    pub status: Option<Cow<'static, str>>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(Cow::Borrowed(status)),
            lines: vec![text.into()],
        }
    }

    pub fn bare(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: vec![text.into()],
        }
    }

    pub fn multiline(code: u16, status: Option<&'static str>, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: status.map(Cow::Borrowed),
            lines,
        }
    }

    /// A reply read from a peer: the enhanced status code is taken from the first line when it
    /// starts with one of the reply's class (RFC 3463 §2: `5.x.x` only on a 5yz reply), and
    /// then removed from every line that repeats it (RFC 2034 §3 puts it on each line).
    pub fn from_peer(code: u16, mut lines: Vec<String>) -> Reply {
        let status = lines
            .first()
            .and_then(|l| l.split(' ').next())
            .filter(|s| is_enhanced_status(s) && s.as_bytes()[0] == class_digit(code))
            .map(str::to_string);
        if let Some(status) = &status {
            for line in &mut lines {
                if let Some(rest) = line.strip_prefix(status.as_str())
                    && (rest.is_empty() || rest.starts_with(' '))
                {
                    *line = rest.strip_prefix(' ').unwrap_or(rest).to_string();
                }
            }
        }
        Reply {
            code,
            status: status.map(Cow::Owned),
            lines,
        }
    }

    /// 2yz and 3yz: the command was accepted (RFC 5321 §4.2.1).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 5yz: do not repeat the command as it is (RFC 5321 §4.2.1).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code given, or the class's generic one (`4.0.0`, RFC 3463 §3.1).
    pub fn enhanced_status(&self) -> String {
        match &self.status {
            Some(status) => status.to_string(),
            None => format!("{}.0.0", self.code / 100),
        }
    }

    /// The reply as one line, for logs and DSN Diagnostic-Code (RFC 3464 §2.3.6).
    pub fn text(&self) -> String {
        let mut s = self.code.to_string();
        if let Some(status) = &self.status {
            s.push(' ');
            s.push_str(status);
        }
        for line in &self.lines {
            s.push(' ');
            s.push_str(line);
        }
        s
    }

    /// Wire form: `250-first\r\n250 last\r\n` (RFC 5321 §4.2.1).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let _ = match &self.status {
                Some(st) => write!(s, "{}{}{} {}\r\n", self.code, sep, st, line),
                None => write!(s, "{}{}{}\r\n", self.code, sep, line),
            };
        }
        if self.lines.is_empty() {
            let _ = write!(s, "{}\r\n", self.code);
        }
        out.extend_from_slice(s.as_bytes());
    }
}

fn class_digit(code: u16) -> u8 {
    b'0' + (code / 100 % 10) as u8
}

/// RFC 3463 §2: `class "." subject "." detail`, class 2, 4 or 5, subject and detail of one
/// to three digits.
pub fn is_enhanced_status(s: &str) -> bool {
    let mut parts = s.split('.');
    let class_ok = matches!(parts.next(), Some("2" | "4" | "5"));
    let number = |p: Option<&str>| {
        p.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    class_ok && number(parts.next()) && number(parts.next()) && parts.next().is_none()
}

/// Why a peer's reply could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// Not `Reply-code [("-" / SP) text]` (RFC 5321 §4.2).
    Malformed(String),
    /// A line of a multiline reply with another code (RFC 5321 §4.2.1 wants the same).
    CodeChanged { first: u16, line: String },
    /// More lines than [`MAX_REPLY_LINES`].
    TooLong,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Malformed(line) => write!(f, "malformed reply line {line:?}"),
            ReplyError::CodeChanged { first, line } => {
                write!(f, "reply line {line:?} does not repeat the code {first}")
            }
            ReplyError::TooLong => write!(f, "reply too long"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// A peer that sends more lines than this in one reply is not an SMTP server.
pub const MAX_REPLY_LINES: usize = 1000;

/// Assembles a peer's reply line by line (the caller does the reading).
#[derive(Debug, Default)]
pub struct ReplyReader {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line (with or without its CRLF); returns the reply once its last line came.
    pub fn push(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let (code, last, text) = parse_line(line)?;
        match self.code {
            Some(first) if first != code => {
                return Err(ReplyError::CodeChanged {
                    first,
                    line: line.to_string(),
                });
            }
            _ => self.code = Some(code),
        }
        self.lines.push(text.to_string());
        if last {
            return Ok(Some(Reply::from_peer(
                code,
                std::mem::take(&mut self.lines),
            )));
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooLong);
        }
        Ok(None)
    }
}

/// RFC 5321 §4.2: `Reply-code = %x32-35 %x30-35 %x30-39`, then `-` on all lines but the last,
/// a space (or nothing) on the last.
fn parse_line(line: &str) -> Result<(u16, bool, &str), ReplyError> {
    let malformed = || ReplyError::Malformed(line.to_string());
    let b = line.as_bytes();
    let code_ok = b.len() >= 3
        && (b'2'..=b'5').contains(&b[0])
        && (b'0'..=b'5').contains(&b[1])
        && b[2].is_ascii_digit();
    if !code_ok {
        return Err(malformed());
    }
    let code = u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
    match b.get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &Reply) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_single_and_multiline() {
        assert_eq!(
            wire(&Reply::new(250, "2.1.0", "Sender OK")),
            "250 2.1.0 Sender OK\r\n"
        );
        let ehlo = Reply::multiline(
            250,
            None,
            vec!["host".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(wire(&ehlo), "250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
        assert_eq!(wire(&Reply::bare(334, "")), "334 \r\n");
        assert_eq!(wire(&Reply::multiline(250, None, Vec::new())), "250\r\n");
        let with_status = Reply::multiline(550, Some("5.7.1"), vec!["a".into(), "b".into()]);
        assert_eq!(wire(&with_status), "550-5.7.1 a\r\n550 5.7.1 b\r\n");
    }

    fn read(wire: &str) -> Result<Reply, ReplyError> {
        let mut reader = ReplyReader::new();
        for line in wire.split_inclusive("\r\n") {
            if let Some(reply) = reader.push(line)? {
                return Ok(reply);
            }
        }
        panic!("incomplete reply {wire:?}");
    }

    #[test]
    fn reading_round_trips_what_we_write() {
        for reply in [
            Reply::new(250, "2.1.0", "Sender OK"),
            Reply::multiline(550, Some("5.7.1"), vec!["a".into(), "b c".into()]),
            Reply::multiline(
                250,
                None,
                vec!["mx.b hello".into(), "PIPELINING".into(), "DSN".into()],
            ),
            Reply::bare(220, "mx.b ESMTP"),
        ] {
            assert_eq!(read(&wire(&reply)).unwrap(), reply);
        }
    }

    #[test]
    fn peer_status_is_kept_only_when_well_formed_and_of_the_class() {
        let r = read("550 5.1.1 <x>: no such mailbox\r\n").unwrap();
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.enhanced_status(), "5.1.1");
        assert_eq!(r.text(), "550 5.1.1 <x>: no such mailbox");
        let r = read("451 try later\r\n").unwrap();
        assert_eq!(
            (r.status.clone(), r.enhanced_status()),
            (None, "4.0.0".into())
        );
        assert_eq!(r.text(), "451 try later");
        // Inconsistent class: the text stays as the peer wrote it.
        let r = read("550 4.1.1 inconsistent\r\n").unwrap();
        assert_eq!(r.enhanced_status(), "5.0.0");
        assert_eq!(r.text(), "550 4.1.1 inconsistent");
        for not_a_status in ["5.1", "5.1.1.1", "5.1.1000", "3.1.1", "5.a.1", "5..1"] {
            let r = read(&format!("550 {not_a_status} x\r\n")).unwrap();
            assert_eq!(r.status, None, "{not_a_status}");
        }
        let r = read("250\r\n").unwrap();
        assert_eq!((r.code, r.lines.clone()), (250, vec![String::new()]));
        assert!(r.is_positive() && !r.is_permanent());
        assert!(read("554 no\r\n").unwrap().is_permanent());
        assert!(!read("421 bye\r\n").unwrap().is_positive());
    }

    #[test]
    fn reading_refuses_what_is_not_a_reply() {
        for bad in [
            "", "25", "2500 x", "abc x", "199 x", "600 x", "260 x", "250_x",
        ] {
            assert_eq!(
                ReplyReader::new().push(bad),
                Err(ReplyError::Malformed(bad.into())),
                "{bad:?}"
            );
        }
        let mut reader = ReplyReader::new();
        assert_eq!(reader.push("250-a\r\n"), Ok(None));
        assert_eq!(
            reader.push("251 b\r\n"),
            Err(ReplyError::CodeChanged {
                first: 250,
                line: "251 b".into()
            })
        );
        let mut reader = ReplyReader::new();
        for _ in 1..MAX_REPLY_LINES {
            assert_eq!(reader.push("250-x"), Ok(None));
        }
        assert_eq!(reader.push("250-x"), Err(ReplyError::TooLong));
        assert!(ReplyError::TooLong.to_string().contains("too long"));
    }
}
