//! Kernel memory of idle sessions (Linux only): what the `connections` and `pairs` modes add to
//! the servers' PSS. See bench/README.md ("Kernel memory") for what is counted and why.
//!
//! - Slab, system-wide: `/proc/slabinfo` (root), every cache's `num_slabs × pagesperslab` pages
//!   (`/proc/meminfo` `Slab` when slabinfo is not readable), except the file-system and
//!   page-cache caches of [`NOISE_CACHES`]: other users' builds on the machine grow those, and
//!   an idle session allocates none. Socket objects (`TCP`, `sock_inode_cache`, `dentry`,
//!   `filp`, `eventpoll_*`, skb heads) and per-process objects (`task_struct`, `mm_struct`,
//!   `vm_area_struct`…) land here. Both ends of a loopback connection are counted: the
//!   client's end is measured apart (`pairs` mode) and subtracted.
//! - Kernel stacks and page tables of the server's process trees only: `Threads` × 16 KiB
//!   (x86_64 `THREAD_SIZE`) and `VmPTE` from `/proc/PID/status`.
//! - Socket buffers of the server's established TCP sockets on its port only: `ss -tm`
//!   `skmem` r (receive queue) + w (write queue) + o (options), in bytes.
//! - For information: `/proc/net/sockstat` TCP `mem` (pages charged to TCP system-wide,
//!   including forward allocations, which are quota, not memory) and `/proc/meminfo`.

use std::collections::BTreeMap;
use std::fs;

use serde::Serialize;

use crate::procfs;

/// Kernel stack per thread, KiB (x86_64 and arm64 `THREAD_SIZE`; `/proc/meminfo`
/// `KernelStack` / tasks on this machine agrees).
pub const KERNEL_STACK_KB: u64 = 16;

/// Slab caches left out of `slab_kb` (prefixes): ext4/jbd2 and block-layer objects, page-cache
/// tree nodes, buffer heads, reclaimable kmallocs (file-system metadata) and /proc inodes
/// (made by reading /proc for the measurement itself). `slab_all_kb` keeps them.
pub const NOISE_CACHES: &[&str] = &[
    "buffer_head",
    "radix_tree_node",
    "ext4_",
    "jbd2_",
    "extent_status",
    "mbcache",
    "bio",
    "kmalloc-rcl-",
    "proc_inode_cache",
    "btrfs_",
    "xfs_",
];

pub fn is_noise_cache(name: &str) -> bool {
    NOISE_CACHES.iter().any(|p| name.starts_with(p))
}

/// One reading of the kernel's memory, system-wide and for the server.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KernelSnapshot {
    /// "slabinfo" or "meminfo" (slabinfo needs root).
    pub slab_source: &'static str,
    /// Slab pages over all caches but [`NOISE_CACHES`], system-wide (kB).
    pub slab_kb: u64,
    /// Slab pages over all caches (kB).
    pub slab_all_kb: u64,
    pub meminfo_slab_kb: u64,
    pub meminfo_sunreclaim_kb: u64,
    pub meminfo_kernel_stack_kb: u64,
    pub meminfo_page_tables_kb: u64,
    /// `/proc/net/sockstat` TCP mem × page size, system-wide (kB).
    pub sockstat_tcp_mem_kb: u64,
    pub sockstat_tcp_inuse: u64,
    /// Threads of the server's process trees.
    pub server_threads: u64,
    pub server_kernel_stack_kb: u64,
    /// Σ VmPTE of the server's processes (kB).
    pub server_page_tables_kb: u64,
    /// Established TCP sockets whose local port is the server's.
    pub server_sockets: u64,
    /// Σ skmem r + w + o of those sockets (kB).
    pub server_socket_buffers_kb: f64,
    /// kB per slab cache (not written to JSON: the deltas are).
    #[serde(skip)]
    pub caches: BTreeMap<String, u64>,
}

