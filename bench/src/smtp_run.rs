//! `smtp` mode: N messages over C connections, then wait for end-to-end delivery.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::common::{self, CpuMeter, CpuReport, Users};
use crate::messages::{Kind, Mix, Template};
use crate::net::TlsMode;
use crate::smtp::{SessionOpts, SmtpSession};
use crate::stats::{Errors, LatencySummary, Samples};
use crate::wait::Counter;

#[derive(Debug, clap::Args, Clone)]
pub struct SmtpArgs {
    /// Server address (host:port); loopback only in this project.
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub addr: String,
    #[arg(long, value_enum, default_value = "none")]
    pub tls: TlsMode,
    /// AUTH PLAIN user (with --auth-pass).
    #[arg(long)]
    pub auth_user: Option<String>,
    #[arg(long, default_value = "bench")]
    pub auth_pass: String,
    #[arg(long, default_value = "bench-client.test")]
    pub helo: String,
    /// Number of messages.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub messages: usize,
    /// Parallel connections.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub connections: usize,
    /// Messages per SMTP session before QUIT and reconnect (0: one session per connection).
    #[arg(long, default_value_t = 0)]
    pub per_conn: usize,
    /// Recipients per message.
    #[arg(short = 'r', long, default_value_t = 1)]
    pub rcpts: usize,
    /// Recipient pattern; {n} runs from 1 to --users.
    #[arg(long, default_value = "user{n}@bench.test")]
    pub to: String,
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    #[arg(long, default_value = "lab@bench.test")]
    pub from: String,
    /// Message mix: bio, discharge, imaging, realistic, or weights like bio=80,imaging=20.
    #[arg(long, default_value = "bio")]
    pub mix: String,
    /// Send with BDAT (CHUNKING) instead of DATA when the server offers it.
    #[arg(long)]
    pub bdat: bool,
    /// End to end: poll IMAP STATUS INBOX of every user at this address.
    #[arg(long)]
    pub wait_imap: Option<String>,
    #[arg(long, value_enum, default_value = "none")]
    pub imap_tls: TlsMode,
    /// Password of the users for --wait-imap.
    #[arg(long, default_value = "bench")]
    pub password: String,
    /// End to end: count files in new/ and cur/ below this directory.
    #[arg(long)]
    pub wait_maildir: Option<PathBuf>,
    /// End to end: a shell command printing the delivered count.
    #[arg(long)]
    pub wait_cmd: Option<String>,
    #[arg(long, default_value_t = 600)]
    pub wait_timeout: u64,
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
}

#[derive(Debug, Default)]
struct WorkerStats {
    final_reply: Samples,
    transaction: Samples,
    errors: Errors,
    accepted: u64,
    accepted_rcpts: u64,
    bytes: u64,
}

impl WorkerStats {
    fn merge(&mut self, o: WorkerStats) {
        self.final_reply.merge(o.final_reply);
        self.transaction.merge(o.transaction);
        self.errors.merge(o.errors);
        self.accepted += o.accepted;
        self.accepted_rcpts += o.accepted_rcpts;
        self.bytes += o.bytes;
    }
}

struct Shared {
    next: AtomicUsize,
    warned: AtomicBool,
    args: SmtpArgs,
    opts: SessionOpts,
    mix: Mix,
    templates: Vec<Template>,
    users: Users,
    run: u64,
}

impl Shared {
    fn template(&self, kind: Kind) -> &Template {
        self.templates
            .iter()
            .find(|t| t.kind == kind)
            .expect("every kind of the mix is built")
    }

    fn take(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.args.messages).then_some(i)
    }
}

#[derive(Debug, Serialize)]
pub struct SmtpResult {
    pub mode: &'static str,
    pub addr: String,
    pub tls: TlsMode,
    pub messages: usize,
    pub connections: usize,
    pub rcpts: usize,
    pub users: usize,
    pub mix: String,
    pub bdat: bool,
    pub avg_message_bytes: u64,
    pub accepted: u64,
    pub accepted_rcpts: u64,
    pub send_s: f64,
    pub accepted_msg_per_s: f64,
    pub final_reply_latency: LatencySummary,
    pub transaction_latency: LatencySummary,
    pub errors: Errors,
    /// Delivered copies counted after the run minus before (None without a --wait-*).
    pub delivered: Option<u64>,
    pub e2e_s: Option<f64>,
    pub e2e_msg_per_s: Option<f64>,
    pub e2e_complete: Option<bool>,
    pub cpu: CpuReport,
    pub server_cpu_ms_per_msg: Option<f64>,
    /// Generator CPU while sending (excludes the end-to-end polling).
    pub client_cpu_send_s: f64,
    pub client_cpu_ms_per_msg: f64,
}

