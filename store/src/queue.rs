//! The outbound queue: recipients with status `queued`, claimed by relay workers with a
//! lease, and the delivery reports (RFC 3464 DSNs) owed to senders.
//!
//! Claiming: a worker sets `locked_until` on the rows it takes. On PostgreSQL the selection
//! uses `FOR UPDATE SKIP LOCKED`, so several workers or nodes never take the same row; on
//! SQLite the single writer serialises claims. A worker that dies (SIGKILL, node loss)
//! leaves rows whose lease expires and which another claim picks up: delivery is at least
//! once, never lost.
//!
//! Recording: an outcome is recorded only by the claim it came from (`locked_by` and
//! `locked_until` as the claim set them, ADR 0045). A worker whose lease ran out while it was
//! still sending, and whose row another worker claimed again, records nothing: the row is
//! the other claim's to mark, so it is never marked sent twice.
//!
//! Reports: the decision "does this sender want to hear about this?" (RFC 3461 §4.1 NOTIFY)
//! is taken here, when the outcome is recorded, by setting `report_due`; the relay's report
//! task builds and sends what is due, then clears it.

use mssante_mail::dsn::{Action, Notify, NotifyEvent, Ret};
use sqlx::Row;

use crate::db::Engine;
use crate::error::{Result, StoreError};
use crate::{Store, now};

/// A queued recipient with what the relay needs to send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItem {
    pub id: i64,
    pub message_id: i64,
    pub address: String,
    pub mail_from: String,
    pub orcpt: Option<String>,
    pub notify: Option<Notify>,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub attempts: i64,
    pub next_attempt: Option<i64>,
    pub received_at: i64,
    pub blob_hash: String,
    pub size: i64,
    pub status: String,
    pub last_error: Option<String>,
    pub delay_reported: bool,
    /// The claim this item was taken under (worker id and lease end, as `claim_queued` set
    /// them): `record_attempt` records only while the row still carries it.
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
}

impl QueueItem {
    /// Domain part of the recipient (the relay destination).
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// What a sender asked to be told (RFC 3461 §4.1). Without NOTIFY the MTA may act as if
/// `FAILURE,DELAY` was given; `NEVER` silences everything; a DSN (null sender) never gets one.
pub fn notify_wants(notify: Option<Notify>, mail_from: &str, event: NotifyEvent) -> bool {
    !mail_from.is_empty() && notify.unwrap_or(Notify::DEFAULT).wants(event)
}

/// The NOTIFY column: the parameter as written by [`Notify`]'s `Display` (`NEVER`,
/// `SUCCESS,FAILURE`...), NULL when the client gave none.
fn notify_column(r: &sqlx::any::AnyRow, column: &str) -> Result<Option<Notify>> {
    let text: Option<String> = r.try_get(column)?;
    text.map(|t| {
        Notify::parse(&t)
            .map_err(|e| StoreError::Invalid(format!("{column} {t:?} in database: {e}")))
    })
    .transpose()
}

/// The RET column: `FULL`, `HDRS` or NULL.
fn ret_column(r: &sqlx::any::AnyRow, column: &str) -> Result<Option<Ret>> {
    let text: Option<String> = r.try_get(column)?;
    text.map(|t| {
        Ret::parse(&t).ok_or_else(|| StoreError::Invalid(format!("{column} {t:?} in database")))
    })
    .transpose()
}

/// The `report_due` column: a DSN action (`relayed`, `failed`...).
fn action_column(r: &sqlx::any::AnyRow, column: &str) -> Result<Action> {
    let text: String = r.try_get(column)?;
    Action::parse(&text)
        .ok_or_else(|| StoreError::Invalid(format!("{column} {text:?} in database")))
}

/// The outcome of one delivery attempt for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Accepted by the next hop. `peer_dsn`: the peer supports DSN (RFC 3461), so the
    /// success report is its to send; otherwise we owe `relayed` when SUCCESS was asked.
    Relayed {
        remote_mta: String,
        reply: String,
        peer_dsn: bool,
    },
    /// Permanent failure (5xx, unknown domain, refused certificate...).
    Failed {
        remote_mta: Option<String>,
        status: String,
        reply: String,
    },
    /// Temporary failure: try again at `next_attempt`; `delayed`: the sender should be told
    /// now that it is late (the relay decides when, from its configuration).
    Deferred {
        remote_mta: Option<String>,
        status: String,
        reply: String,
        next_attempt: i64,
        delayed: bool,
    },
}

