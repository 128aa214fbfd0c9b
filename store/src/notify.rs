//! Change notifications for IMAP sessions: an in-process broadcast, bridged across nodes
//! through PostgreSQL LISTEN/NOTIFY so that a session on another node sharing the database
//! hears about a delivery too (docs/architecture.md §5, "Several nodes"). Writes on
//! PostgreSQL (IMAP, ADR 0053; deliveries and every other write, ADR 0054) tell other nodes
//! after their commit, through this node's outbox: a NOTIFY inside a write would serialize
//! every commit behind PostgreSQL's NOTIFY lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::change_feed::{ChangeFeed, ChangeHub, FolderChanged};
use crate::{Engine, Store};

pub(crate) const CHANNEL: &str = "mssante_folder_changes";

pub(crate) struct Notifier {
    /// This node's sessions, each told of the changes it watches (ADR 0057).
    local: Arc<ChangeHub>,
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
    /// Folders changed by committed writes, to be told to other nodes (ADR 0053).
    outbox: Arc<Outbox>,
}

/// What [`publish`] has still to tell other nodes, and its wake-up.
#[derive(Default)]
struct Outbox {
    pending: std::sync::Mutex<Vec<i64>>,
    wake: tokio::sync::Notify,
    started: OnceLock<()>,
    /// The other nodes this node has heard of (their NOTIFY payloads' node part). Until one
    /// is known nothing is published: a lone node's writes cost no NOTIFY at all.
    peers: std::sync::Mutex<std::collections::HashSet<String>>,
    has_peers: std::sync::atomic::AtomicBool,
}

impl Outbox {
    /// Records `node` as a peer; true when it was new.
    fn met(&self, node: &str) -> bool {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let new = peers.insert(node.to_string());
        self.has_peers.store(true, Ordering::SeqCst);
        new
    }
}

impl Notifier {
    pub(crate) fn new(database_url: &str, access_changes_at_open: Option<i64>) -> Notifier {
        let mut node = [0u8; 8];
        rand::fill(&mut node);
        Notifier {
            local: Arc::new(ChangeHub::new()),
            node: hex::encode(node),
            listener: OnceLock::new(),
            database_url: database_url.to_string(),
            access_generation: Arc::new(AtomicU64::new(1)),
            access_changes_at_open,
            outbox: Arc::default(),
        }
    }
}

/// `node:folder_id` → (node, folder id), unless the payload is our own.
fn foreign_folder<'p>(payload: &'p str, own_node: &str) -> Option<(&'p str, i64)> {
    let (node, folder) = payload.split_once(':')?;
    if node == own_node {
        return None;
    }
    Some((node, folder.parse().ok()?))
}

