//! Minimal, offset-exact RFC 5322 / MIME (RFC 2045, RFC 2046) structure parser.
//!
//! IMAP needs the exact byte ranges of every header and body (RFC 9051 §6.4.5), raw header
//! values and Dovecot's tolerance of broken mail, so this works on byte offsets into the raw
//! message and allocates only the parsed Content-Type of each entity.

/// Deepest MIME nesting parsed; deeper entities are treated as opaque leaves (a message
/// nested thousands of times must not blow the stack).
pub const MAX_DEPTH: usize = 64;

/// Length of the line ending at `pos` (2 for CRLF, 1 for a bare LF, 0 otherwise).
fn eol_len(raw: &[u8], pos: usize) -> usize {
    if raw[pos..].starts_with(b"\r\n") {
        2
    } else if raw.get(pos) == Some(&b'\n') {
        1
    } else {
        0
    }
}

/// Position just after the next LF at or after `pos`, bounded by `end`.
fn next_line(raw: &[u8], pos: usize, end: usize) -> usize {
    match raw[pos..end].iter().position(|&b| b == b'\n') {
        Some(i) => pos + i + 1,
        None => end,
    }
}

/// Splits `raw[start..end]` into header and body: returns the offset where the body starts.
/// The header includes its terminating empty line (RFC 9051 §6.4.5: "HEADER ... including
/// the blank line"). Without an empty line, the whole range is header and the body is empty.
pub fn body_start(raw: &[u8], start: usize, end: usize) -> usize {
    let mut pos = start;
    while pos < end {
        let n = eol_len(&raw[..end], pos);
        if n > 0 {
            return pos + n;
        }
        pos = next_line(raw, pos, end);
    }
    end
}

/// One header field, borrowed from the raw message.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// Field name, without the colon or trailing whitespace.
    pub name: &'a [u8],
    /// Raw value after the colon, folding kept, final line ending removed.
    pub value: &'a [u8],
    /// The whole field including its final line ending.
    pub raw: &'a [u8],
}

/// Iterator over the fields of a header block (RFC 5322 §2.2). Lines without a colon are
/// skipped, as Dovecot does; the empty line ends the iteration.
pub struct Fields<'a> {
    hdr: &'a [u8],
    pos: usize,
}

/// Fields of a header block (`hdr` may include the terminating empty line and the body:
/// iteration stops at the empty line).
pub fn fields(hdr: &[u8]) -> Fields<'_> {
    Fields { hdr, pos: 0 }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let h = self.hdr;
        loop {
            if self.pos >= h.len() || eol_len(h, self.pos) > 0 {
                return None;
            }
            let start = self.pos;
            // The field runs until a line that does not start with WSP (RFC 5322 §2.2.3).
            let mut end = next_line(h, start, h.len());
            while end < h.len() && (h[end] == b' ' || h[end] == b'\t') {
                end = next_line(h, end, h.len());
            }
            self.pos = end;
            let raw = &h[start..end];
            let Some(colon) = raw.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = trim_end(&raw[..colon]);
            if name.is_empty() || name.contains(&b'\n') {
                continue;
            }
            let mut value = &raw[colon + 1..];
            if value.ends_with(b"\n") {
                value = &value[..value.len() - 1];
            }
            if value.ends_with(b"\r") {
                value = &value[..value.len() - 1];
            }
            return Some(Field { name, value, raw });
        }
    }
}

/// First field called `name` (case-insensitive) in a header block.
pub fn first_field<'a>(hdr: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields(hdr)
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value)
}

/// The first value of each of `names` (case-insensitive) in one pass over a header block.
pub fn first_fields<'a, const N: usize>(hdr: &'a [u8], names: [&str; N]) -> [Option<&'a [u8]>; N] {
    let mut out = [None; N];
    for f in fields(hdr) {
        if let Some(i) = names
            .iter()
            .position(|n| f.name.eq_ignore_ascii_case(n.as_bytes()))
            && out[i].is_none()
        {
            out[i] = Some(f.value);
        }
    }
    out
}

