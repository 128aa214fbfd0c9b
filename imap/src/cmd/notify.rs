//! NOTIFY (RFC 5465): one session watches many mailboxes — its own, and the BALs delegated to
//! it under `Other Users/` (a secretary watching a doctor's INBOX) — and hears of changes
//! without polling: STATUS for watched mailboxes that are not selected (§5.2–§5.4), LIST for
//! names and subscriptions (§5.4, §5.5), and for the selected mailbox the RFC 9051 updates
//! at any time, not only within a command (§5.1). Only mailboxes the session may see are
//! reported (RFC 4314: `l` for names, `r` for counts).
//!
//! What wakes it is the store's change notification (the one IDLE uses, bridged across nodes
//! by PostgreSQL LISTEN/NOTIFY): it names a folder, and the session compares what it last
//! told the client with what the store says now (ADR 0036).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::access::AccessCheck;
use crate::parse::{Event, FetchArgs, FetchItem, Filter, NotifyArgs, SequenceSet};
use crate::session::{ReadStop, Session};

use super::notify_state::{Counts, NotifyState};

/// RFC 5465 §3.1: the events answered in `NO [BADEVENT (…)]`, the ones this server supports.
const SUPPORTED_EVENTS: &str =
    "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

/// One watched mailbox that is not the selected one.
struct Watched {
    folder: mssante_store::Folder,
    /// As the client names it (`Other Users/<address>/…` for a delegated BAL).
    name: String,
    events: Vec<Event>,
    readable: bool,
}

fn has_message_events(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::MessageNew(_)))
}

fn has_flag_change(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::FlagChange))
}

