//! `mssante report monthly`: the indicators an operator reports each month
//! (docs/mssante.md §9) — messages sent and received, to and from which operators (by peer
//! domain), open BALs by type, `X-MSS-NIL` counts per software, bounces, relay delays — as
//! text, JSON or CSV.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Subcommand;
use mssante_mail::date::{civil_from_days, days_from_civil};
use mssante_store::{PeriodFigures, Store};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum ReportCommand {
    /// One calendar month (UTC); the last complete month by default.
    Monthly {
        /// The month, `YYYY-MM`.
        #[arg(long)]
        month: Option<String>,
        /// One JSON object.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// `section,key,value` lines.
        #[arg(long)]
        csv: bool,
    },
}

pub async fn run(store: &Store, cmd: ReportCommand) -> Result<()> {
    let ReportCommand::Monthly { month, json, csv } = cmd;
    let (year, month) = match month {
        Some(m) => parse_month(&m)?,
        None => previous_month(mssante_store::now()),
    };
    let from = days_from_civil(year, month, 1) * 86_400;
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let to = days_from_civil(ny, nm, 1) * 86_400;
    let report = as_json(
        &format!("{year:04}-{month:02}"),
        &store.period_figures(from, to).await?,
    );
    match (json, csv) {
        (true, _) => println!("{}", serde_json::to_string_pretty(&report)?),
        (_, true) => print!("{}", as_csv(&report)),
        _ => print!("{}", as_text(&report)),
    }
    Ok(())
}

fn parse_month(text: &str) -> Result<(i32, u32)> {
    let parsed = text
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)));
    match parsed {
        Some((y, m)) if (1970..=9999).contains(&y) && (1..=12).contains(&m) => Ok((y, m)),
        _ => bail!("--month: {text:?} is not a month as YYYY-MM"),
    }
}

fn previous_month(now: i64) -> (i32, u32) {
    let (year, month, _) = civil_from_days(now.div_euclid(86_400));
    if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    }
}

/// The domain of an address, lower-cased; `<>` for the null sender.
fn domain(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, d)) => d.to_ascii_lowercase(),
        None if address.is_empty() => "<>".into(),
        None => address.to_ascii_lowercase(),
    }
}

fn by_domain(counts: &[(String, i64)]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (address, n) in counts {
        *out.entry(domain(address)).or_insert(0) += n;
    }
    out
}

/// Counts by key; an empty key (a message without `X-MSS-NIL`) shows as `(none)`.
fn map(counts: &[(String, i64)]) -> BTreeMap<String, i64> {
    counts
        .iter()
        .map(|(k, n)| match k.is_empty() {
            true => ("(none)".to_string(), *n),
            false => (k.clone(), *n),
        })
        .collect()
}

/// The `p`th percentile (nearest rank) of ascending `values`.
fn percentile(values: &[i64], p: usize) -> i64 {
    match values.len() {
        0 => 0,
        n => values[((n * p).div_ceil(100)).clamp(1, n) - 1],
    }
}

/// The report as one JSON value: what `--json` prints and the other formats are made from.
fn as_json(month: &str, f: &PeriodFigures) -> Value {
    let d = &f.relay_delays;
    json!({
        "month": month,
        "messages": { "sent": f.sent_messages, "received": f.received_messages },
        "sent_to_domains": by_domain(&f.sent_to),
        "received_from_domains": by_domain(&f.received_from),
        "open_bals_by_type": map(&f.open_bals),
        "x_mss_nil_sent": map(&f.sent_nil),
        "x_mss_nil_received": map(&f.received_nil),
        "bounces": f.bounces,
        "relay_delay_seconds": {
            "relayed": d.len(),
            "median": percentile(d, 50),
            "p95": percentile(d, 95),
            "max": d.last().copied().unwrap_or(0),
        },
    })
}

/// Every number of the report as `section,key,value` (sections and keys as in the JSON).
fn as_csv(report: &Value) -> String {
    let mut out = String::from("section,key,value\n");
    for (section, key, value) in rows(report) {
        out.push_str(&format!(
            "{},{},{value}\n",
            csv_field(&section),
            csv_field(&key)
        ));
    }
    out
}

fn rows(report: &Value) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    if let Value::Object(sections) = report {
        for (section, value) in sections {
            match value {
                Value::Object(entries) => rows.extend(
                    entries
                        .iter()
                        .map(|(k, v)| (section.clone(), k.clone(), plain(v))),
                ),
                other => rows.push((section.clone(), String::new(), plain(other))),
            }
        }
    }
    rows
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn as_text(report: &Value) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for (section, key, value) in rows(report) {
        if key.is_empty() {
            out.push_str(&format!("{section:<24} {value}\n"));
            continue;
        }
        if section != last {
            out.push_str(&format!("{section}\n"));
            last = section.clone();
        }
        out.push_str(&format!("  {key:<40} {value:>10}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_percentiles() {
        assert_eq!(parse_month("2026-02").unwrap(), (2026, 2));
        assert!(parse_month("2026-13").is_err() && parse_month("26").is_err());
        assert_eq!(
            previous_month(days_from_civil(2026, 1, 15) * 86_400),
            (2025, 12)
        );
        assert_eq!(percentile(&[1, 2, 3, 4], 50), 2);
        assert_eq!(percentile(&[5], 95), 5);
        assert_eq!(percentile(&[], 95), 0);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