/// A report owed to a sender, with what is needed to build it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueReport {
    pub recipient_id: i64,
    pub message_id: i64,
    pub action: Action,
    pub address: String,
    pub orcpt: Option<String>,
    pub mail_from: String,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub received_at: i64,
    pub blob_hash: String,
    pub dsn_status: Option<String>,
    pub remote_mta: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: i64,
    pub next_attempt: Option<i64>,
}

/// The columns of a [`QueueItem`] (a macro so that queries stay `&'static str` for sqlx).
macro_rules! select_items {
    ($where:literal) => {
        concat!(
            "SELECT r.id, r.message_id, r.address, r.orcpt, r.notify, r.attempts, r.next_attempt, ",
            "r.status, r.last_error, r.delay_reported, r.locked_by, r.locked_until, m.mail_from, m.envid, m.ret, ",
            "m.received_at, m.blob_hash, m.size FROM recipients r JOIN messages m ON m.id = r.message_id ",
            $where
        )
    };
}

macro_rules! due_ids {
    ($lock:literal) => {
        concat!(
            "SELECT id FROM recipients WHERE status = 'queued' AND next_attempt <= $1 ",
            "AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_attempt, id LIMIT $2",
            $lock
        )
    };
}

fn item_from_row(r: &sqlx::any::AnyRow) -> Result<QueueItem> {
    Ok(QueueItem {
        id: r.try_get("id")?,
        message_id: r.try_get("message_id")?,
        address: r.try_get("address")?,
        mail_from: r.try_get("mail_from")?,
        orcpt: r.try_get("orcpt")?,
        notify: notify_column(r, "notify")?,
        envid: r.try_get("envid")?,
        ret: ret_column(r, "ret")?,
        attempts: r.try_get("attempts")?,
        next_attempt: r.try_get("next_attempt")?,
        received_at: r.try_get("received_at")?,
        blob_hash: r.try_get("blob_hash")?,
        size: r.try_get("size")?,
        status: r.try_get("status")?,
        last_error: r.try_get("last_error")?,
        delay_reported: r.try_get::<i64, _>("delay_reported")? != 0,
        locked_by: r.try_get("locked_by")?,
        locked_until: r.try_get("locked_until")?,
    })
}

impl Store {
    /// Claims up to `limit` due recipients for `worker` until `now + lease_secs`.
    pub async fn claim_queued(
        &self,
        worker: &str,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<QueueItem>> {
        let t = now();
        // PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
        let select_due = match self.engine() {
            Engine::Postgres => due_ids!(" FOR UPDATE SKIP LOCKED"),
            Engine::Sqlite => due_ids!(""),
        };
        let mut w = self.write_txn().await?;
        let ids: Vec<i64> = sqlx::query(select_due)
            .bind(t)
            .bind(limit)
            .fetch_all(&mut *w.txn)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<_, _>>()?;
        for id in &ids {
            sqlx::query("UPDATE recipients SET locked_until = $1, locked_by = $2 WHERE id = $3")
                .bind(t + lease_secs)
                .bind(worker)
                .bind(id)
                .execute(&mut *w.txn)
                .await?;
        }
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            let row = sqlx::query(select_items!("WHERE r.id = $1"))
                .bind(id)
                .fetch_one(&mut *w.txn)
                .await?;
            items.push(item_from_row(&row)?);
        }
        w.commit().await?;
        Ok(items)
    }

