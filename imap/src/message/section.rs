//! BODY[section] (RFC 9051 §6.4.5 FETCH `BODY[<section>]<<partial>>`).

use super::mime::{self, Entity, Kind};

/// What a section names inside the part it designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionKind {
    /// The part's body (`BODY[]`, `BODY[1.2]`).
    Full,
    /// `HEADER`: the message header including the blank line.
    Header,
    /// `HEADER.FIELDS (...)`: the named fields only, plus the blank line.
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (...)`: all fields but the named ones, plus the blank line.
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`: the message body without its header.
    Text,
    /// `MIME`: the MIME header of a body part (only after a part number).
    Mime,
}

/// A parsed section specification: part path (`1.2` → `[1, 2]`) and what to take there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub kind: SectionKind,
}

/// Parses the header-list `(name name ...)` of HEADER.FIELDS: astrings (atoms or quoted
/// strings, RFC 9051 §9 `header-list`).
fn parse_header_list(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let b = inner.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'"' => {
                let mut name = Vec::new();
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            name.push(*b.get(i + 1)?);
                            i += 2;
                        }
                        c => {
                            name.push(c);
                            i += 1;
                        }
                    }
                }
                i += 1;
                names.push(String::from_utf8(name).ok()?);
            }
            _ => {
                let start = i;
                while i < b.len() && b[i] != b' ' {
                    // ASTRING-CHAR excludes list and quoted specials (RFC 9051 §9).
                    if matches!(b[i], b'(' | b')' | b'{' | b'"' | b'\\' | b'%' | b'*')
                        || b[i] < 0x21
                        || b[i] > 0x7e
                    {
                        return None;
                    }
                    i += 1;
                }
                names.push(inner[start..i].to_string());
            }
        }
    }
    // header-list = "(" header-fld-name *(SP header-fld-name) ")": at least one name.
    (!names.is_empty()).then_some(names)
}

/// Parses the text inside `BODY[...]` (RFC 9051 §9 `section-spec`): `""`, `HEADER`, `TEXT`,
/// `HEADER.FIELDS (a b)`, `HEADER.FIELDS.NOT (a b)`, `1.2`, `1.2.MIME`, `3.HEADER`, ...
/// Keywords are case-insensitive. `None` for anything invalid.
pub fn parse_section(spec: &str) -> Option<Section> {
    let mut part = Vec::new();
    let mut rest = spec;
    // section-part = nz-number *("." nz-number)
    while let Some(c) = rest.as_bytes().first()
        && c.is_ascii_digit()
    {
        let n_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let digits = &rest[..n_len];
        if digits.starts_with('0') {
            return None;
        }
        part.push(digits.parse::<u32>().ok()?);
        rest = &rest[n_len..];
        if rest.is_empty() {
            return Some(Section {
                part,
                kind: SectionKind::Full,
            });
        }
        rest = rest.strip_prefix('.')?;
    }
    if rest.is_empty() {
        // "" is the whole message; "1." is invalid.
        return part.is_empty().then_some(Section {
            part,
            kind: SectionKind::Full,
        });
    }
    let upper = rest.to_ascii_uppercase();
    let kind = if upper == "HEADER" {
        SectionKind::Header
    } else if upper == "TEXT" {
        SectionKind::Text
    } else if upper == "MIME" {
        // section-text = ... / "MIME" only after a section-part.
        if part.is_empty() {
            return None;
        }
        SectionKind::Mime
    } else if upper.starts_with("HEADER.FIELDS.NOT ") || upper.starts_with("HEADER.FIELDS.NOT(") {
        SectionKind::HeaderFieldsNot(parse_header_list(&rest[17..])?)
    } else if upper.starts_with("HEADER.FIELDS ") || upper.starts_with("HEADER.FIELDS(") {
        SectionKind::HeaderFields(parse_header_list(&rest[13..])?)
    } else {
        return None;
    };
    Some(Section { part, kind })
}