/// RFC 5465 §6: whether a filter covers a mailbox (stored-form names).
fn filter_covers(
    filter: &Filter,
    decoded: &[String],
    name: &str,
    own_inbox: bool,
    personal: bool,
    subscribed: &BTreeSet<String>,
) -> bool {
    match filter {
        Filter::Selected | Filter::SelectedDelayed => false,
        // Mail is delivered to INBOX here (Sieve files under it are not tracked apart).
        Filter::Inboxes => own_inbox,
        Filter::Personal => personal,
        Filter::Subscribed => subscribed.contains(name),
        Filter::Subtree(_) => decoded
            .iter()
            .any(|root| name == root || name.starts_with(&format!("{root}/"))),
        Filter::Mailboxes(_) => decoded.iter().any(|n| n == name),
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn notify(&mut self, tag: &str, args: NotifyArgs) {
        let (status, groups) = match args {
            NotifyArgs::None => {
                // RFC 5465 §3.2.
                self.notify = None;
                self.changes.watch_every_folder(false);
                return self.tagged(tag, "OK", "NOTIFY completed");
            }
            NotifyArgs::Set { status, groups } => (status, groups),
        };
        // RFC 5465 §3.1: an unsupported event refuses the whole command; the previous
        // set stays. No METADATA or ANNOTATE here, so their events are refused too.
        let unsupported = groups.iter().flat_map(|g| &g.events).find(|e| {
            matches!(
                e,
                Event::AnnotationChange
                    | Event::MailboxMetadataChange
                    | Event::ServerMetadataChange
                    | Event::Unknown(_)
            )
        });
        if let Some(event) = unsupported {
            return self.tagged(
                tag,
                "NO",
                &format!("[BADEVENT ({SUPPORTED_EVENTS})] Event not supported: {event:?}"),
            );
        }
        let watch_all = groups.iter().any(|g| {
            !matches!(
                g.filter,
                Filter::Selected | Filter::SelectedDelayed | Filter::Inboxes
            ) || g
                .events
                .iter()
                .any(|e| matches!(e, Event::MailboxName | Event::SubscriptionChange))
        });
        // Every folder's changes are heard from before the starting point is read (ADR 0057).
        self.changes.watch_every_folder(true);
        self.notify = Some(NotifyState {
            groups,
            counts: HashMap::new(),
            names: BTreeMap::new(),
            subscriptions: BTreeSet::new(),
            watched_ids: HashSet::new(),
            watch_all,
            dirty: false,
        });
        // The starting point: what the client knows now. With STATUS it is also told
        // (RFC 5465 §3.1: "the server MUST send STATUS responses …").
        self.scan_watched(status, false).await;
        self.tagged(tag, "OK", "NOTIFY completed");
    }

    /// After a command, in IDLE and between commands: reports what changed in the watched
    /// mailboxes since the client was last told.
    pub(crate) async fn report_notify(&mut self) {
        self.drain_changes();
        let Some(state) = self.notify.as_mut() else {
            return;
        };
        if !std::mem::replace(&mut state.dirty, false) {
            return;
        }
        self.scan_watched(false, true).await;
    }

    /// The watched mailboxes other than the selected one, each with its first group's
    /// events (RFC 5465 §6: the first matching group wins).
    async fn watched(&self) -> Vec<Watched> {
        let Some(state) = self.notify.as_ref() else {
            return Vec::new();
        };
        let own = self.bal_id();
        let selected = self.selected.as_ref().map(|s| s.folder.id);
        let subscribed: BTreeSet<String> = self
            .ctx
            .store
            .subscriptions(own)
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
        let decoded: Vec<Vec<String>> = state
            .groups
            .iter()
            .map(|g| match &g.filter {
                Filter::Subtree(names) | Filter::Mailboxes(names) => names
                    .iter()
                    .filter_map(|n| self.mailbox_name(n))
                    .map(|n| n.trim_end_matches('/').to_string())
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let mut bals: Vec<i64> = vec![own];
        bals.extend(self.access.delegated.iter().map(|d| d.bal_id));
        bals.dedup();
        let mut out = Vec::new();
        for bal_id in bals {
            let Ok(folders) = self.ctx.store.folders(bal_id).await else {
                continue;
            };
            for folder in folders {
                if Some(folder.id) == selected {
                    continue;
                }
                let rights = self.rights_on(&folder);
                if !rights.has('l') && !rights.has('r') {
                    continue;
                }
                let name = match bal_id == own {
                    true => folder.name.clone(),
                    false => match self.access.shared_name(bal_id, &folder.name) {
                        Some(n) => n,
                        None => continue,
                    },
                };
                let own_inbox = bal_id == own && folder.name == "INBOX";
                let group = state.groups.iter().zip(&decoded).find(|(g, d)| {
                    filter_covers(&g.filter, d, &name, own_inbox, bal_id == own, &subscribed)
                });
                if let Some((group, _)) = group {
                    out.push(Watched {
                        readable: rights.has('r'),
                        folder,
                        name,
                        events: group.events.clone(),
                    });
                }
            }
        }
        out
    }

    /// Compares the watched mailboxes with what was last reported and, when `announce`,
    /// tells the client of the differences; `initial_status` sends every STATUS (§3.1).
    async fn scan_watched(&mut self, initial_status: bool, announce: bool) {
        let watched = self.watched().await;
        let mut counts = HashMap::new();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for w in watched
            .iter()
            .filter(|w| w.readable && has_message_events(&w.events))
        {
            let delegate = self.delegate_seen(w.folder.bal_id);
            let status = self
                .ctx
                .store
                .folder_status_as(w.folder.id, delegate.as_deref());
            let Ok(st) = status.await else {
                continue;
            };
            let now = Counts::from(&st);
            counts.insert(w.folder.id, now);
            let before = self
                .notify
                .as_ref()
                .and_then(|s| s.counts.get(&w.folder.id));
            let flag_change = has_flag_change(&w.events);
            let changed = match before {
                // A mailbox that just came into view is announced by MailboxName.
                None => false,
                Some(b) => {
                    (b.messages, b.uidnext, b.uidvalidity)
                        != (now.messages, now.uidnext, now.uidvalidity)
                        || (flag_change && b.highestmodseq != now.highestmodseq)
                }
            };
            if initial_status || (announce && changed) {
                lines.push(self.status_notification(&w.name, &now, flag_change));
            }
        }
        let names: BTreeMap<i64, String> = watched
            .iter()
            .filter(|w| w.events.contains(&Event::MailboxName))
            .map(|w| (w.folder.id, w.name.clone()))
            .collect();
        let subscriptions: BTreeSet<String> = match self
            .notify
            .as_ref()
            .is_some_and(|s| s.any_event(|e| matches!(e, Event::SubscriptionChange)))
        {
            true => self
                .ctx
                .store
                .subscriptions(self.bal_id())
                .await
                .unwrap_or_default()
                .into_iter()
                .collect(),
            false => BTreeSet::new(),
        };
        let Some(state) = self.notify.as_mut() else {
            return;
        };
        let name_lines = match announce {
            true => name_changes(&state.names, &names),
            false => Vec::new(),
        };
        let subscription_lines = match announce {
            true => subscription_changes(&state.subscriptions, &subscriptions),
            false => Vec::new(),
        };
        state.watched_ids = watched.iter().map(|w| w.folder.id).collect();
        state.counts = counts;
        state.names = names;
        state.subscriptions = subscriptions;
        for line in lines {
            self.untagged_bytes(&line);
        }
        for (attributes, name, old) in name_lines.into_iter().chain(subscription_lines) {
            self.list_notification(attributes, &name, old.as_deref());
        }
    }

    /// RFC 5465 §5.2–§5.3: `STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n
    /// [HIGHESTMODSEQ n])`, HIGHESTMODSEQ when FlagChange is watched (RFC 7162 CONDSTORE).
    fn status_notification(&self, name: &str, c: &Counts, flag_change: bool) -> Vec<u8> {
        let mut line = b"STATUS ".to_vec();
        line.extend(self.wire_name(name));
        line.extend(
            format!(
                " (MESSAGES {} UIDNEXT {} UIDVALIDITY {}",
                c.messages, c.uidnext, c.uidvalidity
            )
            .as_bytes(),
        );
        if flag_change {
            line.extend(format!(" HIGHESTMODSEQ {}", c.highestmodseq).as_bytes());
        }
        line.push(b')');
        line
    }

    /// RFC 5465 §5.4–§5.5: `LIST (attributes) "/" name [("OLDNAME" (old))]`.
    fn list_notification(&mut self, attributes: &str, name: &str, old: Option<&str>) {
        let mut line = format!("LIST ({attributes}) \"/\" ").into_bytes();
        line.extend(self.wire_name(name));
        if let Some(old) = old {
            // RFC 5258 §3.3 extended data, as RFC 5465 §5.4 asks for a rename.
            line.extend_from_slice(b" (\"OLDNAME\" (");
            line.extend(self.wire_name(old));
            line.extend_from_slice(b"))");
        }
        self.untagged_bytes(&line);
    }

    /// The selected mailbox's updates (RFC 5465 §5.1), and with `MessageNew (items)` a FETCH
    /// of those items for each new message. `may_expunge` as in [`Session::report_changes`].
    pub(crate) async fn report_selected(&mut self, may_expunge: bool) {
        let before = self.selected.as_ref().map(|s| s.largest_uid()).unwrap_or(0);
        self.report_changes(may_expunge).await;
        let items: Vec<FetchItem> = match self.notify.as_ref().and_then(|n| n.selected_group()) {
            Some(group) => group
                .events
                .iter()
                .flat_map(|e| match e {
                    Event::MessageNew(items) => items.clone(),
                    _ => Vec::new(),
                })
                .collect(),
            None => return,
        };
        let after = self.selected.as_ref().map(|s| s.largest_uid()).unwrap_or(0);
        if items.is_empty() || after <= before {
            return;
        }
        let Ok(set) = SequenceSet::parse(&mut crate::parse::cursor::Cursor::new(
            format!("{}:{after}", before + 1).as_bytes(),
        )) else {
            return;
        };
        // FETCH answers into this command's response (or none, between commands): its
        // own completion is dropped, the command's is kept.
        let completion = self.completion.take();
        self.fetch(
            "*",
            FetchArgs {
                uid: true,
                set,
                items,
                changed_since: None,
                vanished: false,
                partial: None,
            },
        )
        .await;
        self.completion = completion;
    }

    /// Between commands with NOTIFY set: waits for input, telling the client of changes as
    /// they happen (RFC 5465 §1: no IDLE needed). Returns when a command begins.
    pub(crate) async fn deliver_until_input(&mut self) -> Result<(), ReadStop> {
        while self.notify.is_some() && self.rbuf.is_empty() {
            if !self.wait_for_change_or_input().await? {
                return Ok(());
            }
            // A revoked delegation is answered by the next command (ADR 0016); nothing more
            // is told meanwhile.
            if !matches!(self.check_access().await, AccessCheck::Unchanged) {
                return Ok(());
            }
            match self.notify.as_ref().and_then(|n| n.selected_group()) {
                Some(g) if !g.events.is_empty() && self.selected.is_some() => {
                    // SELECTED-DELAYED: expunges wait for a command (RFC 5465 §6).
                    let may_expunge = g.filter == Filter::Selected;
                    self.report_selected(may_expunge).await;
                }
                _ => {}
            }
            self.report_notify().await;
        }
        Ok(())
    }
}

type ListLine = (&'static str, String, Option<String>);

/// MailboxName (RFC 5465 §5.4): created, deleted (`\NonExistent`) and renamed mailboxes.
fn name_changes(before: &BTreeMap<i64, String>, now: &BTreeMap<i64, String>) -> Vec<ListLine> {
    let mut out = Vec::new();
    for (id, name) in now {
        match before.get(id) {
            None => out.push(("", name.clone(), None)),
            Some(old) if old != name => out.push(("", name.clone(), Some(old.clone()))),
            Some(_) => {}
        }
    }
    for (id, name) in before {
        if !now.contains_key(id) {
            out.push(("\\NonExistent", name.clone(), None));
        }
    }
    out
}

/// SubscriptionChange (RFC 5465 §5.5): LIST with or without `\Subscribed`.
fn subscription_changes(before: &BTreeSet<String>, now: &BTreeSet<String>) -> Vec<ListLine> {
    let added = now
        .difference(before)
        .map(|n| ("\\Subscribed", n.clone(), None));
    let removed = before.difference(now).map(|n| ("", n.clone(), None));
    added.chain(removed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mssante_store::FolderChanged;

    fn subs(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters_cover_what_rfc_5465_section_6_says() {
        let none = BTreeSet::new();
        let tree = vec!["Other Users/dr@x.fr/INBOX".to_string()];
        let sub = Filter::Subtree(vec![]);
        assert!(filter_covers(
            &sub,
            &tree,
            "Other Users/dr@x.fr/INBOX",
            false,
            false,
            &none
        ));
        assert!(filter_covers(
            &sub,
            &tree,
            "Other Users/dr@x.fr/INBOX/Labo",
            false,
            false,
            &none
        ));
        assert!(!filter_covers(
            &sub,
            &tree,
            "Other Users/dr@x.fr/INBOXES",
            false,
            false,
            &none
        ));
        let boxes = Filter::Mailboxes(vec![]);
        assert!(!filter_covers(
            &boxes,
            &tree,
            "Other Users/dr@x.fr/INBOX/Labo",
            false,
            false,
            &none
        ));
        assert!(filter_covers(
            &Filter::Inboxes,
            &[],
            "INBOX",
            true,
            true,
            &none
        ));
        assert!(!filter_covers(
            &Filter::Inboxes,
            &[],
            "Other Users/dr@x.fr/INBOX",
            false,
            false,
            &none
        ));
        assert!(filter_covers(
            &Filter::Personal,
            &[],
            "Sent",
            false,
            true,
            &none
        ));
        assert!(!filter_covers(
            &Filter::Personal,
            &[],
            "Other Users/dr@x.fr/Sent",
            false,
            false,
            &none
        ));
        assert!(filter_covers(
            &Filter::Subscribed,
            &[],
            "Lists",
            false,
            true,
            &subs(&["Lists"])
        ));
        assert!(!filter_covers(
            &Filter::Selected,
            &[],
            "INBOX",
            true,
            true,
            &none
        ));
    }

    #[test]
    fn mailbox_name_and_subscription_changes() {
        let before: BTreeMap<i64, String> = [(1, "A".into()), (2, "B".into())].into();
        let now: BTreeMap<i64, String> = [(1, "A2".into()), (3, "C".into())].into();
        let lines = name_changes(&before, &now);
        assert_eq!(
            lines,
            vec![
                ("", "A2".to_string(), Some("A".to_string())),
                ("", "C".to_string(), None),
                ("\\NonExistent", "B".to_string(), None),
            ]
        );
        assert!(name_changes(&now, &now).is_empty());
        let lines = subscription_changes(&subs(&["A", "B"]), &subs(&["B", "C"]));
        assert_eq!(
            lines,
            vec![
                ("\\Subscribed", "C".to_string(), None),
                ("", "A".to_string(), None)
            ]
        );
    }

    #[test]
    fn changes_that_concern_a_notify_set() {
        let mut state = NotifyState {
            groups: Vec::new(),
            counts: HashMap::new(),
            names: BTreeMap::new(),
            subscriptions: BTreeSet::new(),
            watched_ids: [7].into(),
            watch_all: false,
            dirty: false,
        };
        assert!(state.concerns(&FolderChanged { folder_id: 7 }));
        assert!(!state.concerns(&FolderChanged { folder_id: 8 }));
        assert!(state.concerns(&FolderChanged::ANY));
        assert!(
            state.concerns(&FolderChanged { folder_id: -3 }),
            "grants changed"
        );
        state.watch_all = true;
        assert!(state.concerns(&FolderChanged { folder_id: 8 }));
    }
}
