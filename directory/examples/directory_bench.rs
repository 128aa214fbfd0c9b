//! Benchmark of the directory import and lookups (not a test; figures go to BENCHMARKS.md).
//!
//! `cargo run --release -p mssante-directory --example directory_bench -- sqlite|postgres FILE`
//! imports FILE into a fresh database (PostgreSQL: an ephemeral cluster from the testkit),
//! imports it again (the daily replacement: comparison, switch, removal of the old rows),
//! then times 2,000 address lookups and 2,000 name-prefix lookups, and prints one JSON line
//! with the import time, the process's peak RSS and the lookup p50/p99 in microseconds.

use std::time::{Duration, Instant};

use mssante_directory::{ImportOptions, Progress, import_extraction};
use mssante_store::{NameQuery, Store};
use mssante_testkit::{Engine, TestDb};

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

/// Every 250th address and name of the file (read again, outside the timed part).
fn samples(path: &str) -> (Vec<String>, Vec<String>) {
    let mut addresses = Vec::new();
    let mut names = Vec::new();
    let mut rows = Vec::new();
    mssante_directory::extraction::read_extraction(std::path::Path::new(path), |_, row| {
        rows.push((row.address.clone(), row.name.clone()));
        Ok(())
    })
    .unwrap();
    for (address, name) in rows.iter().step_by(250).take(2000) {
        addresses.push(address.clone());
        if name.chars().count() >= 3 {
            names.push(name.chars().take(3).collect());
        }
    }
    (addresses, names)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let engine = match args.get(1).map(String::as_str) {
        Some("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };
    let file = args
        .get(2)
        .expect("usage: directory_bench sqlite|postgres FILE");
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path()).await.unwrap();
    let options = ImportOptions {
        max_drop: 0.10,
        force: false,
    };
    let started = Instant::now();
    let report = import_extraction(&store, file, options, &mut Progress::hidden())
        .await
        .unwrap();
    let import_secs = started.elapsed().as_secs_f64();
    // The next day's import: compares with the current generation, switches, drops the old one.
    let started = Instant::now();
    let again = import_extraction(&store, file, options, &mut Progress::hidden())
        .await
        .unwrap();
    let reimport_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        (
            again.record.added,
            again.record.removed,
            again.record.modified
        ),
        (0, 0, 0)
    );
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
        report.record.rows,
        report.record.rejected,
        percentile(&by_address, 0.5),
        percentile(&by_address, 0.99),
        percentile(&by_name, 0.5),
        percentile(&by_name, 0.99),
    );
}
