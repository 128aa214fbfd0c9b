//! Pieces shared by the modes: user addresses, CPU accounting, JSON output.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::procfs;

/// Addresses made from a pattern such as `user{n}@bench.test`, n = 1..=count.
#[derive(Debug, Clone)]
pub struct Users {
    pub pattern: String,
    pub count: usize,
}

impl Users {
    pub fn new(pattern: &str, count: usize) -> Result<Users> {
        if count == 0 {
            bail!("need at least one user");
        }
        if count > 1 && !pattern.contains("{n}") {
            bail!("pattern {pattern:?} lacks {{n}} but {count} users were asked");
        }
        Ok(Users {
            pattern: pattern.to_string(),
            count,
        })
    }

    /// The address of user `n` (1-based).
    pub fn addr(&self, n: usize) -> String {
        self.pattern.replace("{n}", &n.to_string())
    }

    /// The `r` recipients of message `i`, spread round-robin over the users.
    pub fn recipients(&self, i: usize, r: usize) -> Vec<String> {
        (0..r)
            .map(|j| self.addr((i * r + j) % self.count + 1))
            .collect()
    }

    pub fn all(&self) -> Vec<String> {
        (1..=self.count).map(|n| self.addr(n)).collect()
    }
}

/// CPU used by the server (process trees) and by this generator over a timed section.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CpuReport {
    pub wall_s: f64,
    /// None when no --server-pid was given.
    pub server_cpu_s: Option<f64>,
    pub client_cpu_s: f64,
}

pub struct CpuMeter {
    pids: Vec<u32>,
    t0: Instant,
    server0: f64,
    client0: f64,
}

impl CpuMeter {
    pub fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            pids: pids.to_vec(),
            t0: Instant::now(),
            server0: procfs::tree_cpu_secs(pids),
            client0: procfs::self_cpu_secs(),
        }
    }

    pub fn elapsed_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Generator CPU seconds since start.
    pub fn client_so_far(&self) -> f64 {
        procfs::self_cpu_secs() - self.client0
    }

    pub fn stop(&self) -> CpuReport {
        CpuReport {
            wall_s: self.elapsed_s(),
            server_cpu_s: (!self.pids.is_empty())
                .then(|| procfs::tree_cpu_secs(&self.pids) - self.server0),
            client_cpu_s: procfs::self_cpu_secs() - self.client0,
        }
    }
}

/// Parses "123,456" into PIDs.
pub fn parse_pids(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().with_context(|| format!("bad PID {p:?}")))
        .collect()
}

pub fn write_json<T: Serialize>(path: Option<&Path>, value: &T) -> Result<()> {
    if let Some(p) = path {
        let text = serde_json::to_string_pretty(value)?;
        std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))?;
        eprintln!("results written to {}", p.display());
    }
    Ok(())
}

/// Prints CPU figures, per unit of work when `units` > 0.
pub fn print_cpu(cpu: &CpuReport, units: u64, unit: &str) {
    let per = |s: f64| {
        if units > 0 {
            format!(" ({:.3} ms/{unit})", s * 1000.0 / units as f64)
        } else {
            String::new()
        }
    };
    println!(
        "generator cpu  {:.2} s{}",
        cpu.client_cpu_s,
        per(cpu.client_cpu_s)
    );
    match cpu.server_cpu_s {
        Some(s) => println!("server cpu     {s:.2} s{}", per(s)),
        None => println!("server cpu     (give --server-pid to measure)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_round_robin() {
        let u = Users::new("user{n}@d.test", 3).unwrap();
        assert_eq!(u.recipients(0, 2), vec!["user1@d.test", "user2@d.test"]);
        assert_eq!(u.recipients(1, 2), vec!["user3@d.test", "user1@d.test"]);
        assert_eq!(u.all().len(), 3);
        assert!(Users::new("fixed@d.test", 2).is_err());
        assert!(Users::new("fixed@d.test", 1).is_ok());
    }

    #[test]
    fn pids() {
        assert_eq!(parse_pids("12, 34").unwrap(), vec![12, 34]);
        assert!(parse_pids("x").is_err());
    }
}
