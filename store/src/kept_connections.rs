//! PostgreSQL connections that the per-message statements of SMTP (the RCPT lookup and the
//! one-statement delivery of `delivery_pg.rs`) keep from one message to the next instead
//! of giving them back to sqlx's pool (ADR 0052).
//!
//! sqlx 0.9 pings every connection its pool takes back (`return_to_pool`, not
//! configurable): one more round trip, and a wake-up of a PostgreSQL backend, after every
//! statement run on the pool. Counted on the wire, `lab-bulk` cost four round trips a
//! message, two of them these pings. A connection is kept only once its statement has run
//! to the end (read up to `ReadyForQuery`, the commit included), so it is idle and outside
//! any transaction; one whose statement failed, or whose future was dropped half-way, goes
//! back to the pool, whose ping checks it as before.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};

/// At most this many connections are kept out of the pool (16 on PostgreSQL): the
/// deliveries in flight on a node rarely exceed it, and the pool keeps most of its
/// connections for everything else.
const KEPT_MAX: usize = 4;

/// A connection kept longer than this is given back to the pool (which pings it) rather
/// than used: the trust `db.rs` gives an idle pool connection (`POSTGRES_TRUSTED_IDLE`).
const KEPT_TRUSTED_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct KeptConnections {
    idle: Mutex<Vec<(PoolConnection<Any>, Instant)>>,
}

impl KeptConnections {
    /// A kept connection used within the trusted idle time, or one from the pool.
    async fn take(&self, pool: &AnyPool) -> std::result::Result<PoolConnection<Any>, sqlx::Error> {
        let fresh = {
            let mut idle = self.idle.lock().expect("kept connections");
            // Those kept too long go back to the pool (dropped outside the lock below).
            let stale: Vec<_> = idle
                .extract_if(.., |(_, at)| at.elapsed() > KEPT_TRUSTED_IDLE)
                .collect();
            let fresh = idle.pop();
            drop(idle);
            drop(stale);
            fresh
        };
        match fresh {
            Some((conn, _)) => Ok(conn),
            None => pool.acquire().await,
        }
    }

    /// Keeps a connection whose statement has run to its end; beyond [`KEPT_MAX`], or once
    /// the pool is closing, it goes back to the pool.
    fn give_back(&self, pool: &AnyPool, conn: PoolConnection<Any>) {
        let mut idle = self.idle.lock().expect("kept connections");
        // Checked under the lock: `release_all` runs after the pool is marked closed.
        if idle.len() < KEPT_MAX && !pool.is_closed() {
            idle.push((conn, Instant::now()));
            return;
        }
        drop(idle);
        drop(conn);
    }

    /// Runs `query` to its end on a kept connection: every row, then `ReadyForQuery`, which
    /// PostgreSQL sends once the statement's implicit transaction has committed (see
    /// `db::fetch_committed`).
    pub(crate) async fn fetch_all<'q>(
        &self,
        pool: &AnyPool,
        query: sqlx::query::Query<'q, Any, AnyArguments>,
    ) -> std::result::Result<Vec<AnyRow>, sqlx::Error> {
        let mut conn = self.take(pool).await?;
        // On an error `conn` is dropped: back to the pool, whose ping checks it.
        let rows = query.fetch_all(&mut *conn).await?;
        self.give_back(pool, conn);
        Ok(rows)
    }

    /// Gives every kept connection back to the pool: its `close` waits for all of them.
    pub(crate) fn release_all(&self) {
        let kept: Vec<_> = self
            .idle
            .lock()
            .expect("kept connections")
            .drain(..)
            .collect();
        drop(kept);
    }
}

/// How many connections sqlx's pool has taken back (each one pinged): on PostgreSQL, the
/// round trips that [`KeptConnections`] saves show here.
#[derive(Default)]
pub(crate) struct PoolReturns(AtomicU64);

impl PoolReturns {
    pub(crate) fn count(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
