//! SORT and THREAD keys (RFC 5256, RFC 5957 DISPLAYFROM / DISPLAYTO).
//!
//! Keys come back case-mapped (uppercase, standing in for the i;unicode-casemap collation of
//! RFC 5256 §2.1 / RFC 5051), so the caller compares them as plain strings.

use super::address;
use super::decode;
use super::mime;

fn header_of(raw: &[u8]) -> &[u8] {
    &raw[..mime::body_start(raw, 0, raw.len())]
}

fn casemap(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_uppercase()
    } else {
        s.to_uppercase()
    }
}

fn starts_with_ci(s: &str, p: &str) -> bool {
    s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
}

fn skip_wsp(s: &str) -> &str {
    s.trim_start_matches(' ')
}

/// subj-blob = "[" *BLOBCHAR "]" *WSP; returns the rest after it.
fn blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    (rest.as_bytes()[end] == b']').then(|| skip_wsp(&rest[end + 1..]))
}

/// subj-leader = (*subj-blob subj-refwd) / WSP; returns the rest after it.
fn leader(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix(' ') {
        return Some(rest);
    }
    let mut t = s;
    while let Some(rest) = blob(t) {
        t = rest;
    }
    // subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
    for word in ["re", "fwd", "fw"] {
        if !starts_with_ci(t, word) {
            continue;
        }
        let mut r = skip_wsp(&t[word.len()..]);
        if let Some(after) = blob(r) {
            r = after;
        }
        if let Some(after) = r.strip_prefix(':') {
            return Some(after);
        }
    }
    None
}

/// The base subject of a subject (RFC 5256 §2.1), case kept.
pub fn extract_base_subject(subject: &str) -> String {
    // (1) tabs and continuations become spaces, runs of spaces one space.
    let mut s = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') {
            ' '
        } else {
            c
        };
        if c == ' ' && s.ends_with(' ') {
            continue;
        }
        s.push(c);
    }
    let mut cur: &str = &s;
    loop {
        // (2) subj-trailer = "(fwd)" / WSP, repeatedly.
        loop {
            if let Some(t) = cur.strip_suffix(' ') {
                cur = t;
            } else if cur.len() >= 5
                && cur.as_bytes()[cur.len() - 5..].eq_ignore_ascii_case(b"(fwd)")
            {
                cur = &cur[..cur.len() - 5];
            } else {
                break;
            }
        }
        // (3)-(5) leaders, and a leading blob when something remains after it.
        loop {
            if let Some(rest) = leader(cur) {
                cur = rest;
                continue;
            }
            match blob(cur) {
                Some(rest) if !rest.is_empty() => cur = rest,
                _ => break,
            }
        }
        // (6) subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]" → strip and start over.
        if starts_with_ci(cur, "[fwd:") && cur.ends_with(']') {
            cur = &cur[5..cur.len() - 1];
            continue;
        }
        return cur.to_string();
    }
}

/// SORT SUBJECT / THREAD key: the case-mapped base subject of the first Subject header
/// (RFC 5256 §2.1, encoded words decoded); empty when there is none.
pub fn base_subject(raw: &[u8]) -> String {
    match mime::first_field(header_of(raw), "subject") {
        Some(v) => casemap(&extract_base_subject(&decode::header_text(&mime::unfold(
            v,
        )))),
        None => String::new(),
    }
}

/// Whether the Subject marks a reply or forward (RFC 5256 §2.1: extracting the base subject
/// removed a leader, trailer or `[fwd: ...]` wrapper), as THREAD=REFERENCES step 4 needs.
pub fn is_reply_or_forward(raw: &[u8]) -> bool {
    mime::first_field(header_of(raw), "subject").is_some_and(|v| {
        let text = decode::header_text(&mime::unfold(v));
        let base = extract_base_subject(&text);
        let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        base.trim() != collapsed.trim()
    })
}

/// SORT address keys, case-mapped; empty when the header is absent (RFC 5256 §3).
/// `field`: `from`, `to`, `cc` → the first address's mailbox (a group's name for a group);
/// `displayfrom`, `displayto` → its decoded display name, or `mailbox@host` without one
/// (RFC 5957 §3.1).
pub fn sort_address(raw: &[u8], field: &str) -> String {
    let f = field.to_ascii_lowercase();
    let (header, display) = match f.as_str() {
        "displayfrom" => ("from", true),
        "displayto" => ("to", true),
        other => (other, false),
    };
    let Some(value) = mime::first_field(header_of(raw), header) else {
        return String::new();
    };
    let list = address::parse(value);
    let Some(first) = list.first() else {
        return String::new();
    };
    let mailbox =
        String::from_utf8_lossy(first.mailbox.as_deref().unwrap_or_default()).into_owned();
    if !display {
        return casemap(&mailbox);
    }
    if let Some(name) = first
        .name
        .as_deref()
        .map(|n| decode::header_text(mime::trim(n)))
        && !name.trim().is_empty()
    {
        return casemap(name.trim());
    }
    match first.host.as_deref() {
        Some(h) if !first.group_start => {
            casemap(&format!("{mailbox}@{}", String::from_utf8_lossy(h)))
        }
        _ => casemap(&mailbox),
    }
}

/// Message-IDs a THREAD=REFERENCES implementation needs (RFC 5256 §2.2 step 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadIds {
    /// The Message-ID (`<...>` with the brackets), if valid.
    pub message_id: Option<String>,
    /// Parents, oldest first: the References header's ids, or failing that the first id of
    /// In-Reply-To.
    pub references: Vec<String>,
}

