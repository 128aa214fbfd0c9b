//! IMAP string encoding (RFC 9051 §4.3): quoted strings, literals, NIL.

/// Largest string written as a quoted string; longer values go out as literals, which
/// clients parse without scanning for escapes.
const MAX_QUOTED: usize = 1024;

/// True when `v` can be sent as a quoted string: 7-bit TEXT-CHARs only (RFC 9051 §4.3,
/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, no CR, LF or NUL, no 8-bit without UTF8=ACCEPT).
fn quotable(v: &[u8]) -> bool {
    v.len() <= MAX_QUOTED
        && v.iter()
            .all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n')
}

fn push_quoted(out: &mut Vec<u8>, v: &[u8]) {
    out.reserve(v.len() + 2);
    out.push(b'"');
    for &b in v {
        // RFC 9051 §4.3: quoted-specials are escaped with a backslash.
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends a synchronising literal `{n}\r\n` followed by the bytes (RFC 9051 §4.3).
///
/// RFC 9051 §4.3: a literal never carries NUL, only a `literal8` may (and only BINARY[]
/// answers with one). MIME "binary" content holding NUL is therefore sent with each NUL
/// as 0x80, as Dovecot does: the size stays the same, the client gets a valid response,
/// and BINARY[] (RFC 3516) gives the exact octets to the clients that ask.
pub fn write_literal(out: &mut Vec<u8>, v: &[u8]) {
    let start = literal_header(out, v);
    if v.contains(&0) {
        out[start..]
            .iter_mut()
            .filter(|b| **b == 0)
            .for_each(|b| *b = 0x80);
    }
}

/// Appends a `literal8` `~{n}\r\n` (RFC 3516 §4.2, used for BINARY[] data): exact octets.
pub fn write_literal8(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'~');
    literal_header(out, v);
}

/// `{n}\r\n` then the octets; returns where they start in `out`.
fn literal_header(out: &mut Vec<u8>, v: &[u8]) -> usize {
    out.reserve(v.len() + 16);
    out.push(b'{');
    out.extend_from_slice(v.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    let start = out.len();
    out.extend_from_slice(v);
    start
}

/// Appends `string` (RFC 9051 §4.3): quoted when safe, else a literal.
pub fn write_string(out: &mut Vec<u8>, v: &[u8]) {
    if quotable(v) {
        push_quoted(out, v);
    } else {
        write_literal(out, v);
    }
}

/// Appends `nstring` (RFC 9051 §4.5): NIL for `None`.
pub fn write_nstring(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => out.extend_from_slice(b"NIL"),
        Some(v) => write_string(out, v),
    }
}

/// `nstring` (RFC 9051 §4.5): `NIL`, a quoted string when safe, else a `{n}\r\n` literal.
pub fn nstring(v: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.map_or(3, |v| v.len() + 2));
    write_nstring(&mut out, v);
    out
}

/// `string` (RFC 9051 §4.3): a quoted string when safe, else a literal.
pub fn string(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 2);
    write_string(&mut out, v);
    out
}

/// A quoted string, or `None` when `v` holds CR, LF, NUL or non-ASCII characters
/// (RFC 9051 §4.3) and must be sent as a literal instead.
pub fn quoted(v: &str) -> Option<Vec<u8>> {
    let b = v.as_bytes();
    if !b
        .iter()
        .all(|&c| (0x01..0x80).contains(&c) && c != b'\r' && c != b'\n')
    {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() + 2);
    push_quoted(&mut out, b);
    Some(out)
}

/// A quoted string allowing UTF-8 (RFC 9051 §4.3 `QUOTED-CHAR =/ UTF8-2 / UTF8-3 / UTF8-4`,
/// for sessions that enabled UTF8=ACCEPT, RFC 6855), or `None` for CR, LF or NUL.
pub fn quoted_utf8(v: &str) -> Option<Vec<u8>> {
    if v.bytes().any(|c| c == 0 || c == b'\r' || c == b'\n') {
        return None;
    }
    let mut out = Vec::with_capacity(v.len() + 2);
    push_quoted(&mut out, v.as_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nil_and_quoted() {
        assert_eq!(nstring(None), b"NIL");
        assert_eq!(nstring(Some(b"")), b"\"\"");
        assert_eq!(nstring(Some(b"a b")), b"\"a b\"");
        assert_eq!(string(b"say \"hi\" \\o/"), b"\"say \\\"hi\\\" \\\\o/\"");
    }

    #[test]
    fn literals_for_crlf_8bit_nul_and_long() {
        assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(string(b"x\ny"), b"{3}\r\nx\ny");
        assert_eq!(string("é".as_bytes()), b"{2}\r\n\xc3\xa9");
        // RFC 9051 §4.3: no NUL in a literal; 0x80 stands in, the size is kept.
        assert_eq!(string(b"a\0b"), b"{3}\r\na\x80b");
        let long = vec![b'a'; MAX_QUOTED + 1];
        assert!(string(&long).starts_with(b"{1025}\r\n"));
        assert_eq!(string(&long[..MAX_QUOTED])[0], b'"');
        let mut out = Vec::new();
        write_literal8(&mut out, b"\0");
        assert_eq!(out, b"~{1}\r\n\0");
    }

    #[test]
    fn quoted_variants() {
        assert_eq!(quoted("INBOX").unwrap(), b"\"INBOX\"");
        assert_eq!(quoted("a\"b").unwrap(), b"\"a\\\"b\"");
        assert!(quoted("a\rb").is_none());
        assert!(quoted("é").is_none());
        assert_eq!(quoted_utf8("é").unwrap(), "\"é\"".as_bytes());
        assert!(quoted_utf8("a\nb").is_none());
    }
}
