//! xtext (RFC 3461 §4), the encoding of the ENVID and ORCPT parameters and of their echo in
//! DSNs, and utf-8-addr-xtext (RFC 6533 §3) for non-ASCII addresses in DSNs.

/// RFC 3461 §4: every byte outside 33..=126, and `+` and `=`, becomes `+HH` (upper-case hex).
/// Non-ASCII text is encoded byte by byte from its UTF-8 form.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Why a parameter is not xtext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XtextError {
    /// A `+` not followed by two upper-case hex digits, at this byte offset.
    BadEscape(usize),
    /// A byte xtext does not allow literally (outside 33..=126, or `=`), at this offset.
    ForbiddenByte(usize),
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for XtextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XtextError::BadEscape(at) => write!(f, "'+' at {at} is not followed by two hex digits"),
            XtextError::ForbiddenByte(at) => write!(f, "character at {at} must be encoded"),
            XtextError::NotUtf8 => write!(f, "the decoded text is not UTF-8"),
        }
    }
}

impl std::error::Error for XtextError {}

/// Strict decoding, for parameters a client sends (RFC 3461 §4: `xchar` and `hexchar` only,
/// hex digits upper-case); the server answers 501 to what this refuses.
pub fn decode(s: &str) -> Result<String, XtextError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(escape_at(b, i).ok_or(XtextError::BadEscape(i))?);
                i += 3;
            }
            c @ 33..=126 if c != b'=' => {
                out.push(c);
                i += 1;
            }
            _ => return Err(XtextError::ForbiddenByte(i)),
        }
    }
    String::from_utf8(out).map_err(|_| XtextError::NotUtf8)
}

/// Lenient decoding, for fields of reports other MTAs wrote (Original-Envelope-Id,
/// Original-Recipient): a malformed `+` is kept as it is, other bytes are taken literally,
/// invalid UTF-8 is replaced (U+FFFD). What was recorded matters more than the syntax.
pub fn decode_lenient(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+'
            && let Some(byte) = escape_at(b, i)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3461 §4: `hexchar = "+" 2(%x30-39 / %x41-46)`, the byte of the escape at `i`.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    let high = upper_hex(*b.get(i + 1)?)?;
    let low = upper_hex(*b.get(i + 2)?)?;
    Some(high << 4 | low)
}

fn upper_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 6533 §3 utf-8-addr-xtext: QCHAR (%x21-2a / %x2c-3c / %x3e-5b / %x5d-7e) literally,
/// everything else as `\x{HEXPOINT}`. Used for addresses of type "utf-8" in a
/// message/delivery-status, which must stay US-ASCII (RFC 3464 §2.1.1).
pub fn utf8_addr_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let v = c as u32;
        if (0x21..=0x7e).contains(&v) && c != '+' && c != '=' && c != '\\' {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{v:X}}}"));
        }
    }
    out
}

/// Inverse of [`utf8_addr_encode`]; a malformed `\x{...}` is kept as it is.
pub fn utf8_addr_decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("\\x{") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 3..];
        match hexpoint(after) {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("\\x{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `HEXPOINT "}"` at the start of `s`: the character and the offset of the `}`.
fn hexpoint(s: &str) -> Option<(char, usize)> {
    let end = s.find('}')?;
    let hex = &s[..end];
    let well_formed = (1..=6).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return None;
    }
    let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
    Some((c, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_plain_address_is_unchanged() {
        assert_eq!(encode("a.b@c.fr"), "a.b@c.fr");
    }

    #[test]
    fn encode_plus_equals_space_controls_and_utf8() {
        assert_eq!(encode("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(encode("\t\x7f~!"), "+09+7F~!");
        assert_eq!(encode("é"), "+C3+A9");
    }

    #[test]
    fn both_decoders_invert_encode() {
        for s in [
            "",
            "rfc822;a+b@c.fr",
            "x=y z\t",
            "médecin@hôpital.fr",
            "+",
            "++2B",
        ] {
            assert_eq!(decode(&encode(s)).as_deref(), Ok(s), "{s:?}");
            assert_eq!(decode_lenient(&encode(s)), s, "{s:?}");
        }
        assert_eq!(decode("rfc822;a+2Bb@c.fr").unwrap(), "rfc822;a+b@c.fr");
        assert_eq!(decode("ENV+3D1").unwrap(), "ENV=1");
    }

    #[test]
    fn strict_decode_names_each_error() {
        assert_eq!(decode("bad+2"), Err(XtextError::BadEscape(3)));
        assert_eq!(decode("bad+"), Err(XtextError::BadEscape(3)));
        assert_eq!(decode("bad+zz"), Err(XtextError::BadEscape(3)));
        assert_eq!(decode("a+2b"), Err(XtextError::BadEscape(1))); // lower-case hex
        assert_eq!(decode("a=b"), Err(XtextError::ForbiddenByte(1)));
        assert_eq!(decode("a b"), Err(XtextError::ForbiddenByte(1)));
        assert_eq!(decode("é"), Err(XtextError::ForbiddenByte(0)));
        assert_eq!(decode("+FF"), Err(XtextError::NotUtf8));
        for e in [
            XtextError::BadEscape(3),
            XtextError::ForbiddenByte(1),
            XtextError::NotUtf8,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn lenient_decode_keeps_malformed_escapes() {
        assert_eq!(decode_lenient("a+2bc"), "a+2bc");
        assert_eq!(decode_lenient("a+"), "a+");
        assert_eq!(decode_lenient("a+4"), "a+4");
        assert_eq!(decode_lenient("a+41"), "aA");
        assert_eq!(decode_lenient("a b=c"), "a b=c");
        assert_eq!(decode_lenient("+FF"), "\u{FFFD}");
    }

    #[test]
    fn utf8_addr_xtext() {
        assert_eq!(
            utf8_addr_encode("élise@hôpital.fr"),
            "\\x{E9}lise@h\\x{F4}pital.fr"
        );
        assert_eq!(utf8_addr_encode("a+b=c\\"), "a\\x{2B}b\\x{3D}c\\x{5C}");
        for s in ["élise@hôpital.fr", "a+b=c\\d", "😀@x", ""] {
            assert_eq!(utf8_addr_decode(&utf8_addr_encode(s)), s);
        }
        // Malformed: not hex, too long, unterminated, a surrogate (not a char).
        for kept in ["a\\x{zz}b", "\\x{1234567}", "b\\x{41", "\\x{D800}", "\\x{}"] {
            assert_eq!(utf8_addr_decode(kept), kept);
        }
    }
}