/// Per-cache kB (num_slabs × pagesperslab × page size) from `/proc/slabinfo`.
pub fn parse_slabinfo(text: &str, page_kb: u64) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("slabinfo") || line.starts_with('#') {
            continue;
        }
        // name active_objs num_objs objsize objperslab pagesperslab : tunables l b s : slabdata active_slabs num_slabs sharedavail
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(sd) = f.iter().position(|&w| w == "slabdata") else {
            continue;
        };
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
        if let (Some(pages), Some(slabs)) = (num(5), num(sd + 2)) {
            *out.entry(f[0].to_string()).or_default() += slabs * pages * page_kb;
        }
    }
    out
}

/// A `Key:   123 kB` field of /proc/meminfo or /proc/PID/status.
pub fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// (TCP inuse, TCP mem pages) from /proc/net/sockstat.
pub fn parse_sockstat_tcp(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let after = |k: &str| {
        f.iter()
            .position(|&w| w == k)
            .and_then(|i| f.get(i + 1))
            .and_then(|v| v.parse().ok())
    };
    Some((after("inuse")?, after("mem")?))
}

/// Fields of one `skmem:(r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0)`.
pub fn parse_skmem(line: &str) -> Option<BTreeMap<String, u64>> {
    let start = line.find("skmem:(")? + "skmem:(".len();
    let end = start + line[start..].find(')')?;
    let mut out = BTreeMap::new();
    for item in line[start..end].split(',') {
        let digits = item.find(|c: char| c.is_ascii_digit())?;
        out.insert(item[..digits].to_string(), item[digits..].parse().ok()?);
    }
    Some(out)
}

/// (sockets, Σ r + w + o bytes) over the skmem lines of `ss -tmnH` output.
pub fn sum_skmem(ss_output: &str) -> (u64, u64) {
    ss_output
        .lines()
        .filter_map(parse_skmem)
        .fold((0, 0), |(n, b), m| {
            let g = |k: &str| m.get(k).copied().unwrap_or(0);
            (n + 1, b + g("r") + g("w") + g("o"))
        })
}

fn page_kb() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 / 1024 } else { 4 }
}

/// Reads everything; server fields stay 0 without pids or port.
pub fn snapshot(server_pids: &[u32], server_port: Option<u16>) -> KernelSnapshot {
    let pk = page_kb();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let m = |k: &str| kb_field(&meminfo, k).unwrap_or(0);
    let mut s = KernelSnapshot {
        meminfo_slab_kb: m("Slab"),
        meminfo_sunreclaim_kb: m("SUnreclaim"),
        meminfo_kernel_stack_kb: m("KernelStack"),
        meminfo_page_tables_kb: m("PageTables"),
        ..Default::default()
    };
    match fs::read_to_string("/proc/slabinfo") {
        Ok(t) => {
            s.caches = parse_slabinfo(&t, pk);
            s.slab_all_kb = s.caches.values().sum();
            s.slab_kb = s
                .caches
                .iter()
                .filter(|(k, _)| !is_noise_cache(k))
                .map(|(_, v)| v)
                .sum();
            s.slab_source = "slabinfo";
        }
        Err(_) => {
            s.slab_kb = s.meminfo_slab_kb;
            s.slab_all_kb = s.meminfo_slab_kb;
            s.slab_source = "meminfo";
        }
    }
    if let Some((inuse, mem)) = fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|t| parse_sockstat_tcp(&t))
    {
        s.sockstat_tcp_inuse = inuse;
        s.sockstat_tcp_mem_kb = mem * pk;
    }
    for pid in procfs::tree_pids(server_pids) {
        if let Ok(t) = fs::read_to_string(format!("/proc/{pid}/status")) {
            s.server_threads += kb_field(&t, "Threads").unwrap_or(0);
            s.server_page_tables_kb += kb_field(&t, "VmPTE").unwrap_or(0);
        }
    }
    s.server_kernel_stack_kb = s.server_threads * KERNEL_STACK_KB;
    if let Some(port) = server_port {
        let out = std::process::Command::new("ss")
            .args(["-tmnH", "state", "established"])
            .arg(format!("( sport = :{port} )"))
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let (n, bytes) = sum_skmem(&String::from_utf8_lossy(&o.stdout));
                s.server_sockets = n;
                s.server_socket_buffers_kb = bytes as f64 / 1024.0;
            }
            _ => eprintln!("warning: `ss -tm` failed: server socket buffers not counted"),
        }
    }
    s
}

