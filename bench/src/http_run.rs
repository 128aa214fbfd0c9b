//! The HTTP API workloads (issue 13):
//! - `http-bulk`: C vendor clients, each on one keep-alive connection, sending N reports of
//!   a kind (40 KB `bio` by default) from one BAL in bulk requests of B messages (NDJSON,
//!   `POST /api/v1/bals/{from}/messages/bulk`), or one per request (`--batch 1`: the single
//!   send, `POST /api/v1/bals/{from}/messages`). A `2xx` means durably stored, like SMTP's
//!   `250`; the delivered count is then checked as for SMTP (`--wait-cmd`).
//! - `http-status`: C clients asking `GET /api/v1/messages/{id}` for random ids of a range
//!   (a store seeded with `mssante bench-seed`) for a duration.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::common::{self, CpuMeter, CpuReport, Users};
use crate::http::{HttpConn, Rng};
use crate::messages::{Mix, report_parts};
use crate::stats::{Errors, LatencySummary, Samples};
use crate::wait::Counter;

#[derive(Debug, clap::Args, Clone)]
pub struct HttpBulkArgs {
    /// The API's address (host:port, plaintext HTTP on loopback).
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub addr: String,
    /// An API key with the send scope on --from.
    #[arg(long, env = "BENCH_API_KEY")]
    pub key: String,
    /// The sending BAL.
    #[arg(long, default_value = "lab@bench.test")]
    pub from: String,
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub messages: usize,
    /// Concurrent clients (one connection each).
    #[arg(short = 'c', long, default_value_t = 4)]
    pub clients: usize,
    /// Messages per request: NDJSON bulk requests; 1 uses the single-message send.
    #[arg(short = 'b', long, default_value_t = 100)]
    pub batch: usize,
    /// Recipient pattern; {n} runs from 1 to --users (one recipient per message).
    #[arg(long, default_value = "user{n}@bench.test")]
    pub to: String,
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// The report kind (one of the smtp mode's kinds): bio is 40 KB.
    #[arg(long, default_value = "bio")]
    pub kind: String,
    /// End to end: a shell command printing the delivered count.
    #[arg(long)]
    pub wait_cmd: Option<String>,
    #[arg(long, default_value_t = 600)]
    pub wait_timeout: u64,
}

#[derive(Debug, clap::Args, Clone)]
pub struct HttpStatusArgs {
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub addr: String,
    /// An API key with the status scope on the BAL the seeded messages were sent from.
    #[arg(long, env = "BENCH_API_KEY")]
    pub key: String,
    /// Message ids to ask for, FIRST-LAST (what `mssante bench-seed` printed).
    #[arg(long)]
    pub ids: Option<String>,
    /// Or a file holding "FIRST LAST" (`mssante bench-seed --ids-file`).
    #[arg(long)]
    pub ids_file: Option<std::path::PathBuf>,
    #[arg(short = 'c', long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of measurement, after --warmup seconds not measured.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
}

#[derive(Debug, Default)]
struct BulkStats {
    request: Samples,
    errors: Errors,
    accepted: u64,
    requests: u64,
    request_bytes: u64,
}

impl BulkStats {
    fn merge(&mut self, o: BulkStats) {
        self.request.merge(o.request);
        self.errors.merge(o.errors);
        self.accepted += o.accepted;
        self.requests += o.requests;
        self.request_bytes += o.request_bytes;
    }
}

#[derive(Debug, Serialize)]
pub struct HttpBulkResult {
    pub mode: &'static str,
    pub addr: String,
    pub messages: usize,
    pub clients: usize,
    pub batch: usize,
    pub kind: String,
    /// One message's JSON (`SendRequest`), bytes.
    pub message_json_bytes: usize,
    pub requests: u64,
    pub accepted: u64,
    pub send_s: f64,
    pub accepted_msg_per_s: f64,
    /// Whole request, send to last byte of the answer: every message of it is stored.
    pub request_latency: LatencySummary,
    pub errors: Errors,
    pub delivered: Option<u64>,
    pub e2e_s: Option<f64>,
    pub e2e_msg_per_s: Option<f64>,
    pub e2e_complete: Option<bool>,
    pub cpu: CpuReport,
    pub server_cpu_ms_per_msg: Option<f64>,
    pub client_cpu_ms_per_msg: f64,
}

