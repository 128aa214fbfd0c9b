//! IMAP argument parsing shared by the script parser and the response reader.
//!
//! Both sides of a comparison must be tokenised identically, so one parser serves the test
//! scripts and the server's responses. It mirrors the permissive mode imaptest gives Dovecot's
//! parser (ATOM_ALLCHARS, LITERAL8, MULTILINE_STR): an atom runs until a space or a line break
//! (or `)` inside a list), so `BODY[HEADER.FIELDS` / `(FROM)` / `]` come out the same from a
//! script and from a server.
//!
//! Text is carried as "byte strings": a `String` whose chars are all below U+0100, one char per
//! byte (Latin-1). This keeps binary literals (NUL, 8-bit) exact while matching stays on `str`.

use std::fmt;

/// One parsed IMAP argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Nil,
    Atom(String),
    /// A quoted string.
    Str(String),
    /// A literal (`{n}` or `~{n}`); matched like a string, kept apart so APPEND can tell
    /// whether a command already carries its message.
    Literal(String),
    List(Vec<Arg>),
}

impl Arg {
    /// The text of an atom, string or literal (Dovecot's `imap_arg_get_astring`): NIL and lists
    /// have none, which is why `$` never matches NIL.
    pub fn astring(&self) -> Option<&str> {
        match self {
            Arg::Atom(s) | Arg::Str(s) | Arg::Literal(s) => Some(s),
            Arg::Nil | Arg::List(_) => None,
        }
    }

    pub fn atom(&self) -> Option<&str> {
        match self {
            Arg::Atom(s) => Some(s),
            _ => None,
        }
    }
}

/// Bytes to a byte string (one char per byte).
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// A byte string back to bytes; chars above U+00FF (only possible from our own formatting)
/// are sent as UTF-8.
pub fn to_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        if (c as u32) < 256 {
            out.push(c as u32 as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// Parse a whole line (possibly with embedded `{n}\r\n` literals) into arguments.
pub fn parse(input: &str) -> Result<Vec<Arg>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut p = Parser { s: &chars, pos: 0 };
    p.parse_list(false)
}

/// Parse as much as possible, then keep the unparsable rest as plain words: human-readable
/// text after a status response may contain unbalanced parentheses or quotes, and a
/// conformance judge must not choke on prose.
pub fn parse_lenient(input: &str) -> (Vec<Arg>, Option<String>) {
    match parse(input) {
        Ok(args) => (args, None),
        Err(e) => {
            let words = input
                .split([' ', '\r', '\n'])
                .filter(|w| !w.is_empty())
                .map(|w| atom_or_nil(w.to_string()))
                .collect();
            (words, Some(e))
        }
    }
}

fn atom_or_nil(s: String) -> Arg {
    if s.eq_ignore_ascii_case("NIL") {
        Arg::Nil
    } else {
        Arg::Atom(s)
    }
}

struct Parser<'a> {
    s: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn parse_list(&mut self, inside: bool) -> Result<Vec<Arg>, String> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(), Some(' ' | '\r' | '\n')) {
                self.pos += 1;
            }
            let Some(c) = self.peek() else {
                return if inside {
                    Err("unterminated list".into())
                } else {
                    Ok(out)
                };
            };
            match c {
                '(' => {
                    self.pos += 1;
                    out.push(Arg::List(self.parse_list(true)?));
                }
                ')' if inside => {
                    self.pos += 1;
                    return Ok(out);
                }
                '"' => out.push(self.parse_quoted()?),
                '{' | '~' => match self.try_literal()? {
                    Some(lit) => out.push(lit),
                    None => out.push(self.parse_atom(inside)),
                },
                _ => out.push(self.parse_atom(inside)),
            }
        }
    }

    fn parse_atom(&mut self, inside: bool) -> Arg {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\r' || c == '\n' || (c == ')' && inside) {
                break;
            }
            self.pos += 1;
        }
        atom_or_nil(self.s[start..self.pos].iter().collect())
    }

    fn parse_quoted(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '"' => return Ok(Arg::Str(out)),
                '\\' => {
                    let Some(n) = self.peek() else { break };
                    self.pos += 1;
                    out.push(n);
                }
                _ => out.push(c),
            }
        }
        Err("unterminated quoted string".into())
    }

    /// `{n}`, `{n+}`, `~{n}` followed by CRLF and n chars. `None` when it is not literal
    /// syntax after all (then it is an atom, as with ATOM_ALLCHARS).
    fn try_literal(&mut self) -> Result<Option<Arg>, String> {
        let mut i = self.pos;
        if self.s[i] == '~' {
            i += 1;
            if self.s.get(i) != Some(&'{') {
                return Ok(None);
            }
        }
        i += 1;
        let digits_start = i;
        while self.s.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i == digits_start {
            return Ok(None);
        }
        let size: usize = self.s[digits_start..i]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| "literal size overflow".to_string())?;
        if self.s.get(i) == Some(&'+') {
            i += 1;
        }
        if self.s.get(i) != Some(&'}') {
            return Ok(None);
        }
        i += 1;
        if self.s.get(i) == Some(&'\r') {
            i += 1;
        }
        if self.s.get(i) != Some(&'\n') {
            return Ok(None);
        }
        i += 1;
        if i + size > self.s.len() {
            return Err(format!("literal of {size} bytes truncated"));
        }
        let body: String = self.s[i..i + size].iter().collect();
        self.pos = i + size;
        Ok(Some(Arg::Literal(body)))
    }
}

