//! Accepting a message on PostgreSQL in one statement (ADR 0024): the blob, the `messages`
//! row, the INBOX UIDs and the `mailbox_messages` and `recipients` rows are data-modifying
//! CTEs of a single `WITH … SELECT`, which PostgreSQL runs atomically in its own
//! transaction. Other nodes are told after the commit, through the node's outbox (ADR 0054). One round trip and one commit per message instead of
//! about ten statements, which is what bounded a single connection (lab bulk) before.
//!
//! The rows written are exactly those of `delivery.rs::insert_message` (SQLite's path,
//! whose dialect has no data-modifying CTEs); the tests of `store/tests/` run both.

use std::collections::BTreeSet;
use std::fmt::Write;

use mssante_mail::dsn::{Action, NotifyEvent};
use sqlx::Row;

use crate::blob::PreparedBlob;
use crate::delivery::{DeliveryReceipt, PreparedMessage, RcptDisposition, Ret};
use crate::error::{Result, StoreError};
use crate::queue::notify_wants;
use crate::tracking::record_tracking;
use crate::{Store, now};

/// One `recipients` row to write.
struct RecipientRow<'a> {
    address: &'a str,
    orcpt: Option<&'a str>,
    notify: Option<String>,
    bal_id: Option<i64>,
    status: &'static str,
    next_attempt: Option<i64>,
    report_due: Option<&'static str>,
}

/// The rows a message's recipients get (as `insert_message` decides them) and the BALs
/// whose INBOX receives a copy (one per BAL, ascending: row locks in one order).
fn plan_recipients(p: &PreparedMessage, t: i64) -> (Vec<RecipientRow<'_>>, Vec<i64>) {
    let mut bals = BTreeSet::new();
    let rows = p
        .msg
        .recipients
        .iter()
        .map(|rcpt| {
            let (status, bal_id, next_attempt, report_due) = match rcpt.disposition {
                RcptDisposition::Local { bal_id } => {
                    bals.insert(bal_id);
                    // RFC 3461 §5.2.1: final delivery with NOTIFY=SUCCESS earns `delivered`.
                    let success = notify_wants(rcpt.notify, &p.msg.mail_from, NotifyEvent::Success);
                    let due = success.then_some(Action::Delivered.as_str());
                    ("delivered", Some(bal_id), None, due)
                }
                RcptDisposition::Remote => ("queued", None, Some(t), None),
            };
            RecipientRow {
                address: rcpt.address.as_str(),
                orcpt: rcpt.orcpt.as_deref(),
                notify: rcpt.notify.map(|n| n.to_string()),
                bal_id,
                status,
                next_attempt,
                report_due,
            }
        })
        .collect();
    (rows, bals.into_iter().collect())
}

/// The statement for a message with `recipients` rows, `inboxes` local BALs and an inline
/// body or not. Placeholders are numbered in the order [`Store::insert_message_pg`] binds.
fn statement(recipients: usize, inboxes: usize, inline: bool) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let (hash, size, t) = (next(), next(), next());
    let mut sql = format!(
        "WITH b AS (INSERT INTO blobs (hash, size, created_at) VALUES ({hash}, {size}, {t}) \
         ON CONFLICT (hash) DO NOTHING)"
    );
    if inline {
        let data = next();
        write!(
            sql,
            ", d AS (INSERT INTO blob_data (hash, data) VALUES ({hash}, {data}) \
             ON CONFLICT (hash) DO NOTHING)"
        )
        .unwrap();
    }
    let fields: Vec<String> = (0..8).map(|_| next()).collect();
    write!(
        sql,
        ", m AS (INSERT INTO messages (blob_hash, size, received_at, mail_from, envid, ret, source, \
         auth_bal_id, message_id_hdr, subject, x_mss_nil) VALUES ({hash}, {size}, {t}, {}) RETURNING id)",
        fields.join(", ")
    )
    .unwrap();
    let mut tail = String::new();
    if inboxes > 0 {
        let bals: Vec<String> = (0..inboxes)
            .map(|_| format!("{}::BIGINT", next()))
            .collect();
        let expected = next();
        // RFC 9051 §2.3.1.1, RFC 7162 §3.1.1: next UID and modseq, under the INBOX row lock.
        // ADR 0049: one UPDATE adds the message's bytes to each recipient BAL's usage (no
        // per-copy trigger); its initplan reads `mb` first, so the INBOX rows are locked
        // before the BALs', the order of every write (ADR 0040).
        write!(
            sql,
            ", mb AS (UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 \
             WHERE name = 'INBOX' AND bal_id IN ({bal_list}) RETURNING id, uidnext - 1 AS uid, highestmodseq), \
             mm AS (INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, internaldate, \
             saved_at) SELECT mb.id, mb.uid, m.id, mb.highestmodseq, '', {t}, {t} FROM mb, m), \
             u AS (UPDATE bals SET used_bytes = used_bytes + {size} WHERE id IN ({bal_list}) \
             AND (SELECT count(*) FROM mb) > 0)",
            bal_list = bals.join(", ")
        )
        .unwrap();
        // A BAL without INBOX (never made by `create_bal`) fails the whole statement (a
        // division by zero) rather than storing a copy short.
        write!(
            tail,
            ", (SELECT string_agg(id::TEXT, ',') FROM mb) AS inboxes, \
             (1 / ((SELECT count(*) FROM mb) = {expected}::BIGINT)::INT)::BIGINT AS all_inboxes"
        )
        .unwrap();
    }
    let values: Vec<String> = (0..recipients)
        .map(|_| {
            format!(
                "({}::TEXT, {}::TEXT, {}::TEXT, {}::BIGINT, {}::TEXT, {}::BIGINT, {}::TEXT)",
                next(),
                next(),
                next(),
                next(),
                next(),
                next(),
                next()
            )
        })
        .collect();
    write!(
        sql,
        ", r AS (INSERT INTO recipients (message_id, address, orcpt, notify, bal_id, status, attempts, \
         next_attempt, updated_at, dsn_status, report_due) \
         SELECT m.id, v.address, v.orcpt, v.notify, v.bal_id, v.status, 0, v.next_attempt, {t}, \
         CASE WHEN v.status = 'delivered' THEN '2.0.0' END, v.report_due FROM m, (VALUES {}) \
         AS v(address, orcpt, notify, bal_id, status, next_attempt, report_due)) \
         SELECT m.id AS message_id{tail} FROM m",
        values.join(", ")
    )
    .unwrap();
    sql
}

