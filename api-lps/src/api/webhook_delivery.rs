//! The webhook task (ADR 0019), run by the leader node among the periodic jobs: it scans the
//! followed messages for changes (the store writes them to the outbox), then POSTs what is
//! due, signed, and records each attempt: delivered on `2xx`, else retried after a doubling
//! wait, and after the last attempt kept as a dead letter.
//!
//! A receiver that fails is probed with one event at a time, after a doubling pause, until it
//! answers again: a receiver down for hours costs a few attempts per period, not one per
//! event, and the events behind the probe keep their attempts for when it is back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mssante_store::{HookAttempt, ScanScope, Store, WebhookDelivery};
use tokio_util::sync::CancellationToken;

use super::webhooks::{event_with_id, render_event, signature};
use crate::settings::ApiLimits;

/// How often the outbox is scanned and delivered.
const TICK: Duration = Duration::from_millis(500);
/// Every so often the scan reads every followed message, not only those that changed (a
/// safety net for a change whose commit took longer than the overlap below, and the end
/// of following after 30 days).
const FULL_SCAN_EVERY: Duration = Duration::from_secs(600);
/// Changes are looked for since the previous scan minus this (times are whole seconds and a
/// commit may land after its timestamp).
const SCAN_OVERLAP_SECS: i64 = 60;
/// Outbox rows read per round, and POSTs in flight at once.
const BATCH: i64 = 256;
const CONCURRENCY: usize = 16;
/// Time a receiver has to answer.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The retry policy of `[api]`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub first_secs: u64,
    pub max_secs: u64,
    pub max_attempts: u32,
}

impl RetryPolicy {
    pub fn from_limits(limits: &ApiLimits) -> RetryPolicy {
        RetryPolicy {
            first_secs: limits.webhook_retry_first_secs,
            max_secs: limits.webhook_retry_max_secs,
            max_attempts: limits.webhook_max_attempts,
        }
    }

    /// The wait after `failures` failed attempts in a row (1 or more).
    pub fn delay(&self, failures: i64) -> u64 {
        let doublings = (failures - 1).clamp(0, 30) as u32;
        self.first_secs
            .saturating_mul(1u64 << doublings)
            .min(self.max_secs)
    }

    /// What a failure of an event already tried `attempts` times becomes.
    fn after_failure(&self, attempts: i64, error: String) -> HookAttempt {
        let failures = attempts + 1;
        if failures >= i64::from(self.max_attempts) {
            return HookAttempt::GiveUp { error };
        }
        HookAttempt::Retry {
            error,
            retry_at: mssante_store::now() + self.delay(failures) as i64,
        }
    }
}

/// Receivers that failed: how many times in a row, and when to probe again.
#[derive(Default)]
struct Receivers {
    failing: HashMap<i64, (i64, Instant)>,
}

impl Receivers {
    /// Of the due rows, those to try now: none of a paused webhook, one (the oldest) of a
    /// failing webhook whose pause is over, every row of the others.
    fn select(&self, due: Vec<WebhookDelivery>) -> Vec<WebhookDelivery> {
        let now = Instant::now();
        let mut probed = Vec::new();
        due.into_iter()
            .filter(|d| match self.failing.get(&d.webhook_id) {
                None => true,
                Some((_, until)) if *until > now => false,
                Some(_) if probed.contains(&d.webhook_id) => false,
                Some(_) => {
                    probed.push(d.webhook_id);
                    true
                }
            })
            .collect()
    }

    fn record(&mut self, webhook_id: i64, delivered: bool, policy: &RetryPolicy) {
        if delivered {
            self.failing.remove(&webhook_id);
            return;
        }
        let failures = self.failing.get(&webhook_id).map_or(0, |(n, _)| *n) + 1;
        let pause = Duration::from_secs(policy.delay(failures));
        self.failing
            .insert(webhook_id, (failures, Instant::now() + pause));
    }

