//! Figures of a period for the operator's monthly indicators (docs/mssante.md §9): messages
//! sent (submission) and received (MX), by peer domain, open BALs by type, `X-MSS-NIL`
//! counts, bounces and relay delays. Counts only; the binary formats them.
//!
//! Per-recipient figures read the `recipients` traces: a period older than the retention of
//! traces (`retention.rs`) keeps its message counts but loses its per-domain detail.

use sqlx::Row;

use crate::Store;
use crate::error::Result;

/// Counts of one period `[from, to)` (unix seconds), each list ordered by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeriodFigures {
    /// Messages accepted on submission from our BALs.
    pub sent_messages: i64,
    /// Messages accepted on the MX from other operators.
    pub received_messages: i64,
    /// Recipients of the messages sent, by recipient address (the binary groups by domain).
    pub sent_to: Vec<(String, i64)>,
    /// Messages received, by envelope sender (`""` for the null sender).
    pub received_from: Vec<(String, i64)>,
    /// BALs open (status active) now, by type.
    pub open_bals: Vec<(String, i64)>,
    /// Messages sent, by `X-MSS-NIL` (absent: `""`).
    pub sent_nil: Vec<(String, i64)>,
    /// Messages received, by `X-MSS-NIL` (absent: `""`).
    pub received_nil: Vec<(String, i64)>,
    /// Recipients of messages sent that failed (bounced or removed from the queue).
    pub bounces: i64,
    /// Seconds from acceptance to the peer's acceptance, per relayed recipient, ascending.
    pub relay_delays: Vec<i64>,
}

const BY_SOURCE: &str = "SELECT source AS k, COUNT(*) AS n FROM messages \
     WHERE received_at >= $1 AND received_at < $2 GROUP BY source ORDER BY source";
const SENT_TO: &str = "SELECT r.address AS k, COUNT(*) AS n FROM recipients r \
     JOIN messages m ON m.id = r.message_id WHERE m.source = 'submission' \
     AND m.received_at >= $1 AND m.received_at < $2 GROUP BY r.address ORDER BY r.address";
const RECEIVED_FROM: &str = "SELECT mail_from AS k, COUNT(*) AS n FROM messages \
     WHERE source = 'mx' AND received_at >= $1 AND received_at < $2 \
     GROUP BY mail_from ORDER BY mail_from";
const OPEN_BALS: &str = "SELECT bal_type AS k, COUNT(*) AS n FROM bals \
     WHERE status = 'active' GROUP BY bal_type ORDER BY bal_type";
const NIL: &str = "SELECT COALESCE(x_mss_nil, '') AS k, COUNT(*) AS n FROM messages \
     WHERE source = $3 AND received_at >= $1 AND received_at < $2 \
     GROUP BY COALESCE(x_mss_nil, '') ORDER BY COALESCE(x_mss_nil, '')";
const BOUNCES: &str = "SELECT 'failed' AS k, COUNT(*) AS n FROM recipients r \
     JOIN messages m ON m.id = r.message_id WHERE m.source = 'submission' \
     AND r.status = 'failed' AND m.received_at >= $1 AND m.received_at < $2";
const RELAY_DELAYS: &str = "SELECT r.updated_at - m.received_at AS d FROM recipients r \
     JOIN messages m ON m.id = r.message_id WHERE m.source = 'submission' \
     AND r.status = 'relayed' AND m.received_at >= $1 AND m.received_at < $2 \
     ORDER BY r.updated_at - m.received_at";

impl Store {
    /// The figures of `[from, to)`.
    pub async fn period_figures(&self, from: i64, to: i64) -> Result<PeriodFigures> {
        let by_source = self.counted(BY_SOURCE, from, to, None).await?;
        let source = |s: &str| {
            by_source
                .iter()
                .find(|(k, _)| k == s)
                .map_or(0, |(_, n)| *n)
        };
        let delays = sqlx::query(RELAY_DELAYS)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>("d"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(PeriodFigures {
            sent_messages: source("submission"),
            received_messages: source("mx"),
            sent_to: self.counted(SENT_TO, from, to, None).await?,
            received_from: self.counted(RECEIVED_FROM, from, to, None).await?,
            open_bals: self.open_bals_by_type().await?,
            sent_nil: self.counted(NIL, from, to, Some("submission")).await?,
            received_nil: self.counted(NIL, from, to, Some("mx")).await?,
            bounces: self
                .counted(BOUNCES, from, to, None)
                .await?
                .first()
                .map_or(0, |(_, n)| *n),
            relay_delays: delays,
        })
    }

    /// BALs open now (status active), by type.
    pub async fn open_bals_by_type(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query(OPEN_BALS)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("k")?, r.try_get("n")?)))
            .collect()
    }

    /// Runs a `k, n` query over the period (and the source, for the queries that take one).
    async fn counted(
        &self,
        query: &'static str,
        from: i64,
        to: i64,
        source: Option<&str>,
    ) -> Result<Vec<(String, i64)>> {
        let mut q = sqlx::query(query).bind(from).bind(to);
        if let Some(source) = source {
            q = q.bind(source.to_string());
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("k")?, r.try_get("n")?)))
            .collect()
    }
}
