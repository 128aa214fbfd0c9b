//! Seeding the tracking tables for benchmarks (`mssante bench-seed`, hidden): a million
//! messages "sent from here" with their recipients and read receipts, inserted in large
//! transactions by `INSERT … SELECT` over a recursive sequence, so that the status lookups of
//! the HTTP API can be measured on a store of production size without a million sends.
//!
//! The rows look like what a laboratory's sends leave behind: one message per report from
//! one BAL, each to one recipient of another operator, relayed (three in four) or failed
//! (one in four, with the remote reply), and every other one with a `displayed` MDN. They all
//! share one small body (`blob_data`), which no status lookup reads.

use sqlx::Row;

use crate::{Address, Result, Store, StoreError, blob_hash, now};

/// What a seeding inserted: the message numbers `first_id..=last_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeededRange {
    pub first_id: i64,
    pub last_id: i64,
}

/// The body every seeded message points to.
const SEED_BODY: &[u8] =
    b"From: seed@bench.invalid\r\nSubject: bench seed\r\n\r\nSeeded for a benchmark.\r\n";

impl Store {
    /// Inserts `count` tracked messages sent by the BAL `from` to `user{n}@{rcpt_domain}`
    /// (n from 1 to `users`), `batch` messages per transaction. For benchmarks only.
    pub async fn seed_tracked_messages(
        &self,
        from: &Address,
        rcpt_domain: &str,
        users: i64,
        count: i64,
        batch: i64,
    ) -> Result<SeededRange> {
        let bal = self
            .find_bal(from.as_str())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("BAL {from}")))?;
        let hash = blob_hash(SEED_BODY);
        let t = now();
        let mut w = self.write_txn().await?;
        sqlx::query("INSERT INTO blobs (hash, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING")
            .bind(&hash)
            .bind(SEED_BODY.len() as i64)
            .bind(t)
            .execute(&mut *w.txn)
            .await?;
        sqlx::query(
            "INSERT INTO blob_data (hash, data) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(&hash)
        .bind(SEED_BODY.to_vec())
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        let mut range: Option<SeededRange> = None;
        let mut done = 0;
        while done < count {
            let n = batch.clamp(1, count - done);
            let ids = self
                .seed_batch(
                    &hash,
                    from.as_str(),
                    bal.id,
                    rcpt_domain,
                    users.max(1),
                    n,
                    t,
                )
                .await?;
            range = Some(match range {
                None => ids,
                Some(r) => SeededRange {
                    first_id: r.first_id,
                    last_id: ids.last_id,
                },
            });
            done += n;
        }
        range.ok_or_else(|| StoreError::Invalid("count must be positive".into()))
    }

    /// One transaction: `n` messages, their recipients and MDNs.
    #[allow(clippy::too_many_arguments)]
    async fn seed_batch(
        &self,
        hash: &str,
        from: &str,
        bal_id: i64,
        rcpt_domain: &str,
        users: i64,
        n: i64,
        t: i64,
    ) -> Result<SeededRange> {
        let mut w = self.write_txn().await?;
        let before: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM messages")
            .fetch_one(&mut *w.txn)
            .await?
            .try_get("m")?;
        // A recursive sequence works on both engines (no generate_series on SQLite); the
        // timestamps stay within the last hour, inside any retention period.
        sqlx::query(
            "INSERT INTO messages (blob_hash, size, received_at, mail_from, source, auth_bal_id, \
             message_id_hdr, subject) \
             WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < $1) \
             SELECT $2, 40000, $3 - (k % 3600), $4, 'submission', $5, \
             'seed.' || $6 || '.' || k || '@bench.invalid', 'Compte rendu de biologie ' || k FROM seq",
        )
        .bind(n)
        .bind(hash)
        .bind(t)
        .bind(from)
        .bind(bal_id)
        .bind(before.to_string())
        .execute(&mut *w.txn)
        .await?;
        sqlx::query(
            "INSERT INTO recipients (message_id, address, status, attempts, dsn_status, last_error, \
             remote_mta, updated_at) \
             SELECT id, 'user' || (id % $1 + 1) || '@' || $2, \
             CASE WHEN id % 4 = 0 THEN 'failed' ELSE 'relayed' END, 1, \
             CASE WHEN id % 4 = 0 THEN '5.1.1' ELSE '2.0.0' END, \
             CASE WHEN id % 4 = 0 THEN '550 5.1.1 mailbox unknown' ELSE NULL END, \
             'mx.' || $2, received_at + 2 FROM messages WHERE id > $3",
        )
        .bind(users)
        .bind(rcpt_domain)
        .bind(before)
        .execute(&mut *w.txn)
        .await?;
        sqlx::query(
            "INSERT INTO tracking_events (message_id, original_msgid, recipient, kind, state, \
             detail, received_at) \
             SELECT id, message_id_hdr, 'user' || (id % $1 + 1) || '@' || $2, 'mdn', 'displayed', \
             'automatic-action/MDN-sent-automatically; displayed', received_at + 60 \
             FROM messages WHERE id > $3 AND id % 2 = 1",
        )
        .bind(users)
        .bind(rcpt_domain)
        .bind(before)
        .execute(&mut *w.txn)
        .await?;
        let last: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM messages")
            .fetch_one(&mut *w.txn)
            .await?
            .try_get("m")?;
        w.commit().await?;
        Ok(SeededRange {
            first_id: before + 1,
            last_id: last,
        })
    }

    /// The query plans of the status lookup's three statements (`EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL), one text per statement: a benchmark checks that
    /// each uses an index.
    pub async fn status_query_plans(&self, id: i64) -> Result<Vec<String>> {
        let statements = [
            "SELECT id, message_id_hdr, mail_from, subject, received_at FROM messages WHERE id = $1",
            "SELECT message_id, recipient, kind, state, detail, error_codes, received_at \
             FROM tracking_events WHERE message_id IN ($1) ORDER BY received_at, id",
            "SELECT message_id, address, status, dsn_status, last_error, attempts, updated_at \
             FROM recipients WHERE message_id IN ($1) ORDER BY id",
        ];
        let prefix = match self.engine() {
            crate::Engine::Sqlite => "EXPLAIN QUERY PLAN ",
            crate::Engine::Postgres => "EXPLAIN ",
        };
        let mut plans = Vec::new();
        for statement in statements {
            let sql = format!("{prefix}{statement}");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_all(self.pool())
                .await?;
            let mut lines = Vec::new();
            for row in rows {
                // SQLite: (id, parent, notused, detail); PostgreSQL: one text column.
                let line: String = match self.engine() {
                    crate::Engine::Sqlite => row.try_get("detail")?,
                    crate::Engine::Postgres => row.try_get(0)?,
                };
                lines.push(line);
            }
            plans.push(format!("{statement}\n  {}", lines.join("\n  ")));
        }
        Ok(plans)
    }
}
