//! Change notifications for IMAP sessions: an in-process broadcast, bridged across nodes
//! through PostgreSQL LISTEN/NOTIFY so that a session on another node sharing the database
//! hears about a delivery too (docs/architecture.md §5, "Several nodes").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::{Engine, Store};

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

pub(crate) const CHANNEL: &str = "mssante_folder_changes";

pub(crate) struct Notifier {
    local: broadcast::Sender<FolderChanged>,
    /// Distinguishes this node's own NOTIFY payloads, already delivered locally.
    node: String,
    listener: OnceLock<()>,
    database_url: String,
    /// Bumped whenever a grant changes here or (PostgreSQL) on another node: sessions compare
    /// it on each command and re-read their access only when it moved (ADR 0016).
    access_generation: Arc<AtomicU64>,
    /// SQLite: the grant change counter when the store was opened, the grant poll's starting
    /// point (`poll_grants`).
    access_changes_at_open: Option<i64>,
}

impl Notifier {
    pub(crate) fn new(database_url: &str, access_changes_at_open: Option<i64>) -> Notifier {
        let mut node = [0u8; 8];
        rand::fill(&mut node);
        Notifier {
            local: broadcast::channel(4096).0,
            node: hex::encode(node),
            listener: OnceLock::new(),
            database_url: database_url.to_string(),
            access_generation: Arc::new(AtomicU64::new(1)),
            access_changes_at_open,
        }
    }
}

/// `node:folder_id` → the folder id, unless the payload is our own.
fn foreign_folder(payload: &str, own_node: &str) -> Option<i64> {
    let (node, folder) = payload.split_once(':')?;
    if node == own_node {
        return None;
    }
    folder.parse().ok()
}

impl Store {
    /// Receives a [`FolderChanged`] for every change, made on this node or (PostgreSQL)
    /// on another node sharing the database.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<FolderChanged> {
        let n = &self.inner.notifier;
        if self.engine() == Engine::Sqlite {
            // Grants changed by another process (the command line) reach sessions too.
            n.listener.get_or_init(|| {
                tokio::spawn(poll_grants(
                    self.pool().clone(),
                    n.access_changes_at_open,
                    n.access_generation.clone(),
                    n.local.clone(),
                ));
            });
        }
        if self.engine() == Engine::Postgres {
            n.listener.get_or_init(|| {
                tokio::spawn(listen(
                    n.database_url.clone(),
                    n.node.clone(),
                    n.local.clone(),
                    n.access_generation.clone(),
                ));
            });
        }
        n.local.subscribe()
    }

    /// The access generation: it moves when any grant changes (see [`Store::access_changed`]).
    pub fn access_generation(&self) -> u64 {
        self.inner.notifier.access_generation.load(Ordering::SeqCst)
    }

    /// A grant on `bal_id` changed: sessions re-read their access at their next command, and
    /// those in IDLE wake now (a [`FolderChanged`] with the negated BAL id, on every node).
    pub(crate) async fn access_changed(&self, bal_id: i64) {
        self.inner
            .notifier
            .access_generation
            .fetch_add(1, Ordering::SeqCst);
        self.notify(-bal_id).await;
    }

    /// Tells this node's sessions only (the change was announced to other nodes by a
    /// NOTIFY in its own transaction, or there are none).
    pub(crate) fn notify_local(&self, folder_id: i64) {
        let _ = self.inner.notifier.local.send(FolderChanged { folder_id });
    }

    /// What this node's NOTIFY payloads start with (`<node>:<folder id>`).
    pub(crate) fn node_tag(&self) -> &str {
        &self.inner.notifier.node
    }

    pub(crate) async fn notify(&self, folder_id: i64) {
        let n = &self.inner.notifier;
        let _ = n.local.send(FolderChanged { folder_id });
        if self.engine() == Engine::Postgres {
            let payload = format!("{}:{folder_id}", n.node);
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(self.pool())
                .await
            {
                tracing::warn!(
                    "pg_notify failed (other nodes learn of this change at their next poll): {e}"
                );
            }
        }
    }
}

/// NOTIFYs other nodes, in `txn` (PostgreSQL sends them at its commit), that `folders`
/// changed: one statement for them all.
pub(crate) async fn notify_in(
    txn: &mut crate::group_commit::Txn,
    node: &str,
    folders: &[i64],
) -> crate::Result<()> {
    let calls: Vec<String> = (0..folders.len())
        .map(|i| format!("pg_notify($1, ${})", i + 2))
        .collect();
    // Only placeholders are formatted in; the payloads are bound.
    let sql = format!("SELECT {}", calls.join(", "));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(CHANNEL);
    for folder_id in folders {
        q = q.bind(format!("{node}:{folder_id}"));
    }
    q.execute(&mut **txn).await?;
    Ok(())
}

/// Forwards other nodes' notifications to local sessions; PgListener reconnects by itself.
async fn listen(
    url: String,
    node: String,
    local: broadcast::Sender<FolderChanged>,
    access_generation: Arc<AtomicU64>,
) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("LISTEN connection failed: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!("LISTEN failed: {e}; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            continue;
        }
        // Whatever other nodes changed while this node was not listening (a database
        // restart, a failover) was not heard: every session looks again, its access too.
        access_generation.fetch_add(1, Ordering::SeqCst);
        let _ = local.send(FolderChanged::ANY);
        // `recv` reconnects by itself once; an error means the database is unreachable.
        loop {
            match listener.try_recv().await {
                Ok(Some(note)) => {
                    if let Some(folder_id) = foreign_folder(note.payload(), &node) {
                        if folder_id < 0 {
                            access_generation.fetch_add(1, Ordering::SeqCst);
                        }
                        // No receiver now is fine: sessions subscribe again later.
                        let _ = local.send(FolderChanged { folder_id });
                    }
                }
                // The connection was lost and will be reopened by the next call: what
                // was sent meanwhile is lost, so every session looks again.
                Ok(None) => {
                    access_generation.fetch_add(1, Ordering::SeqCst);
                    let _ = local.send(FolderChanged::ANY);
                }
                Err(e) => {
                    tracing::warn!("LISTEN connection lost: {e}; reconnecting");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// On SQLite, where no NOTIFY crosses processes: the grant change counter, read once a
/// second, bumps the access generation (and wakes IDLE) when another process such as
/// `mssante delegation revoke` changed a grant. `baseline` is the counter as the store was
/// opened, before any session read its access, so a change made after a session's read is
/// never taken for the starting point. The counter only grows: a grant and its revocation
/// between two reads still move it (a fingerprint of the tables' content came back to the
/// same value then, and the revocation went unseen; ADR 0027).
pub(crate) async fn poll_grants(
    pool: sqlx::AnyPool,
    baseline: Option<i64>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    local: tokio::sync::broadcast::Sender<FolderChanged>,
) {
    let mut last = baseline;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let Some(now) = crate::delegation::access_changes(&pool).await else {
            continue;
        };
        if last.is_some_and(|l| l != now) {
            generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = local.send(FolderChanged { folder_id: -1 });
        }
        last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_payloads_are_ignored() {
        assert_eq!(super::foreign_folder("abc:42", "def"), Some(42));
        assert_eq!(super::foreign_folder("abc:42", "abc"), None);
        assert_eq!(super::foreign_folder("garbage", "abc"), None);
    }

    #[test]
    fn any_concerns_every_folder() {
        use super::FolderChanged;
        assert!(FolderChanged::ANY.concerns(7));
        assert!(FolderChanged { folder_id: 7 }.concerns(7));
        assert!(!FolderChanged { folder_id: 8 }.concerns(7));
    }
}
