//! NOTIFY (RFC 5465 §3, grammar §8): which mailboxes the session watches, and for which
//! events. Parsing only: what the events mean is `cmd/notify.rs`.

use super::Command;
use super::cursor::{Cursor, PResult, bad};
use super::fetch::{FetchItem, fetch_item};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyArgs {
    /// `NOTIFY NONE` (RFC 5465 §3.2): no notifications beyond RFC 9051's.
    None,
    /// `NOTIFY SET [STATUS] event-group…` (RFC 5465 §3.1).
    Set {
        /// `STATUS`: send the watched mailboxes' STATUS at once.
        status: bool,
        groups: Vec<EventGroup>,
    },
}

/// One `(filter events)` group (RFC 5465 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventGroup {
    pub filter: Filter,
    /// Empty for `NONE`.
    pub events: Vec<Event>,
}

/// RFC 5465 §6: which mailboxes a group covers. Names are as the client sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Selected,
    /// RFC 5465 §6: like SELECTED, but expunges wait for a command that may report them.
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<Vec<u8>>),
    Mailboxes(Vec<Vec<u8>>),
}

impl Filter {
    pub fn is_selected(&self) -> bool {
        matches!(self, Filter::Selected | Filter::SelectedDelayed)
    }
}

/// RFC 5465 §5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// With the FETCH items to send for each new message of the selected mailbox.
    MessageNew(Vec<FetchItem>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
    /// An event name this server does not know (answered NO [BADEVENT], §3.1).
    Unknown(String),
}

pub(super) fn parse_notify(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    if c.eat_word("NONE") {
        return Ok(Command::Notify(NotifyArgs::None));
    }
    if !c.eat_word("SET") {
        return bad("NOTIFY needs SET or NONE");
    }
    c.sp()?;
    let status = c.eat_word("STATUS");
    if status {
        c.sp()?;
    }
    let mut groups = vec![event_group(c)?];
    while c.eat(b' ') {
        groups.push(event_group(c)?);
    }
    Ok(Command::Notify(NotifyArgs::Set { status, groups }))
}

fn event_group(c: &mut Cursor<'_>) -> PResult<EventGroup> {
    c.expect(b'(')?;
    let filter = match c.atom()?.to_ascii_uppercase().as_str() {
        "SELECTED" => Filter::Selected,
        "SELECTED-DELAYED" => Filter::SelectedDelayed,
        "INBOXES" => Filter::Inboxes,
        "PERSONAL" => Filter::Personal,
        "SUBSCRIBED" => Filter::Subscribed,
        "SUBTREE" => Filter::Subtree(mailboxes(c)?),
        "MAILBOXES" => Filter::Mailboxes(mailboxes(c)?),
        other => return bad(format!("unknown NOTIFY filter {other}")),
    };
    c.sp()?;
    let events = if c.eat_word("NONE") {
        Vec::new()
    } else {
        c.paren_list(event)?
    };
    c.expect(b')')?;
    let group = EventGroup { filter, events };
    check_group(&group)?;
    Ok(group)
}

/// `one-or-more-mailbox`: one mailbox or a parenthesised list of them.
fn mailboxes(c: &mut Cursor<'_>) -> PResult<Vec<Vec<u8>>> {
    c.sp()?;
    if c.peek() == Some(b'(') {
        let list = c.paren_list(|c| c.astring())?;
        if list.is_empty() {
            return bad("empty mailbox list");
        }
        Ok(list)
    } else {
        Ok(vec![c.astring()?])
    }
}

fn event(c: &mut Cursor<'_>) -> PResult<Event> {
    let name = c.take_while(
        |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.',
        "expected an event",
    )?;
    Ok(match name.to_ascii_lowercase().as_str() {
        "messagenew" => {
            let mark = c.mark();
            if c.eat(b' ') && c.peek() == Some(b'(') {
                Event::MessageNew(c.paren_list(fetch_item)?)
            } else {
                c.reset(mark);
                Event::MessageNew(Vec::new())
            }
        }
        "messageexpunge" => Event::MessageExpunge,
        "flagchange" => Event::FlagChange,
        "annotationchange" => Event::AnnotationChange,
        "mailboxname" => Event::MailboxName,
        "subscriptionchange" => Event::SubscriptionChange,
        "mailboxmetadatachange" => Event::MailboxMetadataChange,
        "servermetadatachange" => Event::ServerMetadataChange,
        _ => Event::Unknown(name.to_string()),
    })
}

