//! Benchmark of the directory import and lookups (not a test; figures go to BENCHMARKS.md).
//!
//! `cargo run --release -p mssante-directory --example directory_bench -- sqlite|postgres FILE [URL]`
//! imports FILE into a fresh database (PostgreSQL: an ephemeral cluster from the testkit),
//! imports it again (the daily replacement: comparison, switch, removal of the old rows),
//! then times 2,000 address lookups and 2,000 name-prefix lookups, and prints one JSON line
//! with the import time, the process's peak RSS and the lookup p50/p99 in microseconds.
//! The duration of each import phase (load, index builds, comparison, swap) goes to stderr.

use std::time::{Duration, Instant};

use mssante_directory::{ImportOptions, Progress, import_extraction};
use mssante_store::{NameQuery, Store};
use mssante_testkit::{Engine, TestDb};

/// Prints the store's "directory import phase" events to stderr (no tracing-subscriber here:
/// a dev-dependency would change the lock file other crates share).
struct PhaseLog;

#[derive(Default)]
struct PhaseFields {
    import_id: u64,
    phase: String,
    ms: u64,
}

impl tracing::field::Visit for PhaseFields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "ms" => self.ms = value,
            "import_id" => self.import_id = value,
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.record_u64(field, value as u64);
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "phase" {
            self.phase = value.to_string();
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl tracing::Subscriber for PhaseLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= tracing::Level::INFO
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = PhaseFields::default();
        event.record(&mut fields);
        if !fields.phase.is_empty() {
            eprintln!(
                "import {} phase {:<40} {:>7} ms",
                fields.import_id, fields.phase, fields.ms
            );
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> u128 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_micros()
}

/// Every 250th address and name of the file (read again, outside the timed part, keeping
/// only the samples: the process's peak memory stays the import's).
fn samples(path: &str) -> (Vec<String>, Vec<String>) {
    let mut addresses = Vec::new();
    let mut names = Vec::new();
    let mut n = 0usize;
    mssante_directory::extraction::read_extraction(std::path::Path::new(path), |_, row| {
        if n.is_multiple_of(250) && addresses.len() < 2000 {
            addresses.push(row.address.clone());
            if row.name.chars().count() >= 3 {
                names.push(row.name.chars().take(3).collect());
            }
        }
        n += 1;
        Ok(())
    })
    .unwrap();
    (addresses, names)
}

#[tokio::main]
async fn main() {
    tracing::subscriber::set_global_default(PhaseLog).expect("first subscriber");
    let args: Vec<String> = std::env::args().collect();
    let engine = match args.get(1).map(String::as_str) {
        Some("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };
    let file = args
        .get(2)
        .expect("usage: directory_bench sqlite|postgres FILE");
    // An optional third argument: the URL of an existing, empty database (to look at its plans
    // afterwards); by default a fresh one (PostgreSQL: the testkit's ephemeral cluster).
    let db = TestDb::new(engine);
    let url = args.get(3).cloned().unwrap_or_else(|| db.url.clone());
    let store = Store::open(&url, db.data_path()).await.unwrap();
    let options = ImportOptions {
        max_drop: 0.10,
        force: false,
    };
    // `DIRECTORY_BENCH_LOOKUPS_ONLY=1` with a URL: only the lookups, on what is there.
    let lookups_only = std::env::var_os("DIRECTORY_BENCH_LOOKUPS_ONLY").is_some();
    let (mut rows, mut rejected, mut import_secs, mut reimport_secs) = (0, 0, 0.0, 0.0);
    if !lookups_only {
        let started = Instant::now();
        let report = import_extraction(&store, file, options, &mut Progress::hidden())
            .await
            .unwrap();
        import_secs = started.elapsed().as_secs_f64();
        (rows, rejected) = (report.record.rows, report.record.rejected);
        // The next day's import: compares with the current generation, switches, drops the
        // old one.
        let started = Instant::now();
        let again = import_extraction(&store, file, options, &mut Progress::hidden())
            .await
            .unwrap();
        reimport_secs = started.elapsed().as_secs_f64();
        assert_eq!(
            (
                again.record.added,
                again.record.removed,
                again.record.modified
            ),
            (0, 0, 0)
        );
    }
    let rss = peak_rss_mb();
    let (addresses, names) = samples(file);
    let mut by_address = Vec::new();
    for address in &addresses {
        let t = Instant::now();
        assert!(
            !store
                .directory_by_address(address)
                .await
                .unwrap()
                .is_empty()
        );
        by_address.push(t.elapsed());
    }
    let mut by_name = Vec::new();
    for name in &names {
        let query = NameQuery {
            name: name.clone(),
            limit: 20,
            ..Default::default()
        };
        let t = Instant::now();
        assert!(
            !store
                .directory_search_name(&query)
                .await
                .unwrap()
                .is_empty()
        );
        by_name.push(t.elapsed());
    }
    by_address.sort();
    by_name.sort();
    println!(
        "{{\"engine\":\"{engine:?}\",\"rows\":{},\"rejected\":{},\"import_s\":{import_secs:.2},\"reimport_s\":{reimport_secs:.2},\"peak_rss_mb\":{rss:.0},\
         \"address_p50_us\":{},\"address_p99_us\":{},\"name_p50_us\":{},\"name_p99_us\":{}}}",
        rows,
        rejected,
        percentile(&by_address, 0.5),
        percentile(&by_address, 0.99),
        percentile(&by_name, 0.5),
        percentile(&by_name, 0.99),
    );
}
