//! What became of the messages we sent (docs/mssante.md §6): our own view of each recipient
//! (queued, relayed, delivered, failed) joined with what came back from the far end — DSNs
//! from peers and MDNs (RFC 8098) from the recipients' software.
//!
//! Reports are recorded when they are delivered to us, in the same transaction as the
//! report message itself; the report passes through untouched (it is also a message in the
//! sender's INBOX).

use std::collections::HashMap;

use mssante_mail::dsn::Action;
use sqlx::Row;

use crate::Store;
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackingKind {
    /// A delivery status notification (RFC 3464) from a peer.
    Dsn,
    /// A message disposition notification (RFC 8098).
    Mdn,
}

impl TrackingKind {
    fn as_str(self) -> &'static str {
        match self {
            TrackingKind::Dsn => "dsn",
            TrackingKind::Mdn => "mdn",
        }
    }
}

/// One recipient's line of an incoming report, read at the edge by the protocol crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingReport {
    pub kind: TrackingKind,
    /// Message-ID of the original (without `<>`).
    pub original_msgid: Option<String>,
    /// ENVID of the original (DSN `Original-Envelope-Id`), used when no Message-ID matches.
    pub envid: Option<String>,
    /// Final-Recipient address.
    pub recipient: String,
    /// DSN: action (delivered, failed, delayed, relayed, expanded); MDN: disposition type
    /// (displayed, processed, deleted, dispatched...).
    pub state: String,
    /// DSN: status and diagnostic; MDN: the whole Disposition field and Error text.
    pub detail: Option<String>,
    /// MDN application error codes (MSSanté 900–906).
    pub error_codes: Vec<u16>,
}

/// A report recorded against one of our messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingEvent {
    pub kind: TrackingKind,
    pub state: String,
    pub detail: Option<String>,
    pub error_codes: Vec<u16>,
    pub received_at: i64,
}

/// One recipient of a message we sent, as a sender asks about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientStatus {
    pub address: String,
    /// queued | relayed | delivered | failed: our queue's view, upgraded by a peer's DSN
    /// (a relayed message reported `delivered` or `failed` by the next hop).
    pub state: String,
    pub dsn_status: Option<String>,
    pub detail: Option<String>,
    pub attempts: i64,
    pub updated_at: i64,
    /// The latest MDN from this recipient, if any.
    pub disposition: Option<TrackingEvent>,
    /// Every report received for this recipient, oldest first.
    pub events: Vec<TrackingEvent>,
}