/// Kernel memory per session between two snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct KernelPerSession {
    /// System-wide slab growth / sessions: server and client ends (noise caches left out).
    pub slab_kb: f64,
    /// The same over all caches.
    pub slab_all_kb: f64,
    /// The client's end, subtracted from `slab_kb` (`--client-kernel-kb`, from `pairs`);
    /// 0 when not given, and then `kernel_kb` includes it.
    pub client_end_kb: f64,
    pub server_kernel_stack_kb: f64,
    pub server_page_tables_kb: f64,
    pub server_socket_buffers_kb: f64,
    /// slab − client end + server stacks + page tables + socket buffers.
    pub kernel_kb: f64,
    pub includes_client_end: bool,
    /// For information, not in `kernel_kb`: system-wide TCP mem (quota, both ends).
    pub sockstat_tcp_mem_kb: f64,
    /// Meminfo for cross-checking `slab_kb`.
    pub meminfo_slab_kb: f64,
    pub meminfo_sunreclaim_kb: f64,
    /// The slab caches that grew most, kB per session.
    pub top_slab_caches: Vec<(String, f64)>,
}

/// Per-cache growth / n, largest first (at most `top`), noise caches left out.
pub fn cache_deltas(
    before: &KernelSnapshot,
    after: &KernelSnapshot,
    n: f64,
    top: usize,
) -> Vec<(String, f64)> {
    let mut d: Vec<(String, f64)> = after
        .caches
        .iter()
        .filter(|(k, _)| !is_noise_cache(k))
        .map(|(k, &v)| {
            let b = before.caches.get(k).copied().unwrap_or(0);
            (k.clone(), (v as f64 - b as f64) / n)
        })
        .filter(|(_, v)| *v != 0.0)
        .collect();
    d.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    d.truncate(top);
    d
}

pub fn per_session(
    before: &KernelSnapshot,
    after: &KernelSnapshot,
    sessions: usize,
    client_end_kb: Option<f64>,
) -> Option<KernelPerSession> {
    if sessions == 0 {
        return None;
    }
    let n = sessions as f64;
    let d = |f: fn(&KernelSnapshot) -> u64| (f(after) as f64 - f(before) as f64) / n;
    let slab = d(|s| s.slab_kb);
    let client = client_end_kb.unwrap_or(0.0);
    let ks = d(|s| s.server_kernel_stack_kb);
    let pt = d(|s| s.server_page_tables_kb);
    let sb = (after.server_socket_buffers_kb - before.server_socket_buffers_kb) / n;
    Some(KernelPerSession {
        slab_kb: slab,
        slab_all_kb: d(|s| s.slab_all_kb),
        client_end_kb: client,
        server_kernel_stack_kb: ks,
        server_page_tables_kb: pt,
        server_socket_buffers_kb: sb,
        kernel_kb: slab - client + ks + pt + sb,
        includes_client_end: client_end_kb.is_none(),
        sockstat_tcp_mem_kb: d(|s| s.sockstat_tcp_mem_kb),
        meminfo_slab_kb: d(|s| s.meminfo_slab_kb),
        meminfo_sunreclaim_kb: d(|s| s.meminfo_sunreclaim_kb),
        top_slab_caches: cache_deltas(before, after, n, 8),
    })
}