impl Store {
    /// A session's feed of changes, made on this node or (PostgreSQL) on another node
    /// sharing the database: grant changes and "any folder" at once, a folder's changes once
    /// it watches that folder (ADR 0057).
    pub fn subscribe_changes(&self) -> ChangeFeed {
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
            self.listen_to_other_nodes();
        }
        n.local.feed()
    }

    /// PostgreSQL: starts this node's LISTEN connection, once.
    fn listen_to_other_nodes(&self) {
        let n = &self.inner.notifier;
        n.listener.get_or_init(|| {
            tokio::spawn(listen(
                n.database_url.clone(),
                n.node.clone(),
                n.local.clone(),
                n.access_generation.clone(),
                n.outbox.clone(),
            ));
        });
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

    /// A committed write changed `folder_id`: this node's sessions are told now; on
    /// PostgreSQL other nodes are told by the outbox's next NOTIFY, a transaction of its own
    /// after this one's commit (ADR 0053). A NOTIFY in the write's own transaction takes
    /// PostgreSQL's cluster-wide NOTIFY lock at its commit and holds it through the WAL
    /// flush, so every notifying write of every session waited for the others' fsyncs.
    ///
    /// Only once another node is known: every node NOTIFYs folder 0 ("any folder") when its
    /// LISTEN connects, and again when it hears from a node new to it, after marking it
    /// known. A write that found no peer known committed before that NOTIFY, which makes
    /// the other nodes' sessions look again. The one way a write tells of its change (ADR
    /// 0054), so that no write reaches this node's sessions and not the others'.
    pub(crate) fn folder_committed(&self, folder_id: i64) {
        self.inner
            .notifier
            .local
            .publish(FolderChanged { folder_id });
        if self.engine() != Engine::Postgres {
            return;
        }
        // A node with no IMAP session yet (a submission's copy to Sent) listens too, to meet
        // the others.
        self.listen_to_other_nodes();
        let n = &self.inner.notifier;
        if !n.outbox.has_peers.load(Ordering::SeqCst) {
            return;
        }
        n.outbox.started.get_or_init(|| {
            tokio::spawn(publish(
                n.database_url.clone(),
                n.node.clone(),
                n.outbox.clone(),
            ));
        });
        n.outbox
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(folder_id);
        n.outbox.wake.notify_one();
    }

    pub(crate) async fn notify(&self, folder_id: i64) {
        let n = &self.inner.notifier;
        n.local.publish(FolderChanged { folder_id });
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

/// `pg_notify($1, $2), pg_notify($1, $3), …` for `n` payloads (the channel is `$1`).
fn notify_calls(n: usize) -> String {
    let calls: Vec<String> = (0..n)
        .map(|i| format!("pg_notify($1, ${})", i + 2))
        .collect();
    calls.join(", ")
}

/// NOTIFYs folder 0 ("any folder") from this node: other nodes' sessions look again.
async fn announce(listener: &mut sqlx::postgres::PgListener, node: &str) {
    let announce = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{node}:0"));
    if let Err(e) = announce.execute(listener).await {
        tracing::warn!("NOTIFY of this node to the others failed: {e}");
    }
}

/// Most folders one NOTIFY statement of the outbox names.
const MAX_PUBLISHED: usize = 1000;

/// Tells other nodes, on a connection of its own, of the folders the outbox collects: all
/// those waiting in one statement, so that under load one transaction carries the changes
/// of many writes. Its commit is asynchronous (`synchronous_commit` off for that
/// transaction only): a notification is a wake-up, not data, and waiting for its WAL flush
/// would hold the NOTIFY lock through an fsync again. The data it announces was committed
/// durably by the write before it was queued here.
async fn publish(url: String, node: String, outbox: Arc<Outbox>) {
    use sqlx::Connection;
    let mut conn: Option<sqlx::postgres::PgConnection> = None;
    loop {
        outbox.wake.notified().await;
        let mut folders =
            std::mem::take(&mut *outbox.pending.lock().unwrap_or_else(|e| e.into_inner()));
        folders.sort_unstable();
        folders.dedup();
        for batch in folders.chunks(MAX_PUBLISHED) {
            if conn.is_none() {
                conn = sqlx::postgres::PgConnection::connect(&url).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                tracing::warn!(
                    "NOTIFY connection failed: other nodes' sessions see these changes at the folders' next change"
                );
                break;
            };
            if let Err(e) = publish_batch(c, &node, batch).await {
                tracing::warn!(
                    "NOTIFY failed ({e}): other nodes' sessions see these changes at the folders' next change"
                );
                conn = None;
            }
        }
    }
}

/// One statement: asynchronous commit for its transaction, a NOTIFY per folder.
async fn publish_batch(
    conn: &mut sqlx::postgres::PgConnection,
    node: &str,
    folders: &[i64],
) -> sqlx::Result<()> {
    // Only placeholders are formatted in; the payloads are bound.
    let sql = format!(
        "SELECT set_config('synchronous_commit', 'off', true), {}",
        notify_calls(folders.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(CHANNEL);
    for folder_id in folders {
        q = q.bind(format!("{node}:{folder_id}"));
    }
    sqlx::Executor::execute(conn, q).await?;
    Ok(())
}

/// Forwards other nodes' notifications to local sessions; PgListener reconnects by itself.
async fn listen(
    url: String,
    node: String,
    local: Arc<ChangeHub>,
    access_generation: Arc<AtomicU64>,
    outbox: Arc<Outbox>,
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
        local.publish(FolderChanged::ANY);
        // And the other nodes' sessions look again too: this node may have stopped between a
        // commit and its NOTIFY (ADR 0053: the NOTIFY follows the commit). It is also how
        // the other nodes meet this one.
        announce(&mut listener, &node).await;
        // `recv` reconnects by itself once; an error means the database is unreachable.
        loop {
            match listener.try_recv().await {
                Ok(Some(note)) => {
                    if let Some((peer, folder_id)) = foreign_folder(note.payload(), &node) {
                        if folder_id < 0 {
                            access_generation.fetch_add(1, Ordering::SeqCst);
                        }
                        // A node new to this one: from now on this node's writes are
                        // published, and this NOTIFY, sent after that, makes the other
                        // nodes' sessions look again for those made before (ADR 0053).
                        if outbox.met(peer) {
                            announce(&mut listener, &node).await;
                        }
                        local.publish(FolderChanged { folder_id });
                    }
                }
                // The connection was lost and will be reopened by the next call: what
                // was sent meanwhile is lost, so every session looks again.
                Ok(None) => {
                    access_generation.fetch_add(1, Ordering::SeqCst);
                    local.publish(FolderChanged::ANY);
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
    local: Arc<ChangeHub>,
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
            local.publish(FolderChanged { folder_id: -1 });
        }
        last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_payloads_are_ignored() {
        assert_eq!(super::foreign_folder("abc:42", "def"), Some(("abc", 42)));
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