impl RecipientStatus {
    /// The state told to API clients (status endpoint and webhooks): ours, with `delayed`
    /// for a recipient still queued after a failed attempt or reported delayed by a peer.
    pub fn reported_state(&self) -> &str {
        let delayed_report = self
            .events
            .last()
            .is_some_and(|e| e.kind == TrackingKind::Dsn && e.state == "delayed");
        match self.state.as_str() {
            "queued" if self.attempts > 0 || delayed_report => "delayed",
            "relayed" if delayed_report => "delayed",
            other => other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageStatus {
    pub id: i64,
    pub message_id_hdr: Option<String>,
    pub mail_from: String,
    pub subject: Option<String>,
    pub received_at: i64,
    pub recipients: Vec<RecipientStatus>,
}

/// Finds the message a report is about: by Message-ID first, then by ENVID; only messages
/// that entered here by submission (ours to track), the most recent on a tie.
async fn find_original(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    report: &TrackingReport,
) -> Result<Option<i64>> {
    if let Some(msgid) = &report.original_msgid {
        let row = sqlx::query(
            "SELECT id FROM messages WHERE message_id_hdr = $1 AND source = 'submission' ORDER BY id DESC LIMIT 1",
        )
        .bind(msgid)
        .fetch_optional(&mut **txn)
        .await?;
        if let Some(row) = row {
            return Ok(Some(row.try_get("id")?));
        }
    }
    let Some(envid) = &report.envid else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT id FROM messages WHERE envid = $1 AND source = 'submission' ORDER BY id DESC LIMIT 1",
    )
    .bind(envid)
    .fetch_optional(&mut **txn)
    .await?;
    row.map(|r| r.try_get("id").map_err(Into::into)).transpose()
}

/// Records the reports carried by a message being delivered (see `Store::deliver`).
pub(crate) async fn record_tracking(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    reports: &[TrackingReport],
    report_message_id: i64,
    received_at: i64,
) -> Result<()> {
    for report in reports {
        let original = find_original(txn, report).await?;
        let codes = report
            .error_codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        sqlx::query(
            "INSERT INTO tracking_events (message_id, original_msgid, recipient, kind, state, detail, \
             error_codes, report_message_id, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(original)
        .bind(report.original_msgid.clone())
        .bind(report.recipient.to_ascii_lowercase())
        .bind(report.kind.as_str())
        .bind(report.state.to_ascii_lowercase())
        .bind(report.detail.clone())
        .bind((!codes.is_empty()).then_some(codes))
        .bind(report_message_id)
        .bind(received_at)
        .execute(&mut **txn)
        .await?;
    }
    Ok(())
}

fn event_from_row(r: &sqlx::any::AnyRow) -> Result<(String, TrackingEvent)> {
    let kind = match r.try_get::<String, _>("kind")?.as_str() {
        "mdn" => TrackingKind::Mdn,
        _ => TrackingKind::Dsn,
    };
    let codes: Option<String> = r.try_get("error_codes")?;
    Ok((
        r.try_get("recipient")?,
        TrackingEvent {
            kind,
            state: r.try_get("state")?,
            detail: r.try_get("detail")?,
            error_codes: codes
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect(),
            received_at: r.try_get("received_at")?,
        },
    ))
}

/// One `recipients` row with the reports received for its message.
fn recipient_status(
    r: &sqlx::any::AnyRow,
    reports: &[(String, TrackingEvent)],
) -> Result<RecipientStatus> {
    let address: String = r.try_get("address")?;
    let mine: Vec<TrackingEvent> = reports
        .iter()
        .filter(|(rcpt, _)| rcpt.eq_ignore_ascii_case(&address))
        .map(|(_, e)| e.clone())
        .collect();
    let status: String = r.try_get("status")?;
    Ok(RecipientStatus {
        state: effective_state(&status, &mine),
        dsn_status: r.try_get("dsn_status")?,
        detail: r.try_get("last_error")?,
        attempts: r.try_get("attempts")?,
        updated_at: r.try_get("updated_at")?,
        disposition: mine
            .iter()
            .rev()
            .find(|e| e.kind == TrackingKind::Mdn)
            .cloned(),
        events: mine,
        address,
    })
}

/// `$1, $2, …, $count`: the placeholders of an `IN` list bound in order.
pub(crate) fn numbered_placeholders(count: usize) -> String {
    (1..=count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Our state upgraded by what the next hop reported (RFC 3464 §2.3.3 actions).
fn effective_state(ours: &str, events: &[TrackingEvent]) -> String {
    let peer = events
        .iter()
        .rev()
        .filter(|e| e.kind == TrackingKind::Dsn)
        .find(|e| {
            matches!(
                Action::parse(&e.state),
                Some(Action::Delivered | Action::Failed)
            )
        });
    match peer {
        Some(e) if ours == "relayed" => e.state.clone(),
        _ => ours.to_string(),
    }
}

impl Store {
    /// Status per recipient of the messages sent from here with this Message-ID (with or
    /// without `<>`); several when a client reused one Message-ID.
    pub async fn message_status(&self, message_id: &str) -> Result<Vec<MessageStatus>> {
        let msgid = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let messages = sqlx::query(
            "SELECT id, message_id_hdr, mail_from, subject, received_at FROM messages \
             WHERE message_id_hdr = $1 AND source = 'submission' ORDER BY id",
        )
        .bind(msgid)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(messages.len());
        for m in &messages {
            out.push(self.status_of_row(m).await?);
        }
        Ok(out)
    }

    /// A `messages` row (id, message_id_hdr, mail_from, subject, received_at) with its
    /// recipients' states.
    async fn status_of_row(&self, m: &sqlx::any::AnyRow) -> Result<MessageStatus> {
        let id: i64 = m.try_get("id")?;
        Ok(MessageStatus {
            id,
            message_id_hdr: m.try_get("message_id_hdr")?,
            mail_from: m.try_get("mail_from")?,
            subject: m.try_get("subject")?,
            received_at: m.try_get("received_at")?,
            recipients: self.recipient_statuses(id).await?,
        })
    }

    /// Status per recipient of one message by its number (the id `deliver` returned).
    pub async fn message_status_by_id(&self, id: i64) -> Result<Option<MessageStatus>> {
        let row = sqlx::query(
            "SELECT id, message_id_hdr, mail_from, subject, received_at FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(m) => Ok(Some(self.status_of_row(&m).await?)),
            None => Ok(None),
        }
    }

    async fn recipient_statuses(&self, message_id: i64) -> Result<Vec<RecipientStatus>> {
        let mut by_message = self.recipient_statuses_of(&[message_id]).await?;
        Ok(by_message.remove(&message_id).unwrap_or_default())
    }

    /// The recipients' states of several messages at once (the webhook scan reads a page of
    /// followed messages in two queries), by message.
    pub(crate) async fn recipient_statuses_of(
        &self,
        message_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<RecipientStatus>>> {
        if message_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = numbered_placeholders(message_ids.len());
        let events_sql = format!(
            "SELECT message_id, recipient, kind, state, detail, error_codes, received_at \
             FROM tracking_events WHERE message_id IN ({list}) ORDER BY received_at, id"
        );
        let mut events: HashMap<i64, Vec<(String, TrackingEvent)>> = HashMap::new();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(events_sql));
        for id in message_ids {
            query = query.bind(id);
        }
        for row in query.fetch_all(self.pool()).await? {
            let message_id: i64 = row.try_get("message_id")?;
            events
                .entry(message_id)
                .or_default()
                .push(event_from_row(&row)?);
        }
        let recipients_sql = format!(
            "SELECT message_id, address, status, dsn_status, last_error, attempts, updated_at \
             FROM recipients WHERE message_id IN ({list}) ORDER BY id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(recipients_sql));
        for id in message_ids {
            query = query.bind(id);
        }
        let mut out: HashMap<i64, Vec<RecipientStatus>> = HashMap::new();
        for row in query.fetch_all(self.pool()).await? {
            let message_id: i64 = row.try_get("message_id")?;
            let reports = events.get(&message_id).map(Vec::as_slice).unwrap_or(&[]);
            out.entry(message_id)
                .or_default()
                .push(recipient_status(&row, reports)?);
        }
        Ok(out)
    }

    /// Messages sent from here that carry an `X-MSS-NIL` (docs/mssante.md §5), counted per value.
    pub async fn x_mss_nil_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT x_mss_nil, COUNT(*) AS n FROM messages WHERE x_mss_nil IS NOT NULL \
             GROUP BY x_mss_nil ORDER BY n DESC, x_mss_nil",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("x_mss_nil")?, r.try_get("n")?)))
            .collect()
    }

    /// Number of reports recorded (for tests and monitoring).
    pub async fn tracking_event_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tracking_events")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}
