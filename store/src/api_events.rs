//! Webhooks of the HTTP API (ADR 0019): what became of the messages a client sent, pushed to
//! its URLs. A scan compares the recipients of followed messages with what was last told and
//! writes an event per change into an outbox, in one transaction with the new "last told"
//! state; a sender delivers the outbox with retries, and sets aside as dead letters the
//! events that failed every attempt. Nothing is lost across a restart: an event is either in
//! the outbox or not yet noticed, and then the next scan notices it.

use std::collections::HashMap;
use std::fmt;

use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::tracking::{RecipientStatus, TrackingKind, numbered_placeholders};
use crate::{Store, now};

/// A followed message stops being scanned this long after it was sent, whatever its state.
pub const FOLLOW_FOR_SECS: i64 = 30 * 24 * 3600;
/// Followed messages read per page of a scan (two status queries per page).
const SCAN_PAGE: i64 = 500;

#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub client: String,
    pub url: String,
    /// The HMAC key: never in logs (the `Debug` output hides it).
    pub secret: String,
    pub created_at: i64,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("client", &self.client)
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A webhook with what its outbox holds, for the client's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSummary {
    pub webhook: Webhook,
    /// Events waiting for a (first or next) attempt.
    pub pending: i64,
    /// Events that failed every attempt (dead letters).
    pub dead: i64,
}

/// One recipient's change, as the webhook will say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientEvent {
    pub message_id: i64,
    pub message_id_hdr: Option<String>,
    pub recipient: String,
    /// queued | relayed | delivered | delayed | failed ([`RecipientStatus::reported_state`]).
    pub state: String,
    /// The latest MDN disposition (displayed, deleted, processed…).
    pub disposition: Option<String>,
    pub detail: Option<String>,
    pub error_codes: Vec<u16>,
    /// When the scan noticed the change (unix seconds).
    pub noticed_at: i64,
}

/// An outbox row due for delivery, with what signing it needs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The event id receivers deduplicate by.
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    pub payload: String,
    pub attempts: i64,
}

impl fmt::Debug for WebhookDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookDelivery")
            .field("id", &self.id)
            .field("webhook_id", &self.webhook_id)
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// Where an outbox row stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Failed every attempt; kept until retried on demand.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// The SQL condition on `o` (the outbox) for this state.
    fn condition(self) -> &'static str {
        match self {
            DeliveryState::Pending => "o.delivered_at IS NULL AND o.dead_at IS NULL",
            DeliveryState::Delivered => "o.delivered_at IS NOT NULL",
            DeliveryState::Dead => "o.dead_at IS NOT NULL",
        }
    }
}

/// An outbox row as the client sees it (no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDeliveryRecord {
    pub id: i64,
    pub state: DeliveryState,
    pub payload: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    /// The next attempt (pending), or when it was delivered, or when it was given up.
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub dead_at: Option<i64>,
}

/// The result of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookAttempt {
    Delivered,
    /// Failed; tried again at `retry_at`.
    Retry {
        error: String,
        retry_at: i64,
    },
    /// Failed for the last time: a dead letter.
    GiveUp {
        error: String,
    },
}

/// What a scan reads: every followed message, or those whose recipients changed since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanScope {
    All,
    ChangedSince(i64),
}

/// A followed message of a scan page.
struct Followed {
    message_id: i64,
    client: String,
    sent_at: i64,
    message_id_hdr: Option<String>,
}

/// One recipient's told state: reported state and MDN disposition.
type Told = (String, Option<String>);

/// What one scan page writes.
#[derive(Default)]
struct PageChanges {
    /// (webhook id, payload) outbox rows.
    outbox: Vec<(i64, String)>,
    /// (message id, recipient, state, disposition) now told.
    told: Vec<(i64, String, String, Option<String>)>,
    settled: Vec<i64>,
}

fn is_settled(r: &RecipientStatus) -> bool {
    r.state == "failed" || r.disposition.is_some()
}

