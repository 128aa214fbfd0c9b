//! CATENATE (RFC 4469): an APPEND message built from literal text and IMAP URLs naming
//! (parts of) messages already on the server (RFC 5092 URLs, relative to this server).

use super::cursor::{Cursor, PResult, ParseError, bad};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT literal`: bytes to include as they are.
    Text(Vec<u8>),
    /// `URL "..."`: the URL as sent, resolved by the command.
    Url(String),
}

/// After `CATENATE `: `(TEXT {n}... URL "..." ...)` (RFC 4469 §5).
pub(super) fn parse_catenate(c: &mut Cursor<'_>) -> PResult<Vec<CatPart>> {
    let parts = c.paren_list(|c| {
        let kind = c.atom()?.to_ascii_uppercase();
        c.sp()?;
        match kind.as_str() {
            "TEXT" => Ok(CatPart::Text(c.string()?)),
            "URL" => String::from_utf8(c.astring()?)
                .map(CatPart::Url)
                .map_err(|_| ParseError("URL must be UTF-8".into())),
            other => bad(format!("unknown CATENATE part {other}")),
        }
    })?;
    if parts.is_empty() {
        return bad("CATENATE needs at least one part");
    }
    Ok(parts)
}

/// An IMAP URL naming a message or part of one on this server (RFC 5092 §6:
/// `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`, or the same after
/// `imap://authority`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapUrl {
    /// The mailbox name, percent-decoded (UTF-8, RFC 5092 §3.2).
    pub mailbox: String,
    pub uidvalidity: Option<u32>,
    pub uid: u32,
    /// The section as FETCH spells it (`HEADER`, `1.MIME`...), percent-decoded.
    pub section: Option<String>,
    /// RFC 5092 §6: `;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `;NAME=value` with NAME compared case-insensitively.
fn param<'a>(segment: &'a str, name: &str) -> Option<&'a str> {
    let rest = segment.strip_prefix(';')?;
    let (key, value) = rest.split_once('=')?;
    key.eq_ignore_ascii_case(name).then_some(value)
}

pub fn parse_imap_url(url: &str) -> Option<ImapUrl> {
    let path = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("imap://") => {
            let rest = &url[7..];
            &rest[rest.find('/')?..]
        }
        _ => url,
    };
    let path = path.strip_prefix('/')?;
    let mut segments = path.split('/');
    let mailbox_segment = segments.next()?;
    let (mailbox, uidvalidity) = match mailbox_segment.split_once(';') {
        Some((name, v)) => (
            name,
            Some(param(&format!(";{v}"), "UIDVALIDITY")?.parse().ok()?),
        ),
        None => (mailbox_segment, None),
    };
    let mailbox = percent_decode(mailbox).filter(|m| !m.is_empty())?;
    let uid = param(segments.next()?, "UID")?
        .parse()
        .ok()
        .filter(|&u| u > 0)?;
    let (mut section, mut partial) = (None, None);
    for segment in segments {
        if let Some(s) = param(segment, "SECTION") {
            section = Some(percent_decode(s)?.to_ascii_uppercase());
        } else if let Some(p) = param(segment, "PARTIAL") {
            partial = Some(match p.split_once('.') {
                Some((o, l)) => (o.parse().ok()?, Some(l.parse().ok()?)),
                None => (p.parse().ok()?, None),
            });
        } else {
            return None;
        }
    }
    Some(ImapUrl {
        mailbox,
        uidvalidity,
        uid,
        section,
        partial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let mut c = Cursor::new(b"(TEXT {3}\r\nabc url \"/INBOX/;uid=1\" text ~{1}\r\n\0)");
        assert_eq!(
            parse_catenate(&mut c).unwrap(),
            vec![
                CatPart::Text(b"abc".to_vec()),
                CatPart::Url("/INBOX/;uid=1".into()),
                CatPart::Text(vec![0]),
            ]
        );
        assert!(parse_catenate(&mut Cursor::new(b"()")).is_err());
        assert!(parse_catenate(&mut Cursor::new(b"(FILE x)")).is_err());
    }

    #[test]
    fn urls() {
        let u = parse_imap_url("/imap%20test;UIDVALIDITY=7/;uid=3/;section=header.fields%20(from)")
            .unwrap();
        assert_eq!(u.mailbox, "imap test");
        assert_eq!((u.uidvalidity, u.uid), (Some(7), 3));
        assert_eq!(u.section.as_deref(), Some("HEADER.FIELDS (FROM)"));
        let u = parse_imap_url("imap://user@host/INBOX/;UID=9/;PARTIAL=100.5").unwrap();
        assert_eq!((u.mailbox.as_str(), u.uid), ("INBOX", 9));
        assert_eq!(u.partial, Some((100, Some(5))));
        for broken in [
            "INBOX/;uid=1",
            "/INBOX",
            "/INBOX/;uid=0",
            "/INBOX;uidvalidity=x/;uid=1",
            "/INBOX/;uid=1/;frob=2",
            "/%zz/;uid=1",
        ] {
            assert_eq!(parse_imap_url(broken), None, "{broken}");
        }
    }
}