pub fn trim_end(v: &[u8]) -> &[u8] {
    let n = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &v[..n]
}

pub fn trim(v: &[u8]) -> &[u8] {
    let v = trim_end(v);
    let n = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    &v[n..]
}

/// Unfolds a header value (RFC 5322 §2.2.3: CRLF followed by WSP becomes the WSP) and trims
/// surrounding whitespace.
pub fn unfold(v: &[u8]) -> Vec<u8> {
    let v = trim(v);
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        }
    }
    out
}

/// A MIME token, quoted string or special from a structured header (RFC 2045 §5.1),
/// comments skipped.
#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(Vec<u8>),
    Special(u8),
}

/// Skips whitespace and (nested) comments (RFC 5322 §3.2.2 CFWS) starting at `pos`.
pub fn skip_cfws(v: &[u8], mut pos: usize) -> usize {
    while pos < v.len() {
        match v[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'(' => pos = skip_comment(v, pos).0,
            _ => break,
        }
    }
    pos
}

/// Skips a comment starting at `v[pos] == b'('`; returns the end and the comment text
/// (escapes removed, nested parentheses kept).
pub fn skip_comment(v: &[u8], mut pos: usize) -> (usize, Vec<u8>) {
    let mut depth = 0usize;
    let mut text = Vec::new();
    while pos < v.len() {
        let b = v[pos];
        pos += 1;
        match b {
            b'(' => {
                if depth > 0 {
                    text.push(b);
                }
                depth += 1;
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return (pos, text);
                }
                text.push(b);
            }
            b'\\' if pos < v.len() => {
                text.push(v[pos]);
                pos += 1;
            }
            b'\r' | b'\n' => {}
            _ => text.push(b),
        }
    }
    (pos, text)
}

/// Reads a quoted string starting at `v[pos] == b'"'`; returns the end and the unescaped
/// content (folding removed).
pub fn read_quoted(v: &[u8], mut pos: usize) -> (usize, Vec<u8>) {
    let mut out = Vec::new();
    pos += 1;
    while pos < v.len() {
        let b = v[pos];
        pos += 1;
        match b {
            b'"' => return (pos, out),
            b'\\' if pos < v.len() => {
                out.push(v[pos]);
                pos += 1;
            }
            b'\r' | b'\n' => {}
            _ => out.push(b),
        }
    }
    (pos, out)
}

fn is_tspecial(b: u8) -> bool {
    // RFC 2045 §5.1 tspecials.
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    )
}

fn mime_tokens(v: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut pos = 0;
    loop {
        pos = skip_cfws(v, pos);
        if pos >= v.len() {
            return toks;
        }
        let b = v[pos];
        if b == b'"' {
            let (end, s) = read_quoted(v, pos);
            toks.push(Tok::Word(s));
            pos = end;
        } else if is_tspecial(b) {
            toks.push(Tok::Special(b));
            pos += 1;
        } else {
            // A word ends where skip_cfws would skip (RFC 5322 §3.2.2 FWS: space, tab, CR,
            // LF), not at any ASCII whitespace: a form feed stopping the word but not skipped
            // by skip_cfws made an empty word at the same position forever (fuzzing found it:
            // one message's BODYSTRUCTURE ate all memory).
            let start = pos;
            while pos < v.len()
                && !is_tspecial(v[pos])
                && !matches!(v[pos], b' ' | b'\t' | b'\r' | b'\n')
            {
                pos += 1;
            }
            toks.push(Tok::Word(v[start..pos].to_vec()));
        }
    }
}

/// A parameterised MIME value: `value; name=val; ...` (Content-Type without the subtype
/// split, Content-Disposition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamValue {
    pub value: Vec<u8>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Parses `value *(";" name "=" value)` (RFC 2045 §5.1, RFC 2183 §2). Parameter names and
