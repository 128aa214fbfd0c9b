//! The IMAP responses `mssante migrate` reads from a source server, parsed without I/O
//! (RFC 9051 §7 and §9, RFC 3501 §7 for IMAP4rev1 servers). The connection (`client.rs`)
//! hands over one response at a time, its literals inlined: the line, then for each
//! `{n}` at a line's end, `n` bytes and the rest of the response.
//!
//! Only what the migration reads is interpreted: tagged results, CAPABILITY, LIST and LSUB,
//! the UIDVALIDITY response code, EXISTS, and FETCH items (UID, FLAGS, INTERNALDATE,
//! RFC822.SIZE, BODY[...]); anything else is kept as [`Untagged::Other`].

/// One token of a response (RFC 9051 §9: atom, number, string, literal, list, NIL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Atom(String),
    /// A quoted string or a literal, as bytes.
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Nil,
}

impl Value {
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// An astring: atom or string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Atom(a) => Some(a.as_bytes()),
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<u64> {
        self.as_atom()?.parse().ok()
    }
}

/// A whole server response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `+ ...` (RFC 9051 §7.5): the text after `+ `.
    Continuation(Vec<u8>),
    Tagged(Tagged),
    Untagged(Untagged),
}

/// The completion of a command (RFC 9051 §7.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub status: Status,
    /// The whole text after the status, response code included (for error messages).
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// A mailbox in a LIST or LSUB answer (RFC 9051 §7.3.1, RFC 3501 §7.2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Name attributes as sent (`\HasChildren`, `\Noselect`, `\Sent`…).
    pub attributes: Vec<String>,
    /// The hierarchy delimiter; `None` for a flat namespace (NIL).
    pub delimiter: Option<char>,
    /// The name as sent (modified UTF-7 from an IMAP4rev1 server).
    pub name: Vec<u8>,
}

impl ListEntry {
    pub fn has_attribute(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }
}

/// The FETCH items the migration asks for (RFC 9051 §7.5.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub internaldate: Option<String>,
    pub size: Option<u64>,
    /// `BODY[]`: the whole message.
    pub body: Option<Vec<u8>>,
    /// `BODY[HEADER.FIELDS (...)]`: the header lines asked for.
    pub header_fields: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untagged {
    /// `* OK/NO/BAD/BYE/PREAUTH [code] text`: the status word, the code and the text.
    Status {
        status: String,
        code: Option<String>,
        text: String,
    },
    Capability(Vec<String>),
    List(ListEntry),
    Lsub(ListEntry),
    Exists(u32),
    Fetch(u32, Box<Fetched>),
    Other(String),
}

/// Why a response could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unreadable IMAP response ({problem}): {excerpt}")]
pub struct ParseError {
    pub problem: &'static str,
    pub excerpt: String,
}

