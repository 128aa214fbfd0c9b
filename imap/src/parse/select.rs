//! SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3) with CONDSTORE and QRESYNC parameters
//! (RFC 7162 §3.1.8, §3.2.5).

use super::Command;
use super::cursor::{Cursor, PResult, bad};
use super::sequence::SequenceSet;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectArgs {
    pub mailbox: Vec<u8>,
    /// EXAMINE
    pub read_only: bool,
    pub condstore: bool,
    pub qresync: Option<QresyncParams>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QresyncParams {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
}

pub(super) fn parse_select(c: &mut Cursor<'_>, read_only: bool) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    let (mut condstore, mut qresync) = (false, None);
    if c.eat(b' ') {
        c.expect(b'(')?;
        loop {
            if c.eat_word("CONDSTORE") {
                condstore = true;
            } else if c.eat_word("QRESYNC") {
                // RFC 7162 §3.2.5: (QRESYNC (uidvalidity modseq [known-uids [seq-match]]))
                c.sp()?;
                c.expect(b'(')?;
                let uidvalidity = c.nz_number()?;
                c.sp()?;
                let modseq = c.number64()?;
                let mut known_uids = None;
                if c.eat(b' ') && c.peek() != Some(b'(') {
                    known_uids = Some(SequenceSet::parse(c)?);
                    c.eat(b' ');
                }
                if c.peek() == Some(b'(') {
                    // seq-match-data: accepted and not used (we send VANISHED (EARLIER) for all).
                    skip_parens(c)?;
                }
                c.expect(b')')?;
                qresync = Some(QresyncParams {
                    uidvalidity,
                    modseq,
                    known_uids,
                });
            } else {
                return bad("unknown SELECT parameter");
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(Command::Select(SelectArgs {
        mailbox,
        read_only,
        condstore,
        qresync,
    }))
}

fn skip_parens(c: &mut Cursor<'_>) -> PResult<()> {
    c.expect(b'(')?;
    let mut depth = 1;
    while depth > 0 {
        match c.peek() {
            None => return bad("unbalanced parentheses"),
            Some(b'(') => depth += 1,
            Some(b')') => depth -= 1,
            _ => {}
        }
        c.eat(c.peek().unwrap());
    }
    Ok(())
}
