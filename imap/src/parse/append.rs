//! APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502).

use super::command::Command;
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
    pub bytes: Vec<u8>,
}

/// RFC 9051 §6.3.12 with MULTIAPPEND (RFC 3502).
pub(super) fn parse_append(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        let mut flags = Vec::new();
        if c.peek() == Some(b'(') {
            flags = c.flag_list()?;
            c.sp()?;
        }
        let mut date = None;
        if c.peek() == Some(b'"') {
            date = Some(
                String::from_utf8(c.string()?).map_err(|_| ParseError("invalid date".into()))?,
            );
            c.sp()?;
        }
        messages.push(AppendMessage {
            flags,
            date,
            bytes: c.string()?,
        });
    }
    if messages.is_empty() {
        return bad("APPEND needs a message");
    }
    Ok(Command::Append(AppendArgs { mailbox, messages }))
}
