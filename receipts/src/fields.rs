//! Header-field lines: writing (folding) and reading the field groups of a
//! message/delivery-status or message/disposition-notification body.

/// Preferred line length (RFC 5322 §2.1.1: SHOULD be no more than 78 characters).
const SOFT_LIMIT: usize = 78;
/// Longest unbroken run we put on one line; keeps every line well under the
/// 998-character hard limit of RFC 5322 §2.1.1 even when a value has no whitespace.
const HARD_CHUNK: usize = 900;

/// One header field, `Name: value` + CRLF, folded (RFC 5322 §2.2.3) at whitespace so that lines
/// stay within 78 characters where possible and always within 998. CR, LF and other control
/// characters in `value` become spaces, so the result is always one valid field. A run of more
/// than 900 characters without whitespace is cut and continued on a line starting with a space
/// (the only way to keep the line length legal; that space becomes part of the value).
pub fn fold_field(name: &str, value: &str) -> String {
    let value = one_line(value);
    let mut out = String::with_capacity(name.len() + value.len() + 8);
    out.push_str(name);
    out.push(':');
    let mut line_len = out.len();
    let mut first = true;
    for (n, seg) in segments(value.trim()).into_iter().enumerate() {
        // Every segment but the first starts with whitespace; the first gets one after the colon.
        let seg = if n == 0 {
            format!(" {seg}")
        } else {
            seg.to_string()
        };
        for (i, piece) in hard_split(&seg).into_iter().enumerate() {
            let piece = if i == 0 { piece } else { format!(" {piece}") };
            if !first && line_len + piece.len() > SOFT_LIMIT {
                // RFC 5322 §2.2.3: fold by inserting CRLF before whitespace.
                out.push_str("\r\n");
                line_len = 0;
            }
            first = false;
            line_len += piece.len();
            out.push_str(&piece);
        }
    }
    out.push_str("\r\n");
    out
}

/// Whitespace-led segments: "a bc  d" → ["a", " bc", "  d"].
fn segments(s: &str) -> Vec<&str> {
    let mut segs = Vec::new();
    let mut start = 0;
    let mut prev_ws = true;
    for (i, c) in s.char_indices() {
        let ws = c == ' ' || c == '\t';
        if ws && !prev_ws && i > start {
            segs.push(&s[start..i]);
            start = i;
        }
        prev_ws = ws;
    }
    if start < s.len() {
        segs.push(&s[start..]);
    }
    segs
}