    fn paused(&self) -> Vec<i64> {
        let now = Instant::now();
        self.failing
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Why a POST failed, without the URL (it may carry a receiver's token) or the secret.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One POST of an outbox row.
async fn post(http: &reqwest::Client, delivery: &WebhookDelivery) -> Result<(), String> {
    let body = match event_with_id(delivery.id, &delivery.payload) {
        Some(event) => serde_json::to_vec(&event).map_err(|e| e.to_string())?,
        None => return Err("the stored event is not readable".into()),
    };
    let t = mssante_store::now();
    let response = http
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("x-mss-event-id", delivery.id.to_string())
        .header("x-mss-signature", signature(&delivery.secret, t, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e.without_url()))?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(format!("the receiver answered {status}")),
    }
}

/// Delivers one round of due rows; returns how many were read.
async fn deliver_due(
    store: &Store,
    http: &reqwest::Client,
    policy: &RetryPolicy,
    receivers: &mut Receivers,
) -> usize {
    let due = match store
        .due_webhook_deliveries(mssante_store::now(), BATCH, &receivers.paused())
        .await
    {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!("webhooks: reading the outbox: {e}");
            return 0;
        }
    };
    let read = due.len();
    let results: Vec<(i64, bool)> = futures_util::stream::iter(receivers.select(due))
        .map(|delivery| async move {
            let outcome = match post(http, &delivery).await {
                Ok(()) => HookAttempt::Delivered,
                Err(error) => {
                    tracing::info!(
                        webhook = delivery.webhook_id,
                        event = delivery.id,
                        attempts = delivery.attempts + 1,
                        "webhook delivery failed: {error}"
                    );
                    policy.after_failure(delivery.attempts, error)
                }
            };
            if let Err(e) = store.webhook_attempt(delivery.id, &outcome).await {
                tracing::warn!("webhooks: recording an attempt: {e}");
            }
            if let HookAttempt::GiveUp { .. } = outcome {
                tracing::warn!(
                    webhook = delivery.webhook_id,
                    event = delivery.id,
                    "webhook event given up: a dead letter"
                );
            }
            (delivery.webhook_id, outcome == HookAttempt::Delivered)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (webhook_id, delivered) in results {
        receivers.record(webhook_id, delivered, policy);
    }
    read
}

/// The webhook task: scan, deliver, until `stop` (end of leadership or shutdown).
pub async fn run(store: Store, limits: ApiLimits, stop: CancellationToken) {
    let policy = RetryPolicy::from_limits(&limits);
    let http = match reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!("webhooks: no HTTP client: {e}");
            return;
        }
    };
    let mut receivers = Receivers::default();
    let mut last_full: Option<Instant> = None;
    let mut last_scan = 0;
    loop {
        let started = mssante_store::now();
        let scope = match last_full {
            Some(at) if at.elapsed() < FULL_SCAN_EVERY => {
                ScanScope::ChangedSince(last_scan - SCAN_OVERLAP_SECS)
            }
            _ => ScanScope::All,
        };
        match store.scan_webhook_events(scope, render_event).await {
            Ok(_) => {
                last_scan = started;
                if scope == ScanScope::All {
                    last_full = Some(Instant::now());
                }
            }
            Err(e) => tracing::warn!("webhooks: scanning followed messages: {e}"),
        }
        while deliver_due(&store, &http, &policy, &mut receivers).await == BATCH as usize
            && !stop.is_cancelled()
        {}
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            first_secs: 10,
            max_secs: 3600,
            max_attempts: 3,
        }
    }

    #[test]
    fn waits_double_up_to_the_maximum_then_the_event_is_dead() {
        let p = policy();
        assert_eq!(p.delay(1), 10);
        assert_eq!(p.delay(4), 80);
        assert_eq!(p.delay(40), 3600);
        assert!(matches!(
            p.after_failure(0, "x".into()),
            HookAttempt::Retry { .. }
        ));
        assert!(matches!(
            p.after_failure(2, "x".into()),
            HookAttempt::GiveUp { .. }
        ));
    }

    fn delivery(id: i64, webhook_id: i64) -> WebhookDelivery {
        WebhookDelivery {
            id,
            webhook_id,
            url: "http://x/".into(),
            secret: "s".into(),
            payload: "{}".into(),
            attempts: 0,
        }
    }

    #[test]
    fn a_failing_receiver_is_probed_with_one_event() {
        let mut receivers = Receivers::default();
        let due = || vec![delivery(1, 1), delivery(2, 1), delivery(3, 2)];
        assert_eq!(receivers.select(due()).len(), 3);
        // Webhook 1 failed: paused, then probed with its oldest event only.
        receivers.record(1, false, &policy());
        assert_eq!(receivers.paused(), vec![1]);
        let ids: Vec<i64> = receivers.select(due()).iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![3]);
        receivers.failing.insert(1, (1, Instant::now()));
        let ids: Vec<i64> = receivers.select(due()).iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![1, 3]);
        receivers.record(1, true, &policy());
        assert_eq!(receivers.select(due()).len(), 3);
    }
}
