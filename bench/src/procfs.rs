//! CPU time and memory of processes, read from /proc (Linux only).

use std::collections::HashMap;
use std::fs;

use serde::Serialize;

/// One line of /proc/PID/stat, the fields we use.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub ticks: u64,
}

/// Parses /proc/PID/stat; the command name may hold spaces and parentheses.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let pid = line.split_whitespace().next()?.parse().ok()?;
    let rest = &line[line.rfind(')')? + 1..];
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3).and_then(|s| s.parse::<i64>().ok());
    let ppid = num(4)? as u32;
    let ticks = [14, 15, 16, 17]
        .iter()
        .map(|&i| num(i).map(|v| v.max(0) as u64))
        .sum::<Option<u64>>()?;
    Some(ProcStat { pid, ppid, ticks })
}

fn all_stats() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| parse_stat(&s))
        .collect()
}

/// The given roots and all their descendants.
pub fn tree_of(stats: &[ProcStat], roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for s in stats {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut out = Vec::new();
    let mut todo: Vec<u32> = roots.to_vec();
    while let Some(p) = todo.pop() {
        if out.contains(&p) {
            continue;
        }
        out.push(p);
        if let Some(c) = children.get(&p) {
            todo.extend(c);
        }
    }
    out
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU seconds of the process trees rooted at `roots` (own + reaped children's time).
/// Time of a child that exits between two readings moves into its parent's cutime, so
/// the difference of two readings stays right as long as the roots live.
pub fn tree_cpu_secs(roots: &[u32]) -> f64 {
    let stats = all_stats();
    let pids = tree_of(&stats, roots);
    let ticks: u64 = stats
        .iter()
        .filter(|s| pids.contains(&s.pid))
        .map(|s| s.ticks)
        .sum();
    ticks as f64 / clock_ticks()
}

/// CPU seconds (user + system) used by this process so far.
pub fn self_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Memory of a set of process trees, from /proc/PID/smaps_rollup.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Memory {
    pub processes: usize,
    pub rss_kb: u64,
    pub pss_kb: u64,
}

/// Reads `Rss:` and `Pss:` (kB) from a smaps_rollup text.
pub fn parse_rollup(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

/// The given roots and all their live descendants, from /proc.
pub fn tree_pids(roots: &[u32]) -> Vec<u32> {
    tree_of(&all_stats(), roots)
}

pub fn tree_memory(roots: &[u32]) -> Memory {
    let mut m = Memory::default();
    for pid in tree_pids(roots) {
        if let Ok(t) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            let (rss, pss) = parse_rollup(&t);
            m.processes += 1;
            m.rss_kb += rss;
            m.pss_kb += pss;
        }
    }
    m
}

/// Raises the soft open-files limit to the hard limit (many connections).
pub fn raise_nofile() -> u64 {
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_name() {
        let line = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    7 3 2 1 20 0 1 0 100 1000 50 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 1234);
        assert_eq!(s.ppid, 1);
        assert_eq!(s.ticks, 13);
    }

    #[test]
    fn tree_walks_descendants() {
        let st = |pid, ppid| ProcStat {
            pid,
            ppid,
            ticks: 0,
        };
        let stats = vec![st(1, 0), st(10, 1), st(11, 10), st(12, 10), st(20, 1)];
        let mut t = tree_of(&stats, &[10]);
        t.sort();
        assert_eq!(t, vec![10, 11, 12]);
    }

    #[test]
    fn own_tree_has_cpu_and_memory() {
        let me = std::process::id();
        let stats = all_stats();
        assert!(stats.iter().any(|s| s.pid == me));
        let m = tree_memory(&[me]);
        assert!(m.processes >= 1 && m.rss_kb > 0);
        assert!(self_cpu_secs() >= 0.0);
    }

    #[test]
    fn rollup_fields() {
        let t = "55d0-7ff [rollup]\nRss:                3000 kB\nPss:                1200 kB\n";
        assert_eq!(parse_rollup(t), (3000, 1200));
    }
}
