//! Latency samples, percentiles and error tallies.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::imap::Response;

/// Latency samples of one operation, in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u64>,
}

/// Summary of a set of latency samples, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.micros
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    pub fn summary(&self) -> LatencySummary {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let mean = if sorted.is_empty() {
            0.0
        } else {
            sorted.iter().sum::<u64>() as f64 / sorted.len() as f64 / 1000.0
        };
        LatencySummary {
            count: sorted.len(),
            mean_ms: mean,
            p50_ms: ms(percentile(&sorted, 50.0)),
            p90_ms: ms(percentile(&sorted, 90.0)),
            p99_ms: ms(percentile(&sorted, 99.0)),
            p999_ms: ms(percentile(&sorted, 99.9)),
            max_ms: ms(sorted.last().copied().unwrap_or(0)),
        }
    }
}

impl LatencySummary {
    /// One printed line: `label` then p50, p90, p99 and max.
    pub fn print(&self, label: &str) {
        println!(
            "{label:<15}p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        );
    }
}

/// Nearest-rank percentile of an ascending slice (0 for an empty one).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of a list of floats (used to summarise repeated runs).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Errors counted by kind: an SMTP reply code ("550"), an IMAP status ("NO") or "io".
#[derive(Debug, Default, Clone, Serialize)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, kind: impl Into<String>) {
        *self.0.entry(kind.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Per-operation latencies of one session task.
#[derive(Default)]
pub(crate) struct OpStats {
    pub(crate) ops: BTreeMap<&'static str, Samples>,
    pub(crate) errors: Errors,
    /// With `--rate`: when this session may send its next command.
    pacer: Option<Pacer>,
}

/// A session's command schedule at a fixed offered rate.
struct Pacer {
    every: Duration,
    next: Instant,
}

impl Pacer {
    /// Waits for the next slot. A session that fell behind by more than one slot starts
    /// again from now rather than sending a burst to catch up.
    async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next.into()).await;
        } else if now - self.next > self.every {
            self.next = now;
        }
        self.next += self.every;
    }
}

impl OpStats {
    /// Stats of a session that sends one command every `sessions / rate` seconds (the
    /// first after a random part of that, so that sessions do not send in step).
    pub(crate) fn paced(rate: f64, sessions: usize, k: usize) -> OpStats {
        let mut stats = OpStats::default();
        if rate > 0.0 {
            let every = Duration::from_secs_f64(sessions as f64 / rate);
            let offset = every.mul_f64((k % sessions) as f64 / sessions as f64);
            stats.pacer = Some(Pacer {
                every,
                next: Instant::now() + offset,
            });
        }
        stats
    }

    pub(crate) fn merge(&mut self, o: OpStats) {
        for (k, v) in o.ops {
            self.ops.entry(k).or_default().merge(v);
        }
        self.errors.merge(o.errors);
    }

    /// Times one command; records its latency, or an error kind when not OK.
    pub(crate) async fn timed<F>(&mut self, op: &'static str, f: F) -> Result<Response>
    where
        F: std::future::Future<Output = Result<Response>>,
    {
        if let Some(pacer) = &mut self.pacer {
            // The command is sent when `f` is first polled, after the wait.
            pacer.wait().await;
        }
        let t = Instant::now();
        let r = f.await?;
        if r.ok() {
            self.ops.entry(op).or_default().push(t.elapsed());
        } else {
            self.errors.add(format!("{op} {}", r.status));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let small = [10, 20, 30, 40];
        assert_eq!(percentile(&small, 50.0), 20);
        assert_eq!(percentile(&small, 75.0), 30);
        assert_eq!(percentile(&small, 76.0), 40);
    }

    #[test]
    fn summary_in_milliseconds() {
        let mut s = Samples::default();
        for ms in [4u64, 1, 3, 2] {
            s.push(Duration::from_millis(ms));
        }
        let sum = s.summary();
        assert_eq!(sum.count, 4);
        assert_eq!(sum.p50_ms, 2.0);
        assert_eq!(sum.p99_ms, 4.0);
        assert_eq!(sum.max_ms, 4.0);
        assert!((sum.mean_ms - 2.5).abs() < 1e-9);
    }

    #[test]
    fn median_odd_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn errors_merge() {
        let mut a = Errors::default();
        a.add("550");
        let mut b = Errors::default();
        b.add("550");
        b.add("io");
        a.merge(b);
        assert_eq!(a.0["550"], 2);
        assert_eq!(a.total(), 3);
    }
}
