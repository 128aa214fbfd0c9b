//! RFC 5322 §3.4 address lists, parsed leniently the way IMAP's ENVELOPE presents them
//! (RFC 9051 §7.5.2): one entry per mailbox, group start `(NIL NIL "name" NIL)` and group
//! end `(NIL NIL NIL NIL)`.

use super::decode;
use super::mime::{read_quoted, skip_comment};

/// One ENVELOPE address entry. Display names are kept raw (encoded words undecoded), as
/// Dovecot does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub name: Option<Vec<u8>>,
    /// Source route (`@a,@b`), obsolete.
    pub adl: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
    /// Group start `(NIL NIL "name" NIL)`: `mailbox` holds the group name.
    pub group_start: bool,
}

impl Address {
    /// Group end marker `(NIL NIL NIL NIL)`.
    pub fn is_group_end(&self) -> bool {
        !self.group_start && self.mailbox.is_none() && self.host.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Atom(Vec<u8>),
    Quoted(Vec<u8>),
    Comment(Vec<u8>),
    Literal(Vec<u8>),
    Special(u8),
}

fn tokenize(v: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                let (end, text) = skip_comment(v, i);
                toks.push(Tok::Comment(text));
                i = end;
            }
            b'"' => {
                let (end, text) = read_quoted(v, i);
                toks.push(Tok::Quoted(text));
                i = end;
            }
            b'[' => {
                let start = i;
                while i < v.len() && v[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(v.len());
                toks.push(Tok::Literal(
                    v[start..i]
                        .iter()
                        .copied()
                        .filter(|&b| b != b'\r' && b != b'\n')
                        .collect(),
                ));
            }
            b @ (b'<' | b'>' | b':' | b';' | b'@' | b',' | b')' | b'\\' | b']') => {
                toks.push(Tok::Special(b));
                i += 1;
            }
            _ => {
                let start = i;
                while i < v.len() && !b" \t\r\n()\"[]<>:;@,\\".contains(&v[i]) {
                    i += 1;
                }
                toks.push(Tok::Atom(v[start..i].to_vec()));
            }
        }
    }
    toks
}

fn join(words: &[Vec<u8>], sep: &[u8]) -> Option<Vec<u8>> {
    if words.is_empty() {
        return None;
    }
    Some(words.join(sep))
}

/// Collects the words of a domain (dot-atoms and literals) from `toks[*i..]`, stopping at a
/// special; comments go to `comment` when it is empty.
fn domain(toks: &[Tok], i: &mut usize, comment: &mut Option<Vec<u8>>) -> Vec<u8> {
    let mut d = Vec::new();
    while let Some(t) = toks.get(*i) {
        match t {
            Tok::Atom(w) | Tok::Literal(w) | Tok::Quoted(w) => d.extend_from_slice(w),
            Tok::Comment(c) => {
                if comment.is_none() {
                    *comment = Some(c.clone());
                }
            }
            Tok::Special(_) => break,
        }
        *i += 1;
    }
    d
}

