//! A cursor over one assembled command (its literals inline) and the IMAP lexical
//! elements of RFC 9051 §9 (formal syntax): atoms, quoted strings, literals, numbers.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

pub type PResult<T> = Result<T, ParseError>;

pub fn bad<T>(msg: impl Into<String>) -> PResult<T> {
    Err(ParseError(msg.into()))
}

pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// RFC 9051 §9 `ATOM-CHAR`: any CHAR except atom-specials.
fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"(){ %*\"\\]".contains(&b)
}

/// `ASTRING-CHAR`: atom chars plus `]` (resp-specials).
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// Current position, to come back to with [`Cursor::reset`].
    pub fn mark(&self) -> usize {
        self.pos
    }

    pub fn reset(&mut self, mark: usize) {
        self.pos = mark;
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    pub fn expect_end(&self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            bad(format!(
                "unexpected text: {}",
                String::from_utf8_lossy(&self.rest()[..self.rest().len().min(40)])
            ))
        }
    }

    pub fn sp(&mut self) -> PResult<()> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Ok(())
        } else {
            bad("expected a space")
        }
    }

    /// Consumes `c` if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, c: u8) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            bad(format!("expected '{}'", c as char))
        }
    }

    /// Consumes `word` case-insensitively if it is next.
    pub fn eat_word(&mut self, word: &str) -> bool {
        let w = word.as_bytes();
        let end = self.pos + w.len();
        if end <= self.buf.len() && self.buf[self.pos..end].eq_ignore_ascii_case(w) {
            self.pos = end;
            true
        } else {
            false
        }
    }

    pub fn atom(&mut self) -> PResult<&'a str> {
        self.take_while(is_atom_char, "expected an atom")
    }

    /// An atom that may contain `[...]` parts, as fetch attributes and flags do.
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool, err: &str) -> PResult<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        if start == self.pos {
            return bad(err);
        }
        std::str::from_utf8(&self.buf[start..self.pos])
            .map_err(|_| ParseError("invalid UTF-8".into()))
    }

    pub fn number(&mut self) -> PResult<u32> {
        let digits = self.take_while(|b| b.is_ascii_digit(), "expected a number")?;
        digits
            .parse()
            .map_err(|_| ParseError("number out of range".into()))
    }

    pub fn number64(&mut self) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit(), "expected a number")?;
        digits
            .parse()
            .map_err(|_| ParseError("number out of range".into()))
    }

    pub fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => bad("zero is not allowed here"),
            n => Ok(n),
        }
    }

    /// `quoted` (RFC 9051 §4.3): `"` … `"` with `\"` and `\\` escapes.
    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return bad("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return bad("invalid escape in quoted string"),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `literal` / `literal8`: `{n}` or `{n+}` CRLF then n bytes (already read by the session).
    fn literal(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'{')?;
        let n = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}')?;
        if !(self.eat(b'\r') && self.eat(b'\n')) {
            return bad("literal must be followed by CRLF");
        }
        if self.pos + n > self.buf.len() {
            return bad("literal shorter than announced");
        }
        let bytes = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(bytes)
    }

    /// `string`: quoted or literal (also `~{n}` literal8 for APPEND/BINARY, RFC 3516).
    pub fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'~') if self.buf.get(self.pos + 1) == Some(&b'{') => {
                self.pos += 1;
                self.literal()
            }
            _ => bad("expected a string"),
        }
    }

    pub fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => Ok(self
                .take_while(is_astring_char, "expected a string")?
                .as_bytes()
                .to_vec()),
        }
    }

    pub fn astring_utf8(&mut self) -> PResult<String> {
        String::from_utf8(self.astring()?).map_err(|_| ParseError("invalid UTF-8".into()))
    }

    /// `nstring` for ID values.
    pub fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        if self.eat_word("NIL") {
            Ok(None)
        } else {
            Ok(Some(self.string()?))
        }
    }

    /// `list-mailbox`: astring or list-chars including wildcards `%` and `*`.
    pub fn list_mailbox(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => Ok(self
                .take_while(
                    |b| is_astring_char(b) || b == b'%' || b == b'*',
                    "expected a mailbox pattern",
                )?
                .as_bytes()
                .to_vec()),
        }
    }

    /// A flag: `\Seen`, `\*` (in PERMANENTFLAGS) or a keyword atom.
    pub fn flag(&mut self) -> PResult<String> {
        let backslash = self.eat(b'\\');
        if backslash && self.eat(b'*') {
            return Ok("\\*".into());
        }
        let name = self.atom()?;
        Ok(if backslash {
            format!("\\{name}")
        } else {
            name.to_string()
        })
    }

    /// `(flag flag …)`, possibly empty.
    pub fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.expect(b'(')?;
        let mut flags = Vec::new();
        while !self.eat(b')') {
            if !flags.is_empty() {
                self.sp()?;
            }
            flags.push(self.flag()?);
        }
        Ok(flags)
    }

    /// Space-separated items inside parentheses, each parsed by `item`.
    pub fn paren_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_in_all_forms() {
        let mut c = Cursor::new(b"atom \"a \\\"q\\\\\" {3}\r\nx y ~{2}\r\n\0z");
        assert_eq!(c.astring().unwrap(), b"atom");
        c.sp().unwrap();
        assert_eq!(c.astring().unwrap(), b"a \"q\\");
        c.sp().unwrap();
        assert_eq!(c.astring().unwrap(), b"x y");
        c.sp().unwrap();
        assert_eq!(c.string().unwrap(), b"\0z");
        assert!(c.at_end());
    }

    #[test]
    fn rejects_broken_strings() {
        assert!(Cursor::new(b"\"open").astring().is_err());
        assert!(Cursor::new(b"\"bad \\x\"").astring().is_err());
        assert!(Cursor::new(b"{5}\r\nabc").astring().is_err());
        assert!(Cursor::new(b"{3}abc").astring().is_err());
        assert!(Cursor::new(b"(x)").astring().is_err());
    }

    #[test]
    fn flags() {
        let mut c = Cursor::new(b"(\\Seen $Label \\Flagged)");
        assert_eq!(
            c.flag_list().unwrap(),
            vec!["\\Seen", "$Label", "\\Flagged"]
        );
        assert_eq!(
            Cursor::new(b"()").flag_list().unwrap(),
            Vec::<String>::new()
        );
        assert!(Cursor::new(b"(\\Seen").flag_list().is_err());
    }
}