/// Finds the entity a part path designates (RFC 9051 §6.4.5): each number selects a body
/// part of a multipart, and "1" of a non-multipart entity is that entity's body; a number
/// after a message/rfc822 part applies to the encapsulated message.
pub(crate) fn locate(raw: &[u8], path: &[u32]) -> Option<Entity> {
    let mut node = Entity::message(raw);
    for (i, &n) in path.iter().enumerate() {
        if i > 0 {
            match node.kind {
                Kind::Message => node = node.inner(raw)?,
                // A leaf body part has no sub-parts.
                Kind::Leaf => return None,
                Kind::Multipart => {}
            }
        }
        if node.kind == Kind::Multipart {
            let idx = usize::try_from(n).ok()?.checked_sub(1)?;
            node = node.children(raw).into_iter().nth(idx)?;
        } else if n != 1 {
            return None;
        }
    }
    Some(node)
}

fn filter_fields(hdr: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(hdr.len().min(4096));
    for f in mime::fields(hdr) {
        let listed = names
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n.as_bytes()));
        if listed == keep {
            out.extend_from_slice(f.raw);
            if !f.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    // The subset keeps the header's terminating blank line (RFC 9051 §6.4.5).
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of a section of a raw message (RFC 9051 §6.4.5). A part that does not exist,
/// or HEADER/TEXT of a part that is not a message/rfc822, gives empty bytes.
pub fn extract(raw: &[u8], section: &Section) -> Vec<u8> {
    // Fast paths for the top level: no MIME parsing at all.
    if section.part.is_empty() {
        let bs = mime::body_start(raw, 0, raw.len());
        return match &section.kind {
            SectionKind::Full => raw.to_vec(),
            SectionKind::Header => raw[..bs].to_vec(),
            SectionKind::Text => raw[bs..].to_vec(),
            SectionKind::HeaderFields(n) => filter_fields(&raw[..bs], n, true),
            SectionKind::HeaderFieldsNot(n) => filter_fields(&raw[..bs], n, false),
            SectionKind::Mime => Vec::new(),
        };
    }
    let Some(node) = locate(raw, &section.part) else {
        return Vec::new();
    };
    match &section.kind {
        SectionKind::Full => node.body(raw).to_vec(),
        SectionKind::Mime => node.header(raw).to_vec(),
        kind => {
            // HEADER, HEADER.FIELDS and TEXT after a part number name the encapsulated message
            // of a message/rfc822 part.
            let Some(msg) = node.inner(raw) else {
                return Vec::new();
            };
            match kind {
                SectionKind::Header => msg.header(raw).to_vec(),
                SectionKind::Text => msg.body(raw).to_vec(),
                SectionKind::HeaderFields(n) => filter_fields(msg.header(raw), n, true),
                SectionKind::HeaderFieldsNot(n) => filter_fields(msg.header(raw), n, false),
                SectionKind::Full | SectionKind::Mime => unreachable!("handled above"),
            }
        }
    }
}

/// `<start.len>` partial (RFC 9051 §6.4.5): the octets from `start`, at most `len` of them;
/// empty when `start` is past the end.
pub fn partial(bytes: &[u8], start: u32, len: Option<u32>) -> &[u8] {
    let start = (start as usize).min(bytes.len());
    let end = match len {
        Some(l) => start.saturating_add(l as usize).min(bytes.len()),
        None => bytes.len(),
    };
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(part: &[u32], kind: SectionKind) -> Section {
        Section {
            part: part.to_vec(),
            kind,
        }
    }

    fn ex(raw: &str, spec: &str) -> String {
        String::from_utf8(extract(raw.as_bytes(), &parse_section(spec).expect(spec))).unwrap()
    }

    #[test]
    fn parses_specs() {
        assert_eq!(parse_section(""), Some(sec(&[], SectionKind::Full)));
        assert_eq!(parse_section("header"), Some(sec(&[], SectionKind::Header)));
        assert_eq!(parse_section("Text"), Some(sec(&[], SectionKind::Text)));
        assert_eq!(parse_section("1.2"), Some(sec(&[1, 2], SectionKind::Full)));
        assert_eq!(
            parse_section("1.2.MIME"),
            Some(sec(&[1, 2], SectionKind::Mime))
        );
        assert_eq!(
            parse_section("3.header"),
            Some(sec(&[3], SectionKind::Header))
        );
        assert_eq!(
            parse_section("1.2.HEADER.FIELDS (From \"To\")"),
            Some(sec(
                &[1, 2],
                SectionKind::HeaderFields(vec!["From".into(), "To".into()])
            ))
        );
        assert_eq!(
            parse_section("header.fields.not (date date)"),
            Some(sec(
                &[],
                SectionKind::HeaderFieldsNot(vec!["date".into(), "date".into()])
            ))
        );
        for bad in [
            "MIME",
            "0",
            "01",
            "1.",
            "1..2",
            "HEADER.FIELDS ()",
            "HEADER.FIELDS",
            "BOGUS",
            "1.TEXTX",
            "HEADER.FIELDS (a",
        ] {
            assert_eq!(parse_section(bad), None, "{bad}");
        }
    }

    const SIMPLE: &str = "From: A <a@x>\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nSubject: s1\r\n\r\nbody1\r\n\r\n";

    #[test]
    fn top_level_sections() {
        assert_eq!(ex(SIMPLE, ""), SIMPLE);
        assert_eq!(
            ex(SIMPLE, "HEADER"),
            "From: A <a@x>\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nSubject: s1\r\n\r\n"
        );
        assert_eq!(ex(SIMPLE, "TEXT"), "body1\r\n\r\n");
        assert_eq!(
            ex(SIMPLE, "HEADER.FIELDS (subject FROM)"),
            "From: A <a@x>\r\nSubject: s1\r\n\r\n"
        );
        assert_eq!(
            ex(SIMPLE, "HEADER.FIELDS (from from)"),
            "From: A <a@x>\r\n\r\n"
        );
        assert_eq!(
            ex(SIMPLE, "HEADER.FIELDS.NOT (date)"),
            "From: A <a@x>\r\nSubject: s1\r\n\r\n"
        );
        assert_eq!(ex(SIMPLE, "HEADER.FIELDS (xyz)"), "\r\n");
        // Part 1 of a non-multipart message is its body; part 2 does not exist.
        assert_eq!(ex(SIMPLE, "1"), "body1\r\n\r\n");
        assert_eq!(ex(SIMPLE, "2"), "");
        assert_eq!(ex(SIMPLE, "1.1"), "");
        // Header without body: HEADER.FIELDS still ends with the blank line.
        assert_eq!(
            ex("Subject: x", "HEADER.FIELDS (subject)"),
            "Subject: x\r\n\r\n"
        );
        assert_eq!(ex("Subject: x\r\n", "TEXT"), "");
    }

    #[test]
    fn folded_fields_are_kept_whole() {
        let m = "Subject: a\r\n b\r\nTo: t@x\r\n\r\n";
        assert_eq!(ex(m, "HEADER.FIELDS (SUBJECT)"), "Subject: a\r\n b\r\n\r\n");
        assert_eq!(ex(m, "HEADER.FIELDS.NOT (SUBJECT)"), "To: t@x\r\n\r\n");
    }

    const MIXED: &str = "From: u@d\r\nContent-Type: multipart/mixed; boundary=\"foo\r\n bar\"\r\n\r\nprologue\r\n\r\n\
--foo bar\r\nContent-Type: text/x-myown; charset=us-ascii\r\n\r\nhello\r\n\r\n\
--foo bar\r\nContent-Type: message/rfc822\r\n\r\nFrom: sub@d\r\nSubject: submsg\r\n\
Content-Type: multipart/alternative; boundary=\"sub1\"\r\n\r\nSub prologue\r\n--sub1\r\nContent-Type: text/html\r\n\r\n\
<p>Hi</p>\r\n\r\n--sub1\r\nContent-Type: text/plain\r\n\r\nHi again\r\n\r\n--sub1--\r\nSub epilogue\r\n\r\n\
--foo bar--\r\nepilogue\r\n";

    #[test]
    fn multipart_and_encapsulated_parts() {
        assert_eq!(ex(MIXED, "1"), "hello\r\n");
        assert_eq!(
            ex(MIXED, "1.MIME"),
            "Content-Type: text/x-myown; charset=us-ascii\r\n\r\n"
        );
        assert_eq!(ex(MIXED, "2.MIME"), "Content-Type: message/rfc822\r\n\r\n");
        let inner = ex(MIXED, "2");
        assert!(
            inner.starts_with("From: sub@d\r\n") && inner.ends_with("--sub1--\r\nSub epilogue\r\n"),
            "{inner}"
        );
        assert_eq!(
            ex(MIXED, "2.HEADER"),
            "From: sub@d\r\nSubject: submsg\r\nContent-Type: multipart/alternative; boundary=\"sub1\"\r\n\r\n"
        );
        assert_eq!(
            ex(MIXED, "2.HEADER.FIELDS (from subject X-foo)"),
            "From: sub@d\r\nSubject: submsg\r\n\r\n"
        );
        assert_eq!(
            ex(MIXED, "2.HEADER.FIELDS.NOT (from subject)"),
            "Content-Type: multipart/alternative; boundary=\"sub1\"\r\n\r\n"
        );
        assert!(ex(MIXED, "2.TEXT").starts_with("Sub prologue\r\n--sub1\r\n"));
        assert_eq!(ex(MIXED, "2.1"), "<p>Hi</p>\r\n");
        assert_eq!(ex(MIXED, "2.1.MIME"), "Content-Type: text/html\r\n\r\n");
        assert_eq!(ex(MIXED, "2.2"), "Hi again\r\n");
        assert_eq!(ex(MIXED, "2.3"), "");
        assert_eq!(ex(MIXED, "3"), "");
        // HEADER / TEXT of a part that is not a message.
        assert_eq!(ex(MIXED, "1.HEADER"), "");
        assert_eq!(ex(MIXED, "1.TEXT"), "");
        assert!(ex(MIXED, "TEXT").starts_with("prologue\r\n\r\n--foo bar\r\n"));
    }

    const NESTED: &str = "From: a@d\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@d\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@d\r\nSubject: deep\r\n\r\nHello\r\n";

    #[test]
    fn message_rfc822_twice() {
        assert_eq!(
            ex(NESTED, "1"),
            "From: b@d\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d\r\nSubject: deep\r\n\r\nHello\r\n"
        );
        assert_eq!(
            ex(NESTED, "1.HEADER"),
            "From: b@d\r\nContent-Type: message/rfc822\r\n\r\n"
        );
        assert_eq!(
            ex(NESTED, "1.1"),
            "From: c@d\r\nSubject: deep\r\n\r\nHello\r\n"
        );
        assert_eq!(
            ex(NESTED, "1.1.HEADER"),
            "From: c@d\r\nSubject: deep\r\n\r\n"
        );
        assert_eq!(ex(NESTED, "1.1.TEXT"), "Hello\r\n");
        assert_eq!(ex(NESTED, "1.1.1"), "Hello\r\n");
        assert_eq!(ex(NESTED, "1.2"), "");
    }

    #[test]
    fn digest_parts_with_empty_mime_header() {
        let m = "Content-Type: message/rfc822\r\n\r\nSubject: d\r\nContent-Type: multipart/digest; boundary=\"foo\"\r\n\r\n\
                 --foo \r\n\r\nFrom: m1@x\r\n\r\nm1 body\r\n\r\n--foo\r\nX-Mime: m2\r\n\r\nFrom: m2@x\r\n\r\nm2 body\r\n\r\n--foo--\r\n";
        assert_eq!(ex(m, "1.1"), "From: m1@x\r\n\r\nm1 body\r\n");
        assert_eq!(ex(m, "1.1.MIME"), "\r\n");
        assert_eq!(ex(m, "1.1.HEADER"), "From: m1@x\r\n\r\n");
        assert_eq!(ex(m, "1.1.TEXT"), "m1 body\r\n");
        assert_eq!(ex(m, "1.2.MIME"), "X-Mime: m2\r\n\r\n");
        assert_eq!(ex(m, "1.2.TEXT"), "m2 body\r\n");
    }

    #[test]
    fn partial_ranges() {
        let b = b"body22\r\n";
        assert_eq!(partial(b, 0, Some(3)), b"bod");
        assert_eq!(partial(b, 3, Some(3)), b"y22");
        assert_eq!(partial(b, 6, Some(100)), b"\r\n");
        assert_eq!(partial(b, 8, Some(1)), b"");
        assert_eq!(partial(b, 100, None), b"");
        assert_eq!(partial(b, 2, None), b"dy22\r\n");
        assert_eq!(partial(b, u32::MAX, Some(u32::MAX)), b"");
    }
}
