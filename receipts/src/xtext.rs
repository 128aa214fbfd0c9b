//! xtext (RFC 3461 §4) and utf-8-addr-xtext (RFC 6533 §3).

/// RFC 3461 §4: every byte outside 33..=126, and `+` and `=`, becomes `+HH` (upper-case hex).
/// Non-ASCII text is encoded byte by byte from its UTF-8 form.
pub fn xtext_encode(s: &str) -> String {
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

/// Inverse of [`xtext_encode`]. RFC 3461 §4: `hexchar = "+" 2(%x30-39 / %x41-46)` — only
/// upper-case hex is an escape; anything else (a malformed `+`) is kept as it is.
/// Invalid UTF-8 after decoding is replaced (U+FFFD).
pub fn xtext_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (upper_hex(b[i + 1]), upper_hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
pub fn utf8_addr_xtext_encode(s: &str) -> String {
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

/// Inverse of [`utf8_addr_xtext_encode`]; a malformed `\x{...}` is kept as it is.
pub fn utf8_addr_xtext_decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("\\x{") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 3..];
        let decoded = after.find('}').and_then(|end| {
            let hex = &after[..end];
            let ok = (1..=6).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
            let c = ok
                .then(|| u32::from_str_radix(hex, 16).ok())
                .flatten()
                .and_then(char::from_u32)?;
            Some((c, end))
        });
        match decoded {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_plain_address_is_unchanged() {
        assert_eq!(xtext_encode("a.b@c.fr"), "a.b@c.fr");
    }

    #[test]
    fn encode_plus_equals_space_controls_and_utf8() {
        assert_eq!(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext_encode("\t\x7f~!"), "+09+7F~!");
        assert_eq!(xtext_encode("é"), "+C3+A9");
    }

    #[test]
    fn decode_inverts_encode() {
        for s in [
            "",
            "rfc822;a+b@c.fr",
            "x=y z\t",
            "médecin@hôpital.fr",
            "+",
            "++2B",
        ] {
            assert_eq!(xtext_decode(&xtext_encode(s)), s, "{s:?}");
        }
    }

    #[test]
    fn decode_keeps_malformed_escapes() {
        assert_eq!(xtext_decode("a+2bc"), "a+2bc"); // lower-case hex is not an escape
        assert_eq!(xtext_decode("a+"), "a+");
        assert_eq!(xtext_decode("a+4"), "a+4");
        assert_eq!(xtext_decode("a+41"), "aA");
    }

    #[test]
    fn utf8_addr_xtext() {
        assert_eq!(
            utf8_addr_xtext_encode("élise@hôpital.fr"),
            "\\x{E9}lise@h\\x{F4}pital.fr"
        );
        assert_eq!(
            utf8_addr_xtext_encode("a+b=c\\"),
            "a\\x{2B}b\\x{3D}c\\x{5C}"
        );
        for s in ["élise@hôpital.fr", "a+b=c\\d", "😀@x"] {
            assert_eq!(utf8_addr_xtext_decode(&utf8_addr_xtext_encode(s)), s);
        }
        assert_eq!(utf8_addr_xtext_decode("a\\x{zz}b\\x{41"), "a\\x{zz}b\\x{41");
    }
}