/// One message as the JSON of a `SendRequest`, split around its recipient so that each
/// line is made by concatenation: `{"to":["` + address + TAIL.
fn message_tail(kind: &str) -> Result<String> {
    let mix = Mix::parse(kind)?;
    let report = report_parts(mix.kind_of(0), 0x5EED)?;
    let attachments: Vec<serde_json::Value> = report
        .attachments
        .iter()
        .map(|(name, media, bytes)| {
            serde_json::json!({
                "filename": name, "content_type": media, "content_base64": STANDARD.encode(bytes)
            })
        })
        .collect();
    let headers: serde_json::Map<String, serde_json::Value> = report
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), serde_json::Value::from(*v)))
        .collect();
    let rest = serde_json::json!({
        "subject": report.subject,
        "text": report.text,
        "attachments": attachments,
        "headers": headers,
    });
    let rest = serde_json::to_string(&rest)?;
    Ok(format!("\"],{}", &rest[1..]))
}

struct BulkShared {
    next: AtomicUsize,
    args: HttpBulkArgs,
    users: Users,
    tail: String,
}

impl BulkShared {
    /// The next batch of message numbers, empty when all were taken.
    fn take(&self) -> std::ops::Range<usize> {
        let b = self.args.batch;
        let start = self
            .next
            .fetch_add(b, Ordering::Relaxed)
            .min(self.args.messages);
        start..(start + b).min(self.args.messages)
    }

    fn line(&self, i: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"to\":[\"");
        out.extend_from_slice(self.users.addr(i % self.users.count + 1).as_bytes());
        out.extend_from_slice(self.tail.as_bytes());
    }
}

async fn bulk_worker(shared: Arc<BulkShared>) -> Result<BulkStats> {
    let a = &shared.args;
    let mut conn = HttpConn::connect(&a.addr, &a.key).await?;
    let mut st = BulkStats::default();
    let (path, media) = match a.batch {
        1 => (
            format!("/api/v1/bals/{}/messages", a.from),
            "application/json",
        ),
        _ => (
            format!("/api/v1/bals/{}/messages/bulk", a.from),
            "application/x-ndjson",
        ),
    };
    let mut body = Vec::new();
    loop {
        let batch = shared.take();
        if batch.is_empty() {
            return Ok(st);
        }
        let asked = batch.len() as u64;
        body.clear();
        for i in batch {
            shared.line(i, &mut body);
            body.push(b'\n');
        }
        let t0 = Instant::now();
        let response = conn.request("POST", &path, Some(media), &body).await?;
        st.request.push(t0.elapsed());
        st.requests += 1;
        st.request_bytes += body.len() as u64;
        let errors_before = st.errors.total();
        let accepted = match (a.batch, response.status) {
            (1, 202) => 1,
            (1, s) => {
                st.errors.add(s.to_string());
                0
            }
            (_, 200) => count_bulk_results(&response.body, &mut st.errors),
            (_, s) => {
                st.errors.add(s.to_string());
                0
            }
        };
        if accepted == 0 && errors_before < 3 {
            eprintln!(
                "http {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        if accepted + (st.errors.total() - errors_before) < asked {
            st.errors.add("missing-lines");
        }
        st.accepted += accepted;
    }
}

/// The lines of a bulk answer with `"status":202`; the others are counted as errors by status.
fn count_bulk_results(body: &[u8], errors: &mut Errors) -> u64 {
    let mut accepted = 0;
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let status = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("status").and_then(serde_json::Value::as_u64));
        match status {
            Some(202) => accepted += 1,
            Some(s) => errors.add(s.to_string()),
            None => errors.add("bad-line"),
        }
    }
    accepted
}

