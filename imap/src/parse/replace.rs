//! REPLACE and UID REPLACE (RFC 8508 §3): a message of the selected mailbox replaced by a
//! new one, appended to any mailbox.

use super::Command;
use super::append::{AppendMessage, append_message};
use super::cursor::{Cursor, PResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaceArgs {
    pub uid: bool,
    /// The message replaced: a sequence number, or a UID for UID REPLACE.
    pub target: u32,
    pub mailbox: Vec<u8>,
    pub message: AppendMessage,
}

/// RFC 8508 §6: `REPLACE SP seq-number SP mailbox SP append-message`.
pub(super) fn parse_replace(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let target = c.nz_number()?;
    c.sp()?;
    let mailbox = c.astring()?;
    c.sp()?;
    let message = append_message(c)?;
    Ok(Command::Replace(ReplaceArgs {
        uid,
        target,
        mailbox,
        message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_request;

    #[test]
    fn replace_forms() {
        let cmd = |s: &str| parse_request(s.as_bytes()).map(|r| r.command);
        match cmd("a UID REPLACE 7 Drafts (\\Draft) {2+}\r\nhi").unwrap() {
            Command::Replace(r) => {
                assert!(r.uid);
                assert_eq!((r.target, r.mailbox.as_slice()), (7, &b"Drafts"[..]));
                assert_eq!(r.message.flags, vec!["\\Draft"]);
                assert_eq!(r.message.bytes, b"hi");
            }
            other => panic!("{other:?}"),
        }
        assert!(cmd("a REPLACE 0 INBOX {1+}\r\nx").is_err());
        assert!(cmd("a REPLACE 1 INBOX").is_err());
        assert!(cmd("a REPLACE 1 INBOX {1+}\r\nx {1+}\r\ny").is_err());
    }
}