    /// Records the outcome of an attempt, releases the lease and decides the report owed.
    /// Returns whether it was recorded (ADR 0045): only while the row still carries the
    /// claim `item` was taken under. A worker whose lease expired and whose row another
    /// worker claimed since records nothing, whatever happened: the other claim marks the
    /// row, once. A relay is also recorded on a row nobody holds that is still queued (its
    /// claim was withdrawn by `queue_retry`, or the later claim ended in a deferral): the
    /// message left, so recording it spares the peer another copy.
    /// A recipient an administrator took out of the queue while the attempt ran
    /// (`queue_delete`, which leaves the claim in place) stays out: a deferral or failure
    /// then changes nothing (it would have put the row back in the queue, or owed a report
    /// the administrator withheld); a relay that did happen is recorded, since the message left.
    pub async fn record_attempt(&self, item: &QueueItem, outcome: &AttemptOutcome) -> Result<bool> {
        let t = now();
        let wants = |event| notify_wants(item.notify, &item.mail_from, event);
        let (status, next, dsn_status, remote, error, report, delay_reported) = match outcome {
            AttemptOutcome::Relayed {
                remote_mta,
                reply,
                peer_dsn,
            } => (
                "relayed",
                None,
                "2.0.0".to_string(),
                Some(remote_mta.clone()),
                Some(reply.clone()),
                // RFC 3461 §5.2.2: relaying to a non-DSN hop earns a `relayed` report.
                (!peer_dsn && wants(NotifyEvent::Success)).then_some(Action::Relayed),
                item.delay_reported,
            ),
            AttemptOutcome::Failed {
                remote_mta,
                status,
                reply,
            } => (
                "failed",
                None,
                status.clone(),
                remote_mta.clone(),
                Some(reply.clone()),
                wants(NotifyEvent::Failure).then_some(Action::Failed),
                item.delay_reported,
            ),
            AttemptOutcome::Deferred {
                remote_mta,
                status,
                reply,
                next_attempt,
                delayed,
            } => {
                let tell = *delayed && !item.delay_reported && wants(NotifyEvent::Delay);
                (
                    "queued",
                    Some(*next_attempt),
                    status.clone(),
                    remote_mta.clone(),
                    Some(reply.clone()),
                    tell.then_some(Action::Delayed),
                    item.delay_reported || tell,
                )
            }
        };
        let mut w = self.write_txn().await?;
        let recorded = sqlx::query(
            "UPDATE recipients SET status = $1, next_attempt = $2, dsn_status = $3, remote_mta = $4, \
             last_error = $5, report_due = COALESCE($6, report_due), delay_reported = $7, attempts = attempts + 1, \
             locked_until = NULL, locked_by = NULL, updated_at = $8 \
             WHERE id = $9 AND ( \
               (locked_by = $10 AND locked_until = $11 AND (status = 'queued' OR $1 = 'relayed')) \
               OR ($1 = 'relayed' AND status = 'queued' AND locked_by IS NULL))",
        )
        .bind(status)
        .bind(next)
        .bind(dsn_status)
        .bind(remote)
        .bind(error)
        .bind(report.map(Action::as_str))
        .bind(delay_reported as i64)
        .bind(t)
        .bind(item.id)
        .bind(item.locked_by.as_deref())
        .bind(item.locked_until)
        .execute(&mut *w.txn)
        .await?
        .rows_affected()
            == 1;
        w.commit().await?;
        Ok(recorded)
    }

