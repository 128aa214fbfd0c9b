//! APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469).

use super::Command;
use super::catenate::{CatPart, parse_catenate};
use super::cursor::{Cursor, PResult, ParseError, bad};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendArgs {
    pub mailbox: Vec<u8>,
    /// One or more messages (MULTIAPPEND).
    pub messages: Vec<AppendMessage>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<String>,
    /// The message; empty until the parts of a CATENATE are put together.
    pub bytes: Vec<u8>,
    /// RFC 4469: the message is made of these parts instead of a literal.
    pub catenate: Option<Vec<CatPart>>,
}

/// One message of APPEND (after the space): `[flag-list SP] [date-time SP] literal` or,
/// with CATENATE (RFC 4469 §5), `CATENATE (parts)` in place of the literal. REPLACE
/// (RFC 8508) takes the same.
pub(super) fn append_message(c: &mut Cursor<'_>) -> PResult<AppendMessage> {
    let mut flags = Vec::new();
    if c.peek() == Some(b'(') {
        flags = c.flag_list()?;
        c.sp()?;
    }
    let mut date = None;
    if c.peek() == Some(b'"') {
        date = Some(String::from_utf8(c.string()?).map_err(|_| ParseError("invalid date".into()))?);
        c.sp()?;
    }
    let catenate = match c.eat_word("CATENATE ") {
        true => Some(parse_catenate(c)?),
        false => None,
    };
    let bytes = match catenate {
        Some(_) => Vec::new(),
        None => c.string()?,
    };
    Ok(AppendMessage {
        flags,
        date,
        bytes,
        catenate,
    })
}

/// RFC 9051 §6.3.12 with MULTIAPPEND (RFC 3502).
pub(super) fn parse_append(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        messages.push(append_message(c)?);
    }
    if messages.is_empty() {
        return bad("APPEND needs a message");
    }
    Ok(Command::Append(AppendArgs { mailbox, messages }))
}
