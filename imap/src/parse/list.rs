//! LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819), and
//! LSUB (RFC 3501 §6.3.9).

use super::Command;
use super::cursor::{Cursor, PResult, bad};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListArgs {
    pub selection: Vec<String>,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    pub returns: Vec<String>,
    /// STATUS items asked with `RETURN (STATUS (...))` (RFC 5819).
    pub status_items: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsubArgs {
    pub reference: Vec<u8>,
    pub pattern: Vec<u8>,
}

/// RFC 9051 §6.3.9 with LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819).
pub(super) fn parse_list(c: &mut Cursor<'_>) -> PResult<ListArgs> {
    let mut args = ListArgs::default();
    c.sp()?;
    if c.peek() == Some(b'(') {
        args.selection = c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
        c.sp()?;
    }
    args.reference = c.astring()?;
    c.sp()?;
    args.patterns = if c.peek() == Some(b'(') {
        c.paren_list(|c| c.list_mailbox())?
    } else {
        vec![c.list_mailbox()?]
    };
    if c.eat(b' ') {
        if !c.eat_word("RETURN") {
            return bad("expected RETURN");
        }
        c.sp()?;
        let mut status_items = Vec::new();
        args.returns = c.paren_list(|c| {
            let opt = c.atom()?.to_ascii_uppercase();
            if opt == "STATUS" {
                c.sp()?;
                status_items = c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
            }
            Ok(opt)
        })?;
        args.status_items = status_items;
    }
    Ok(args)
}

pub(super) fn parse_lsub(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let reference = c.astring()?;
    c.sp()?;
    let pattern = c.list_mailbox()?;
    Ok(Command::Lsub(LsubArgs { reference, pattern }))
}