pub async fn run_bulk(a: HttpBulkArgs, pids: &[u32], json: Option<&std::path::Path>) -> Result<()> {
    if a.clients == 0 || a.messages == 0 || a.batch == 0 {
        bail!("--messages, --clients and --batch must be positive");
    }
    let users = Users::new(&a.to, a.users)?;
    let tail = message_tail(&a.kind)?;
    let message_json_bytes = tail.len() + 10 + users.addr(1).len();
    println!("message json   {message_json_bytes} bytes ({})", a.kind);
    let mut counter = a.wait_cmd.clone().map(Counter::Cmd);
    let before = match &mut counter {
        Some(c) => Some(c.count().await?),
        None => None,
    };
    let shared = Arc::new(BulkShared {
        next: AtomicUsize::new(0),
        args: a.clone(),
        users,
        tail,
    });
    let meter = CpuMeter::start(pids);
    let handles: Vec<_> = (0..a.clients)
        .map(|_| tokio::spawn(bulk_worker(shared.clone())))
        .collect();
    let mut st = BulkStats::default();
    for h in handles {
        match h.await? {
            Ok(s) => st.merge(s),
            Err(e) => {
                eprintln!("http client error: {e:#}");
                st.errors.add("io");
            }
        }
    }
    let send_s = meter.elapsed_s();
    let client_s = meter.client_so_far();
    let (delivered, e2e_s, complete) = match (&mut counter, before) {
        (Some(c), Some(b)) => {
            let target = b + st.accepted;
            let got = c
                .wait_for(
                    target,
                    Duration::from_millis(100),
                    Duration::from_secs(a.wait_timeout),
                )
                .await?;
            (Some(got - b), Some(meter.elapsed_s()), Some(got >= target))
        }
        _ => (None, None, None),
    };
    let cpu = meter.stop();
    let per_msg = |s: f64| s * 1000.0 / st.accepted.max(1) as f64;
    let result = HttpBulkResult {
        mode: "http-bulk",
        addr: a.addr.clone(),
        messages: a.messages,
        clients: a.clients,
        batch: a.batch,
        kind: a.kind.clone(),
        message_json_bytes,
        requests: st.requests,
        accepted: st.accepted,
        send_s,
        accepted_msg_per_s: st.accepted as f64 / send_s,
        request_latency: st.request.summary(),
        errors: st.errors,
        delivered,
        e2e_s,
        e2e_msg_per_s: e2e_s.map(|s| st.accepted as f64 / s),
        e2e_complete: complete,
        server_cpu_ms_per_msg: cpu.server_cpu_s.map(per_msg),
        client_cpu_ms_per_msg: per_msg(client_s),
        cpu,
    };
    print_bulk(&result);
    common::write_json(json, &result)
}

fn print_bulk(r: &HttpBulkResult) {
    println!(
        "sent           {} messages in {} requests ({} per request, {} clients) in {:.2} s",
        r.accepted, r.requests, r.batch, r.clients, r.send_s
    );
    println!("accepted       {:.1} msg/s", r.accepted_msg_per_s);
    r.request_latency.print("request");
    println!("errors         {} {:?}", r.errors.total(), r.errors.0);
    if let (Some(d), Some(s)) = (r.delivered, r.e2e_s) {
        let state = match r.e2e_complete {
            Some(true) => "complete",
            _ => "INCOMPLETE (timeout)",
        };
        println!(
            "end to end     {d} of {} copies in {s:.2} s, {state}",
            r.accepted
        );
    }
    common::print_cpu(&r.cpu, r.accepted, "msg");
}

#[derive(Debug, Serialize)]
pub struct HttpStatusResult {
    pub mode: &'static str,
    pub addr: String,
    pub clients: usize,
    pub first_id: u64,
    pub last_id: u64,
    pub duration_s: f64,
    pub lookups: u64,
    pub lookups_per_s: f64,
    pub lookup_latency: LatencySummary,
    pub errors: Errors,
    pub cpu: CpuReport,
    pub server_cpu_ms_per_lookup: Option<f64>,
    pub client_cpu_ms_per_lookup: f64,
}

fn id_range(a: &HttpStatusArgs) -> Result<(u64, u64)> {
    let text = match (&a.ids, &a.ids_file) {
        (Some(ids), None) => ids.replace('-', " "),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        _ => bail!("give one of --ids FIRST-LAST or --ids-file"),
    };
    let mut numbers = text.split_whitespace().map(str::parse::<u64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(first)), Some(Ok(last))) if first <= last => Ok((first, last)),
        _ => bail!("ids: {text:?} is not FIRST LAST"),
    }
}