async fn worker(shared: Arc<Shared>) -> WorkerStats {
    let mut st = WorkerStats::default();
    let mut failures = 0;
    while failures < 3 {
        match session(&shared, &mut st).await {
            Ok(true) => return st,
            Ok(false) => failures = 0,
            Err(e) => {
                st.errors.add("io");
                eprintln!("smtp session error: {e:#}");
                failures += 1;
            }
        }
    }
    st
}

/// One SMTP session; Ok(true) when there is no work left.
async fn session(shared: &Shared, st: &mut WorkerStats) -> Result<bool> {
    let a = &shared.args;
    let mut s = SmtpSession::open(&shared.opts).await?;
    if a.bdat && !s.chunking && !shared.warned.swap(true, Ordering::Relaxed) {
        eprintln!("warning: the server offers no CHUNKING; sending with DATA");
    }
    let mut sent = 0;
    while a.per_conn == 0 || sent < a.per_conn {
        let Some(i) = shared.take() else {
            s.quit().await;
            return Ok(true);
        };
        let t = shared.template(shared.mix.kind_of(i));
        let prefix = Template::unique_prefix(i, shared.run);
        let rcpts = shared.users.recipients(i, a.rcpts);
        let out = s.send(&a.from, &rcpts, &prefix, t, a.bdat).await?;
        sent += 1;
        for code in &out.errors {
            st.errors.add(code.to_string());
        }
        st.transaction.push(out.transaction);
        if out.accepted {
            st.final_reply.push(out.final_reply);
            st.accepted += 1;
            st.accepted_rcpts += out.accepted_rcpts as u64;
            st.bytes += (prefix.len() + t.raw.len()) as u64;
        }
    }
    s.quit().await;
    Ok(false)
}

async fn counter(a: &SmtpArgs, users: &Users) -> Result<Option<Counter>> {
    let n = [
        a.wait_imap.is_some(),
        a.wait_maildir.is_some(),
        a.wait_cmd.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if n > 1 {
        bail!("give only one of --wait-imap, --wait-maildir, --wait-cmd");
    }
    Ok(if let Some(addr) = &a.wait_imap {
        Some(Counter::imap(addr, a.imap_tls, &users.all(), &a.password).await?)
    } else if let Some(d) = &a.wait_maildir {
        Some(Counter::Maildir(d.clone()))
    } else {
        a.wait_cmd.clone().map(Counter::Cmd)
    })
}

fn build_templates(a: &SmtpArgs, mix: &Mix, users: &Users) -> Result<Vec<Template>> {
    let mut out: Vec<Template> = Vec::new();
    for &(k, _) in &mix.0 {
        if !out.iter().any(|t| t.kind == k) {
            out.push(Template::new(k, &a.from, &users.addr(1))?);
        }
    }
    Ok(out)
}

pub async fn run(a: SmtpArgs, pids: &[u32], json: Option<&std::path::Path>) -> Result<()> {
    if a.connections == 0 || a.messages == 0 || a.rcpts == 0 {
        bail!("--messages, --connections and --rcpts must be positive");
    }
    let users = Users::new(&a.to, a.users)?;
    let mix = Mix::parse(&a.mix)?;
    let templates = build_templates(&a, &mix, &users)?;
    for t in &templates {
        println!("message {:<9} {} bytes", t.kind.name(), t.raw.len());
    }
    let mut counter = counter(&a, &users).await?;
    let before = match &mut counter {
        Some(c) => Some(c.count().await?),
        None => None,
    };
    let opts = SessionOpts {
        addr: a.addr.clone(),
        tls: a.tls,
        helo: a.helo.clone(),
        auth: a.auth_user.clone().map(|u| (u, a.auth_pass.clone())),
    };
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        warned: AtomicBool::new(false),
        args: a.clone(),
        opts,
        mix,
        templates,
        users,
        run,
    });
    let meter = CpuMeter::start(pids);
    let handles: Vec<_> = (0..a.connections)
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    let mut st = WorkerStats::default();
    for h in handles {
        st.merge(h.await?);
    }
    let send_s = meter.elapsed_s();
    // The generator's CPU while sending only: the end-to-end polling that follows differs
    // between targets (Maildir walk, IMAP STATUS, a command) and is not load generation.
    let client_send_s = meter.client_so_far();
    let (delivered, e2e_s, complete) = match (&mut counter, before) {
        (Some(c), Some(b)) => {
            let target = b + st.accepted_rcpts;
            let got = c
                .wait_for(
                    target,
                    Duration::from_millis(a.poll_ms),
                    Duration::from_secs(a.wait_timeout),
                )
                .await?;
            (Some(got - b), Some(meter.elapsed_s()), Some(got >= target))
        }
        _ => (None, None, None),
    };
    let cpu = meter.stop();
    if let Some(c) = counter {
        c.close().await;
    }
    let timing = Timing {
        send_s,
        client_send_s,
        delivered,
        e2e_s,
        complete,
    };
    let result = summarise(&a, st, timing, cpu);
    print_smtp(&result);
    common::write_json(json, &result)
}