    /// Frees the claims of an earlier run of this node (`locked_by` starting with
    /// `node_prefix`): that process is gone, so its rows need not wait for their lease to
    /// expire. Returns how many rows were freed.
    pub async fn release_node_claims(&self, node_prefix: &str) -> Result<u64> {
        let mut w = self.write_txn().await?;
        // A prefix comparison without LIKE, whose `_` and `%` host names could contain.
        let done = sqlx::query(
            "UPDATE recipients SET locked_until = NULL, locked_by = NULL \
             WHERE status = 'queued' AND substr(locked_by, 1, length($1)) = $1",
        )
        .bind(node_prefix)
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done)
    }

    /// Reports owed to senders, oldest first.
    pub async fn due_reports(&self, limit: i64) -> Result<Vec<DueReport>> {
        let rows = sqlx::query(
            "SELECT r.id, r.message_id, r.report_due, r.address, r.orcpt, r.dsn_status, r.remote_mta, \
             r.last_error, r.updated_at, r.next_attempt, m.mail_from, m.envid, m.ret, m.received_at, m.blob_hash \
             FROM recipients r JOIN messages m ON m.id = r.message_id \
             WHERE r.report_due IS NOT NULL ORDER BY r.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueReport {
                    recipient_id: r.try_get("id")?,
                    message_id: r.try_get("message_id")?,
                    action: action_column(r, "report_due")?,
                    address: r.try_get("address")?,
                    orcpt: r.try_get("orcpt")?,
                    mail_from: r.try_get("mail_from")?,
                    envid: r.try_get("envid")?,
                    ret: ret_column(r, "ret")?,
                    received_at: r.try_get("received_at")?,
                    blob_hash: r.try_get("blob_hash")?,
                    dsn_status: r.try_get("dsn_status")?,
                    remote_mta: r.try_get("remote_mta")?,
                    last_error: r.try_get("last_error")?,
                    updated_at: r.try_get("updated_at")?,
                    next_attempt: r.try_get("next_attempt")?,
                })
            })
            .collect()
    }

    /// Marks reports as sent (after the report message itself was stored durably).
    pub async fn clear_reports(&self, recipient_ids: &[i64]) -> Result<()> {
        let mut w = self.write_txn().await?;
        for id in recipient_ids {
            sqlx::query("UPDATE recipients SET report_due = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await
    }

    /// The queue as an administrator sees it: every recipient still `queued`.
    pub async fn queue_list(&self) -> Result<Vec<QueueItem>> {
        let rows = sqlx::query(select_items!("WHERE r.status = 'queued' ORDER BY r.id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// One recipient row, queued or not.
    pub async fn queue_item(&self, id: i64) -> Result<Option<QueueItem>> {
        let row = sqlx::query(select_items!("WHERE r.id = $1"))
            .bind(id)
            // A read: fine straight on the pool (`db::fetch_committed`).
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(item_from_row).transpose()
    }

    /// Makes queued recipients due now (`None`: all of them). Returns how many. A claim on
    /// them is withdrawn: an attempt still running under it records only a relay, and only
    /// if nobody claimed the row since (`record_attempt`).
    pub async fn queue_retry(&self, id: Option<i64>) -> Result<u64> {
        macro_rules! retry {
            ($and:literal) => {
                concat!(
                    "UPDATE recipients SET next_attempt = $1, locked_until = NULL, locked_by = NULL ",
                    "WHERE status = 'queued'",
                    $and
                )
            };
        }
        let mut w = self.write_txn().await?;
        let query = match id {
            Some(id) => sqlx::query(retry!(" AND id = $2")).bind(now()).bind(id),
            None => sqlx::query(retry!("")).bind(now()),
        };
        let done = query.execute(&mut *w.txn).await?.rows_affected();
        w.commit().await?;
        Ok(done)
    }

    /// Takes a queued recipient out of the queue as failed, without a report (an
    /// administrator's decision, recorded as such). Returns whether a row was queued.
    /// A claim on the row is left in place (a failed row is never claimed again): a relay
    /// in progress under it can still record that the message left (`record_attempt`).
    pub async fn queue_delete(&self, id: i64) -> Result<bool> {
        let mut w = self.write_txn().await?;
        let done = sqlx::query(
            "UPDATE recipients SET status = 'failed', next_attempt = NULL, dsn_status = '5.0.0', \
             last_error = 'removed from the queue by an administrator', updated_at = $1 WHERE id = $2 AND status = 'queued'",
        )
        .bind(now())
        .bind(id)
        .execute(&mut *w.txn)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done == 1)
    }
}
