//! Outbound relay to other MSSanté operators (docs/mssante.md §3, §6).
//!
//! Layout: `resolve` finds the MX hosts of a domain; `client` speaks SMTP to one of them
//! (STARTTLS mandatory, DSN parameters passed on); `pool` keeps connections for reuse;
//! `worker` claims queued recipients from the store, groups them by message and
//! destination, sends and records the outcome; `reports` builds the DSNs owed to senders
//! and delivers them (locally or back through the queue): a task of its own, run whether
//! or not the relay is.

pub mod client;
mod pool;
pub mod reports;
pub mod resolve;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use worker::Relay;

/// Settings of the relay (the `[relay]` section of the configuration).
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Our name in EHLO and in reports.
    pub hostname: String,
    /// TCP port of the peers' MX (25 in production; tests give each instance its own
    /// loopback address and share one high port).
    pub port: u16,
    /// DNS server to ask instead of the system's (tests: a loopback dnsmasq).
    pub nameserver: Option<SocketAddr>,
    /// Waits between attempts; the last one repeats until `give_up_after`.
    pub retry_schedule: Vec<Duration>,
    /// Age at which a message still not delivered fails (RFC 5321 §4.5.4.1: 4–5 days).
    pub give_up_after: Duration,
    /// Age at which a `delayed` DSN is sent (RFC 3461 §6.2), once.
    pub delay_notify_after: Duration,
    /// Concurrent connections to one destination domain.
    pub max_per_destination: usize,
    /// Concurrent deliveries in all.
    pub max_in_flight: usize,
    /// How long a claimed row stays ours; a dead worker's rows come back after it.
    pub lease: Duration,
    /// How often an idle worker looks for due rows.
    pub poll_interval: Duration,
    /// Idle connections kept for reuse this long.
    pub idle_connection: Duration,
    pub timeouts: client::Timeouts,
    /// docs/mssante.md §3: relay only to whitelisted domains and check the peer's DN.
    pub enforce_trust: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            hostname: "localhost".into(),
            port: 25,
            nameserver: None,
            retry_schedule: [300, 600, 1200, 2400, 4800, 9600, 14400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            give_up_after: Duration::from_secs(5 * 24 * 3600),
            delay_notify_after: Duration::from_secs(4 * 3600),
            max_per_destination: 4,
            max_in_flight: 64,
            lease: Duration::from_secs(900),
            poll_interval: Duration::from_secs(1),
            idle_connection: Duration::from_secs(30),
            timeouts: client::Timeouts::default(),
            enforce_trust: true,
        }
    }
}

impl RelayConfig {
    /// Wait before attempt number `attempts + 1` (after `attempts` failures).
    pub fn backoff(&self, attempts: i64) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.retry_schedule.len().saturating_sub(1));
        self.retry_schedule
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(300))
    }
}

/// What the relay needs from the rest of the server.
pub struct RelayContext {
    pub store: mssante_store::Store,
    pub config: RelayConfig,
    /// The live whitelist; `None` when none is configured (then nothing leaves when trust
    /// is enforced).
    pub trust: Option<Arc<mssante_trust::Trust>>,
    /// TLS client: our certificate as client certificate, peers checked against the
    /// configured trust anchors.
    pub tls: tokio_rustls::TlsConnector,
    pub shutdown: tokio_util::sync::CancellationToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_then_repeats_its_last_step() {
        let c = RelayConfig {
            retry_schedule: vec![Duration::from_secs(1), Duration::from_secs(10)],
            ..RelayConfig::default()
        };
        assert_eq!(c.backoff(0), Duration::from_secs(1));
        assert_eq!(c.backoff(1), Duration::from_secs(1));
        assert_eq!(c.backoff(2), Duration::from_secs(10));
        assert_eq!(c.backoff(9), Duration::from_secs(10));
    }
}
