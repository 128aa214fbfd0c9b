//! SEARCH keys that look inside messages (RFC 9051 §6.4.4): HEADER / FROM / TO / CC / BCC /
//! SUBJECT, BODY, TEXT and the SENT* dates. Matching is a case-insensitive substring match on
//! decoded text (transfer encodings removed, charsets converted to UTF-8, RFC 2047 words
//! decoded).

use super::address;
use super::datetime::{MessageDate, parse_rfc5322_date};
use super::decode;
use super::mime::{self, Entity, Kind};

/// Address fields are matched on their normalised `Name <mailbox@host>` form (groups as
/// `name: ...;`), so comments and quoting do not get in the way (as Dovecot does).
const ADDRESS_FIELDS: [&str; 11] = [
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "reply-to",
    "resent-from",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-sender",
];

/// Case folding for comparisons (simple Unicode lowercase).
fn fold(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

fn header_of(raw: &[u8]) -> &[u8] {
    &raw[..mime::body_start(raw, 0, raw.len())]
}

/// The searchable text of one header value.
fn field_text(name: &[u8], value: &[u8]) -> String {
    if ADDRESS_FIELDS
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
    {
        let list = address::parse(value);
        if !list.is_empty() {
            return address::search_text(&list);
        }
    }
    decode::header_text(&mime::unfold(value))
}

/// `HEADER field needle` (and FROM, TO, CC, BCC, SUBJECT): true when a `field` header of the
/// top-level message contains `needle`; an empty needle matches any message that has the
/// field (RFC 9051 §6.4.4).
pub fn header_contains(raw: &[u8], field: &str, needle: &str) -> bool {
    let needle = fold(needle);
    mime::fields(header_of(raw))
        .filter(|f| f.name.eq_ignore_ascii_case(field.as_bytes()))
        .any(|f| needle.is_empty() || fold(&field_text(f.name, f.value)).contains(&needle))
}

/// Whether a whole header block (decoded) contains the folded needle.
fn header_block_contains(hdr: &[u8], needle: &str) -> bool {
    mime::fields(hdr).any(|f| {
        fold(&String::from_utf8_lossy(f.name)).contains(needle)
            || fold(&field_text(f.name, f.value)).contains(needle)
    })
}

fn entity_body_contains(raw: &[u8], e: &Entity, needle: &str) -> bool {
    match e.kind {
        Kind::Multipart => e
            .children(raw)
            .iter()
            .any(|c| entity_body_contains(raw, c, needle)),
        // The header of an attached message is part of the outer message's body.
        Kind::Message => e.inner(raw).is_some_and(|m| {
            header_block_contains(m.header(raw), needle) || entity_body_contains(raw, &m, needle)
        }),
        Kind::Leaf => {
            if !e.ctype.is_type("text") && !e.ctype.is_type("message") {
                // Binary attachments are not text to search.
                return false;
            }
            fold(&leaf_text(raw, e)).contains(needle)
        }
    }
}

/// A leaf's content as text: transfer encoding removed, charset converted to UTF-8.
pub fn leaf_text(raw: &[u8], e: &Entity) -> String {
    let body = e.body(raw);
    let cte = mime::first_field(e.header(raw), "content-transfer-encoding").map(mime::unfold);
    let decoded = match cte.map(|c| c.to_ascii_lowercase()).as_deref() {
        Some(b"base64") => decode::base64(body),
        Some(b"quoted-printable") => decode::quoted_printable(body),
        _ => body.to_vec(),
    };
    decode::to_utf8(e.ctype.param("charset").unwrap_or_default(), &decoded)
}

/// `BODY needle`: the decoded text of the message's body parts contains `needle`
/// (RFC 9051 §6.4.4). Non-text leaves are skipped; headers of attached messages count.
pub fn body_contains(raw: &[u8], needle: &str) -> bool {
    let needle = fold(needle);
    if needle.is_empty() {
        return true;
    }
    entity_body_contains(raw, &Entity::message(raw), &needle)
}

/// `TEXT needle`: the header or the body contains `needle` (RFC 9051 §6.4.4).
pub fn text_contains(raw: &[u8], needle: &str) -> bool {
    let folded = fold(needle);
    folded.is_empty()
        || header_block_contains(header_of(raw), &folded)
        || body_contains(raw, needle)
}

/// The first `Date:` header, parsed (RFC 5322 §3.3).
pub fn message_date(raw: &[u8]) -> Option<MessageDate> {
    mime::first_field(header_of(raw), "date").and_then(parse_rfc5322_date)
}

/// The `Date:` header's wall-clock time in its own timezone, as seconds since the epoch as
/// if it were UTC: `sent_date(raw)?.div_euclid(86_400)` is the day that SENTBEFORE / SENTON /
/// SENTSINCE compare ("disregarding time and timezone", RFC 9051 §6.4.4). For the instant
/// (SORT DATE) use [`sent_date_utc`].
pub fn sent_date(raw: &[u8]) -> Option<i64> {
    message_date(raw).map(|d| d.local)
}

/// The `Date:` header as a Unix instant (UTC), for SORT DATE (RFC 5256 §3: when absent or
/// invalid, the caller uses INTERNALDATE).
pub fn sent_date_utc(raw: &[u8]) -> Option<i64> {
    message_date(raw).map(|d| d.utc())
}

/// The `Date:` header's day in its own timezone: (year, month, day).
pub fn sent_day(raw: &[u8]) -> Option<(i32, u32, u32)> {
    message_date(raw).map(|d| d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::datetime::days_from_civil;

    const ADDRS: [&str; 5] = [
        "From: user-from@domain.org\r\nTo: user-to@domain.org\r\n\r\nbody\r\n",
        "From: RealFrom <user-from@domain.org>\r\nCc: RealCc <user-cc@domain.org>\r\n\r\nbody2\r\n",
        "From: <user-from (comment)@ (comment) domain.org>\r\n\r\nbody3\r\n",
        "From: user-from@domain.org (RealFrom)\r\n\r\nbody4\r\n",
        "From: RealFrom <user-from@domain.org>\r\nTo: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;\r\n\r\nbody6\r\n",
    ];

    fn hits(field: &str, needle: &str) -> Vec<usize> {
        (0..ADDRS.len())
            .filter(|&i| header_contains(ADDRS[i].as_bytes(), field, needle))
            .collect()
    }

    #[test]
    fn address_searches() {
        assert_eq!(hits("from", "user-from@domain.org"), vec![0, 1, 2, 3, 4]);
        assert_eq!(hits("from", "realfrom"), vec![1, 3, 4]);
        assert_eq!(hits("FROM", "ser-FRO"), vec![0, 1, 2, 3, 4]);
        assert_eq!(hits("from", "comment"), Vec::<usize>::new());
        assert_eq!(hits("to", ""), vec![0, 4]);
        assert_eq!(hits("cc", "ealc"), vec![1]);
        assert_eq!(hits("to", "groupname"), vec![4]);
        assert_eq!(hits("to", "groupname2"), vec![4]);
        assert_eq!(hits("to", "groupuser3"), vec![4]);
        assert_eq!(hits("to", "groupuser4"), Vec::<usize>::new());
    }

    #[test]
    fn header_searches() {
        let m1 = b"Subject: hello beautiful\r\n world\r\n\r\nbody\r\n";
        let m2 = b"X-Extra: hello beautiful header\r\nX-Extra: another one\r\n\r\nbody\r\n";
        assert!(header_contains(m1, "subject", "beautiful world"));
        assert!(header_contains(m1, "Subject", "EAUTIFUL WORL"));
        assert!(!header_contains(m2, "subject", ""));
        assert!(header_contains(m2, "x-extra", ""));
        assert!(header_contains(m2, "x-extra", "another"));
        assert!(!header_contains(m2, "x-extra", "body"));
        let enc = b"Subject: =?iso-8859-1?q?caf=E9_cr=E8me?=\r\n\r\n";
        assert!(header_contains(enc, "subject", "CAFÉ"));
        assert!(header_contains(
            b"Subject: NiL\r\n\r\nnil\r\n",
            "subject",
            "nil"
        ));
    }

    #[test]
    fn body_and_text() {
        let m2 = b"Subject: qwertyuiop\r\n\r\nasdfghjkl\r\n";
        let m3 = b"X-Header: qwertyuiop\r\n\r\nzxcvbnm\r\n";
        assert!(body_contains(m2, "sdfghjk"));
        assert!(!body_contains(m2, "qwertyuiop"));
        assert!(text_contains(m2, "wertyuio"));
        assert!(text_contains(m3, "qwertyuiop"));
        assert!(text_contains(m3, "x-header"));
        assert!(!text_contains(m3, "asdf"));
        assert!(body_contains(m3, ""));
    }

    #[test]
    fn decoded_body_parts() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 cr=\r\n=E8me\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naMOpbGxv\r\n\
--b\r\nContent-Type: application/octet-stream\r\n\r\nsecretbinary\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner subject\r\n\r\ninner body\r\n--b--\r\n";
        assert!(body_contains(m, "CAFÉ CRÈME"));
        assert!(body_contains(m, "hÉllo"));
        assert!(!body_contains(m, "secretbinary"));
        assert!(body_contains(m, "inner subject"));
        assert!(body_contains(m, "inner body"));
        assert!(!body_contains(m, "boundary"));
        assert!(text_contains(m, "boundary"));
    }

    #[test]
    fn sent_dates() {
        let m = b"Date: Sun, 25 Mar 2007 00:00:00 +0200\r\n\r\n";
        assert_eq!(sent_day(m), Some((2007, 3, 25)));
        assert_eq!(
            sent_date(m).map(|s| s.div_euclid(86_400)),
            Some(days_from_civil(2007, 3, 25))
        );
        assert_eq!(sent_date_utc(m), Some(1_174_773_600));
        let m = b"Date: Mon, 29 Oct 2007 00:00:00 +0200\r\n\r\n";
        assert_eq!(sent_day(m), Some((2007, 10, 29)));
        assert_eq!(sent_date(b"Subject: none\r\n\r\n"), None);
        assert_eq!(sent_date(b"Date: not a date\r\n\r\n"), None);
    }
}