/// Display like imaptest's `imap_args_to_str`: used in failure messages.
pub struct Display<'a>(pub &'a [Arg]);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write_arg(f, a)?;
        }
        Ok(())
    }
}

fn write_arg(f: &mut fmt::Formatter<'_>, a: &Arg) -> fmt::Result {
    match a {
        Arg::Nil => f.write_str("NIL"),
        Arg::Atom(s) => f.write_str(&printable(s)),
        Arg::Str(s) | Arg::Literal(s) => write!(f, "\"{}\"", printable(s).replace('"', "\\\"")),
        Arg::List(l) => write!(f, "({})", Display(l)),
    }
}

/// Control and 8-bit bytes made visible, so reports stay one readable line.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || (0x7f..0x100).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// The arguments without `$!` list directives (for failure messages).
pub fn without_directives(args: &[Arg]) -> Vec<Arg> {
    args.iter()
        .filter(|a| !a.atom().is_some_and(|s| s.starts_with("$!")))
        .map(|a| match a {
            Arg::List(l) => Arg::List(without_directives(l)),
            other => other.clone(),
        })
        .collect()
}

pub fn to_string(args: &[Arg]) -> String {
    Display(args).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str) -> Arg {
        Arg::Atom(s.into())
    }

    #[test]
    fn atoms_lists_strings_nil() {
        let a = parse("1 FETCH (UID 5 FLAGS (\\Seen) X \"a \\\"b\\\"\" nil)").unwrap();
        assert_eq!(a[0], atom("1"));
        let Arg::List(l) = &a[2] else { panic!() };
        assert_eq!(l[3], Arg::List(vec![atom("\\Seen")]));
        assert_eq!(l[5], Arg::Str("a \"b\"".into()));
        assert_eq!(l[6], Arg::Nil);
    }

    #[test]
    fn section_brackets_tokenise_the_same_way() {
        let a = parse("BODY[HEADER.FIELDS (FROM TO)] {3}\r\nabc").unwrap();
        assert_eq!(
            a,
            vec![
                atom("BODY[HEADER.FIELDS"),
                Arg::List(vec![atom("FROM"), atom("TO")]),
                atom("]"),
                Arg::Literal("abc".into())
            ]
        );
    }

    #[test]
    fn literal8_and_binary_bytes() {
        let a = parse(&latin1(b"x ~{3}\r\n\0\xe4\n y")).unwrap();
        assert_eq!(a[1], Arg::Literal(latin1(b"\0\xe4\n")));
        assert_eq!(a[2], atom("y"));
        assert_eq!(to_bytes(a[1].astring().unwrap()), b"\0\xe4\n");
    }

    #[test]
    fn not_a_literal_is_an_atom_and_top_level_paren_is_atom_text() {
        assert_eq!(
            parse("{abc} ~foo").unwrap(),
            vec![atom("{abc}"), atom("~foo")]
        );
        assert_eq!(parse("a)b").unwrap(), vec![atom("a)b")]);
        assert!(parse("(a").is_err());
        assert!(parse("{5}\r\nab").is_err());
    }

    #[test]
    fn directives_hidden_from_messages() {
        let a = parse("1 fetch ($!unordered=2 flags ($!noextra \\seen))").unwrap();
        assert_eq!(
            to_string(&without_directives(&a)),
            "1 fetch (flags (\\seen))"
        );
    }

    #[test]
    fn lenient_falls_back_to_words() {
        let (a, err) = parse_lenient("OK done (oops");
        assert!(err.is_some());
        assert_eq!(a, vec![atom("OK"), atom("done"), atom("(oops")]);
    }
}
