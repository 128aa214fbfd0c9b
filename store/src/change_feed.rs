//! What each IMAP session hears of changes (ADR 0057): its selected folder's changes, grant
//! changes, "any folder may have changed", and every folder's changes only while it asks
//! (RFC 5465 NOTIFY). Before, every session subscribed to one broadcast of every change:
//! each write woke every session in IDLE on the node, whatever folder it watched, and every
//! command of every session read the changes of all folders since its previous command.
//! With thousands of IDLE sessions (each LPS keeps one, a secretary's beside it) that was
//! sessions × writes wake-ups a second for nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};

/// A change notification: the folder whose content or flags changed; a negative id is
/// `-bal_id` of a BAL whose grants changed (see [`FolderChanged::access_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderChanged {
    pub folder_id: i64,
}

impl FolderChanged {
    /// "Any folder may have changed": sent when the LISTEN connection comes back after a
    /// loss, since notifications from other nodes during the gap are gone.
    pub const ANY: FolderChanged = FolderChanged { folder_id: 0 };

    /// Whether a session that has `folder_id` selected should look for changes.
    pub fn concerns(&self, folder_id: i64) -> bool {
        self.folder_id == folder_id || *self == FolderChanged::ANY
    }

    /// The BAL whose grants changed, when this is such a notification.
    pub fn access_of(&self) -> Option<i64> {
        (self.folder_id < 0).then_some(-self.folder_id)
    }
}

/// How many general or every-folder notifications a session may fall behind before it is
/// told "any folder" instead (a lagging receiver loses the oldest).
const BACKLOG: usize = 4096;

/// The node's side: publishes each change to the sessions it concerns.
pub(crate) struct ChangeHub {
    /// Grant changes (negative ids) and [`FolderChanged::ANY`]: every session hears them.
    general: broadcast::Sender<FolderChanged>,
    /// Every folder's changes, for the sessions with a NOTIFY set (few).
    every_folder: broadcast::Sender<FolderChanged>,
    /// Per folder a session has selected: a generation moved by each change of it. Only
    /// folders someone watches have an entry; a change to another costs one map lookup.
    folders: Mutex<HashMap<i64, watch::Sender<u64>>>,
}

impl ChangeHub {
    pub(crate) fn new() -> ChangeHub {
        ChangeHub {
            general: broadcast::channel(BACKLOG).0,
            every_folder: broadcast::channel(BACKLOG).0,
            folders: Mutex::new(HashMap::new()),
        }
    }

    /// Tells `change` to the sessions it concerns: a folder's watchers (and NOTIFY
    /// sessions), or everyone for a grant change or "any folder".
    pub(crate) fn publish(&self, change: FolderChanged) {
        if change.folder_id <= 0 {
            // No receiver is fine: sessions that subscribe later read their state anew.
            let _ = self.general.send(change);
            return;
        }
        let _ = self.every_folder.send(change);
        let mut folders = self.lock();
        if let Some(watchers) = folders.get(&change.folder_id) {
            match watchers.receiver_count() {
                0 => {
                    folders.remove(&change.folder_id);
                }
                _ => watchers.send_modify(|generation| *generation = generation.wrapping_add(1)),
            }
        }
    }

    /// A feed that hears grant changes and "any folder", and nothing else until told.
    pub(crate) fn feed(self: &std::sync::Arc<Self>) -> ChangeFeed {
        ChangeFeed {
            general: self.general.subscribe(),
            folder: None,
            every_folder: None,
            hub: self.clone(),
        }
    }