fn event_for(m: &Followed, r: &RecipientStatus, noticed_at: i64) -> RecipientEvent {
    let last_mdn = r.events.iter().rev().find(|e| e.kind == TrackingKind::Mdn);
    RecipientEvent {
        message_id: m.message_id,
        message_id_hdr: m.message_id_hdr.clone(),
        recipient: r.address.clone(),
        state: r.reported_state().to_string(),
        disposition: r.disposition.as_ref().map(|d| d.state.clone()),
        detail: last_mdn
            .and_then(|e| e.detail.clone())
            .or_else(|| r.detail.clone()),
        error_codes: last_mdn.map(|e| e.error_codes.clone()).unwrap_or_default(),
        noticed_at,
    }
}

/// Stops every webhook of `client` (its API key was revoked), within `txn`.
pub(crate) async fn stop_webhooks_of(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    client: &str,
) -> Result<()> {
    sqlx::query("UPDATE api_webhooks SET revoked_at = $1 WHERE client = $2 AND revoked_at IS NULL")
        .bind(now())
        .bind(client)
        .execute(&mut **txn)
        .await?;
    Ok(())
}

impl Store {
    /// Follows messages for the webhooks of `client` (one transaction for a whole bulk).
    pub async fn follow_for_webhooks(&self, message_ids: &[i64], client: &str) -> Result<()> {
        if message_ids.is_empty() {
            return Ok(());
        }
        let mut w = self.write_txn().await?;
        let t = now();
        for id in message_ids {
            sqlx::query(
                "INSERT INTO api_sent (message_id, client, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(client)
            .bind(t)
            .execute(&mut *w.txn)
            .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Whether `client` has an active webhook (only then are its messages followed).
    pub async fn has_webhooks(&self, client: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_webhooks WHERE client = $1 AND revoked_at IS NULL",
        )
        .bind(client)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    pub async fn create_webhook(&self, client: &str, url: &str, secret: &str) -> Result<Webhook> {
        let created_at = now();
        let mut w = self.write_txn().await?;
        let row = sqlx::query(
            "INSERT INTO api_webhooks (client, url, secret, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(client)
        .bind(url)
        .bind(secret)
        .bind(created_at)
        .fetch_one(&mut *w.txn)
        .await?;
        w.commit().await?;
        Ok(Webhook {
            id: row.try_get("id")?,
            client: client.into(),
            url: url.into(),
            secret: secret.into(),
            created_at,
        })
    }

    /// The active webhooks of `client`, with their pending and dead events.
    pub async fn webhooks(&self, client: &str) -> Result<Vec<WebhookSummary>> {
        let rows = sqlx::query(
            "SELECT w.id, w.client, w.url, w.secret, w.created_at, \
             (SELECT COUNT(*) FROM api_webhook_outbox o WHERE o.webhook_id = w.id \
              AND o.delivered_at IS NULL AND o.dead_at IS NULL) AS pending, \
             (SELECT COUNT(*) FROM api_webhook_outbox o WHERE o.webhook_id = w.id \
              AND o.dead_at IS NOT NULL) AS dead \
             FROM api_webhooks w WHERE w.client = $1 AND w.revoked_at IS NULL ORDER BY w.id",
        )
        .bind(client)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookSummary {
                    webhook: Webhook {
                        id: r.try_get("id")?,
                        client: r.try_get("client")?,
                        url: r.try_get("url")?,
                        secret: r.try_get("secret")?,
                        created_at: r.try_get("created_at")?,
                    },
                    pending: r.try_get("pending")?,
                    dead: r.try_get("dead")?,
                })
            })
            .collect()
    }

    /// Whether `id` is an active webhook of `client`.
    async fn owns_webhook(&self, client: &str, id: i64) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_webhooks WHERE id = $1 AND client = $2 \
             AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(client)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Stops a webhook of `client`; its undelivered events go with it.
    pub async fn delete_webhook(&self, client: &str, id: i64) -> Result<()> {
        let mut w = self.write_txn().await?;
        let done = sqlx::query(
            "UPDATE api_webhooks SET revoked_at = $1 WHERE id = $2 AND client = $3 \
             AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .bind(client)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        match done.rows_affected() {
            0 => Err(StoreError::NotFound(format!("webhook {id}"))),
            _ => Ok(()),
        }
    }

    /// Notices what changed for the followed messages in `scope` whose client has a webhook,
    /// and writes one outbox row per change and webhook; `payload` renders an event. Returns
    /// the number of outbox rows written. Runs on one node at a time (the leader).
    pub async fn scan_webhook_events(
        &self,
        scope: ScanScope,
        payload: impl Fn(&RecipientEvent) -> String,
    ) -> Result<usize> {
        let hooks = self.active_webhook_ids().await?;
        if hooks.is_empty() {
            return Ok(0);
        }
        let mut after = 0;
        let mut written = 0;
        loop {
            let page = self.followed_page(scope, after).await?;
            let Some(last) = page.last() else {
                return Ok(written);
            };
            after = last.message_id;
            let changes = self.page_changes(&page, &hooks, &payload).await?;
            written += changes.outbox.len();
            self.write_page_changes(changes).await?;
            if (page.len() as i64) < SCAN_PAGE {
                return Ok(written);
            }
        }
    }

    /// Active webhooks by client.
    async fn active_webhook_ids(&self) -> Result<HashMap<String, Vec<i64>>> {
        let rows =
            sqlx::query("SELECT id, client FROM api_webhooks WHERE revoked_at IS NULL ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        let mut by_client: HashMap<String, Vec<i64>> = HashMap::new();
        for r in &rows {
            by_client
                .entry(r.try_get("client")?)
                .or_default()
                .push(r.try_get("id")?);
        }
        Ok(by_client)
    }

    /// Up to a page of unsettled followed messages after `after`, with an active webhook.
    async fn followed_page(&self, scope: ScanScope, after: i64) -> Result<Vec<Followed>> {
        // The recipients and reports indexes on their times (0013) find what changed.
        let changed = match scope {
            ScanScope::All => "",
            ScanScope::ChangedSince(_) => {
                "AND (s.created_at >= $3 \
                 OR s.message_id IN (SELECT message_id FROM recipients WHERE updated_at >= $3) \
                 OR s.message_id IN (SELECT message_id FROM tracking_events WHERE received_at >= $3))"
            }
        };
        let sql = format!(
            "SELECT s.message_id, s.client, s.created_at, m.message_id_hdr FROM api_sent s \
             JOIN messages m ON m.id = s.message_id \
             WHERE s.settled = 0 AND s.message_id > $1 \
             AND EXISTS (SELECT 1 FROM api_webhooks w WHERE w.client = s.client AND w.revoked_at IS NULL) \
             {changed} ORDER BY s.message_id LIMIT $2"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(SCAN_PAGE);
        if let ScanScope::ChangedSince(since) = scope {
            query = query.bind(since);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(Followed {
                    message_id: r.try_get("message_id")?,
                    client: r.try_get("client")?,
                    sent_at: r.try_get("created_at")?,
                    message_id_hdr: r.try_get("message_id_hdr")?,
                })
            })
            .collect()
    }

    /// What was last told for the recipients of `message_ids`, by (message, recipient).
    async fn told_states(&self, message_ids: &[i64]) -> Result<HashMap<(i64, String), Told>> {
        let sql = format!(
            "SELECT message_id, recipient, state, disposition FROM api_notified \
             WHERE message_id IN ({})",
            numbered_placeholders(message_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in message_ids {
            query = query.bind(id);
        }
        let mut told = HashMap::new();
        for r in query.fetch_all(self.pool()).await? {
            let recipient: String = r.try_get("recipient")?;
            told.insert(
                (r.try_get("message_id")?, recipient.to_ascii_lowercase()),
                (r.try_get("state")?, r.try_get("disposition")?),
            );
        }
        Ok(told)
    }

    async fn page_changes(
        &self,
        page: &[Followed],
        hooks: &HashMap<String, Vec<i64>>,
        payload: &impl Fn(&RecipientEvent) -> String,
    ) -> Result<PageChanges> {
        let ids: Vec<i64> = page.iter().map(|m| m.message_id).collect();
        let statuses = self.recipient_statuses_of(&ids).await?;
        let told = self.told_states(&ids).await?;
        let t = now();
        let mut changes = PageChanges::default();
        for m in page {
            let recipients = statuses
                .get(&m.message_id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let client_hooks = hooks.get(&m.client).map(Vec::as_slice).unwrap_or(&[]);
            for r in recipients {
                let state = r.reported_state().to_string();
                let disposition = r.disposition.as_ref().map(|d| d.state.clone());
                let key = (m.message_id, r.address.to_ascii_lowercase());
                if told
                    .get(&key)
                    .is_some_and(|(s, d)| *s == state && *d == disposition)
                {
                    continue;
                }
                let body = payload(&event_for(m, r, t));
                for hook in client_hooks {
                    changes.outbox.push((*hook, body.clone()));
                }
                changes
                    .told
                    .push((m.message_id, r.address.clone(), state, disposition));
            }
            if recipients.iter().all(is_settled) || t - m.sent_at > FOLLOW_FOR_SECS {
                changes.settled.push(m.message_id);
            }
        }
        Ok(changes)
    }

    /// The events of a page and the new "last told" states, in one transaction.
    async fn write_page_changes(&self, changes: PageChanges) -> Result<()> {
        if changes.told.is_empty() && changes.settled.is_empty() {
            return Ok(());
        }
        let t = now();
        let mut w = self.write_txn().await?;
        for (hook, body) in &changes.outbox {
            sqlx::query(
                "INSERT INTO api_webhook_outbox (webhook_id, payload, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $3)",
            )
            .bind(hook)
            .bind(body)
            .bind(t)
            .execute(&mut *w.txn)
            .await?;
        }
        for (message_id, recipient, state, disposition) in changes.told {
            sqlx::query(
                "INSERT INTO api_notified (message_id, recipient, state, disposition) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, recipient) DO UPDATE \
                 SET state = excluded.state, disposition = excluded.disposition",
            )
            .bind(message_id)
            .bind(recipient.to_ascii_lowercase())
            .bind(state)
            .bind(disposition)
            .execute(&mut *w.txn)
            .await?;
        }
        for message_id in changes.settled {
            sqlx::query("UPDATE api_sent SET settled = 1 WHERE message_id = $1")
                .bind(message_id)
                .execute(&mut *w.txn)
                .await?;
        }
        w.commit().await
    }

    /// Outbox rows due at `at`, oldest first, of webhooks still active and not in `skip`
    /// (receivers paused after a failure).
    pub async fn due_webhook_deliveries(
        &self,
        at: i64,
        limit: i64,
        skip: &[i64],
    ) -> Result<Vec<WebhookDelivery>> {
        let skipped = match skip.len() {
            0 => String::new(),
            n => {
                let list: Vec<String> = (3..3 + n).map(|i| format!("${i}")).collect();
                format!("AND o.webhook_id NOT IN ({})", list.join(", "))
            }
        };
        let sql = format!(
            "SELECT o.id, o.webhook_id, o.payload, o.attempts, w.url, w.secret \
             FROM api_webhook_outbox o JOIN api_webhooks w ON w.id = o.webhook_id \
             WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= $1 \
             AND w.revoked_at IS NULL {skipped} ORDER BY o.id LIMIT $2"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at).bind(limit);
        for id in skip {
            query = query.bind(id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookDelivery {
                    id: r.try_get("id")?,
                    webhook_id: r.try_get("webhook_id")?,
                    url: r.try_get("url")?,
                    secret: r.try_get("secret")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Records an attempt of outbox row `id`.
    pub async fn webhook_attempt(&self, id: i64, outcome: &HookAttempt) -> Result<()> {
        let t = now();
        let query = match outcome {
            HookAttempt::Delivered => sqlx::query(
                "UPDATE api_webhook_outbox SET delivered_at = $1, attempts = attempts + 1, \
                 last_error = NULL WHERE id = $2",
            )
            .bind(t)
            .bind(id),
            HookAttempt::Retry { error, retry_at } => sqlx::query(
                "UPDATE api_webhook_outbox SET next_attempt_at = $1, attempts = attempts + 1, \
                 last_error = $2 WHERE id = $3",
            )
            .bind(*retry_at)
            .bind(error.clone())
            .bind(id),
            HookAttempt::GiveUp { error } => sqlx::query(
                "UPDATE api_webhook_outbox SET dead_at = $1, attempts = attempts + 1, \
                 last_error = $2 WHERE id = $3",
            )
            .bind(t)
            .bind(error.clone())
            .bind(id),
        };
        let mut w = self.write_txn().await?;
        query.execute(&mut *w.txn).await?;
        w.commit().await
    }

    /// A page of the deliveries of webhook `webhook_id` of `client` after the event `after`,
    /// oldest first, in `state` (any when `None`); `NotFound` for another client's webhook.
    pub async fn webhook_deliveries(
        &self,
        client: &str,
        webhook_id: i64,
        state: Option<DeliveryState>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>> {
        if !self.owns_webhook(client, webhook_id).await? {
            return Err(StoreError::NotFound(format!("webhook {webhook_id}")));
        }
        let condition = state.map(DeliveryState::condition).unwrap_or("1 = 1");
        let sql = format!(
            "SELECT o.id, o.payload, o.attempts, o.last_error, o.created_at, o.next_attempt_at, \
             o.delivered_at, o.dead_at FROM api_webhook_outbox o \
             WHERE o.webhook_id = $1 AND o.id > $2 AND {condition} ORDER BY o.id LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(webhook_id)
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let delivered_at: Option<i64> = r.try_get("delivered_at")?;
                let dead_at: Option<i64> = r.try_get("dead_at")?;
                let state = match (delivered_at, dead_at) {
                    (Some(_), _) => DeliveryState::Delivered,
                    (None, Some(_)) => DeliveryState::Dead,
                    (None, None) => DeliveryState::Pending,
                };
                Ok(WebhookDeliveryRecord {
                    id: r.try_get("id")?,
                    state,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    created_at: r.try_get("created_at")?,
                    next_attempt_at: (state == DeliveryState::Pending)
                        .then(|| r.try_get("next_attempt_at"))
                        .transpose()?,
                    delivered_at,
                    dead_at,
                })
            })
            .collect()
    }

    /// Puts a dead letter of `client`'s webhook back in the outbox, due now, with a fresh
    /// count of attempts. `NotFound` unless it is a dead event of that webhook.
    pub async fn retry_webhook_delivery(
        &self,
        client: &str,
        webhook_id: i64,
        event_id: i64,
    ) -> Result<()> {
        if !self.owns_webhook(client, webhook_id).await? {
            return Err(StoreError::NotFound(format!("webhook {webhook_id}")));
        }
        let mut w = self.write_txn().await?;
        let done = sqlx::query(
            "UPDATE api_webhook_outbox SET dead_at = NULL, attempts = 0, next_attempt_at = $1 \
             WHERE id = $2 AND webhook_id = $3 AND dead_at IS NOT NULL",
        )
        .bind(now())
        .bind(event_id)
        .bind(webhook_id)
        .execute(&mut *w.txn)
        .await?;
        w.commit().await?;
        match done.rows_affected() {
            0 => Err(StoreError::NotFound(format!("dead event {event_id}"))),
            _ => Ok(()),
        }
    }

    /// Outbox rows of active webhooks: (pending, dead), for monitoring.
    pub async fn webhook_backlog(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT \
             COALESCE(SUM(CASE WHEN o.delivered_at IS NULL AND o.dead_at IS NULL THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN o.dead_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS dead \
             FROM api_webhook_outbox o JOIN api_webhooks w ON w.id = o.webhook_id \
             WHERE w.revoked_at IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("pending")?, row.try_get("dead")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let hook = Webhook {
            id: 1,
            client: "key:abc".into(),
            url: "https://lab.example/hook".into(),
            secret: "s3cr3t-webhook-key".into(),
            created_at: 0,
        };
        assert!(!format!("{hook:?}").contains("s3cr3t"));
        let delivery = WebhookDelivery {
            id: 1,
            webhook_id: 1,
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            payload: "{}".into(),
            attempts: 0,
        };
        assert!(!format!("{delivery:?}").contains("s3cr3t"));
    }

    #[test]
    fn delivery_states_round_trip() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ] {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
        assert_eq!(DeliveryState::parse("lost"), None);
    }
}