/// values keep their case; malformed parameters are skipped.
pub fn parse_param_value(v: &[u8]) -> ParamValue {
    let toks = mime_tokens(v);
    let mut it = toks.into_iter().peekable();
    let mut value = Vec::new();
    // Main value: everything up to the first ';' (so "text/plain" is one value here).
    while let Some(t) = it.peek() {
        match t {
            Tok::Special(b';') => break,
            Tok::Word(w) => value.extend_from_slice(w),
            Tok::Special(c) => value.push(*c),
        }
        it.next();
    }
    let mut params = Vec::new();
    while it.next().is_some() {
        // after ';'
        let Some(Tok::Word(name)) = it.next() else {
            continue;
        };
        if it.peek() != Some(&Tok::Special(b'=')) {
            skip_to_semicolon(&mut it);
            continue;
        }
        it.next();
        let mut val = Vec::new();
        let mut seen = false;
        while let Some(t) = it.peek() {
            match t {
                Tok::Special(b';') => break,
                Tok::Word(w) => val.extend_from_slice(w),
                Tok::Special(c) => val.push(*c),
            }
            seen = true;
            it.next();
        }
        if seen {
            params.push((name, val));
        }
    }
    ParamValue { value, params }
}

fn skip_to_semicolon(it: &mut std::iter::Peekable<std::vec::IntoIter<Tok>>) {
    while let Some(t) = it.peek() {
        if *t == Tok::Special(b';') {
            return;
        }
        it.next();
    }
}

impl ParamValue {
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// Parsed Content-Type (RFC 2045 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Type and subtype as written (case kept for BODYSTRUCTURE).
    pub mtype: Vec<u8>,
    pub subtype: Vec<u8>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// False when there was no (valid) Content-Type header and the default applies.
    pub explicit: bool,
}

impl ContentType {
    fn default_for(digest: bool) -> ContentType {
        // RFC 2045 §5.2 default text/plain; charset=us-ascii; RFC 2046 §5.1.5 digest parts
        // default to message/rfc822.
        let (t, s): (&[u8], &[u8]) = if digest {
            (b"message", b"rfc822")
        } else {
            (b"text", b"plain")
        };
        ContentType {
            mtype: t.to_vec(),
            subtype: s.to_vec(),
            params: Vec::new(),
            explicit: false,
        }
    }

    fn parse(v: &[u8], digest: bool) -> ContentType {
        let pv = parse_param_value(v);
        let value = pv.value;
        match value.iter().position(|&b| b == b'/') {
            Some(i) if i > 0 && i + 1 < value.len() && !value[i + 1..].contains(&b'/') => {
                ContentType {
                    mtype: value[..i].to_vec(),
                    subtype: value[i + 1..].to_vec(),
                    params: pv.params,
                    explicit: true,
                }
            }
            // Invalid type: RFC 2045 §5.2 says to assume the default, keep the parameters.
            _ => ContentType {
                params: pv.params,
                ..ContentType::default_for(digest)
            },
        }
    }

    pub fn is(&self, t: &str, s: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(t.as_bytes())
            && self.subtype.eq_ignore_ascii_case(s.as_bytes())
    }

    pub fn is_type(&self, t: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(t.as_bytes())
    }

    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// What an entity contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Leaf,
    /// multipart/* with a boundary.
    Multipart,
    /// message/rfc822 (or message/global) in an identity encoding: the body is a message.
    Message,
}

/// One MIME entity: a message, a body part, or an encapsulated message.
#[derive(Debug, Clone)]
pub struct Entity {
    /// Start of the (MIME) header.
    pub start: usize,
    /// Start of the body (the header `start..body_start` includes the empty line).
    pub body_start: usize,
    /// End of the body.
    pub end: usize,
    pub ctype: ContentType,
    pub kind: Kind,
    depth: usize,
}

impl Entity {
    /// The whole message as an entity.
    pub fn message(raw: &[u8]) -> Entity {
        Entity::parse(raw, 0, raw.len(), false, 0)
    }

