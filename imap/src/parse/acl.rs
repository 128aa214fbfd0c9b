//! ACL commands (RFC 4314 §3): GETACL, SETACL, DELETEACL, LISTRIGHTS, MYRIGHTS.

use super::Command;
use super::cursor::{Cursor, PResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclCommand {
    /// RFC 4314 §3.3.
    Get { mailbox: Vec<u8> },
    /// RFC 4314 §3.1: `rights` may start with `+` or `-`.
    Set {
        mailbox: Vec<u8>,
        identifier: String,
        rights: String,
    },
    /// RFC 4314 §3.2.
    Delete {
        mailbox: Vec<u8>,
        identifier: String,
    },
    /// RFC 4314 §3.4.
    ListRights {
        mailbox: Vec<u8>,
        identifier: String,
    },
    /// RFC 4314 §3.5.
    MyRights { mailbox: Vec<u8> },
}

impl AclCommand {
    pub fn mailbox(&self) -> &[u8] {
        match self {
            AclCommand::Get { mailbox }
            | AclCommand::Set { mailbox, .. }
            | AclCommand::Delete { mailbox, .. }
            | AclCommand::ListRights { mailbox, .. }
            | AclCommand::MyRights { mailbox } => mailbox,
        }
    }
}

/// The arguments after the command name `name` (already read, upper case).
pub(super) fn parse_acl(c: &mut Cursor<'_>, name: &str) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    let next = |c: &mut Cursor<'_>| -> PResult<String> {
        c.sp()?;
        c.astring_utf8()
    };
    let acl = match name {
        "GETACL" => AclCommand::Get { mailbox },
        "MYRIGHTS" => AclCommand::MyRights { mailbox },
        "SETACL" => AclCommand::Set {
            mailbox,
            identifier: next(c)?,
            rights: next(c)?,
        },
        "DELETEACL" => AclCommand::Delete {
            mailbox,
            identifier: next(c)?,
        },
        _ => AclCommand::ListRights {
            mailbox,
            identifier: next(c)?,
        },
    };
    Ok(Command::Acl(acl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_request;

    fn acl(line: &str) -> AclCommand {
        match parse_request(line.as_bytes()).unwrap().command {
            Command::Acl(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_the_five_commands() {
        assert_eq!(
            acl("a SETACL INBOX sec@x.fr +lrs"),
            AclCommand::Set {
                mailbox: b"INBOX".to_vec(),
                identifier: "sec@x.fr".into(),
                rights: "+lrs".into()
            }
        );
        assert_eq!(
            acl("a deleteacl \"Other Users/dr@x.fr/INBOX\" 810001"),
            AclCommand::Delete {
                mailbox: b"Other Users/dr@x.fr/INBOX".to_vec(),
                identifier: "810001".into()
            }
        );
        assert_eq!(acl("a GETACL INBOX").mailbox(), b"INBOX");
        assert_eq!(acl("a MYRIGHTS INBOX").mailbox(), b"INBOX");
        assert!(matches!(
            acl("a LISTRIGHTS INBOX x@y.fr"),
            AclCommand::ListRights { .. }
        ));
        assert!(parse_request(b"a SETACL INBOX x@y.fr").is_err());
    }
}
