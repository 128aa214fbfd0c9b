//! Export and import jobs of the HTTP API (ADR 0039): rows that say what was asked, how far
//! the work is, and how it ended. The documents in them (`request`, `progress`, `result`,
//! `error`) are JSON the API writes and reads back; the store keeps them as text.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::{Store, now};

/// One job as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    /// `export` or `import`.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// The node whose data dir holds `file`.
    pub node: String,
    pub client: String,
    pub request: String,
    pub progress: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub file: Option<String>,
    pub file_size: Option<i64>,
    pub file_sha256: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// What a new job is.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub node: &'a str,
    pub client: &'a str,
    pub request: &'a str,
    pub progress: &'a str,
    pub file: Option<&'a str>,
}

/// How a job ended.
#[derive(Clone, Debug, Default)]
pub struct JobEnd {
    pub failed: bool,
    pub result: Option<String>,
    pub error: Option<String>,
    pub file_size: Option<i64>,
    pub file_sha256: Option<String>,
}

/// The columns of a [`Job`], as a literal for `concat!`.
macro_rules! columns {
    () => {
        "id, kind, state, node, client, request, progress, result, error, file, \
         file_size, file_sha256, attempts, created_at, updated_at, finished_at"
    };
}

fn job_from_row(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        node: row.try_get("node")?,
        client: row.try_get("client")?,
        request: row.try_get("request")?,
        progress: row.try_get("progress")?,
        result: row.try_get("result")?,
        error: row.try_get("error")?,
        file: row.try_get("file")?,
        file_size: row.try_get("file_size")?,
        file_sha256: row.try_get("file_sha256")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Store {
    /// Queues a job unless `max_active` jobs of its kind are queued or running already
    /// (`None` then), counted over every node.
    pub async fn create_job(&self, new: &NewJob<'_>, max_active: i64) -> Result<Option<Job>> {
        let at = now();
        let mut w = self.write_txn().await?;
        let active: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_jobs WHERE kind = $1 AND state IN ('queued', 'running')",
        )
        .bind(new.kind)
        .fetch_one(&mut *w.txn)
        .await?
        .try_get("n")?;
        if active >= max_active {
            return Ok(None);
        }
        let row = sqlx::query(concat!(
            "INSERT INTO api_jobs (kind, state, node, client, request, progress, file, created_at, updated_at) \
             VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $7) RETURNING ",
            columns!()
        ))
        .bind(new.kind)
        .bind(new.node)
        .bind(new.client)
        .bind(new.request)
        .bind(new.progress)
        .bind(new.file.map(str::to_string))
        .bind(at)
        .fetch_one(&mut *w.txn)
        .await?;
        let job = job_from_row(&row)?;
        w.commit().await?;
        Ok(Some(job))
    }

    pub async fn job(&self, kind: &str, id: i64) -> Result<Option<Job>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM api_jobs WHERE kind = $1 AND id = $2"
        ))
        .bind(kind)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Takes the oldest queued job of `kind` on `node` and marks it running (one more attempt).
    pub async fn claim_job(&self, node: &str, kind: &str) -> Result<Option<Job>> {
        let mut w = self.write_txn().await?;
        let row = sqlx::query(
            "SELECT id FROM api_jobs WHERE node = $1 AND kind = $2 AND state = 'queued' \
             ORDER BY id LIMIT 1",
        )
        .bind(node)
        .bind(kind)
        .fetch_optional(&mut *w.txn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.try_get("id")?;
        let row = sqlx::query(concat!(
            "UPDATE api_jobs SET state = 'running', attempts = attempts + 1, updated_at = $1 \
             WHERE id = $2 AND state = 'queued' RETURNING ",
            columns!()
        ))
        .bind(now())
        .bind(id)
        .fetch_optional(&mut *w.txn)
        .await?;
        let job = row.as_ref().map(job_from_row).transpose()?;
        w.commit().await?;
        Ok(job)
    }

    /// Records how far a job is; false when the job is gone (removed: the work stops).
    pub async fn job_progress(&self, id: i64, progress: &str) -> Result<bool> {
        let mut w = self.write_txn().await?;
        let done = sqlx::query("UPDATE api_jobs SET progress = $1, updated_at = $2 WHERE id = $3")
            .bind(progress)
            .bind(now())
            .bind(id)
            .execute(&mut *w.txn)
            .await?;
        w.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends a running job; false when the job is gone.
    pub async fn finish_job(&self, id: i64, progress: &str, end: &JobEnd) -> Result<bool> {
        let at = now();
        let mut w = self.write_txn().await?;
        let done = sqlx::query(
            "UPDATE api_jobs SET state = $1, progress = $2, result = $3, error = $4, \
             file_size = $5, file_sha256 = $6, updated_at = $7, finished_at = $7 WHERE id = $8",
        )
        .bind(if end.failed { "failed" } else { "done" })
        .bind(progress)
        .bind(end.result.clone())
        .bind(end.error.clone())
        .bind(end.file_size)
        .bind(end.file_sha256.clone())
        .bind(at)
        .bind(id)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a job (its file is the caller's); false when there was none.
    pub async fn remove_job(&self, kind: &str, id: i64) -> Result<bool> {
        let mut w = self.write_txn().await?;
        let done = sqlx::query("DELETE FROM api_jobs WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(id)
            .execute(&mut *w.txn)
            .await?;
        w.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// At start: the jobs of `node` left `running` by a server that stopped are queued again,
    /// unless they have run `max_attempts` times already (then they fail with `error`).
    /// Returns how many were queued again.
    pub async fn requeue_interrupted_jobs(
        &self,
        node: &str,
        max_attempts: i64,
        error: &str,
    ) -> Result<u64> {
        let at = now();
        let mut w = self.write_txn().await?;
        sqlx::query(
            "UPDATE api_jobs SET state = 'failed', error = $1, updated_at = $2, finished_at = $2 \
             WHERE node = $3 AND state = 'running' AND attempts >= $4",
        )
        .bind(error)
        .bind(at)
        .bind(node)
        .bind(max_attempts)
        .execute(&mut *w.txn)
        .await?;
        let done = sqlx::query(
            "UPDATE api_jobs SET state = 'queued', updated_at = $1 WHERE node = $2 AND state = 'running'",
        )
        .bind(at)
        .bind(node)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        Ok(done.rows_affected())
    }
}