impl Store {
    /// Stores a prepared message in one statement (see the module documentation); with
    /// tracking facts (a DSN or MDN about our mail) inside a transaction that records them
    /// too. Returns the receipt and the INBOX folders that changed, of which the caller tells
    /// sessions and other nodes once this has committed (ADR 0054).
    pub(crate) async fn insert_message_pg(
        &self,
        p: &PreparedMessage,
    ) -> Result<(DeliveryReceipt, Vec<i64>)> {
        let t = now();
        let (rows, bals) = plan_recipients(p, t);
        let inline = match &p.blob {
            PreparedBlob::Inline(bytes) => Some(bytes.as_slice()),
            PreparedBlob::File => None,
        };
        let sql = statement(rows.len(), bals.len(), inline.is_some());
        let msg = &p.msg;
        // Built from fixed fragments and placeholder numbers only: every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&p.hash)
            .bind(p.size)
            .bind(t);
        if let Some(bytes) = inline {
            q = q.bind(bytes);
        }
        q = q
            .bind(&msg.mail_from)
            .bind(msg.envid.as_deref())
            .bind(msg.ret.map(Ret::as_str))
            .bind(msg.source.as_str())
            .bind(msg.auth_bal_id)
            .bind(msg.meta.message_id.as_deref())
            .bind(msg.meta.subject.as_deref())
            .bind(msg.meta.x_mss_nil.as_deref());
        if !bals.is_empty() {
            for bal in &bals {
                q = q.bind(*bal);
            }
            q = q.bind(bals.len() as i64);
        }
        for r in &rows {
            q = q
                .bind(r.address)
                .bind(r.orcpt)
                .bind(r.notify.as_deref())
                .bind(r.bal_id)
                .bind(r.status)
                .bind(r.next_attempt)
                .bind(r.report_due);
        }
        let row = (if msg.meta.tracking.is_empty() {
            // Our 250 waits for the commit, not for the first row (see `fetch_committed`),
            // on a connection kept for the next message (ADR 0052).
            self.fetch_all_kept(q)
                .await
                .and_then(|rows| rows.into_iter().next().ok_or(sqlx::Error::RowNotFound))
        } else {
            let mut w = self.write_txn().await?;
            let row = q.fetch_one(&mut *w.txn).await;
            if let Ok(row) = &row {
                let id: i64 = row.try_get("message_id")?;
                record_tracking(&mut w.txn, &msg.meta.tracking, id, t).await?;
                w.commit().await?;
            }
            row
        })
        .map_err(missing_inbox)?;
        let inboxes = match bals.is_empty() {
            true => Vec::new(),
            false => row
                .try_get::<String, _>("inboxes")?
                .split(',')
                .filter_map(|id| id.parse().ok())
                .collect(),
        };
        let queued_remote = rows.iter().filter(|r| r.status == "queued").count();
        let receipt = DeliveryReceipt {
            message_id: row.try_get("message_id")?,
            blob_hash: p.hash.clone(),
            delivered_local: bals.len(),
            queued_remote,
        };
        Ok((receipt, inboxes))
    }
}

/// The statement's division by zero is a recipient BAL without INBOX.
fn missing_inbox(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("22012") => {
            StoreError::NotFound("the INBOX of a recipient BAL".into())
        }
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_binding_order() {
        let sql = super::statement(2, 1, true);
        // hash, size, t, data, 8 message fields, 1 BAL, expected, 2 × 7.
        let last = 3 + 1 + 8 + 1 + 1 + 14;
        assert!(sql.contains(&format!("${last}::TEXT)")), "{sql}");
        assert!(!sql.contains(&format!("${}", last + 1)), "{sql}");
        let remote_only = super::statement(1, 0, false);
        assert!(!remote_only.contains("mailboxes"), "{remote_only}");
        // ADR 0054: a NOTIFY in the statement would queue its commit behind every other
        // notifying commit of the cluster.
        assert!(!sql.contains("pg_notify"), "{sql}");
    }
}