/// The `<...>` msg-ids in a header value, comments and junk between them skipped.
fn msg_ids(v: &[u8]) -> Vec<String> {
    let v = mime::unfold(v);
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'(' => i = mime::skip_comment(&v, i).0,
            b'<' => match v[i..].iter().position(|&b| b == b'>') {
                Some(len) => {
                    let id: Vec<u8> = v[i..=i + len]
                        .iter()
                        .copied()
                        .filter(|b| !b.is_ascii_whitespace())
                        .collect();
                    if id.len() > 2 && !id[1..id.len() - 1].contains(&b'<') {
                        out.push(String::from_utf8_lossy(&id).into_owned());
                    }
                    i += len + 1;
                }
                None => break,
            },
            _ => i += 1,
        }
    }
    out
}

/// The ids THREAD=REFERENCES links messages with (RFC 5256 §2.2).
pub fn thread_ids(raw: &[u8]) -> ThreadIds {
    let [message_id, references, in_reply_to] =
        mime::first_fields(header_of(raw), ["message-id", "references", "in-reply-to"]);
    let mut refs = references.map(msg_ids).unwrap_or_default();
    if refs.is_empty() {
        refs = in_reply_to
            .map(msg_ids)
            .unwrap_or_default()
            .into_iter()
            .take(1)
            .collect();
    }
    ThreadIds {
        message_id: message_id.and_then(|v| msg_ids(v).into_iter().next()),
        references: refs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        for (subject, base) in [
            ("a", "a"),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b"),
            ("b (a)", "b (a)"),
            ("Re: [FWD: c]", "c"),
            ("[xyz]", "[xyz]"),
            (" ", ""),
            ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x"),
            ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon"),
            ("RE:  \t  hello   world", "hello world"),
            ("Re[2]: x", "x"),
            ("[list] topic", "topic"),
            ("Fwd : y", "y"),
            ("Reply: z", "Reply: z"),
        ] {
            assert_eq!(extract_base_subject(subject), base, "{subject}");
        }
    }

    #[test]
    fn subject_keys_from_messages() {
        assert_eq!(
            base_subject(b"Subject: =?iso-8859-1?q?RE:_C?=\r\n\r\n"),
            "C"
        );
        assert_eq!(
            base_subject(b"Subject: =?us-ascii?b?UmU6IGM=?=\r\n\r\n"),
            "C"
        );
        assert_eq!(base_subject(b"Subject: Re: =?utf-8?q?b?=\r\n\r\n"), "B");
        assert_eq!(base_subject(b"Subject: =?iso-8859-1?q?_?=\r\n\r\n"), "");
        assert_eq!(base_subject(b"X: y\r\n\r\n"), "");
        assert_eq!(
            base_subject("Subject: re: caf\u{e9}\r\n\r\n".as_bytes()),
            "CAF\u{c9}"
        );
        // Ordering that SORT relies on: uppercase puts letters before '[' and '_'.
        let mut keys =
            ["_", "[xyz]", "c", "babylon", "b (a)", "b"].map(|s| casemap(&extract_base_subject(s)));
        keys.sort();
        assert_eq!(keys, ["B", "B (A)", "BABYLON", "C", "[XYZ]", "_"]);
        assert!(is_reply_or_forward(b"Subject: Re: x\r\n\r\n"));
        assert!(!is_reply_or_forward(b"Subject: x  y\r\n\r\n"));
    }

    #[test]
    fn address_keys() {
        let m = b"From: user2@domain2.org\r\nTo: foo bar <user2@domain2.org>\r\nCc: user2: blah@domain1.org;\r\n\r\n";
        assert_eq!(sort_address(m, "FROM"), "USER2");
        assert_eq!(sort_address(m, "to"), "USER2");
        assert_eq!(sort_address(m, "cc"), "USER2");
        assert_eq!(sort_address(m, "bcc"), "");
        assert_eq!(sort_address(m, "displayto"), "FOO BAR");
        assert_eq!(sort_address(m, "displayfrom"), "USER2@DOMAIN2.ORG");
        assert_eq!(
            sort_address(
                b"From: =?iso-8859-1?q?foo_aar?= <e@f.g>\r\n\r\n",
                "displayfrom"
            ),
            "FOO AAR"
        );
        assert_eq!(sort_address(b"From: d\r\n\r\n", "displayfrom"), "D");
        assert_eq!(
            sort_address(b"To: a: xx@xx.org, yy@yy.org;\r\n\r\n", "displayto"),
            "A"
        );
        assert_eq!(sort_address(b"To: empty:;\r\n\r\n", "displayto"), "EMPTY");
        assert_eq!(
            sort_address(b"To: user@x (Comment Name)\r\n\r\n", "displayto"),
            "COMMENT NAME"
        );
        assert_eq!(sort_address(b"To: \r\n\r\n", "to"), "");
    }

    #[test]
    fn thread_id_extraction() {
        let t = thread_ids(b"Message-ID: <m3@x>\r\nReferences: <m1@x> (c)\r\n <m2@x> junk <bad\r\nIn-Reply-To: <m9@x>\r\n\r\n");
        assert_eq!(t.message_id.as_deref(), Some("<m3@x>"));
        assert_eq!(t.references, ["<m1@x>", "<m2@x>"]);
        let t = thread_ids(b"In-Reply-To: \"quoted\" <p1@x> <p2@x>\r\n\r\n");
        assert_eq!(t.message_id, None);
        assert_eq!(t.references, ["<p1@x>"]);
        assert_eq!(thread_ids(b"\r\n"), ThreadIds::default());
    }
}
