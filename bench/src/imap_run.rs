//! `imap` mode (a client mix over S sessions) and `connections` mode (K idle sessions).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::common::{self, CpuMeter, CpuReport, Users};
use crate::imap::{ImapSession, number_after};
use crate::imap_args::{ConnArgs, ImapArgs, ImapTarget, MixKind};
use crate::imap_profile::{self, Dice, Resync};
use crate::kmem::{self, KernelPerSession, KernelSnapshot};
use crate::messages::{Kind, Template};
use crate::net::TlsMode;
use crate::procfs::{self, Memory};
use crate::stats::{Errors, LatencySummary, OpStats, Samples};

#[derive(Debug, Serialize)]
pub struct ImapResult {
    pub mode: &'static str,
    pub addr: String,
    pub tls: TlsMode,
    pub sessions: usize,
    pub users: usize,
    pub mix: MixKind,
    pub qresync_share: u64,
    /// The offered load in commands/s (`--rate`), 0 when the sessions ran flat out.
    pub offered_rate: f64,
    /// Whether the sessions worked in the BALs as delegates (--delegate-prefix).
    pub delegate: bool,
    /// Sessions held in IDLE beside the mix (--watchers-prefix), and the untagged
    /// updates they received during the run.
    pub watchers: usize,
    pub watcher_updates: u64,
    pub duration_s: f64,
    pub ops: u64,
    pub ops_per_s: f64,
    pub logins_per_s: f64,
    pub per_op: BTreeMap<String, LatencySummary>,
    /// Every command but LOGIN, of all sessions, of those without and with QRESYNC.
    pub non_login: Option<LatencySummary>,
    pub non_login_plain: Option<LatencySummary>,
    pub non_login_qresync: Option<LatencySummary>,
    pub errors: Errors,
    pub cpu: CpuReport,
    pub server_cpu_ms_per_op: Option<f64>,
}

/// One login → select → rounds of (fetch new, fetch body, store, idle) → logout.
async fn cycle(a: &ImapArgs, user: &str, k: usize, st: &mut OpStats) -> Result<()> {
    let t = &a.target;
    let mut s = ImapSession::connect(&t.addr, t.tls).await?;
    let r = st.timed("login", t.login(&mut s, user)).await?;
    if !r.ok() {
        bail!("login {user} refused: {}", r.text);
    }
    let sel = st.timed("select", s.command("SELECT INBOX")).await?;
    let exists = sel.number_before("EXISTS").unwrap_or(0);
    for round in 0..a.rounds {
        if exists > 0 {
            let lo = exists.saturating_sub(a.new_mail.saturating_sub(1)).max(1);
            let f = format!("FETCH {lo}:* (UID FLAGS ENVELOPE)");
            let env = st.timed("fetch_envelope", s.command(&f)).await?;
            let uids: Vec<u32> = env
                .untagged
                .iter()
                .filter_map(|l| number_after(&String::from_utf8_lossy(l), "UID"))
                .collect();
            if !uids.is_empty() {
                let uid = uids[(k + round) % uids.len()];
                let f = format!("UID FETCH {uid} BODY.PEEK[]");
                st.timed("fetch_body", s.command(&f)).await?;
                let sign = if round % 2 == 0 { '+' } else { '-' };
                let c = format!("UID STORE {uid} {sign}FLAGS (\\Seen)");
                st.timed("store", s.command(&c)).await?;
            }
        }
        let t0 = Instant::now();
        let tag = s.idle_start().await?;
        let enter = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(a.idle_ms)).await;
        let t1 = Instant::now();
        let done = s.idle_done(&tag).await?;
        if done.ok() {
            st.ops.entry("idle").or_default().push(enter + t1.elapsed());
        } else {
            st.errors.add("idle NO");
        }
    }
    let t0 = Instant::now();
    s.logout().await;
    st.ops.entry("logout").or_default().push(t0.elapsed());
    Ok(())
}

