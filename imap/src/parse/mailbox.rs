//! Commands naming one mailbox: CREATE (with USE, RFC 6154 §3), DELETE, RENAME, SUBSCRIBE,
//! UNSUBSCRIBE, STATUS (RFC 9051 §6.3), GETQUOTA and GETQUOTAROOT (RFC 9208).

use super::Command;
use super::cursor::{Cursor, PResult, bad};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    pub mailbox: Vec<u8>,
    /// RFC 6154 §3: `CREATE name (USE (\Sent))`.
    pub special_use: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenameArgs {
    pub from: Vec<u8>,
    pub to: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusArgs {
    pub mailbox: Vec<u8>,
    /// Upper-cased item names.
    pub items: Vec<String>,
}

pub(super) fn one_mailbox(c: &mut Cursor<'_>) -> PResult<Vec<u8>> {
    c.sp()?;
    c.astring()
}

pub(super) fn parse_create(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        // RFC 6154 §3: CREATE mailbox (USE (\Sent))
        c.expect(b'(')?;
        if !c.eat_word("USE") {
            return bad("unknown CREATE parameter");
        }
        c.sp()?;
        special_use = c.flag_list()?;
        c.expect(b')')?;
    }
    Ok(Command::Create(CreateArgs {
        mailbox,
        special_use,
    }))
}

pub(super) fn parse_rename(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let from = c.astring()?;
    c.sp()?;
    let to = c.astring()?;
    Ok(Command::Rename(RenameArgs { from, to }))
}

pub(super) fn parse_status(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    c.sp()?;
    let items = c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
    if items.is_empty() {
        return bad("STATUS needs at least one item");
    }
    Ok(Command::Status(StatusArgs { mailbox, items }))
}
