//! Outbox of publications to the national directory (docs/mssante.md §7: FHIR PATCH of our
//! BALs, with retries). A BAL change enqueues a request in the same database as the BAL; a
//! worker sends the due ones and records the outcome, so a restart or an unreachable endpoint
//! loses nothing.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Result, StoreError};
use crate::{Store, now};

/// A request waiting to be sent (or retried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    /// The BAL the request publishes.
    pub address: String,
    /// Relative to the FHIR base: `Practitioner?identifier=…` (conditional patch).
    pub resource_url: String,
    /// FHIR `Parameters` (JSON).
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

fn item_from_row(r: &AnyRow) -> Result<OutboxItem> {
    Ok(OutboxItem {
        id: r.try_get("id")?,
        address: r.try_get("address")?,
        resource_url: r.try_get("resource_url")?,
        body: r.try_get("body")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt: r.try_get("next_attempt")?,
        last_error: r.try_get("last_error")?,
    })
}

impl Store {
    /// Queues a publication, due at once.
    pub async fn directory_outbox_enqueue(
        &self,
        address: &str,
        resource_url: &str,
        body: &str,
    ) -> Result<i64> {
        let t = now();
        let mut w = self.write_txn().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO directory_outbox (address, resource_url, body, status, next_attempt, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4, $4) RETURNING id",
        )
        .bind(address)
        .bind(resource_url)
        .bind(body)
        .bind(t)
        .fetch_one(&mut *w.txn)
        .await?
        .try_get("id")?;
        w.commit().await?;
        Ok(id)
    }

    /// Pending items due at `at`, oldest first (publications of one BAL keep their order).
    pub async fn directory_outbox_due(&self, at: i64, limit: i64) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query(
            "SELECT id, address, resource_url, body, status, attempts, next_attempt, last_error \
             FROM directory_outbox WHERE status = 'pending' AND next_attempt <= $1 ORDER BY id LIMIT $2",
        )
        .bind(at)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// Every item of a BAL, oldest first.
    pub async fn directory_outbox_items(&self, address: &str) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query(
            "SELECT id, address, resource_url, body, status, attempts, next_attempt, last_error \
             FROM directory_outbox WHERE address = $1 ORDER BY id",
        )
        .bind(address)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// Records an attempt: `done`, `failed` (given up), or `pending` again at `next_attempt`.
    pub async fn directory_outbox_record(
        &self,
        id: i64,
        status: &str,
        next_attempt: i64,
        error: Option<&str>,
    ) -> Result<()> {
        if !matches!(status, "pending" | "done" | "failed") {
            return Err(StoreError::Invalid(format!(
                "unknown outbox status {status:?}"
            )));
        }
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE directory_outbox SET status = $2, attempts = attempts + 1, next_attempt = $3, \
             last_error = $4, updated_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(next_attempt)
        .bind(error)
        .bind(now())
        .execute(&mut *w.txn)
        .await?;
        w.commit().await
    }
}
