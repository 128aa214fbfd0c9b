//! SMTP dot-stuffing (RFC 5321 §4.5.2), for whoever sends a message over DATA.

/// Dot-stuffs a CRLF message and appends the end-of-data marker: a line starting with "."
/// gets one more, a missing final CRLF is added, then `.CRLF`.
pub fn stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_dots_are_doubled_and_the_end_marked() {
        assert_eq!(stuff(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(stuff(b".x"), b"..x\r\n.\r\n");
        // A dot inside a line is data.
        assert_eq!(stuff(b"a.b\r\n"), b"a.b\r\n.\r\n");
        assert_eq!(stuff(b""), b"\r\n.\r\n");
    }

    #[test]
    fn unstuffing_gives_the_message_back() {
        let body = b"Subject: x\r\n\r\n.\r\n..two\r\nend\r\n";
        let stuffed = stuff(body);
        let lines: Vec<&[u8]> = stuffed.split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(lines.last(), Some(&&b".\r\n"[..]));
        let unstuffed: Vec<u8> = lines[..lines.len() - 1]
            .iter()
            .flat_map(|l| l.strip_prefix(b".").unwrap_or(l).iter().copied())
            .collect();
        assert_eq!(unstuffed, body);
    }
}
