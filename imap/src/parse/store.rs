//! STORE and UID STORE (RFC 9051 §6.4.6) with UNCHANGEDSINCE (RFC 7162 §3.1.3).

use super::Command;
use super::cursor::{Cursor, PResult, bad};
use super::sequence::SequenceSet;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreArgs {
    pub uid: bool,
    pub set: SequenceSet,
    pub unchanged_since: Option<u64>,
    pub op: StoreOp,
    /// FLAGS.SILENT
    pub silent: bool,
    pub flags: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Replace,
    Add,
    Remove,
}

pub(super) fn parse_store(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        // RFC 7162 §3.1.3
        c.expect(b'(')?;
        if !c.eat_word("UNCHANGEDSINCE") {
            return bad("unknown STORE modifier");
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.expect(b')')?;
        c.sp()?;
    }
    let op = if c.eat(b'+') {
        StoreOp::Add
    } else if c.eat(b'-') {
        StoreOp::Remove
    } else {
        StoreOp::Replace
    };
    let silent = if c.eat_word("FLAGS.SILENT") {
        true
    } else if c.eat_word("FLAGS") {
        false
    } else {
        return bad("expected FLAGS or FLAGS.SILENT");
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut flags = vec![c.flag()?];
        while c.eat(b' ') {
            flags.push(c.flag()?);
        }
        flags
    };
    if flags.iter().any(|f| f == "\\Recent" || f == "\\*") {
        return bad("\\Recent and \\* cannot be stored");
    }
    Ok(Command::Store(StoreArgs {
        uid,
        set,
        unchanged_since,
        op,
        silent,
        flags,
    }))
}
