//! Leadership among nodes sharing one database (ADR 0023): the periodic jobs that must not
//! run twice at the same time (delivery reports, the directory publication outbox) run on
//! the node that holds a PostgreSQL session-level advisory lock.
//!
//! The lock lives as long as the connection that took it: a leader that dies (SIGKILL,
//! power loss, network cut) loses its connection, PostgreSQL releases the lock, and the next
//! node that asks becomes leader. The leader checks its connection on a schedule and stops
//! its jobs as soon as it cannot prove it still holds the lock. On SQLite (one server per
//! database, ADR 0013) the only node always leads.

use sqlx::{Connection, Row};

use crate::error::Result;
use crate::{Engine, Store, blob_hash};

/// Held while this node leads for a role; dropping it (or losing its connection) ends the
/// leadership.
pub struct Leadership {
    /// The connection whose session holds the advisory lock; `None` on SQLite.
    conn: Option<sqlx::AnyConnection>,
}

/// The advisory lock key of a role: the first 8 bytes of its SHA-256, so that two roles
/// (and other software using advisory locks on the same database) are unlikely to collide.
pub fn role_key(role: &str) -> i64 {
    let hash = blob_hash(format!("mssante leadership: {role}").as_bytes());
    u64::from_str_radix(&hash[..16], 16).unwrap_or(0) as i64
}

impl Store {
    /// Tries to become the leader for `role`: `Ok(None)` while another node leads.
    pub async fn try_lead(&self, role: &str) -> Result<Option<Leadership>> {
        if self.engine() == Engine::Sqlite {
            return Ok(Some(Leadership { conn: None }));
        }
        // A connection of its own, outside the pool: the pool would reuse (and could close)
        // the session that holds the lock.
        let mut conn = sqlx::AnyConnection::connect(self.database_url()).await?;
        let got: i64 = sqlx::query(
            "SELECT CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END::BIGINT AS got",
        )
        .bind(role_key(role))
        .fetch_one(&mut conn)
        .await?
        .try_get("got")?;
        if got == 1 {
            return Ok(Some(Leadership { conn: Some(conn) }));
        }
        let _ = conn.close().await;
        Ok(None)
    }
}

impl Leadership {
    /// Whether the lock is still ours: its session answers. A session that does not answer
    /// may be gone, and another node may lead already.
    pub async fn still_held(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return true;
        };
        let check = tokio::time::timeout(std::time::Duration::from_secs(5), conn.ping());
        matches!(check.await, Ok(Ok(())))
    }

    /// Gives the leadership up at once (the lock goes with the session).
    pub async fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn role_keys_are_stable_and_distinct() {
        assert_eq!(super::role_key("periodic"), super::role_key("periodic"));
        assert_ne!(super::role_key("periodic"), super::role_key("reports"));
    }
}