/// One session's loop until `end`; its stats, and whether it was a QRESYNC client.
async fn mix_session(
    a: Arc<ImapArgs>,
    users: Arc<Users>,
    k: usize,
    end: Instant,
) -> (OpStats, bool) {
    let mut st = OpStats::paced(a.rate, a.sessions, k);
    let mut n = k;
    let mut dice = Dice::new(k as u64 + 1);
    // The first qresync_share % of the sessions are QRESYNC clients.
    let qresync = (k as u64 * 100) < a.qresync_share * a.sessions as u64;
    let mut resync = Resync::default();
    let message = append_message(k);
    while Instant::now() < end {
        let user = users.addr(n % users.count + 1);
        let done = match a.mix {
            MixKind::Classic => cycle(&a, &user, k, &mut st).await,
            MixKind::Imaptest => {
                let r = qresync.then_some(&mut resync);
                imap_profile::cycle(&a, &user, r, &message, &mut dice, &mut st).await
            }
        };
        if let Err(e) = done {
            st.errors.add("io");
            eprintln!("imap session error: {e:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        n += a.sessions;
    }
    (st, qresync && a.mix == MixKind::Imaptest)
}

/// The 40 KB bio message a session APPENDs (its own Message-ID).
fn append_message(k: usize) -> Vec<u8> {
    let tpl = Template::new(Kind::Bio, "lab@bench.test", "user1@bench.test")
        .expect("the bio template builds");
    let mut msg = Template::unique_prefix(k, 0xA99E);
    msg.extend_from_slice(&tpl.raw);
    msg
}

async fn populate(a: &ImapArgs, users: &Users) -> Result<()> {
    let t = &a.target;
    let tpl = Template::new(Kind::Bio, "lab@bench.test", &users.addr(1))?;
    for u in users.all() {
        let mut s = ImapSession::connect(&t.addr, t.tls).await?;
        let r = s.login(&u, &t.password).await?;
        if !r.ok() {
            bail!("login {u} refused: {}", r.text);
        }
        for i in 0..a.append {
            let mut msg = Template::unique_prefix(i, 0);
            msg.extend_from_slice(&tpl.raw);
            let r = s.append("INBOX", &msg).await?;
            if !r.ok() {
                bail!("APPEND for {u}: {} {}", r.status, r.text);
            }
        }
        s.logout().await;
    }
    println!(
        "appended {} messages to each of {} users",
        a.append, users.count
    );
    Ok(())
}

pub async fn run_mix(a: ImapArgs, pids: &[u32], json: Option<&std::path::Path>) -> Result<()> {
    let users = Arc::new(Users::new(&a.target.user, a.target.users)?);
    if a.append > 0 {
        populate(&a, &users).await?;
    }
    let a = Arc::new(a);
    let watchers = match &a.watchers_prefix {
        Some(prefix) => open_watchers(&a.target, &users, prefix).await?,
        None => Vec::new(),
    };
    let meter = CpuMeter::start(pids);
    let end = Instant::now() + Duration::from_secs(a.duration);
    let watching: Vec<_> = watchers
        .into_iter()
        .map(|w| tokio::spawn(watch_until(w, end)))
        .collect();
    let handles: Vec<_> = (0..a.sessions)
        .map(|k| tokio::spawn(mix_session(a.clone(), users.clone(), k, end)))
        .collect();
    let mut st = OpStats::default();
    let mut commands = [Samples::default(), Samples::default()];
    for h in handles {
        let (one, qresync) = h.await?;
        for (op, samples) in &one.ops {
            if *op != "login" {
                commands[usize::from(qresync)].merge(samples.clone());
            }
        }
        st.merge(one);
    }
    let cpu = meter.stop();
    let mut result = summarise_mix(&a, st, cpu);
    result.watchers = watching.len();
    for w in watching {
        result.watcher_updates += w.await??;
    }
    let [plain, qresync] = commands;
    let mut all = plain.clone();
    all.merge(qresync.clone());
    result.non_login = Some(all.summary());
    result.non_login_plain = Some(plain.summary());
    result.non_login_qresync = Some(qresync.summary());
    print_mix(&result);
    common::write_json(json, &result)
}

fn summarise_mix(a: &ImapArgs, st: OpStats, cpu: CpuReport) -> ImapResult {
    let ops: u64 = st.ops.values().map(|s| s.len() as u64).sum();
    let logins = st.ops.get("login").map_or(0, |s| s.len()) as f64;
    let wall = cpu.wall_s;
    ImapResult {
        mode: "imap",
        addr: a.target.addr.clone(),
        tls: a.target.tls,
        sessions: a.sessions,
        users: a.target.users,
        mix: a.mix,
        qresync_share: a.qresync_share,
        offered_rate: a.rate,
        delegate: a.target.delegate_prefix.is_some(),
        watchers: 0,
        watcher_updates: 0,
        duration_s: wall,
        ops,
        ops_per_s: ops as f64 / wall,
        logins_per_s: logins / wall,
        per_op: st
            .ops
            .iter()
            .map(|(k, v)| (k.to_string(), v.summary()))
            .collect(),
        non_login: None,
        non_login_plain: None,
        non_login_qresync: None,
        errors: st.errors,
        server_cpu_ms_per_op: cpu.server_cpu_s.map(|s| {
            if ops > 0 {
                s * 1000.0 / ops as f64
            } else {
                0.0
            }
        }),
        cpu,
    }
}

fn print_mix(r: &ImapResult) {
    println!(
        "imap mix {:?} ({} % QRESYNC{}{})  {} sessions, {:.1} s: {} ops, {:.1} ops/s, {:.1} logins/s",
        r.mix,
        r.qresync_share,
        if r.delegate { ", as delegates" } else { "" },
        if r.offered_rate > 0.0 {
            format!(", offered {:.0} commands/s", r.offered_rate)
        } else {
            String::new()
        },
        r.sessions,
        r.duration_s,
        r.ops,
        r.ops_per_s,
        r.logins_per_s
    );
    for (op, l) in &r.per_op {
        println!(
            "  {op:<15} n {:>7}  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms",
            l.count, l.p50_ms, l.p90_ms, l.p99_ms
        );
    }
    for (name, l) in [
        ("non-login", &r.non_login),
        ("  no QRESYNC", &r.non_login_plain),
        ("  QRESYNC", &r.non_login_qresync),
    ] {
        if let Some(l) = l.as_ref().filter(|l| l.count > 0) {
            println!(
                "{name:<17} n {:>7}  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms
            );
        }
    }
    if r.watchers > 0 {
        println!(
            "watchers       {} sessions in IDLE, {} updates received",
            r.watchers, r.watcher_updates
        );
    }
    println!("errors         {} {:?}", r.errors.total(), r.errors.0);
    common::print_cpu(&r.cpu, r.ops, "op");
}

/// One watcher session per user in IDLE on the user's INBOX (--watchers-prefix), opened
/// before the timed run; each with its IDLE tag.
async fn open_watchers(
    t: &ImapTarget,
    users: &Users,
    prefix: &str,
) -> Result<Vec<(ImapSession, String)>> {
    let mut watchers = Vec::with_capacity(users.count);
    for user in users.all() {
        let mut s = ImapSession::connect(&t.addr, t.tls).await?;
        let r = s
            .login_as(&user, &format!("{prefix}{user}"), &t.password)
            .await?;
        if !r.ok() {
            bail!("watcher login {prefix}{user} as {user} refused: {}", r.text);
        }
        let r = s.command("SELECT INBOX").await?;
        if !r.ok() {
            bail!("SELECT refused to the watcher of {user}: {}", r.text);
        }
        let tag = s.idle_start().await?;
        watchers.push((s, tag));
    }
    println!("{} watcher sessions in IDLE beside the mix", watchers.len());
    Ok(watchers)
}

/// Reads a watcher's IDLE updates until `end`, then ends IDLE and logs out; how many
/// untagged updates it received.
async fn watch_until((mut s, tag): (ImapSession, String), end: Instant) -> Result<u64> {
    let mut updates = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.next_line()).await {
            Ok(line) => {
                if line?.starts_with(b"* ") {
                    updates += 1;
                }
            }
            Err(_) => break,
        }
    }
    let done = s.idle_done(&tag).await?;
    if !done.ok() {
        bail!("IDLE of a watcher ended with {} {}", done.status, done.text);
    }
    s.logout().await;
    Ok(updates)
}