/// If a response line ends with a literal's announcement (`{123}` or `{123+}` then CRLF),
/// its length (RFC 9051 §4.3).
pub fn literal_length(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n").or(line.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Parses one response (its final CRLF included or not).
pub fn parse_response(bytes: &[u8]) -> Result<Response, ParseError> {
    let bytes = bytes
        .strip_suffix(b"\r\n")
        .or(bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    let err = |problem| ParseError {
        problem,
        excerpt: String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned(),
    };
    if let Some(rest) = bytes.strip_prefix(b"+") {
        return Ok(Response::Continuation(
            rest.strip_prefix(b" ").unwrap_or(rest).to_vec(),
        ));
    }
    if let Some(rest) = bytes.strip_prefix(b"* ") {
        return parse_untagged(rest).ok_or_else(|| err("malformed untagged response"));
    }
    let (tag, rest) = split_word(bytes).ok_or_else(|| err("no tag"))?;
    let (status, text) = split_word(rest).ok_or_else(|| err("no status"))?;
    let status = match status.to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        _ => return Err(err("unknown status")),
    };
    Ok(Response::Tagged(Tagged {
        tag,
        status,
        text: String::from_utf8_lossy(text).into_owned(),
    }))
}

/// The first space-separated word (as text) and the rest.
fn split_word(bytes: &[u8]) -> Option<(String, &[u8])> {
    let end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    if end == 0 {
        return None;
    }
    let word = std::str::from_utf8(&bytes[..end]).ok()?.to_string();
    Some((word, bytes.get(end + 1..).unwrap_or(&[])))
}

fn parse_untagged(bytes: &[u8]) -> Option<Response> {
    let (word, rest) = split_word(bytes)?;
    let upper = word.to_ascii_uppercase();
    let untagged = if let Ok(number) = word.parse::<u32>() {
        let (kind, rest) = split_word(rest)?;
        match kind.to_ascii_uppercase().as_str() {
            "EXISTS" => Untagged::Exists(number),
            "FETCH" => {
                let items = Tokens::new(rest).value()?;
                Untagged::Fetch(number, Box::new(fetch_items(items)?))
            }
            _ => Untagged::Other(String::from_utf8_lossy(bytes).into_owned()),
        }
    } else {
        match upper.as_str() {
            "OK" | "NO" | "BAD" | "BYE" | "PREAUTH" => {
                let (code, text) = response_code(rest);
                Untagged::Status {
                    status: upper,
                    code,
                    text,
                }
            }
            "CAPABILITY" => Untagged::Capability(
                String::from_utf8_lossy(rest)
                    .split_ascii_whitespace()
                    .map(str::to_string)
                    .collect(),
            ),
            "LIST" => Untagged::List(list_entry(rest)?),
            "LSUB" => Untagged::Lsub(list_entry(rest)?),
            _ => Untagged::Other(String::from_utf8_lossy(bytes).into_owned()),
        }
    };
    Some(Response::Untagged(untagged))
}

/// `[code] text` (RFC 9051 §7.1): the code without its brackets, and the text.
fn response_code(rest: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(rest).into_owned();
    if let Some(inner) = text.strip_prefix('[')
        && let Some(end) = inner.find(']')
    {
        return (
            Some(inner[..end].to_string()),
            inner[end + 1..].trim_start().to_string(),
        );
    }
    (None, text)
}

/// The response code of a tagged or untagged text, if any (`[AUTHENTICATIONFAILED] ...`).
pub fn code_of(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    Some(&inner[..inner.find(']')?])
}

/// `(attributes) delimiter name` (RFC 9051 §7.3.1; LIST-EXTENDED's trailing extended data,
/// RFC 5258 §6, is ignored).
fn list_entry(rest: &[u8]) -> Option<ListEntry> {
    let mut tokens = Tokens::new(rest);
    let Value::List(attributes) = tokens.value()? else {
        return None;
    };
    let delimiter = match tokens.value()? {
        Value::Nil => None,
        Value::Bytes(b) if b.len() == 1 => Some(char::from(b[0])),
        _ => return None,
    };
    let name = tokens.value()?.as_bytes()?.to_vec();
    Some(ListEntry {
        attributes: attributes
            .iter()
            .filter_map(|a| a.as_atom().map(str::to_string))
            .collect(),
        delimiter,
        name,
    })
}

fn fetch_items(items: Value) -> Option<Fetched> {
    let Value::List(items) = items else {
        return None;
    };
    let mut fetched = Fetched::default();
    let mut pairs = items.into_iter();
    while let Some(name) = pairs.next() {
        let name = name.as_atom()?.to_ascii_uppercase();
        let value = pairs.next()?;
        match name.as_str() {
            "UID" => fetched.uid = Some(u32::try_from(value.as_number()?).ok()?),
            "RFC822.SIZE" => fetched.size = Some(value.as_number()?),
            "INTERNALDATE" => {
                fetched.internaldate = Some(String::from_utf8_lossy(value.as_bytes()?).into())
            }
            "FLAGS" => {
                let Value::List(flags) = value else {
                    return None;
                };
                fetched.flags = Some(
                    flags
                        .iter()
                        .filter_map(|f| f.as_atom().map(str::to_string))
                        .collect(),
                );
            }
            "BODY[]" => fetched.body = Some(nstring(value)),
            n if n.starts_with("BODY[HEADER.FIELDS") => {
                fetched.header_fields = Some(nstring(value))
            }
            _ => {}
        }
    }
    Some(fetched)
}

fn nstring(value: Value) -> Vec<u8> {
    match value {
        Value::Bytes(b) => b,
        Value::Atom(a) => a.into_bytes(),
        _ => Vec::new(),
    }
}

/// A tokenizer over one response's bytes.
struct Tokens<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(bytes: &'a [u8]) -> Tokens<'a> {
        Tokens { bytes, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_spaces();
        match self.peek()? {
            b'(' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    if self.peek()? == b')' {
                        self.at += 1;
                        return Some(Value::List(items));
                    }
                    items.push(self.value()?);
                }
            }
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => {
                let atom = self.atom()?;
                Some(if atom.eq_ignore_ascii_case("NIL") {
                    Value::Nil
                } else {
                    Value::Atom(atom)
                })
            }
        }
    }

    /// RFC 9051 §9 `quoted`: `\` escapes `"` and `\`.
    fn quoted(&mut self) -> Option<Value> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(Value::Bytes(out));
                }
                b'\\' => {
                    out.push(*self.bytes.get(self.at + 1)?);
                    self.at += 2;
                }
                b => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
    }

    /// `{n}` CRLF then n bytes (inlined by the connection).
    fn literal(&mut self) -> Option<Value> {
        let close = self.at + self.bytes[self.at..].iter().position(|&b| b == b'}')?;
        let digits = std::str::from_utf8(&self.bytes[self.at + 1..close]).ok()?;
        let length: usize = digits.trim_end_matches('+').parse().ok()?;
        let mut start = close + 1;
        if self.bytes.get(start..start + 2) == Some(b"\r\n") {
            start += 2;
        } else if self.bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        let data = self.bytes.get(start..start + length)?.to_vec();
        self.at = start + length;
        Some(Value::Bytes(data))
    }

    /// An atom, a flag (`\Seen`) or a fetch item name with its section: `BODY[...]` holds
    /// spaces and parentheses up to its closing bracket (RFC 9051 §9 `msg-att-static`).
    fn atom(&mut self) -> Option<String> {
        let start = self.at;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'(' | b')' | b'"' | b'{' => break,
                b'[' => {
                    let close = self.bytes[self.at..].iter().position(|&c| c == b']')?;
                    self.at += close + 1;
                }
                _ => self.at += 1,
            }
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.at]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untagged(bytes: &[u8]) -> Untagged {
        match parse_response(bytes).unwrap() {
            Response::Untagged(u) => u,
            other => panic!("not untagged: {other:?}"),
        }
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {12+}\r\n"), Some(12));
        assert_eq!(literal_length(b"* OK done\r\n"), None);
        assert_eq!(literal_length(b"* OK {x}\r\n"), None);
    }

    #[test]
    fn fetch_with_literal_flags_and_section() {
        let response = b"* 3 FETCH (UID 17 FLAGS (\\Seen $Forwarded \\Flagged) INTERNALDATE \" 1-Feb-2024 10:00:00 +0100\" RFC822.SIZE 5 BODY[HEADER.FIELDS (MESSAGE-ID)] {4}\r\nab\r\n BODY[] {5}\r\nhello)\r\n";
        let Untagged::Fetch(3, f) = untagged(response) else {
            panic!()
        };
        assert_eq!(f.uid, Some(17));
        assert_eq!(
            f.flags.as_deref(),
            Some(&["\\Seen".into(), "$Forwarded".into(), "\\Flagged".into()][..])
        );
        assert_eq!(
            f.internaldate.as_deref(),
            Some(" 1-Feb-2024 10:00:00 +0100")
        );
        assert_eq!(f.size, Some(5));
        assert_eq!(f.header_fields.as_deref(), Some(&b"ab\r\n"[..]));
        assert_eq!(f.body.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn list_and_lsub() {
        let Untagged::List(e) =
            untagged(b"* LIST (\\HasNoChildren \\Sent) \".\" \"Envoy&AOk-s\"\r\n")
        else {
            panic!()
        };
        assert_eq!(e.delimiter, Some('.'));
        assert_eq!(e.name, b"Envoy&AOk-s");
        assert!(e.has_attribute("\\sent"));
        let Untagged::Lsub(e) = untagged(b"* LSUB () NIL INBOX") else {
            panic!()
        };
        assert_eq!((e.delimiter, e.name.as_slice()), (None, &b"INBOX"[..]));
        // A name sent as a literal.
        let Untagged::List(e) = untagged(b"* LIST () \"/\" {5}\r\na b c") else {
            panic!()
        };
        assert_eq!(e.name, b"a b c");
    }

    #[test]
    fn statuses_and_codes() {
        assert_eq!(
            untagged(b"* OK [UIDVALIDITY 1700000000] UIDs valid"),
            Untagged::Status {
                status: "OK".into(),
                code: Some("UIDVALIDITY 1700000000".into()),
                text: "UIDs valid".into()
            }
        );
        assert_eq!(untagged(b"* 42 EXISTS"), Untagged::Exists(42));
        let Response::Tagged(t) =
            parse_response(b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n").unwrap()
        else {
            panic!()
        };
        assert_eq!((t.tag.as_str(), t.status), ("a1", Status::No));
        assert_eq!(code_of(&t.text), Some("AUTHENTICATIONFAILED"));
        assert_eq!(
            parse_response(b"+ eyJzdGF0dXMiOiI0MDEifQ==").unwrap(),
            Response::Continuation(b"eyJzdGF0dXMiOiI0MDEifQ==".to_vec())
        );
        assert!(parse_response(b"a1 MAYBE").is_err());
    }

    #[test]
    fn quoted_escapes_and_nil() {
        let Untagged::Fetch(1, f) = untagged(b"* 1 FETCH (UID 2 BODY[] NIL)") else {
            panic!()
        };
        assert_eq!(f.body.as_deref(), Some(&b""[..]));
        let Untagged::List(e) = untagged(b"* LIST () \"/\" \"a\\\"b\\\\c\"") else {
            panic!()
        };
        assert_eq!(e.name, b"a\"b\\c");
    }
}
