//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3, RFC 9051 §5.1 for IMAP4rev1 clients).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn flush(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc = 0u32;
    let mut bits = 0;
    for u in units.drain(..) {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        // Pad the last sextet with zero bits; no '=' padding in modified BASE64.
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out.push('-');
}

/// Encodes a mailbox name: printable US-ASCII stands for itself ("&" as "&-"), everything else
/// is UTF-16 in modified BASE64 between "&" and "-" (RFC 3501 §5.1.3).
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut units = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut units);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut units);
    out
}

/// Decodes a modified UTF-7 mailbox name, strictly: only printable ASCII, valid modified
/// BASE64 of well-formed UTF-16, no printable ASCII inside a shift, no needless shifts (the
/// encoding must be the canonical one [`encode_mutf7`] produces). `None` when invalid.
pub fn decode_mutf7(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        i += 1;
        if c != b'&' {
            out.push(c as char);
            continue;
        }
        let start = i;
        while i < b.len() && b[i] != b'-' {
            i += 1;
        }
        if i == b.len() {
            return None; // unterminated shift
        }
        let run = &b[start..i];
        i += 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut units = Vec::with_capacity(run.len() * 6 / 16);
        let mut acc = 0u32;
        let mut bits = 0;
        for &x in run {
            let v = ALPHABET.iter().position(|&a| a == x)? as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                units.push((acc >> bits) as u16);
                acc &= (1 << bits) - 1;
            }
        }
        if bits >= 6 || acc != 0 || units.is_empty() {
            return None; // dangling sextet or non-zero padding bits
        }
        for ch in char::decode_utf16(units) {
            out.push(ch.ok()?);
        }
    }
    // Canonical form only: rejects encoded printable ASCII and split shifts.
    (encode_mutf7(&out) == name).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(encode_mutf7("INBOX"), "INBOX");
        assert_eq!(encode_mutf7("p\u{e4}\u{e4}"), "p&AOQA5A-");
        assert_eq!(encode_mutf7("a&b"), "a&-b");
        assert_eq!(
            encode_mutf7("~peter/mail/\u{65e5}\u{672c}\u{8a9e}/\u{53f0}\u{5317}"),
            "~peter/mail/&ZeVnLIqe-/&U,BTFw-"
        );
        assert_eq!(encode_mutf7("\u{1F600}"), "&2D3eAA-");
        assert_eq!(encode_mutf7("tab\there"), "tab&AAk-here");
    }

    #[test]
    fn decodes() {
        assert_eq!(decode_mutf7("p&AOQA5A-").as_deref(), Some("p\u{e4}\u{e4}"));
        assert_eq!(decode_mutf7("&-&-").as_deref(), Some("&&"));
        assert_eq!(
            decode_mutf7("~peter/mail/&ZeVnLIqe-/&U,BTFw-").as_deref(),
            Some("~peter/mail/\u{65e5}\u{672c}\u{8a9e}/\u{53f0}\u{5317}")
        );
        assert_eq!(decode_mutf7("&2D3eAA-").as_deref(), Some("\u{1F600}"));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "&",          // unterminated
            "&AOQ",       // unterminated
            "&AGE-",      // printable "a" encoded
            "&AOQ-&AOQ-", // split shift
            "&AOR-",      // non-zero padding bits
            "&AO-",       // incomplete unit
            "&2D0-",      // lone high surrogate
            "&A/Q-",      // '/' not in modified BASE64
            "p\u{e4}",    // raw 8-bit
            "a\tb",       // control character
        ] {
            assert_eq!(decode_mutf7(bad), None, "{bad}");
        }
    }
}