#[derive(Debug, Serialize)]
pub struct ConnResult {
    pub mode: &'static str,
    pub addr: String,
    pub tls: TlsMode,
    pub requested: usize,
    pub up: usize,
    pub failed: usize,
    pub open_s: f64,
    pub hold_s: u64,
    pub setup_latency: LatencySummary,
    /// Server memory with all sessions up (None without --server-pid).
    pub server_memory: Option<Memory>,
    pub server_memory_before: Option<Memory>,
    pub pss_kb_per_session: Option<f64>,
    pub rss_kb_per_session: Option<f64>,
    /// Kernel memory read before the first connection and with all sessions up.
    pub kernel_before: KernelSnapshot,
    pub kernel: KernelSnapshot,
    pub kernel_per_session: Option<KernelPerSession>,
    pub kernel_kb_per_session: Option<f64>,
    /// PSS + kernel per session (kernel without the client's end only when
    /// --client-kernel-kb was given: see kernel_per_session.includes_client_end).
    pub total_kb_per_session: Option<f64>,
    pub load_avg: String,
    pub errors: Errors,
}

/// The first three fields of /proc/loadavg.
pub fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The port of a host:port address.
pub fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

/// Connect, login, select, IDLE; returns the session and its IDLE tag.
async fn open_idle(t: &ImapTarget, user: &str) -> Result<(ImapSession, String)> {
    let mut s = ImapSession::connect(&t.addr, t.tls).await?;
    let r = s.login(user, &t.password).await?;
    if !r.ok() {
        bail!("login {user} refused: {}", r.text);
    }
    let r = s.command("SELECT INBOX").await?;
    if !r.ok() {
        bail!("SELECT refused: {}", r.text);
    }
    let tag = s.idle_start().await?;
    Ok((s, tag))
}

