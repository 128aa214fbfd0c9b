//! Figures for monitoring (`/metrics`, `/readyz` of the HTTP API): message and recipient
//! counts, queue depth and age, directory freshness, and a database ping.

use sqlx::Row;

use crate::Store;
use crate::error::Result;

/// Counters read from the database at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerCounts {
    /// Messages accepted, per source (`mx`, `submission`, `report`).
    pub messages_by_source: Vec<(String, i64)>,
    /// Recipients, per status (`delivered`, `queued`, `relayed`, `failed`).
    pub recipients_by_status: Vec<(String, i64)>,
    /// Recipients waiting in the outbound queue.
    pub queue_depth: i64,
    /// Unix seconds of the oldest queued recipient's message.
    pub queue_oldest: Option<i64>,
    /// Unix seconds of the last finished directory import.
    pub directory_imported_at: Option<i64>,
}

async fn counts_by(store: &Store, sql: &'static str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(sql).fetch_all(store.pool()).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("k")?, r.try_get("n")?)))
        .collect()
}

impl Store {
    /// One round trip to the database: is it reachable?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1 AS one")
            .fetch_one(self.pool())
            .await?;
        Ok(())
    }

    pub async fn server_counts(&self) -> Result<ServerCounts> {
        let messages_by_source = counts_by(
            self,
            "SELECT source AS k, COUNT(*) AS n FROM messages GROUP BY source ORDER BY source",
        )
        .await?;
        let recipients_by_status = counts_by(
            self,
            "SELECT status AS k, COUNT(*) AS n FROM recipients GROUP BY status ORDER BY status",
        )
        .await?;
        let queue = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(m.received_at) AS oldest FROM recipients r \
             JOIN messages m ON m.id = r.message_id WHERE r.status = 'queued'",
        )
        .fetch_one(self.pool())
        .await?;
        let directory = sqlx::query(
            "SELECT MAX(finished_at) AS at FROM directory_imports WHERE finished_at IS NOT NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(ServerCounts {
            messages_by_source,
            recipients_by_status,
            queue_depth: queue.try_get("n")?,
            queue_oldest: queue.try_get("oldest")?,
            directory_imported_at: directory.try_get("at")?,
        })
    }
}
