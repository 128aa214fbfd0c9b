//! `pairs` mode: the kernel memory of bare loopback TCP connections, to subtract the client's
//! end from the `connections` mode's system-wide slab growth.
//!
//! Opens K plain TCP connections to a listener of its own (a child process running this binary's
//! hidden `pairs-listener` mode on 127.0.0.1, ephemeral port, which accepts and holds and never
//! reads: nothing is sent), both ends registered with tokio's epoll as the generator's and a
//! server's sockets are. The slab growth per pair
//! covers two connection ends; the client end of a `connections` run is taken as half of it
//! (both ends are full TCP sockets with a file, an inode, a dentry and an epoll entry; the
//! client's also holds its bound port).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use crate::common;
use crate::imap_run::load_avg;
use crate::kmem::{self, KernelSnapshot};
use crate::procfs;

#[derive(Debug, clap::Args, Clone)]
pub struct PairsArgs {
    /// Connections to open and hold.
    #[arg(short = 'k', long, default_value_t = 1000)]
    pub pairs: usize,
    /// Seconds after all are up when kernel memory is read.
    #[arg(long, default_value_t = 5)]
    pub measure_after: u64,
    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
}

#[derive(Debug, Serialize)]
pub struct PairsResult {
    pub mode: &'static str,
    pub requested: usize,
    pub up: usize,
    pub open_s: f64,
    pub kernel_before: KernelSnapshot,
    pub kernel: KernelSnapshot,
    /// System-wide slab growth per connection (both ends), kB.
    pub slab_kb_per_pair: Option<f64>,
    /// Half of it: the `--client-kernel-kb` of a `connections` run with as many sessions.
    pub client_end_kb: Option<f64>,
    pub sockstat_tcp_mem_kb_per_pair: Option<f64>,
    pub top_slab_caches: Vec<(String, f64)>,
    pub load_avg: String,
}

/// Closes without TIME_WAIT (SO_LINGER 0), so that the next run does not start with
/// thousands of time-wait sockets being freed under it.
fn abort_close(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own with a linger struct of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The hidden `pairs-listener` mode: binds 127.0.0.1:0, prints the port, accepts and holds
/// every connection until its standard input closes.
pub async fn listener() -> Result<()> {
    procfs::raise_nofile();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    let mut held = Vec::new();
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => held.push(s),
                Err(e) => eprintln!("pairs-listener accept: {e}"),
            },
            r = stdin.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
        }
    }
    for s in &held {
        abort_close(s);
    }
    Ok(())
}

pub async fn run(a: PairsArgs, json: Option<&std::path::Path>) -> Result<()> {
    let limit = procfs::raise_nofile();
    if (limit as usize) < a.pairs + 64 {
        eprintln!(
            "warning: open-files limit {limit} is below {} connections",
            a.pairs
        );
    }
    let mut child = Command::new(std::env::current_exe()?)
        .arg("pairs-listener")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting pairs-listener")?;
    let mut line = String::new();
    let out = child.stdout.take().context("listener stdout")?;
    BufReader::new(out).read_line(&mut line).await?;
    let port: u16 = line.trim().parse().context("listener port")?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let before = kmem::snapshot(&[], None);
    let sem = Arc::new(tokio::sync::Semaphore::new(a.parallel.max(1)));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..a.pairs)
        .map(|_| {
            let sem = sem.clone();
            tokio::spawn(async move {
                let _p = sem.acquire_owned().await?;
                TcpStream::connect(addr).await.context("connect")
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(a.pairs);
    for h in handles {
        match h.await? {
            Ok(s) => clients.push(s),
            Err(e) => eprintln!("{e:#}"),
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    let up = clients.len();
    println!("ALL UP {up} connection pairs in {open_s:.2} s");
    tokio::time::sleep(Duration::from_secs(a.measure_after)).await;
    let after = kmem::snapshot(&[], None);
    let load = load_avg();
    for s in &clients {
        abort_close(s);
    }
    drop(clients);
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let n = up as f64;
    let per = |f: fn(&KernelSnapshot) -> u64| {
        (up > 0).then(|| (f(&after) as f64 - f(&before) as f64) / n)
    };
    let slab = per(|s| s.slab_kb);
    let result = PairsResult {
        mode: "pairs",
        requested: a.pairs,
        up,
        open_s,
        slab_kb_per_pair: slab,
        client_end_kb: slab.map(|s| s / 2.0),
        sockstat_tcp_mem_kb_per_pair: per(|s| s.sockstat_tcp_mem_kb),
        top_slab_caches: if up > 0 {
            kmem::cache_deltas(&before, &after, n, 8)
        } else {
            Vec::new()
        },
        kernel_before: before,
        kernel: after,
        load_avg: load,
    };
    println!("load average {}", result.load_avg);
    if let (Some(s), Some(c)) = (result.slab_kb_per_pair, result.client_end_kb) {
        println!("slab per connection pair {s:.2} kB: client end {c:.2} kB");
        let top: Vec<String> = result
            .top_slab_caches
            .iter()
            .map(|(c, v)| format!("{c} {v:.2}"))
            .collect();
        println!("  slab growth per pair, kB: {}", top.join(", "));
    }
    common::write_json(json, &result)
}