    /// Parses the header of the entity spanning `raw[start..end]`.
    pub fn parse(raw: &[u8], start: usize, end: usize, in_digest: bool, depth: usize) -> Entity {
        let body_start = body_start(raw, start, end);
        let hdr = &raw[start..body_start];
        let [ctype, cte] = first_fields(hdr, ["content-type", "content-transfer-encoding"]);
        let ctype = ctype.map(|v| ContentType::parse(v, in_digest));
        let cte = cte.map(trim);
        let ctype = ctype.unwrap_or_else(|| ContentType::default_for(in_digest));
        let identity = cte.is_none_or(|c| {
            [b"7bit".as_slice(), b"8bit", b"binary"]
                .iter()
                .any(|k| c.eq_ignore_ascii_case(k))
        });
        let kind = if depth >= MAX_DEPTH {
            Kind::Leaf
        } else if ctype.is_type("multipart")
            && ctype.param("boundary").is_some_and(|b| !b.is_empty())
        {
            Kind::Multipart
        } else if identity && (ctype.is("message", "rfc822") || ctype.is("message", "global")) {
            Kind::Message
        } else {
            Kind::Leaf
        };
        Entity {
            start,
            body_start,
            end,
            ctype,
            kind,
            depth,
        }
    }

    pub fn header<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.start..self.body_start]
    }

    pub fn body<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.body_start..self.end]
    }

    /// The encapsulated message of a message/rfc822 entity.
    pub fn inner(&self, raw: &[u8]) -> Option<Entity> {
        (self.kind == Kind::Message)
            .then(|| Entity::parse(raw, self.body_start, self.end, false, self.depth + 1))
    }

    /// Body parts of a multipart entity (RFC 2046 §5.1.1). A multipart without any
    /// delimiter gets one empty part, as Dovecot does, so BODYSTRUCTURE stays valid.
    pub fn children(&self, raw: &[u8]) -> Vec<Entity> {
        if self.kind != Kind::Multipart {
            return Vec::new();
        }
        let boundary = self.ctype.param("boundary").unwrap_or_default();
        let digest = self.ctype.is("multipart", "digest");
        let mut out = Vec::new();
        let mut part_start: Option<usize> = None;
        let mut pos = self.body_start;
        let end = self.end;
        while pos < end {
            let line_end = next_line(raw, pos, end);
            if let Some(close) = delimiter(&raw[pos..line_end], boundary) {
                if let Some(ps) = part_start {
                    // The line ending before the delimiter belongs to it (RFC 2046 §5.1.1).
                    let mut pe = pos;
                    if pe > ps && raw[pe - 1] == b'\n' {
                        pe -= 1;
                        if pe > ps && raw[pe - 1] == b'\r' {
                            pe -= 1;
                        }
                    }
                    out.push(Entity::parse(raw, ps, pe, digest, self.depth + 1));
                }
                if close {
                    part_start = None;
                    break;
                }
                part_start = Some(line_end);
            }
            pos = line_end;
        }
        if let Some(ps) = part_start {
            out.push(Entity::parse(raw, ps.min(end), end, digest, self.depth + 1));
        }
        if out.is_empty() {
            out.push(Entity::parse(raw, end, end, digest, self.depth + 1));
        }
        out
    }
}