async fn status_worker(
    a: Arc<HttpStatusArgs>,
    (first, last): (u64, u64),
    measure_from: Instant,
    until: Instant,
    seed: u64,
) -> Result<(Samples, Errors)> {
    let mut conn = HttpConn::connect(&a.addr, &a.key).await?;
    let mut rng = Rng(seed | 1);
    let (mut samples, mut errors) = (Samples::default(), Errors::default());
    loop {
        let t0 = Instant::now();
        if t0 >= until {
            return Ok((samples, errors));
        }
        let id = first + rng.below(last - first + 1);
        let response = conn
            .request("GET", &format!("/api/v1/messages/{id}"), None, &[])
            .await?;
        if t0 < measure_from {
            continue;
        }
        samples.push(t0.elapsed());
        if response.status != 200 {
            if errors.total() < 3 {
                eprintln!(
                    "status {id}: {} {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                );
            }
            errors.add(response.status.to_string());
        }
    }
}

pub async fn run_status(
    a: HttpStatusArgs,
    pids: &[u32],
    json: Option<&std::path::Path>,
) -> Result<()> {
    if a.clients == 0 || a.duration == 0 {
        bail!("--clients and --duration must be positive");
    }
    let range = id_range(&a)?;
    let a = Arc::new(a);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(a.warmup);
    let until = measure_from + Duration::from_secs(a.duration);
    let handles: Vec<_> = (0..a.clients)
        .map(|i| {
            let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1);
            tokio::spawn(status_worker(a.clone(), range, measure_from, until, seed))
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let meter = CpuMeter::start(pids);
    let (mut samples, mut errors) = (Samples::default(), Errors::default());
    for h in handles {
        match h.await? {
            Ok((s, e)) => {
                samples.merge(s);
                errors.merge(e);
            }
            Err(e) => {
                eprintln!("http client error: {e:#}");
                errors.add("io");
            }
        }
    }
    let cpu = meter.stop();
    let lookups = samples.len() as u64;
    let per = |s: f64| s * 1000.0 / lookups.max(1) as f64;
    let result = HttpStatusResult {
        mode: "http-status",
        addr: a.addr.clone(),
        clients: a.clients,
        first_id: range.0,
        last_id: range.1,
        duration_s: cpu.wall_s,
        lookups,
        lookups_per_s: lookups as f64 / cpu.wall_s,
        lookup_latency: samples.summary(),
        errors,
        server_cpu_ms_per_lookup: cpu.server_cpu_s.map(per),
        client_cpu_ms_per_lookup: per(cpu.client_cpu_s),
        cpu,
    };
    let l = &result.lookup_latency;
    println!(
        "lookups        {} over ids {}..={} by {} clients in {:.1} s: {:.0}/s",
        result.lookups, range.0, range.1, result.clients, result.duration_s, result.lookups_per_s
    );
    println!(
        "latency        p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
    );
    println!(
        "errors         {} {:?}",
        result.errors.total(),
        result.errors.0
    );
    common::print_cpu(&result.cpu, result.lookups, "lookup");
    common::write_json(json, &result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_line_is_a_send_request_of_about_40kb() {
        let tail = message_tail("bio").unwrap();
        let line = format!("{{\"to\":[\"user1@bench.test{tail}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["to"][0], "user1@bench.test");
        assert_eq!(v["attachments"].as_array().unwrap().len(), 2);
        assert_eq!(v["headers"]["X-MSS-NIL"], "mssante-bench/0.1");
        // Base64 in JSON as in MIME: about the size of the 40 KB message SMTP sends.
        assert!((36_000..=44_000).contains(&line.len()), "{}", line.len());
    }

    #[test]
    fn bulk_answers_are_counted_per_line() {
        let mut errors = Errors::default();
        let body = b"{\"line\":1,\"status\":202}\n{\"line\":2,\"status\":422}\n";
        assert_eq!(count_bulk_results(body, &mut errors), 1);
        assert_eq!(errors.0["422"], 1);
    }

    #[test]
    fn ids_are_read_as_a_range() {
        let mut a = HttpStatusArgs {
            addr: String::new(),
            key: String::new(),
            ids: Some("5-9".into()),
            ids_file: None,
            clients: 1,
            duration: 1,
            warmup: 0,
        };
        assert_eq!(id_range(&a).unwrap(), (5, 9));
        a.ids = Some("9-5".into());
        assert!(id_range(&a).is_err());
    }
}
