//! The IMAP command grammar's entry point (RFC 9051 §6 and §9, RFC 3501 for the rev1 forms,
//! and the extensions we advertise): the tag, the command name, and the file that parses
//! each command's arguments into a typed struct. Free of I/O: the session hands over one
//! whole command with its literals inline.

use super::append::parse_append;
use super::auth::{parse_authenticate, parse_enable, parse_id, parse_login};
use super::copy::parse_copy;
use super::cursor::{Cursor, PResult, ParseError, bad};
use super::fetch::parse_fetch;
use super::list::{parse_list, parse_lsub};
use super::mailbox::{one_mailbox, parse_create, parse_rename, parse_status};
use super::replace::parse_replace;
use super::search::{parse_search, parse_sort, parse_thread};
use super::select::parse_select;
use super::sequence::SequenceSet;
use super::store::parse_store;
use super::{Command, Request};

pub fn parse_request(line: &[u8]) -> Result<Request, (Option<String>, ParseError)> {
    let mut c = Cursor::new(line);
    let tag = c
        .take_while(
            |b| b > 0x20 && b < 0x7f && !b"(){%*\"\\+".contains(&b),
            "missing tag",
        )
        .map_err(|e| (None, e))?
        .to_string();
    let command = (|| {
        c.sp()?;
        let cmd = parse_command(&mut c)?;
        c.expect_end()?;
        Ok(cmd)
    })()
    .map_err(|e| (Some(tag.clone()), e))?;
    Ok(Request { tag, command })
}

fn parse_command(c: &mut Cursor<'_>) -> PResult<Command> {
    let name = c.atom()?.to_ascii_uppercase();
    let no_args = |cmd: Command| Ok(cmd);
    match name.as_str() {
        "CAPABILITY" => no_args(Command::Capability),
        "NOOP" => no_args(Command::Noop),
        "LOGOUT" => no_args(Command::Logout),
        "STARTTLS" => no_args(Command::StartTls),
        "COMPRESS" => {
            c.sp()?;
            Ok(Command::Compress(c.atom()?.to_ascii_uppercase()))
        }
        "NAMESPACE" => no_args(Command::Namespace),
        "UNAUTHENTICATE" => no_args(Command::Unauthenticate),
        "IDLE" => no_args(Command::Idle),
        "CHECK" => no_args(Command::Check),
        "CLOSE" => no_args(Command::Close),
        "UNSELECT" => no_args(Command::Unselect),
        "EXPUNGE" => no_args(Command::Expunge(None)),
        "LOGIN" => parse_login(c),
        "AUTHENTICATE" => parse_authenticate(c),
        "ENABLE" => parse_enable(c),
        "ID" => parse_id(c),
        "SELECT" | "EXAMINE" => parse_select(c, name == "EXAMINE"),
        "CREATE" => parse_create(c),
        "DELETE" => one_mailbox(c).map(Command::Delete),
        "SUBSCRIBE" => one_mailbox(c).map(Command::Subscribe),
        "UNSUBSCRIBE" => one_mailbox(c).map(Command::Unsubscribe),
        "GETQUOTA" => one_mailbox(c).map(Command::GetQuota),
        "CANCELUPDATE" => parse_cancel_update(c),
        "GETQUOTAROOT" => one_mailbox(c).map(Command::GetQuotaRoot),
        "GETACL" | "SETACL" | "DELETEACL" | "LISTRIGHTS" | "MYRIGHTS" => {
            super::acl::parse_acl(c, &name)
        }
        "RENAME" => parse_rename(c),
        "LIST" => parse_list(c).map(Command::List),
        "LSUB" => parse_lsub(c),
        "STATUS" => parse_status(c),
        "NOTIFY" => super::notify::parse_notify(c),
        "APPEND" => parse_append(c),
        "REPLACE" => parse_replace(c, false),
        "SEARCH" => parse_search(c, false),
        "SORT" => parse_sort(c, false),
        "THREAD" => parse_thread(c, false),
        "FETCH" => parse_fetch(c, false),
        "STORE" => parse_store(c, false),
        "COPY" => parse_copy(c, false, false),
        "MOVE" => parse_copy(c, false, true),
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "FETCH" => parse_fetch(c, true),
                "STORE" => parse_store(c, true),
                "SEARCH" => parse_search(c, true),
                "SORT" => parse_sort(c, true),
                "THREAD" => parse_thread(c, true),
                "COPY" => parse_copy(c, true, false),
                "MOVE" => parse_copy(c, true, true),
                "REPLACE" => parse_replace(c, true),
                "EXPUNGE" => {
                    c.sp()?;
                    Ok(Command::Expunge(Some(SequenceSet::parse(c)?)))
                }
                _ => bad(format!("unknown UID command {sub}")),
            }
        }
        _ => Err(ParseError(format!("unknown command {name}"))),
    }
}