/// If `line` is a delimiter for `boundary` ("--" boundary, optional "--", then only
/// whitespace, RFC 2046 §5.1.1), returns whether it is the close delimiter.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    rest.iter()
        .all(|b| b.is_ascii_whitespace())
        .then_some(close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_split() {
        let m = b"A: 1\r\nB: 2\r\n\r\nbody\r\n";
        assert_eq!(body_start(m, 0, m.len()), 14);
        assert_eq!(body_start(b"\r\nbody", 0, 6), 2);
        assert_eq!(body_start(b"A: 1\r\n", 0, 6), 6);
        assert_eq!(body_start(b"A: 1\n\nx", 0, 7), 6);
    }

    #[test]
    fn field_iteration_and_folding() {
        let h = b"Subject: a\r\n b\r\nbroken line\r\nX-Y :z\r\n\r\nNot: header\r\n";
        let f: Vec<_> = fields(h).collect();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, b"Subject");
        assert_eq!(f[0].value, b" a\r\n b");
        assert_eq!(f[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(f[1].name, b"X-Y");
        assert_eq!(unfold(f[0].value), b"a b");
        assert_eq!(first_field(h, "x-y"), Some(&b"z"[..]));
        assert_eq!(first_field(h, "not"), None);
    }

    #[test]
    fn content_type_params() {
        let ct = ContentType::parse(
            b" multipart/mixed; boundary=\"foo\r\n bar\" (c); x=y",
            false,
        );
        assert_eq!(ct.mtype, b"multipart");
        assert_eq!(ct.subtype, b"mixed");
        assert_eq!(ct.param("BOUNDARY"), Some(&b"foo bar"[..]));
        assert_eq!(ct.param("x"), Some(&b"y"[..]));
        let bad = ContentType::parse(b"garbage; charset=utf-8", false);
        assert!(bad.is("text", "plain"));
        assert_eq!(bad.param("charset"), Some(&b"utf-8"[..]));
        assert!(ContentType::parse(b"bad", true).is("message", "rfc822"));
    }

    #[test]
    fn multipart_ranges() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nX: 1\r\n\r\none\r\n--b \r\n\r\ntwo\r\n\r\n--b--\r\nepi\r\n";
        let e = Entity::message(m);
        assert_eq!(e.kind, Kind::Multipart);
        let c = e.children(m);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].header(m), b"X: 1\r\n\r\n");
        assert_eq!(c[0].body(m), b"one");
        assert_eq!(c[1].header(m), b"\r\n");
        assert_eq!(c[1].body(m), b"two\r\n");
        assert!(c[1].ctype.is("text", "plain"));
    }

    #[test]
    fn multipart_without_delimiters_or_close() {
        let m = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nnothing here\r\n";
        let c = Entity::message(m).children(m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].body(m), b"");
        let m = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\nunterminated\r\n";
        let c = Entity::message(m).children(m);
        assert_eq!(c[0].body(m), b"unterminated\r\n");
        // "--zzz" is not a delimiter for "zz".
        let m = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\na\r\n--zzz\r\nb\r\n--zz--\r\n";
        let c = Entity::message(m).children(m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].body(m), b"a\r\n--zzz\r\nb");
    }

    #[test]
    fn message_rfc822_and_digest() {
        let m = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nhi\r\n";
        let e = Entity::message(m);
        assert_eq!(e.kind, Kind::Message);
        let inner = e.inner(m).unwrap();
        assert_eq!(inner.header(m), b"Subject: in\r\n\r\n");
        assert_eq!(inner.body(m), b"hi\r\n");
        let m = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaW4K\r\n";
        assert_eq!(Entity::message(m).kind, Kind::Leaf);
        let m = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\ny\r\n--d--\r\n";
        let c = Entity::message(m).children(m);
        assert!(c[0].ctype.is("message", "rfc822"));
        assert_eq!(c[0].kind, Kind::Message);
    }

    #[test]
    fn depth_limit() {
        let mut m = Vec::new();
        for _ in 0..200 {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"x");
        let mut e = Entity::message(&m);
        let mut n = 0;
        while let Some(i) = e.inner(&m) {
            e = i;
            n += 1;
        }
        assert_eq!(n, MAX_DEPTH);
    }

    #[test]
    fn a_form_feed_in_a_parameter_value_ends() {
        // Fuzzing input (fuzz/corpus/imap_message/crash-form-feed-param): never returned.
        let parsed = parse_param_value(b"text/plain; charset=iso-8859-1\x0c");
        assert_eq!(parsed.value, b"text/plain");
        assert_eq!(
            parsed.params,
            vec![(b"charset".to_vec(), b"iso-8859-1\x0c".to_vec())]
        );
    }
}
