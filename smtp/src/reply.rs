//! SMTP replies with RFC 3463 enhanced status codes (RFC 2034: on every reply once
//! ENHANCEDSTATUSCODES is advertised; we send them always).

use std::fmt::Write;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (`x.y.z`), absent only on the greeting and on 334 challenges
    /// (RFC 2034 §3 and RFC 4954 §4 exempt them).
    pub status: Option<&'static str>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
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
            status,
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Wire form: `250-first\r\n250 last\r\n` (RFC 5321 §4.2.1).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let _ = match self.status {
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

// Replies used in several handlers; one-off replies are built where they are decided.

pub fn ok(text: &str) -> Reply {
    Reply::new(250, "2.0.0", text)
}

/// RFC 5321 §4.2.4: 500 for an unrecognised command.
pub fn unknown_command() -> Reply {
    Reply::new(500, "5.5.2", "Command not recognized")
}

/// RFC 5321 §4.2.4: 501 for a syntax error in parameters or arguments.
pub fn syntax_error(what: &str) -> Reply {
    Reply::new(501, "5.5.4", format!("Syntax error: {what}"))
}

/// RFC 5321 §4.2.4: 503 for a bad sequence of commands.
pub fn bad_sequence(what: &str) -> Reply {
    Reply::new(503, "5.5.1", what)
}

pub fn line_too_long() -> Reply {
    Reply::new(500, "5.5.6", "Line too long")
}

pub fn too_many_errors() -> Reply {
    Reply::new(421, "4.7.0", "Too many errors, closing connection")
}

pub fn shutting_down() -> Reply {
    Reply::new(421, "4.3.2", "Service shutting down, try again later")
}

pub fn timeout() -> Reply {
    Reply::new(421, "4.4.2", "Timeout, closing connection")
}

/// Storage failure: the client keeps the message and retries (nothing was kept here).
pub fn local_error() -> Reply {
    Reply::new(
        451,
        "4.3.0",
        "Local error in processing, message not accepted, try again later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_single_and_multiline() {
        let mut out = Vec::new();
        Reply::new(250, "2.1.0", "Sender OK").write_to(&mut out);
        assert_eq!(out, b"250 2.1.0 Sender OK\r\n");
        out.clear();
        Reply::multiline(
            250,
            None,
            vec!["host".into(), "PIPELINING".into(), "SIZE 10".into()],
        )
        .write_to(&mut out);
        assert_eq!(out, b"250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
        out.clear();
        Reply::bare(334, "").write_to(&mut out);
        assert_eq!(out, b"334 \r\n");
    }
}
