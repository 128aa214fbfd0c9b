//! What a session's NOTIFY SET (RFC 5465) watches and what it last reported: plain data the
//! session holds, so that `notify.rs`, which acts on it, builds on the session without the
//! session naming it back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use mssante_store::{FolderChanged, FolderStatus};

use crate::parse::{Event, EventGroup};

/// What the client was last told of a watched mailbox (RFC 5465 §5.2–§5.3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) messages: u32,
    pub(crate) uidnext: u32,
    pub(crate) uidvalidity: u32,
    pub(crate) highestmodseq: u64,
}

impl From<&FolderStatus> for Counts {
    fn from(s: &FolderStatus) -> Counts {
        Counts {
            messages: s.messages,
            uidnext: s.uidnext,
            uidvalidity: s.uidvalidity,
            highestmodseq: s.highestmodseq,
        }
    }
}

/// A session's NOTIFY SET, and what it last reported.
pub(crate) struct NotifyState {
    pub(crate) groups: Vec<EventGroup>,
    pub(crate) counts: HashMap<i64, Counts>,
    /// Watched mailbox names (client form) by folder id, for MailboxName.
    pub(crate) names: BTreeMap<i64, String>,
    /// Subscribed names, for SubscriptionChange.
    pub(crate) subscriptions: BTreeSet<String>,
    /// Folders whose change notification matters; `watch_all` when a new folder could.
    pub(crate) watched_ids: HashSet<i64>,
    pub(crate) watch_all: bool,
    /// A change that may concern a watched mailbox arrived and was not reported yet.
    pub(crate) dirty: bool,
}

impl NotifyState {
    /// Whether a change notification may concern what the session watches.
    pub(crate) fn concerns(&self, change: &FolderChanged) -> bool {
        self.watch_all || change.folder_id <= 0 || self.watched_ids.contains(&change.folder_id)
    }

    pub(crate) fn selected_group(&self) -> Option<&EventGroup> {
        self.groups.iter().find(|g| g.filter.is_selected())
    }

    pub(crate) fn any_event(&self, want: fn(&Event) -> bool) -> bool {
        self.groups.iter().any(|g| g.events.iter().any(want))
    }
}
