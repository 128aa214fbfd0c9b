//! `summary` mode: medians of the key figures over several JSON result files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::stats::median;

/// Figures worth comparing between runs (JSON pointers).
const KEYS: &[&str] = &[
    "/accepted_msg_per_s",
    "/e2e_msg_per_s",
    "/final_reply_latency/p50_ms",
    "/final_reply_latency/p99_ms",
    "/server_cpu_ms_per_msg",
    "/request_latency/p50_ms",
    "/request_latency/p99_ms",
    "/lookups_per_s",
    "/lookup_latency/p50_ms",
    "/lookup_latency/p99_ms",
    "/lookup_latency/p999_ms",
    "/server_cpu_ms_per_lookup",
    "/client_cpu_ms_per_msg",
    "/ops_per_s",
    "/logins_per_s",
    "/login_cycle/p50_ms",
    "/login_cycle/p99_ms",
    "/authenticate/p50_ms",
    "/authenticate/p99_ms",
    "/server_cpu_ms_per_login",
    "/server_cpu_ms_per_op",
    "/non_login/p50_ms",
    "/non_login/p90_ms",
    "/non_login/p99_ms",
    "/non_login_plain/p50_ms",
    "/non_login_plain/p99_ms",
    "/non_login_qresync/p50_ms",
    "/non_login_qresync/p99_ms",
    "/pss_kb_per_session",
    "/rss_kb_per_session",
    "/kernel_per_session/slab_kb",
    "/kernel_kb_per_session",
    "/total_kb_per_session",
    "/slab_kb_per_pair",
    "/client_end_kb",
    "/server_memory/pss_kb",
    "/server_memory/rss_kb",
];

/// (key, values in file order, median) for every key present in at least one file.
pub fn medians(runs: &[Value]) -> Vec<(String, Vec<f64>, f64)> {
    KEYS.iter()
        .filter_map(|k| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.pointer(k).and_then(Value::as_f64))
                .collect();
            (!v.is_empty()).then(|| (k[1..].replace('/', "."), v.clone(), median(&v)))
        })
        .collect()
}

pub fn run(files: &[PathBuf]) -> Result<()> {
    let runs = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
            serde_json::from_str(&text).with_context(|| f.display().to_string())
        })
        .collect::<Result<Vec<Value>>>()?;
    println!("{} runs", runs.len());
    for (k, vals, med) in medians(&runs) {
        let list: Vec<String> = vals.iter().map(|v| format!("{v:.2}")).collect();
        println!("{k:<30} median {med:>10.2}   [{}]", list.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_present_keys() {
        let runs: Vec<Value> = [
            r#"{"accepted_msg_per_s": 10, "final_reply_latency": {"p50_ms": 1.0}}"#,
            r#"{"accepted_msg_per_s": 30, "final_reply_latency": {"p50_ms": 3.0}}"#,
            r#"{"accepted_msg_per_s": 20}"#,
        ]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
        let m = medians(&runs);
        assert_eq!(
            m[0],
            ("accepted_msg_per_s".into(), vec![10.0, 30.0, 20.0], 20.0)
        );
        assert_eq!(m[1].0, "final_reply_latency.p50_ms");
        assert_eq!(m[1].2, 2.0);
        assert_eq!(m.len(), 2);
    }
}