/// RFC 5465 §5: MessageNew and MessageExpunge go together, FlagChange and AnnotationChange
/// need both; FETCH items only for the selected mailbox (§5.1), and never ones that would
/// set \Seen.
fn check_group(group: &EventGroup) -> PResult<()> {
    let has = |f: fn(&Event) -> bool| group.events.iter().any(f);
    let new = has(|e| matches!(e, Event::MessageNew(_)));
    let expunge = has(|e| matches!(e, Event::MessageExpunge));
    if new != expunge {
        return bad("MessageNew and MessageExpunge must be asked together (RFC 5465 §5)");
    }
    if has(|e| matches!(e, Event::FlagChange | Event::AnnotationChange)) && !new {
        return bad("FlagChange needs MessageNew and MessageExpunge (RFC 5465 §5)");
    }
    let fetch_items: Vec<&FetchItem> = group
        .events
        .iter()
        .flat_map(|e| match e {
            Event::MessageNew(items) => items.iter().collect(),
            _ => Vec::new(),
        })
        .collect();
    if !fetch_items.is_empty() && !group.filter.is_selected() {
        return bad("FETCH items in MessageNew are for SELECTED only (RFC 5465 §5.1)");
    }
    let sets_seen = fetch_items.iter().any(|i| {
        matches!(
            i,
            FetchItem::Rfc822
                | FetchItem::Rfc822Text
                | FetchItem::Section { peek: false, .. }
                | FetchItem::Binary { peek: false, .. }
        )
    });
    if sets_seen {
        return bad("MessageNew FETCH items must not set \\Seen (use BODY.PEEK)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_request;

    fn notify(line: &str) -> NotifyArgs {
        match parse_request(line.as_bytes()).unwrap().command {
            Command::Notify(n) => n,
            other => panic!("{other:?}"),
        }
    }

    fn refused(line: &str) -> String {
        parse_request(line.as_bytes()).unwrap_err().1.0
    }

    #[test]
    fn set_with_status_and_every_filter() {
        let n = notify(
            "a NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS BODY.PEEK[HEADER]) \
             MessageExpunge FlagChange)) (INBOXES (MessageNew MessageExpunge)) \
             (subtree (\"Other Users/dr@x.fr\" Archive) (MailboxName)) \
             (MAILBOXES Lists NONE) (personal (SubscriptionChange))",
        );
        let NotifyArgs::Set { status, groups } = n else {
            panic!()
        };
        assert!(status);
        assert_eq!(groups.len(), 5);
        assert_eq!(groups[0].filter, Filter::Selected);
        assert!(matches!(&groups[0].events[0], Event::MessageNew(items) if items.len() == 3));
        assert_eq!(
            groups[2].filter,
            Filter::Subtree(vec![b"Other Users/dr@x.fr".to_vec(), b"Archive".to_vec()])
        );
        assert_eq!(groups[3].filter, Filter::Mailboxes(vec![b"Lists".to_vec()]));
        assert!(groups[3].events.is_empty());
        assert_eq!(groups[4].events, vec![Event::SubscriptionChange]);
    }

    #[test]
    fn none_and_unknown_events() {
        assert_eq!(notify("a NOTIFY NONE"), NotifyArgs::None);
        let NotifyArgs::Set { status, groups } = notify(
            "a notify set (selected-delayed (AnnotationChange MessageNew MessageExpunge x-Foo))",
        ) else {
            panic!()
        };
        assert!(!status);
        assert_eq!(groups[0].filter, Filter::SelectedDelayed);
        assert_eq!(groups[0].events[3], Event::Unknown("x-Foo".into()));
    }

    #[test]
    fn rfc_5465_rules_are_checked() {
        assert!(refused("a NOTIFY SET (INBOXES (MessageNew))").contains("together"));
        assert!(refused("a NOTIFY SET (INBOXES (FlagChange))").contains("FlagChange"));
        assert!(
            refused("a NOTIFY SET (INBOXES (MessageNew (UID) MessageExpunge))")
                .contains("SELECTED only")
        );
        assert!(
            refused("a NOTIFY SET (SELECTED (MessageNew (BODY[]) MessageExpunge))")
                .contains("\\Seen")
        );
        assert!(refused("a NOTIFY SET (NOWHERE (MessageNew))").contains("filter"));
        assert!(refused("a NOTIFY").contains("expected") || !refused("a NOTIFY").is_empty());
        assert!(refused("a NOTIFY SET (MAILBOXES () (MailboxName))").contains("empty"));
    }
}
