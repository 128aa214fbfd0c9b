//! Authentication failures, slowed then locked, per account and per client address
//! (docs/limits.md). One guard is shared by the SMTP and IMAP listeners, so password spraying
//! over both protocols counts once.
//!
//! - After `slow_after` failures in a row, each further failure is answered only after a
//!   delay that doubles up to `max_delay` (the caller sleeps; other sessions are not held).
//! - After `lock_account_after` failures within `window`, the account is locked for
//!   `lock_for`: attempts are refused without checking the password (no oracle while locked).
//! - After `lock_address_after` failures within `window` from one address (many accounts
//!   tried from one place), that address is locked the same way.
//!
//! Every failure and every lock writes one log line with the target `mssante::auth` and the
//! client address as `rip=ADDRESS`, which the fail2ban filter of docs/limits.md reads.
//! Memory is bounded: past `MAX_TRACKED` entries, expired ones are dropped, and if none are
//! expired the oldest entry goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept per table before pruning.
const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Failures in a row before answers are delayed.
    pub slow_after: u32,
    /// Delay of the first slowed answer; it doubles with each further failure.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Failures of one account within `window` that lock it.
    pub lock_account_after: u32,
    /// Failures from one client address within `window` that lock the address.
    pub lock_address_after: u32,
    pub window: Duration,
    pub lock_for: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            slow_after: 3,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            lock_account_after: 10,
            lock_address_after: 30,
            window: Duration::from_secs(15 * 60),
            lock_for: Duration::from_secs(15 * 60),
        }
    }
}

/// What the guard says before a password is checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Locked: refuse with a temporary failure, without checking the credentials.
    Locked {
        remaining: Duration,
    },
}

#[derive(Clone, Copy)]
struct Counter {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

impl Counter {
    fn new(now: Instant) -> Counter {
        Counter {
            failures: 0,
            window_start: now,
            locked_until: None,
        }
    }

