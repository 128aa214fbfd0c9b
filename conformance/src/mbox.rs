//! The mbox message source, read the way imaptest's `mailbox-source-mbox.c` does: a message is
//! every line after a valid `From ` line up to the next one (the blank separator line included),
//! each line ending in CRLF; its INTERNALDATE comes from the `From ` line; reading wraps around
//! at the end of the file.

use crate::args;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Message {
    /// Byte string (see `args`), CRLF line endings.
    pub body: String,
    /// IMAP date-time from the `From ` line, e.g. `22-Feb-2008 17:06:23 +0000`.
    pub internal_date: String,
}

#[derive(Debug)]
pub struct Source {
    messages: Vec<Message>,
    next: usize,
}

impl Source {
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&args::latin1(&bytes)).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut messages: Vec<Message> = Vec::new();
        let mut lines: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            lines.pop();
        }
        for line in lines {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let from_date = line.strip_prefix("From ").and_then(from_line_date);
            // A From line right after another one is part of an empty body, like imaptest.
            let starts_message =
                from_date.is_some() && messages.last().is_none_or(|m| !m.body.is_empty());
            if let (true, Some(date)) = (starts_message, from_date) {
                messages.push(Message {
                    body: String::new(),
                    internal_date: date,
                });
                continue;
            }
            let Some(m) = messages.last_mut() else {
                return Err("not a valid mbox file".into());
            };
            m.body.push_str(line);
            m.body.push_str("\r\n");
        }
        match messages.last() {
            None => Err("empty mbox file".into()),
            Some(m) if m.body.is_empty() => Err("mbox file ends with a From line".into()),
            Some(_) => Ok(Source { messages, next: 0 }),
        }
    }

    /// The next message, wrapping around like imaptest does for `messages: N` > mbox size.
    pub fn next_message(&mut self) -> Message {
        let m = self.messages[self.next % self.messages.len()].clone();
        self.next += 1;
        m
    }

    /// True once every message was handed out (used by `messages: all`).
    pub fn eof(&self) -> bool {
        self.next >= self.messages.len()
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `sender Www Mmm dd hh:mm[:ss] [zone] yyyy [zone]` → IMAP date-time. Without a numeric zone
/// the time is taken as UTC (imaptest would use the local zone of its machine; ours is UTC).
fn from_line_date(rest: &str) -> Option<String> {
    let mut w = rest.split_whitespace().skip(1);
    let _weekday = w.next()?;
    let month = w.next()?;
    let mon = MONTHS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(month))
        .copied()?;
    let day: u32 = w.next()?.parse().ok()?;
    let time = w.next()?;
    let mut hms = time.split(':').map(|x| x.parse::<u32>());
    let (h, m) = (hms.next()?.ok()?, hms.next()?.ok()?);
    let s = hms.next().map(|x| x.ok()).unwrap_or(Some(0))?;
    let mut zone = "+0000".to_string();
    let mut year = None;
    for tok in w {
        if let Ok(y) = tok.parse::<u32>()
            && tok.len() == 4
        {
            year = Some(y);
            continue;
        }
        if (tok.starts_with('+') || tok.starts_with('-')) && tok.len() == 5 {
            zone = tok.to_string();
        }
    }
    Some(format!(
        "{day:02}-{mon}-{} {h:02}:{m:02}:{s:02} {zone}",
        year?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_messages_and_keeps_separator_line() {
        let mut src = Source::parse(
            "From a@b Fri Feb 22 17:06:23 2008\nSubject: 1\n\nbody\n\n\
             From x Sat Mar 24 23:00:00 2007 +0200\nSubject: 2\n\nb2\n",
        )
        .unwrap();
        let m1 = src.next_message();
        assert_eq!(m1.body, "Subject: 1\r\n\r\nbody\r\n\r\n");
        assert_eq!(m1.internal_date, "22-Feb-2008 17:06:23 +0000");
        let m2 = src.next_message();
        assert_eq!(m2.internal_date, "24-Mar-2007 23:00:00 +0200");
        assert!(src.eof());
        assert_eq!(src.next_message().body, m1.body, "wraps around");
    }

    #[test]
    fn rejects_non_mbox() {
        assert!(Source::parse("Subject: x\n").is_err());
        assert!(Source::parse("").is_err());
    }
}