/// Parses an address-list header value (raw, folding allowed). Empty or unparseable values
/// give an empty list; an unterminated group is closed.
pub fn parse(v: &[u8]) -> Vec<Address> {
    let toks = tokenize(v);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut i = 0;
    while i < toks.len() {
        let mut words: Vec<Vec<u8>> = Vec::new();
        let mut comment: Option<Vec<u8>> = None;
        while let Some(t) = toks.get(i) {
            match t {
                Tok::Atom(w) | Tok::Quoted(w) | Tok::Literal(w) => words.push(w.clone()),
                Tok::Comment(c) => {
                    if comment.is_none() {
                        comment = Some(c.clone());
                    }
                }
                Tok::Special(_) => break,
            }
            i += 1;
        }
        let special = match toks.get(i) {
            Some(Tok::Special(c)) => Some(*c),
            _ => None,
        };
        match special {
            None | Some(b',') | Some(b';') | Some(b'>') | Some(b')') | Some(b'\\') | Some(b']') => {
                if !words.is_empty() {
                    // A bare word without '@': a mailbox with no domain.
                    out.push(Address {
                        name: comment,
                        mailbox: join(&words, b" "),
                        ..Address::default()
                    });
                }
                if special == Some(b';') && in_group {
                    out.push(Address::default());
                    in_group = false;
                }
                i += 1;
            }
            Some(b':') => {
                i += 1;
                if in_group {
                    continue;
                }
                // RFC 5322 §3.4 group: display-name ":" [group-list] ";"
                out.push(Address {
                    mailbox: Some(join(&words, b" ").unwrap_or_default()),
                    group_start: true,
                    ..Address::default()
                });
                in_group = true;
            }
            Some(b'<') => {
                i += 1;
                let mut adl = Vec::new();
                // Obsolete route: "@a,@b:" (RFC 5322 §4.4).
                if toks.get(i) == Some(&Tok::Special(b'@')) {
                    while let Some(t) = toks.get(i) {
                        match t {
                            Tok::Special(b':') => {
                                i += 1;
                                break;
                            }
                            Tok::Special(b'>') => break,
                            Tok::Special(c) => adl.push(*c),
                            Tok::Atom(w) | Tok::Literal(w) | Tok::Quoted(w) => {
                                adl.extend_from_slice(w)
                            }
                            Tok::Comment(_) => {}
                        }
                        i += 1;
                    }
                }
                let mut ignored = None;
                let mut local = Vec::new();
                while let Some(t) = toks.get(i) {
                    match t {
                        Tok::Atom(w) | Tok::Quoted(w) | Tok::Literal(w) => {
                            local.extend_from_slice(w)
                        }
                        Tok::Comment(_) => {}
                        Tok::Special(_) => break,
                    }
                    i += 1;
                }
                let mut host = None;
                if toks.get(i) == Some(&Tok::Special(b'@')) {
                    i += 1;
                    host = Some(domain(&toks, &mut i, &mut ignored));
                }
                // Skip to the closing '>' and what follows up to the next separator.
                while let Some(t) = toks.get(i) {
                    i += 1;
                    if *t == Tok::Special(b'>') {
                        break;
                    }
                }
                let name = join(&words, b" ");
                out.push(Address {
                    name,
                    adl: (!adl.is_empty()).then_some(adl),
                    mailbox: Some(local),
                    host,
                    group_start: false,
                });
            }
            Some(b'@') => {
                i += 1;
                let host = domain(&toks, &mut i, &mut comment);
                // Trailing comments before the separator name the address too.
                while let Some(Tok::Comment(c)) = toks.get(i) {
                    if comment.is_none() {
                        comment = Some(c.clone());
                    }
                    i += 1;
                }
                let mailbox = words.pop().unwrap_or_default();
                let name = if words.is_empty() {
                    comment
                } else {
                    join(&words, b" ")
                };
                out.push(Address {
                    name,
                    mailbox: Some(mailbox),
                    host: Some(host),
                    ..Address::default()
                });
            }
            Some(_) => i += 1,
        }
    }
    if in_group {
        out.push(Address::default());
    }
    out
}

/// Renders a list for searching: `Name <mailbox@host>`, groups as `name: ...;`, display
/// names decoded (RFC 2047).
pub fn search_text(list: &[Address]) -> String {
    let mut s = String::new();
    for a in list {
        if !s.is_empty() && !s.ends_with(": ") && !a.is_group_end() {
            s.push_str(", ");
        }
        match (&a.mailbox, &a.host) {
            (Some(group), _) if a.group_start => {
                s.push_str(&decode::header_text(group));
                s.push_str(": ");
            }
            _ if a.is_group_end() => {
                s.push(';');
            }
            (mailbox, host) => {
                if let Some(n) = &a.name {
                    s.push_str(&decode::header_text(n));
                    s.push_str(" <");
                }
                s.push_str(&String::from_utf8_lossy(
                    mailbox.as_deref().unwrap_or_default(),
                ));
                if let Some(h) = host {
                    s.push('@');
                    s.push_str(&String::from_utf8_lossy(h));
                }
                if a.name.is_some() {
                    s.push('>');
                }
            }
        }
    }
    s
}