/// Cuts a segment into pieces of at most HARD_CHUNK octets (at char boundaries).
fn hard_split(seg: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    for c in seg.chars() {
        if cur.len() + c.len_utf8() > HARD_CHUNK {
            pieces.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() || pieces.is_empty() {
        pieces.push(cur);
    }
    pieces
}

/// Joins the lines of a (possibly multi-line) text with single spaces and turns every other
/// control character into a space; tabs are kept.
pub(crate) fn one_line(s: &str) -> String {
    let joined: Vec<&str> = s
        .split('\n')
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty())
        .collect();
    joined
        .join(" ")
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

/// [`one_line`], then every non-ASCII character as `?`: the text fields of a
/// message/delivery-status are US-ASCII (RFC 3464 §2.1.1).
pub(crate) fn ascii_line(s: &str) -> String {
    one_line(s)
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// A field of a report body: lower-case name, unfolded value.
pub(crate) type Field = (String, String);

/// Reads the field groups of a message/delivery-status (RFC 3464 §2.1) or
/// message/disposition-notification (RFC 8098 §3.1) body: header-style fields, groups separated
/// by blank lines, continuation lines unfolded (RFC 5322 §2.2.3: the CRLF is removed, the
/// whitespace kept). Accepts LF as well as CRLF line ends; lines without a colon are skipped.
pub(crate) fn parse_groups(body: &[u8]) -> Vec<Vec<Field>> {
    let text = String::from_utf8_lossy(body);
    let mut groups: Vec<Vec<Field>> = Vec::new();
    let mut cur: Vec<Field> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !cur.is_empty() {
                groups.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            cur.push((
                name.trim().to_ascii_lowercase(),
                value.trim_start().to_string(),
            ));
        }
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    for (_, v) in groups.iter_mut().flatten() {
        let t = v.trim_end().len();
        v.truncate(t);
    }
    groups
}

/// The first value of `name` (lower-case) in a group.
pub(crate) fn get<'a>(group: &'a [Field], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A value without RFC 5322 comments (`(...)`, nested), trimmed.
pub(crate) fn strip_comments(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in v.chars() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
        } else if c == '(' {
            depth = 1;
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// Splits `type; value` (RFC 3464 §2.1.2 address-type / diagnostic-type / mta-name-type):
/// the lower-cased type when there is one, and the trimmed rest.
pub(crate) fn split_typed(v: &str) -> (Option<String>, &str) {
    match v.split_once(';') {
        Some((t, rest)) if is_type_token(t.trim()) => {
            (Some(t.trim().to_ascii_lowercase()), rest.trim())
        }
        _ => (None, v.trim()),
    }
}

/// `atom`-like type names: "rfc822", "dns", "smtp", "x-unix", "utf-8".
pub(crate) fn is_type_token(t: &str) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// A bare address: surrounding `<>` removed, domain lower-cased (domains are case-insensitive,
/// RFC 5321 §2.4; the local part is kept as it is).
pub(crate) fn bare_address(a: &str) -> String {
    let a = strip_comments(a);
    let a = a.trim();
    let a = a.strip_prefix('<').unwrap_or(a);
    let a = a.strip_suffix('>').unwrap_or(a).trim();
    match a.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(f: &str) -> Vec<&str> {
        assert!(f.ends_with("\r\n"), "{f:?}");
        f[..f.len() - 2].split("\r\n").collect()
    }

    #[test]
    fn short_field_is_one_line() {
        assert_eq!(fold_field("Status", "5.1.1"), "Status: 5.1.1\r\n");
    }

    #[test]
    fn long_field_folds_at_whitespace_and_unfolds_back() {
        let value = "smtp; 550 5.1.1 <inconnu@hopital.example.fr>: Recipient address rejected: \
                     User unknown in virtual mailbox table, please check the address and try again";
        let f = fold_field("Diagnostic-Code", value);
        let ls = lines(&f);
        assert!(ls.len() >= 2, "{f}");
        for (i, l) in ls.iter().enumerate() {
            assert!(l.len() <= 78, "line too long: {l:?}");
            if i > 0 {
                assert!(
                    l.starts_with(' '),
                    "continuation must start with WSP: {l:?}"
                );
                assert!(!l.trim().is_empty());
            }
        }
        // RFC 5322 §2.2.3 unfolding: remove the CRLFs.
        let unfolded = f.trim_end_matches("\r\n").replace("\r\n", "");
        assert_eq!(unfolded, format!("Diagnostic-Code: {value}"));
    }

    #[test]
    fn newlines_in_value_cannot_inject_fields() {
        let f = fold_field("Diagnostic-Code", "smtp; 550-first\r\n550 second\nBcc: x@y");
        assert_eq!(
            f,
            "Diagnostic-Code: smtp; 550-first 550 second Bcc: x@y\r\n"
        );
    }

    #[test]
    fn very_long_word_is_cut_below_998() {
        let word = "x".repeat(2500);
        let f = fold_field("Diagnostic-Code", &format!("smtp; {word} end"));
        let ls = lines(&f);
        for l in &ls {
            assert!(l.len() < 998, "{}", l.len());
        }
        assert!(ls.len() >= 4);
        assert!(ls[1..].iter().all(|l| l.starts_with(' ')));
        let joined: String = f.chars().filter(|&c| c == 'x').collect();
        assert_eq!(joined.len(), 2500);
    }

    #[test]
    fn parse_groups_unfolds_and_splits() {
        let body = b"Reporting-MTA: dns; mx.example.fr\r\nArrival-Date: Tue, 14 Jan 2025\r\n\r\n\
Final-Recipient: rfc822; a@b.fr\r\nDiagnostic-Code: smtp; 550 5.1.1 User\r\n    unknown\r\n\r\n\r\n\
final-recipient: rfc822; c@d.fr\nAction: failed  \n";
        let g = parse_groups(body);
        assert_eq!(g.len(), 3);
        assert_eq!(get(&g[0], "reporting-mta"), Some("dns; mx.example.fr"));
        assert_eq!(
            get(&g[1], "diagnostic-code"),
            Some("smtp; 550 5.1.1 User    unknown")
        );
        assert_eq!(get(&g[2], "final-recipient"), Some("rfc822; c@d.fr"));
        assert_eq!(get(&g[2], "action"), Some("failed"));
    }

    #[test]
    fn helpers() {
        assert_eq!(strip_comments("failed (bad (nested) thing) x"), "failed  x");
        assert_eq!(
            split_typed("RFC822; <A@B.FR>"),
            (Some("rfc822".into()), "<A@B.FR>")
        );
        assert_eq!(
            split_typed("550 5.1.1 no; really"),
            (None, "550 5.1.1 no; really")
        );
        assert_eq!(
            bare_address("<Jean.Dupont@Hopital.Example.FR>"),
            "Jean.Dupont@hopital.example.fr"
        );
        assert_eq!(ascii_line("réponse\r\n2e ligne"), "r?ponse 2e ligne");
    }
}