pub fn print_per_session(k: &KernelPerSession) {
    println!(
        "kernel per session {:.1} kB = slab {:.1} (system-wide) - client end {:.1} + server stacks {:.1} + page tables {:.1} + socket buffers {:.2}{}",
        k.kernel_kb,
        k.slab_kb,
        k.client_end_kb,
        k.server_kernel_stack_kb,
        k.server_page_tables_kb,
        k.server_socket_buffers_kb,
        if k.includes_client_end {
            " (client end NOT subtracted: give --client-kernel-kb)"
        } else {
            ""
        }
    );
    let top: Vec<String> = k
        .top_slab_caches
        .iter()
        .map(|(c, v)| format!("{c} {v:.2}"))
        .collect();
    println!("  slab growth per session, kB: {}", top.join(", "));
    println!(
        "  (info) all slab caches {:.1}, meminfo Slab {:.1}, SUnreclaim {:.1}, sockstat TCP mem {:.2} kB per session",
        k.slab_all_kb, k.meminfo_slab_kb, k.meminfo_sunreclaim_kb, k.sockstat_tcp_mem_kb
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabinfo_pages_per_cache() {
        let t = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
TCP                 1000   1020   2432   13    8 : tunables    0    0    0 : slabdata     78     79      0\n\
filp                5000   5100    256   16    1 : tunables    0    0    0 : slabdata    318    320      0\n";
        let c = parse_slabinfo(t, 4);
        assert_eq!(c["TCP"], 79 * 8 * 4);
        assert_eq!(c["filp"], 320 * 4);
        assert_eq!(c.len(), 2);
        assert!(is_noise_cache("buffer_head") && is_noise_cache("ext4_inode_cache"));
        assert!(!is_noise_cache("TCP") && !is_noise_cache("sock_inode_cache"));
        assert!(!is_noise_cache("dentry") && !is_noise_cache("kmalloc-512"));
    }

    #[test]
    fn meminfo_and_status_fields() {
        let t = "Slab:             473244 kB\nSReclaimable:     412636 kB\nSUnreclaim:        60608 kB\n";
        assert_eq!(kb_field(t, "Slab"), Some(473244));
        assert_eq!(kb_field(t, "SUnreclaim"), Some(60608));
        assert_eq!(
            kb_field("Threads:\t7\nVmPTE:\t  48 kB\n", "Threads"),
            Some(7)
        );
        assert_eq!(kb_field("VmPTE:\t  48 kB\n", "VmPTE"), Some(48));
        assert_eq!(kb_field(t, "Sla"), None);
    }

    #[test]
    fn sockstat_tcp() {
        let t = "sockets: used 21\nTCP: inuse 3 orphan 0 tw 9 alloc 3 mem 5\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat_tcp(t), Some((3, 5)));
    }

    #[test]
    fn skmem_sums_r_w_o() {
        let out = "100    0      127.0.0.1:35039 127.0.0.1:52186\n\
\t skmem:(r932,rb131072,t0,tb3939840,f3164,w0,o0,bl0,d0)\n\
0      0      127.0.0.1:35039 127.0.0.1:52187\n\
\t skmem:(r0,rb131072,t10,tb3939840,f0,w2000,o40,bl0,d0)\n";
        let m = parse_skmem(out.lines().nth(1).unwrap()).unwrap();
        assert_eq!(m["rb"], 131072);
        assert_eq!(m["r"], 932);
        assert_eq!(sum_skmem(out), (2, 932 + 2000 + 40));
    }

    #[test]
    fn per_session_subtracts_client_end() {
        let mut b = KernelSnapshot::default();
        b.caches.insert("TCP".into(), 1000);
        b.slab_kb = 1000;
        let mut a = b.clone();
        a.caches.insert("TCP".into(), 1000 + 6000);
        a.slab_kb = 7000;
        a.server_threads = 2;
        a.server_kernel_stack_kb = 32;
        a.server_page_tables_kb = 200;
        a.server_socket_buffers_kb = 8.0;
        let k = per_session(&b, &a, 1000, Some(2.5)).unwrap();
        assert!((k.slab_kb - 6.0).abs() < 1e-9);
        assert!((k.kernel_kb - (6.0 - 2.5 + 0.032 + 0.2 + 0.008)).abs() < 1e-9);
        assert!(!k.includes_client_end);
        assert_eq!(k.top_slab_caches, vec![("TCP".to_string(), 6.0)]);
        assert!(per_session(&b, &a, 1000, None).unwrap().includes_client_end);
        assert!(per_session(&b, &a, 0, None).is_none());
    }

    #[test]
    fn own_snapshot_reads() {
        let s = snapshot(&[std::process::id()], None);
        assert!(s.slab_kb > 0);
        assert!(s.server_threads >= 1);
        assert_eq!(s.server_kernel_stack_kb, s.server_threads * KERNEL_STACK_KB);
    }
}
