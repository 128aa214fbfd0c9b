//! FETCH and UID FETCH (RFC 9051 §6.4.5) with BINARY items (RFC 3516) and the CHANGEDSINCE
//! and VANISHED modifiers (RFC 7162 §3.1.4.1, §3.2.6), and PARTIAL (RFC 9394 §3.3).

use super::Command;
use super::cursor::{Cursor, PResult, ParseError, bad};
use super::search_return::{PartialRange, partial_range};
use super::sequence::SequenceSet;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchArgs {
    pub uid: bool,
    pub set: SequenceSet,
    pub items: Vec<FetchItem>,
    pub changed_since: Option<u64>,
    pub vanished: bool,
    /// RFC 9394 §3.3: only this window of the messages the set names (UID FETCH only).
    pub partial: Option<PartialRange>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// BODY (non-extensible structure)
    Body,
    BodyStructure,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    ModSeq,
    /// RFC 8474 §5.1.
    EmailId,
    /// RFC 8474 §5.2 (always NIL: threads have no stored identity).
    ThreadId,
    /// RFC 8514 §4.
    SaveDate,
    /// RFC 8970 `PREVIEW` (with or without the `(LAZY)` modifier: it is always computed).
    Preview,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`; `section` is the raw text inside [].
    Section {
        peek: bool,
        section: String,
        partial: Option<(u32, u32)>,
    },
    /// RFC 3516 `BINARY[part]<partial>` / `BINARY.PEEK`.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
}

pub(super) fn parse_fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let items = if c.peek() == Some(b'(') {
        c.paren_list(fetch_item)?
    } else {
        fetch_macro(c).map_or_else(|| fetch_item(c).map(|i| vec![i]), Ok)?
    };
    let (mut changed_since, mut vanished, mut partial) = (None, false, None);
    if c.eat(b' ') {
        // RFC 7162 §3.1.4.1 and §3.2.6
        c.paren_list(|c| {
            if c.eat_word("CHANGEDSINCE") {
                c.sp()?;
                changed_since = Some(c.number64()?);
            } else if c.eat_word("VANISHED") {
                vanished = true;
            } else if c.eat_word("PARTIAL ") {
                partial = Some(partial_range(c)?);
            } else {
                return bad("unknown FETCH modifier");
            }
            Ok(())
        })?;
    }
    Ok(Command::Fetch(FetchArgs {
        uid,
        set,
        items,
        changed_since,
        vanished,
        partial,
    }))
}

/// RFC 9051 §6.4.5 macros ALL, FAST, FULL (only as the whole item list).
fn fetch_macro(c: &mut Cursor<'_>) -> Option<Vec<FetchItem>> {
    let mark = c.mark();
    let items = match c.atom().ok()?.to_ascii_uppercase().as_str() {
        "ALL" => vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
            FetchItem::Envelope,
        ],
        "FAST" => vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
        ],
        "FULL" => vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
            FetchItem::Envelope,
            FetchItem::Body,
        ],
        _ => {
            c.reset(mark);
            return None;
        }
    };
    if c.at_end() || c.peek() == Some(b' ') {
        Some(items)
    } else {
        c.reset(mark);
        None
    }
}

/// Parses `BODY[...]`-like items whose atom is followed by a section and a partial range.
pub(super) fn fetch_item(c: &mut Cursor<'_>) -> PResult<FetchItem> {
    let name = c
        .take_while(
            |b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_',
            "expected a fetch item",
        )?
        .to_ascii_uppercase();
    let item = match name.as_str() {
        "FLAGS" => FetchItem::Flags,
        "UID" => FetchItem::Uid,
        "INTERNALDATE" => FetchItem::InternalDate,
        "RFC822.SIZE" => FetchItem::Rfc822Size,
        "ENVELOPE" => FetchItem::Envelope,
        "BODYSTRUCTURE" => FetchItem::BodyStructure,
        "RFC822" => FetchItem::Rfc822,
        "RFC822.HEADER" => FetchItem::Rfc822Header,
        "RFC822.TEXT" => FetchItem::Rfc822Text,
        "MODSEQ" => FetchItem::ModSeq,
        "EMAILID" => FetchItem::EmailId,
        "THREADID" => FetchItem::ThreadId,
        "SAVEDATE" => FetchItem::SaveDate,
        "PREVIEW" => {
            // RFC 8970 §3.1: `PREVIEW (LAZY)`.
            let mark = c.mark();
            if !(c.eat_word(" (LAZY)")) {
                c.reset(mark);
            }
            FetchItem::Preview
        }
        "BODY" if c.peek() != Some(b'[') => FetchItem::Body,
        "BODY" | "BODY.PEEK" => {
            let section = bracketed(c)?;
            FetchItem::Section {
                peek: name == "BODY.PEEK",
                section,
                partial: partial(c)?,
            }
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = part_numbers(&bracketed(c)?)?;
            FetchItem::Binary {
                peek: name == "BINARY.PEEK",
                part,
                partial: partial(c)?,
            }
        }
        "BINARY.SIZE" => FetchItem::BinarySize {
            part: part_numbers(&bracketed(c)?)?,
        },
        _ => return bad(format!("unknown fetch item {name}")),
    };
    Ok(item)
}

/// The text between `[` and the matching `]` (sections may contain parenthesised lists).
fn bracketed(c: &mut Cursor<'_>) -> PResult<String> {
    c.expect(b'[')?;
    let rest = c.rest();
    let end = rest
        .iter()
        .position(|&b| b == b']')
        .ok_or_else(|| ParseError("missing ']'".into()))?;
    let text = std::str::from_utf8(&rest[..end])
        .map_err(|_| ParseError("invalid section".into()))?
        .to_string();
    for _ in 0..=end {
        c.eat(c.peek().unwrap_or(0));
    }
    Ok(text)
}

fn partial(c: &mut Cursor<'_>) -> PResult<Option<(u32, u32)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let start = c.number()?;
    c.expect(b'.')?;
    let len = c.nz_number()?;
    c.expect(b'>')?;
    Ok(Some((start, len)))
}

/// `1.2.3` (RFC 3516 section-binary): part numbers only.
fn part_numbers(s: &str) -> PResult<Vec<u32>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split('.')
        .map(|p| {
            p.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| ParseError("invalid part number".into()))
        })
        .collect()
}