    /// A receiver of `folder_id`'s generation, its current value taken as seen.
    fn watch(&self, folder_id: i64) -> watch::Receiver<u64> {
        self.lock()
            .entry(folder_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Drops `folder_id`'s entry once nobody watches it.
    fn forget_if_unwatched(&self, folder_id: i64) {
        let mut folders = self.lock();
        if folders
            .get(&folder_id)
            .is_some_and(|w| w.receiver_count() == 0)
        {
            folders.remove(&folder_id);
        }
    }

    /// How many folders have an entry (tests: entries do not outlive their watchers).
    #[cfg(test)]
    fn watched_folders(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, watch::Sender<u64>>> {
        // A panic while holding it left a map that is still consistent.
        self.folders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One session's changes (see the module's comment). Watch a folder *before* reading its
/// state, so that no change committed after that read goes unheard.
pub struct ChangeFeed {
    general: broadcast::Receiver<FolderChanged>,
    folder: Option<(i64, watch::Receiver<u64>)>,
    every_folder: Option<broadcast::Receiver<FolderChanged>>,
    hub: std::sync::Arc<ChangeHub>,
}

impl ChangeFeed {
    /// Hears `folder_id`'s changes from now on (the selected mailbox), and no longer those of
    /// the folder watched before; `None` for none.
    pub fn watch_folder(&mut self, folder_id: Option<i64>) {
        if self.folder.as_ref().map(|(id, _)| *id) == folder_id {
            return;
        }
        if let Some((previous, receiver)) = self.folder.take() {
            drop(receiver);
            self.hub.forget_if_unwatched(previous);
        }
        self.folder = folder_id.map(|id| (id, self.hub.watch(id)));
    }

    /// Hears every folder's changes (`true`, a NOTIFY set in force) or only the watched
    /// folder's (`false`).
    pub fn watch_every_folder(&mut self, on: bool) {
        match (on, self.every_folder.is_some()) {
            (true, false) => self.every_folder = Some(self.hub.every_folder.subscribe()),
            (false, true) => self.every_folder = None,
            _ => {}
        }
    }

    /// The next change already there, without waiting; `None` when there is none.
    pub fn try_recv(&mut self) -> Option<FolderChanged> {
        if let Some(change) = try_recv_broadcast(&mut self.general) {
            return Some(change);
        }
        if let Some((folder_id, receiver)) = self.folder.as_mut()
            && receiver.has_changed().unwrap_or(false)
        {
            receiver.borrow_and_update();
            return Some(FolderChanged {
                folder_id: *folder_id,
            });
        }
        try_recv_broadcast(self.every_folder.as_mut()?)
    }

    /// Waits for the next change. A session that fell behind, or a node whose notifications
    /// stopped, hears [`FolderChanged::ANY`].
    pub async fn recv(&mut self) -> FolderChanged {
        let folder = self.folder.as_mut();
        let folder_id = folder.as_ref().map_or(0, |(id, _)| *id);
        tokio::select! {
            change = self.general.recv() => received(change),
            Ok(()) = changed(folder.map(|(_, r)| r)) => FolderChanged { folder_id },
            change = recv_broadcast(self.every_folder.as_mut()) => received(change),
        }
    }
}

/// A session that ends (its connection closed) lets go of its folder's entry at once.
impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.watch_folder(None);
    }
}

fn try_recv_broadcast(receiver: &mut broadcast::Receiver<FolderChanged>) -> Option<FolderChanged> {
    match receiver.try_recv() {
        Ok(change) => Some(change),
        Err(TryRecvError::Lagged(_)) => Some(FolderChanged::ANY),
        Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => None,
    }
}

fn received(change: Result<FolderChanged, RecvError>) -> FolderChanged {
    change.unwrap_or(FolderChanged::ANY)
}

/// The watched folder's next change (`changed` marks it seen); never, without a watched
/// folder.
async fn changed(receiver: Option<&mut watch::Receiver<u64>>) -> Result<(), ()> {
    match receiver {
        Some(r) => r.changed().await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

/// A broadcast's next message; never, without the broadcast.
async fn recv_broadcast(
    receiver: Option<&mut broadcast::Receiver<FolderChanged>>,
) -> Result<FolderChanged, RecvError> {
    match receiver {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn folder(folder_id: i64) -> FolderChanged {
        FolderChanged { folder_id }
    }

    #[tokio::test]
    async fn a_feed_hears_its_folder_and_not_the_others() {
        let hub = Arc::new(ChangeHub::new());
        let mut feed = hub.feed();
        feed.watch_folder(Some(7));
        hub.publish(folder(8));
        assert_eq!(feed.try_recv(), None, "another folder's change");
        hub.publish(folder(7));
        hub.publish(folder(7));
        assert_eq!(feed.try_recv(), Some(folder(7)), "two changes heard as one");
        assert_eq!(feed.try_recv(), None);
        let waiting = tokio::time::timeout(Duration::from_millis(50), feed.recv()).await;
        assert!(waiting.is_err(), "nothing new: recv waits");
        hub.publish(folder(7));
        assert_eq!(feed.recv().await, folder(7));
    }

    #[tokio::test]
    async fn grant_changes_and_any_reach_every_feed() {
        let hub = Arc::new(ChangeHub::new());
        let mut unselected = hub.feed();
        let mut selected = hub.feed();
        selected.watch_folder(Some(3));
        hub.publish(folder(-5));
        hub.publish(FolderChanged::ANY);
        for feed in [&mut unselected, &mut selected] {
            assert_eq!(feed.try_recv(), Some(folder(-5)));
            assert_eq!(feed.try_recv(), Some(FolderChanged::ANY));
            assert_eq!(feed.try_recv(), None);
        }
    }

    #[tokio::test]
    async fn a_notify_feed_hears_every_folder_only_while_asked() {
        let hub = Arc::new(ChangeHub::new());
        let mut feed = hub.feed();
        feed.watch_every_folder(true);
        hub.publish(folder(11));
        assert_eq!(feed.recv().await, folder(11));
        feed.watch_every_folder(false);
        hub.publish(folder(12));
        assert_eq!(feed.try_recv(), None);
    }

    #[tokio::test]
    async fn a_change_after_the_watch_is_heard_one_before_it_is_not() {
        let hub = Arc::new(ChangeHub::new());
        let mut feed = hub.feed();
        hub.publish(folder(4));
        feed.watch_folder(Some(4));
        assert_eq!(
            feed.try_recv(),
            None,
            "the state read after the watch has it"
        );
        hub.publish(folder(4));
        assert_eq!(feed.try_recv(), Some(folder(4)));
    }

    #[tokio::test]
    async fn entries_go_with_their_last_watcher() {
        let hub = Arc::new(ChangeHub::new());
        let mut a = hub.feed();
        let mut b = hub.feed();
        a.watch_folder(Some(1));
        b.watch_folder(Some(1));
        assert_eq!(hub.watched_folders(), 1);
        a.watch_folder(Some(2));
        assert_eq!(hub.watched_folders(), 2, "b still watches 1");
        b.watch_folder(None);
        assert_eq!(hub.watched_folders(), 1);
        drop(a);
        assert_eq!(
            hub.watched_folders(),
            0,
            "a dropped feed's folder goes with it"
        );
    }

    #[tokio::test]
    async fn a_lagging_notify_feed_hears_any() {
        let hub = Arc::new(ChangeHub::new());
        let mut feed = hub.feed();
        feed.watch_every_folder(true);
        for id in 1..=(BACKLOG as i64 + 10) {
            hub.publish(folder(id));
        }
        assert_eq!(feed.try_recv(), Some(FolderChanged::ANY));
    }
}
