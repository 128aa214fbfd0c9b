//! Text helpers for scripts: literals, quoting, mailbox URLs, short excerpts in reports.

use crate::args::{self, Arg};

/// Split command text at embedded literals: `(head ending in "{n}", Some(literal))` pieces,
/// then the tail `(text, None)` (imaptest's `command_get_cmdline`).
pub fn split_literals(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut head = String::new();
    while let Some(nl) = rest.find('\n') {
        let line = &rest[..nl];
        let line_nocr = line.strip_suffix('\r').unwrap_or(line);
        match crate::conn::literal_size(&args::to_bytes(line_nocr)) {
            Some(n) if rest[nl + 1..].chars().count() >= n && preceded_by_space(line_nocr) => {
                head.push_str(line_nocr);
                let lit = rest[nl + 1..].chars().take(n).collect::<String>();
                let lit_bytes: usize = lit.chars().count();
                let skip: usize = rest[nl + 1..]
                    .chars()
                    .take(lit_bytes)
                    .map(char::len_utf8)
                    .sum();
                out.push((std::mem::take(&mut head), Some(lit)));
                rest = &rest[nl + 1 + skip..];
            }
            _ => {
                head.push_str(&rest[..=nl]);
                rest = &rest[nl + 1..];
            }
        }
    }
    head.push_str(rest);
    out.push((head, None));
    out
}

pub(super) fn preceded_by_space(line: &str) -> bool {
    let Some(open) = line.rfind('{') else {
        return false;
    };
    let before = &line[..open];
    let before = before.strip_suffix('~').unwrap_or(before);
    before.ends_with(' ') || before.is_empty()
}

/// `mailbox [(flags)] ["date"]` followed by a literal or CATENATE: the command carries its
/// own message.
pub(super) fn append_has_body(args_text: &str) -> bool {
    let Ok(a) = args::parse(args_text) else {
        return false;
    };
    let mut i = 0;
    if a.is_empty() {
        return false;
    }
    if matches!(a.get(i + 1), Some(Arg::List(_))) {
        i += 1;
    }
    if matches!(a.get(i + 1), Some(Arg::Str(_))) {
        i += 1;
    }
    match a.get(i + 1) {
        Some(Arg::Literal(_)) => true,
        Some(Arg::Atom(s)) => s.eq_ignore_ascii_case("catenate"),
        _ => false,
    }
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The mailbox as an IMAP URL path segment (RFC 5092), for `$mailbox_url`.
pub(super) fn mailbox_url(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn first_line(text: &str) -> String {
    let line = text.split("\r\n").next().unwrap_or(text);
    let more = if line.len() < text.len() { " …" } else { "" };
    format!("{}{more}", truncate(&args::printable(line), 300))
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}… ({} chars)", s.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_split_out() {
        let p = split_literals("append box {3}\r\nabc (x ~{2}\r\n\0y)");
        assert_eq!(p[0], ("append box {3}".into(), Some("abc".into())));
        assert_eq!(p[1], (" (x ~{2}".into(), Some("\0y".into())));
        assert_eq!(p[2], (")".into(), None));
        assert_eq!(split_literals("noop"), vec![("noop".to_string(), None)]);
        let p = split_literals(&args::latin1(b"a {2}\r\n\xe4\xe5 b"));
        assert_eq!(p[0].1.as_deref(), Some(args::latin1(b"\xe4\xe5").as_str()));
        assert_eq!(p[1].0, " b");
    }

    #[test]
    fn append_body_detection() {
        assert!(!append_has_body("box"));
        assert!(!append_has_body(
            "box (\\seen) \"1-Jan-2020 00:00:00 +0000\""
        ));
        assert!(append_has_body("box {3}\r\nabc"));
        assert!(append_has_body("box (\\seen) {3}\r\nabc"));
        assert!(append_has_body("box catenate (text {1}\r\nx)"));
    }

    #[test]
    fn url_and_quote() {
        assert_eq!(mailbox_url("imap test"), "imap%20test");
        assert_eq!(quote("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
