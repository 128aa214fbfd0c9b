//! Content decoders: base64 and quoted-printable transfer encodings (RFC 2045 §6), RFC 2047
//! encoded words, and charsets to UTF-8 (through mail-parser's charset tables).

use mail_parser::decoders::charsets::map::charset_decoder;

fn b64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes base64 leniently (RFC 2045 §6.8: characters outside the alphabet are ignored,
/// decoding stops at the first `=` pad).
pub fn base64(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &b in v {
        if b == b'=' {
            break;
        }
        let Some(x) = b64_value(b) else { continue };
        acc = (acc << 6) | u32::from(x);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes a quoted-printable body (RFC 2045 §6.7): trailing whitespace on a line is dropped
/// (rule 3), `=` before the line end (whitespace allowed in between) is a soft line break
/// (rule 5), `=XX` is an octet; an invalid `=` sequence is kept as is. Line ends are kept as
/// they are in the source (CRLF in stored mail).
pub fn quoted_printable(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for line in v.split_inclusive(|&b| b == b'\n') {
        let (content, eol): (&[u8], &[u8]) = if let Some(c) = line.strip_suffix(b"\r\n") {
            (c, b"\r\n")
        } else if let Some(c) = line.strip_suffix(b"\n") {
            (c, b"\n")
        } else {
            (line, b"")
        };
        let content = match content.iter().rposition(|&b| b != b' ' && b != b'\t') {
            Some(i) => &content[..=i],
            None => &[][..],
        };
        let mut soft = false;
        let mut i = 0;
        while i < content.len() {
            let b = content[i];
            if b == b'=' {
                if i + 1 == content.len() {
                    soft = true;
                    break;
                }
                if let (Some(h), Some(l)) = (
                    content.get(i + 1).copied().and_then(hex),
                    content.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

/// Quoted-printable as used in RFC 2047 "Q" encoded words (§4.2: `_` is a space).
fn q_word(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'_' => out.push(b' '),
            b'=' => {
                if let (Some(h), Some(l)) = (
                    v.get(i + 1).copied().and_then(hex),
                    v.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Converts text in `charset` to UTF-8. US-ASCII and UTF-8 (and unknown charsets) are read
/// as UTF-8 with invalid sequences replaced.
pub fn to_utf8(charset: &[u8], bytes: &[u8]) -> String {
    let ascii_compatible = charset.is_empty()
        || [b"us-ascii".as_slice(), b"utf-8", b"utf8", b"ascii"]
            .iter()
            .any(|c| charset.eq_ignore_ascii_case(c));
    if !ascii_compatible && let Some(dec) = charset_decoder(charset) {
        return dec(bytes);
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Tries to read an encoded word `=?charset?enc?text?=` at the start of `v`; returns its
/// length and decoded text.
fn encoded_word(v: &[u8]) -> Option<(usize, String)> {
    let rest = v.strip_prefix(b"=?")?;
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    let rest2 = &rest[q1 + 1..];
    if rest2.len() < 2 || rest2[1] != b'?' {
        return None;
    }
    let enc = rest2[0].to_ascii_lowercase();
    let text_area = &rest2[2..];
    let end = text_area.windows(2).position(|w| w == b"?=")?;
    let text = &text_area[..end];
    if text.iter().any(|b| b.is_ascii_whitespace()) || charset.is_empty() {
        return None;
    }
    let bytes = match enc {
        b'b' => base64(text),
        b'q' => q_word(text),
        _ => return None,
    };
    // RFC 2231 §5: charset*language.
    let charset = charset.split(|&b| b == b'*').next().unwrap_or_default();
    let len = 2 + q1 + 1 + 2 + end + 2;
    Some((len, to_utf8(charset, &bytes)))
}

/// Decodes RFC 2047 encoded words in an (unfolded) header value; whitespace between two
/// adjacent encoded words is dropped (RFC 2047 §6.2). Other bytes are read as UTF-8.
pub fn header_text(v: &[u8]) -> String {
    if !v.windows(2).any(|w| w == b"=?") {
        return String::from_utf8_lossy(v).into_owned();
    }
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    let mut plain_start = 0;
    let mut last_was_word = false;
    while i < v.len() {
        if v[i] == b'='
            && let Some((len, text)) = encoded_word(&v[i..])
        {
            let between = &v[plain_start..i];
            if !(last_was_word && between.iter().all(|b| b.is_ascii_whitespace())) {
                out.push_str(&String::from_utf8_lossy(between));
            }
            out.push_str(&text);
            i += len;
            plain_start = i;
            last_was_word = true;
            continue;
        }
        if !v[i].is_ascii_whitespace() {
            last_was_word = false;
        }
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(&v[plain_start..]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lenient() {
        assert_eq!(base64(b"aGVs\r\nbG8gd29y\r\nbGQ="), b"hello world");
        assert_eq!(
            base64(b"  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n"),
            b"hello world"
        );
        assert_eq!(
            base64(b"YWJjZGVmZw1oaWprbA0KbW5vCnBxcnN0dXZxeHl6"),
            b"abcdefg\rhijkl\r\nmno\npqrstuvqxyz"
        );
        assert_eq!(base64(b""), b"");
    }

    #[test]
    fn qp_rules() {
        let src = b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n";
        let want = b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n";
        assert_eq!(quoted_printable(src), want);
        assert_eq!(quoted_printable(b"a=3D=3db =ZZ c="), b"a==b =ZZ c");
        assert_eq!(quoted_printable(b"=C3=A9"), "é".as_bytes());
    }

    #[test]
    fn encoded_words() {
        assert_eq!(header_text(b"=?iso-8859-1?q?foo_aar?="), "foo aar");
        assert_eq!(header_text(b"Re: =?utf-8?q?b?="), "Re: b");
        assert_eq!(header_text(b"=?us-ascii?b?UmU6IGM=?="), "Re: c");
        assert_eq!(header_text(b"=?utf-8?q?a?= =?utf-8?q?b?= c"), "ab c");
        assert_eq!(header_text(b"=?ISO-8859-1*fr?Q?caf=E9?="), "café");
        assert_eq!(header_text(b"x =?bad"), "x =?bad");
        assert_eq!(header_text(b"=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
    }

    #[test]
    fn charsets() {
        assert_eq!(to_utf8(b"ISO-8859-1", b"caf\xe9"), "café");
        assert_eq!(to_utf8(b"utf-8", "café".as_bytes()), "café");
        assert_eq!(to_utf8(b"x-unknown", b"abc"), "abc");
    }
}
