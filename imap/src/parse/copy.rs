//! COPY and MOVE, and their UID forms (RFC 9051 §6.4.7, §6.4.8; RFC 6851).

use super::Command;
use super::cursor::{Cursor, PResult};
use super::sequence::SequenceSet;

/// COPY and MOVE take the same arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyArgs {
    pub uid: bool,
    pub set: SequenceSet,
    pub mailbox: Vec<u8>,
}

pub(super) fn parse_copy(c: &mut Cursor<'_>, uid: bool, is_move: bool) -> PResult<Command> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let mailbox = c.astring()?;
    let args = CopyArgs { uid, set, mailbox };
    Ok(if is_move {
        Command::Move(args)
    } else {
        Command::Copy(args)
    })
}