pub async fn run_connections(
    a: ConnArgs,
    pids: &[u32],
    json: Option<&std::path::Path>,
) -> Result<()> {
    let limit = procfs::raise_nofile();
    if (limit as usize) < a.sessions + 64 {
        eprintln!(
            "warning: open-files limit {limit} is below {} sessions",
            a.sessions
        );
    }
    let users = Users::new(&a.target.user, a.target.users)?;
    let port = port_of(&a.target.addr);
    let before = (!pids.is_empty()).then(|| procfs::tree_memory(pids));
    let kernel_before = kmem::snapshot(pids, port);
    let sem = Arc::new(tokio::sync::Semaphore::new(a.parallel.max(1)));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..a.sessions)
        .map(|k| {
            let (t, u, sem) = (
                a.target.clone(),
                users.addr(k % users.count + 1),
                sem.clone(),
            );
            tokio::spawn(async move {
                let _permit = sem.acquire_owned().await?;
                let s0 = Instant::now();
                open_idle(&t, &u).await.map(|x| (x, s0.elapsed()))
            })
        })
        .collect();
    let (mut open, mut setup, mut errors) = (Vec::new(), Samples::default(), Errors::default());
    for h in handles {
        match h.await? {
            Ok((s, d)) => {
                setup.push(d);
                open.push(s);
            }
            Err(e) => {
                errors.add("open");
                if errors.total() <= 5 {
                    eprintln!("session failed: {e:#}");
                }
            }
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    println!(
        "ALL UP {} sessions ({} failed) in {open_s:.2} s, holding {} s",
        open.len(),
        a.sessions - open.len(),
        a.hold
    );
    let wait = a.measure_after.min(a.hold);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let mem = (!pids.is_empty()).then(|| procfs::tree_memory(pids));
    let kernel = kmem::snapshot(pids, port);
    let load = load_avg();
    println!("load average {load}");
    if let Some(m) = &mem {
        println!(
            "server memory  {} processes, RSS {} kB, PSS {} kB",
            m.processes, m.rss_kb, m.pss_kb
        );
    }
    tokio::time::sleep(Duration::from_secs(a.hold - wait)).await;
    let up = open.len();
    close_all(open).await;
    let per = match (&mem, &before) {
        (Some(m), Some(b)) if up > 0 => Some((m.pss_kb as f64 - b.pss_kb as f64) / up as f64),
        _ => None,
    };
    let rss_per = match (&mem, &before) {
        (Some(m), Some(b)) if up > 0 => Some((m.rss_kb as f64 - b.rss_kb as f64) / up as f64),
        _ => None,
    };
    if let (Some(p), Some(r)) = (per, rss_per) {
        println!("server PSS per session {p:.1} kB, RSS {r:.1} kB (above the idle server)");
    }
    // Kernel figures are only the server's when its process trees are known.
    let kper = (!pids.is_empty())
        .then(|| kmem::per_session(&kernel_before, &kernel, up, a.client_kernel_kb))
        .flatten();
    if let Some(k) = &kper {
        kmem::print_per_session(k);
    }
    let total = match (per, &kper) {
        (Some(p), Some(k)) => Some(p + k.kernel_kb),
        _ => None,
    };
    if let (Some(t), Some(p), Some(k)) = (total, per, &kper) {
        println!(
            "per session: PSS {p:.1} kB + kernel {:.1} kB = {t:.1} kB",
            k.kernel_kb
        );
    }
    let result = ConnResult {
        mode: "connections",
        addr: a.target.addr.clone(),
        tls: a.target.tls,
        requested: a.sessions,
        up,
        failed: a.sessions - up,
        open_s,
        hold_s: a.hold,
        setup_latency: setup.summary(),
        server_memory: mem,
        server_memory_before: before,
        pss_kb_per_session: per,
        rss_kb_per_session: rss_per,
        kernel_before,
        kernel,
        kernel_kb_per_session: kper.as_ref().map(|k| k.kernel_kb),
        kernel_per_session: kper,
        total_kb_per_session: total,
        load_avg: load,
        errors,
    };
    common::write_json(json, &result)
}

async fn close_all(open: Vec<(ImapSession, String)>) {
    let closers: Vec<_> = open
        .into_iter()
        .map(|(mut s, tag)| {
            tokio::spawn(async move {
                let _ = s.idle_done(&tag).await;
                s.logout().await;
            })
        })
        .collect();
    for c in closers {
        let _ = c.await;
    }
}