struct Timing {
    send_s: f64,
    client_send_s: f64,
    delivered: Option<u64>,
    e2e_s: Option<f64>,
    complete: Option<bool>,
}

fn summarise(a: &SmtpArgs, st: WorkerStats, t: Timing, cpu: CpuReport) -> SmtpResult {
    let Timing {
        send_s,
        client_send_s,
        delivered,
        e2e_s,
        complete,
    } = t;
    let per_msg = |s: f64| {
        if st.accepted > 0 {
            s * 1000.0 / st.accepted as f64
        } else {
            0.0
        }
    };
    SmtpResult {
        mode: "smtp",
        addr: a.addr.clone(),
        tls: a.tls,
        messages: a.messages,
        connections: a.connections,
        rcpts: a.rcpts,
        users: a.users,
        mix: a.mix.clone(),
        bdat: a.bdat,
        avg_message_bytes: st.bytes.checked_div(st.accepted).unwrap_or(0),
        accepted: st.accepted,
        accepted_rcpts: st.accepted_rcpts,
        send_s,
        accepted_msg_per_s: st.accepted as f64 / send_s,
        final_reply_latency: st.final_reply.summary(),
        transaction_latency: st.transaction.summary(),
        errors: st.errors,
        delivered,
        e2e_s,
        e2e_msg_per_s: e2e_s.map(|s| st.accepted as f64 / s),
        e2e_complete: complete,
        server_cpu_ms_per_msg: cpu.server_cpu_s.map(per_msg),
        client_cpu_send_s: client_send_s,
        client_cpu_ms_per_msg: per_msg(client_send_s),
        cpu,
    }
}

fn print_smtp(r: &SmtpResult) {
    println!(
        "sent           {} messages ({} recipients each, {} connections, {} B avg) in {:.2} s",
        r.accepted, r.rcpts, r.connections, r.avg_message_bytes, r.send_s
    );
    println!("accepted       {:.1} msg/s", r.accepted_msg_per_s);
    r.final_reply_latency.print("final reply");
    let t = &r.transaction_latency;
    println!(
        "transaction    p50 {:.2} ms  p99 {:.2} ms",
        t.p50_ms, t.p99_ms
    );
    println!("errors         {} {:?}", r.errors.total(), r.errors.0);
    if let (Some(d), Some(s), Some(rate)) = (r.delivered, r.e2e_s, r.e2e_msg_per_s) {
        let state = if r.e2e_complete == Some(true) {
            "complete"
        } else {
            "INCOMPLETE (timeout)"
        };
        println!(
            "end to end     {d} of {} copies delivered in {s:.2} s: {rate:.1} msg/s, {state}",
            r.accepted_rcpts
        );
    }
    println!(
        "generator cpu  {:.2} s while sending ({:.3} ms/msg)",
        r.client_cpu_send_s, r.client_cpu_ms_per_msg
    );
    common::print_cpu(&r.cpu, r.accepted, "msg");
}