    fn lock_remaining(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    fn expired(&self, now: Instant, window: Duration) -> bool {
        self.lock_remaining(now).is_none() && now.duration_since(self.window_start) > window
    }
}

#[derive(Default)]
struct Tables {
    accounts: HashMap<String, Counter>,
    addresses: HashMap<IpAddr, Counter>,
}

pub struct AuthGuard {
    config: GuardConfig,
    tables: Mutex<Tables>,
}

impl Default for AuthGuard {
    fn default() -> Self {
        AuthGuard::new(GuardConfig::default())
    }
}

impl AuthGuard {
    pub fn new(config: GuardConfig) -> AuthGuard {
        AuthGuard {
            config,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// Before checking a password: is the account or the address locked?
    pub fn admit(&self, ip: IpAddr, account: &str) -> Admission {
        let now = Instant::now();
        let tables = self.tables.lock().expect("auth guard lock");
        let account_lock = tables
            .accounts
            .get(&account_key(account))
            .and_then(|c| c.lock_remaining(now));
        let address_lock = tables
            .addresses
            .get(&ip)
            .and_then(|c| c.lock_remaining(now));
        match account_lock.max(address_lock) {
            Some(remaining) => {
                tracing::warn!(target: "mssante::auth", rip = %ip, account, "authentication refused while locked");
                Admission::Locked { remaining }
            }
            None => Admission::Allowed,
        }
    }

    /// Records a failed attempt; returns how long to wait before answering it.
    pub fn failed(&self, ip: IpAddr, account: &str, listener: &str) -> Duration {
        let now = Instant::now();
        let config = &self.config;
        let mut tables = self.tables.lock().expect("auth guard lock");
        let account_failures = bump(
            &mut tables.accounts,
            account_key(account),
            now,
            config,
            config.lock_account_after,
        );
        let address_failures = bump(
            &mut tables.addresses,
            ip,
            now,
            config,
            config.lock_address_after,
        );
        tracing::warn!(target: "mssante::auth", rip = %ip, listener, account, "authentication failure");
        if account_failures == config.lock_account_after {
            tracing::warn!(target: "mssante::auth", rip = %ip, account,
                minutes = config.lock_for.as_secs() / 60, "account locked after repeated failures");
        }
        if address_failures == config.lock_address_after {
            tracing::warn!(target: "mssante::auth", rip = %ip,
                minutes = config.lock_for.as_secs() / 60, "address locked after repeated failures");
        }
        self.delay_for(account_failures.max(address_failures))
    }

    /// A success clears the account's failures (the address keeps its count: one good
    /// password among many tried is what spraying looks like).
    pub fn succeeded(&self, account: &str) {
        let mut tables = self.tables.lock().expect("auth guard lock");
        let key = account_key(account);
        if tables
            .accounts
            .get(&key)
            .is_some_and(|c| c.locked_until.is_none())
        {
            tables.accounts.remove(&key);
        }
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.config.slow_after) else {
            return Duration::ZERO;
        };
        let factor = 1u32 << over.min(16);
        self.config
            .first_delay
            .saturating_mul(factor)
            .min(self.config.max_delay)
    }
}

/// Accounts are addresses, compared without case (ADR 0004).
fn account_key(account: &str) -> String {
    account.trim().to_lowercase()
}

/// Counts one failure for `key`; locks it when the count reaches `lock_after`.
fn bump<K: std::hash::Hash + Eq + Clone>(
    table: &mut HashMap<K, Counter>,
    key: K,
    now: Instant,
    config: &GuardConfig,
    lock_after: u32,
) -> u32 {
    if table.len() >= MAX_TRACKED && !table.contains_key(&key) {
        prune(table, now, config.window);
    }
    let counter = table.entry(key).or_insert_with(|| Counter::new(now));
    if counter.expired(now, config.window) {
        *counter = Counter::new(now);
    }
    counter.failures = counter.failures.saturating_add(1);
    if counter.failures >= lock_after && counter.lock_remaining(now).is_none() {
        counter.locked_until = Some(now + config.lock_for);
    }
    counter.failures
}

fn prune<K: std::hash::Hash + Eq + Clone>(
    table: &mut HashMap<K, Counter>,
    now: Instant,
    window: Duration,
) {
    table.retain(|_, c| !c.expired(now, window));
    if table.len() >= MAX_TRACKED
        && let Some(oldest) = table
            .iter()
            .min_by_key(|(_, c)| c.window_start)
            .map(|(k, _)| k.clone())
    {
        table.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> AuthGuard {
        AuthGuard::new(GuardConfig {
            slow_after: 2,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            lock_account_after: 5,
            lock_address_after: 8,
            window: Duration::from_secs(60),
            lock_for: Duration::from_secs(60),
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn failures_are_slowed_then_the_account_locked() {
        let g = guard();
        let delays: Vec<_> = (0..5).map(|_| g.failed(A, "u@x.fr", "imap")).collect();
        let ms: Vec<_> = delays.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 100, 200, 400, 400]);
        // Locked for this account, from any address and whatever the case.
        assert!(matches!(g.admit(B, "U@X.fr"), Admission::Locked { .. }));
        // Another account from another address is not concerned.
        assert_eq!(g.admit(B, "v@x.fr"), Admission::Allowed);
        // A success during the lock does not lift it.
        g.succeeded("u@x.fr");
        assert!(matches!(g.admit(B, "u@x.fr"), Admission::Locked { .. }));
    }

    #[test]
    fn spraying_from_one_address_locks_the_address() {
        let g = guard();
        for i in 0..8 {
            assert_eq!(g.admit(A, &format!("user{i}@x.fr")), Admission::Allowed);
            g.failed(A, &format!("user{i}@x.fr"), "smtp");
        }
        assert!(matches!(g.admit(A, "fresh@x.fr"), Admission::Locked { .. }));
        assert_eq!(g.admit(B, "fresh@x.fr"), Admission::Allowed);
    }

    #[test]
    fn a_success_clears_the_account_count() {
        let g = guard();
        g.failed(A, "u@x.fr", "imap");
        g.failed(A, "u@x.fr", "imap");
        g.succeeded("u@x.fr");
        assert_eq!(g.failed(B, "u@x.fr", "imap"), Duration::ZERO);
    }

    #[test]
    fn counts_restart_after_the_window() {
        let g = AuthGuard::new(GuardConfig {
            window: Duration::from_millis(30),
            lock_for: Duration::from_millis(30),
            ..guard().config
        });
        for _ in 0..4 {
            g.failed(A, "u@x.fr", "imap");
        }
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(g.admit(A, "u@x.fr"), Admission::Allowed);
        assert_eq!(g.failed(A, "u@x.fr", "imap"), Duration::ZERO);
    }

    #[test]
    fn tables_stay_bounded() {
        let mut table = HashMap::new();
        let config = guard().config;
        let now = Instant::now();
        for i in 0..(MAX_TRACKED + 10) {
            bump(&mut table, i, now, &config, 100);
        }
        assert!(table.len() <= MAX_TRACKED);
    }
}