/// RFC 5267 §4.3: `CANCELUPDATE "tag" *(SP "tag")`.
fn parse_cancel_update(c: &mut Cursor<'_>) -> PResult<Command> {
    let mut tags = Vec::new();
    while c.eat(b' ') {
        tags.push(String::from_utf8_lossy(&c.string()?).into_owned());
    }
    if tags.is_empty() {
        return bad("CANCELUPDATE needs a tag");
    }
    Ok(Command::CancelUpdate(tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{
        AppendArgs, FetchArgs, FetchItem, LoginArgs, SearchArgs, SearchKey, SelectArgs, StoreArgs,
        StoreOp,
    };

    fn cmd(s: &str) -> Command {
        parse_request(s.as_bytes())
            .unwrap_or_else(|e| panic!("{s}: {e:?}"))
            .command
    }

    fn err(s: &str) -> (Option<String>, ParseError) {
        parse_request(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_login_and_select() {
        assert_eq!(
            cmd("a1 LOGIN user \"pass word\""),
            Command::Login(LoginArgs {
                user: b"user".to_vec(),
                password: b"pass word".to_vec()
            })
        );
        assert_eq!(
            cmd("a SELECT INBOX (CONDSTORE)"),
            Command::Select(SelectArgs {
                mailbox: b"INBOX".to_vec(),
                read_only: false,
                condstore: true,
                qresync: None
            })
        );
        match cmd("a select x (QRESYNC (67890007 20050715194045000 41,43:211,214:541))") {
            Command::Select(SelectArgs {
                qresync: Some(q), ..
            }) => {
                assert_eq!((q.uidvalidity, q.modseq), (67890007, 20050715194045000));
                assert!(q.known_uids.unwrap().contains(42 + 1, 600));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_fetch_items() {
        match cmd(
            "a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100> BINARY[1.2] MODSEQ) (CHANGEDSINCE 12 VANISHED)",
        ) {
            Command::Fetch(FetchArgs {
                uid,
                items,
                changed_since,
                vanished,
                ..
            }) => {
                assert!(uid && vanished);
                assert_eq!(changed_since, Some(12));
                assert_eq!(
                    items[1],
                    FetchItem::Section {
                        peek: true,
                        section: "HEADER.FIELDS (From To)".into(),
                        partial: Some((0, 100))
                    }
                );
                assert_eq!(
                    items[2],
                    FetchItem::Binary {
                        peek: false,
                        part: vec![1, 2],
                        partial: None
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match cmd("a FETCH 1 ALL") {
            Command::Fetch(FetchArgs { items, .. }) => assert_eq!(items.len(), 4),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(cmd("a FETCH 2 (BODY)"), Command::Fetch(FetchArgs { ref items, .. }) if items == &vec![FetchItem::Body])
        );
    }

    #[test]
    fn parses_search() {
        match cmd(
            "a SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM \"x\" NOT SEEN 1:5 SINCE 1-Feb-1994 (LARGER 10 UID 3)",
        ) {
            Command::Search(SearchArgs {
                returns,
                charset,
                key: SearchKey::And(keys),
                ..
            }) => {
                let returns = returns.unwrap();
                assert!(returns.min && returns.count && !returns.all);
                assert_eq!(charset.as_deref(), Some("UTF-8"));
                assert_eq!(keys.len(), 4);
                assert_eq!(
                    keys[2],
                    SearchKey::Since(crate::message::datetime::days_from_civil(1994, 2, 1))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_store_append_list() {
        assert_eq!(
            cmd("a STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen $Urgent)"),
            Command::Store(StoreArgs {
                uid: false,
                set: SequenceSet::parse(&mut Cursor::new(b"1:3")).unwrap(),
                unchanged_since: Some(5),
                op: StoreOp::Add,
                silent: true,
                flags: vec!["\\Seen".into(), "$Urgent".into()]
            })
        );
        match cmd("a APPEND Sent (\\Seen) \"22-Nov-2026 04:37:05 +0000\" {5}\r\nhello {2+}\r\nhi") {
            Command::Append(AppendArgs { messages, .. }) => {
                assert_eq!(messages.len(), 2);
                assert_eq!(messages[0].bytes, b"hello");
                assert_eq!(messages[1].bytes, b"hi");
            }
            other => panic!("{other:?}"),
        }
        match cmd("a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))") {
            Command::List(args) => {
                assert_eq!(args.selection, vec!["SUBSCRIBED"]);
                assert_eq!(args.patterns, vec![b"*".to_vec(), b"%".to_vec()]);
                assert_eq!(args.status_items, vec!["MESSAGES", "UNSEEN"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_keep_the_tag_when_there_is_one() {
        assert_eq!(err("a1 FROB").0.as_deref(), Some("a1"));
        assert_eq!(err("a1 FETCH 0 FLAGS").0.as_deref(), Some("a1"));
        assert_eq!(err("a1 NOOP extra").0.as_deref(), Some("a1"));
        assert_eq!(err("").0, None);
        assert!(err("a1 STORE 1 +FLAGS (\\Recent)").1.0.contains("Recent"));
        assert!(err("a1 SEARCH SINCE 31-Foo-2020").1.0.contains("date"));
    }
}
