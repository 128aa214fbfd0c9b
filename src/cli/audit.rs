//! `mssante audit BAL [--since] [--author] [--json]`: the audit trail of a BAL (grants and
//! what delegates did, ADR 0016); `mssante audit verify [BAL]`: checks the hash chains and
//! names the first entry that does not follow.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use mssante_mail::date::{UtcDateTime, parse_iso_date};
use mssante_store::{AuditEntry, AuditQuery, Store};
use serde_json::json;

#[derive(Args)]
pub struct AuditArgs {
    /// A BAL address, or `verify`.
    target: String,
    /// With `verify`: only this BAL's chain.
    bal: Option<String>,
    /// Entries from this day on (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    since: Option<String>,
    /// Only what this author did (a BAL address, a national id, `operator`).
    #[arg(long)]
    author: Option<String>,
    /// One JSON object per line instead of columns.
    #[arg(long)]
    json: bool,
}

pub async fn run(store: &Store, args: AuditArgs) -> Result<()> {
    if args.target == "verify" {
        let v = store.verify_audit(args.bal.as_deref()).await?;
        return match v.first_bad {
            None => {
                println!("audit trail intact: {} entries verified", v.entries);
                Ok(())
            }
            Some((bal, seq, id, why)) => {
                bail!("audit trail broken: {bal} entry {seq} (row id {id}): {why}")
            }
        };
    }
    if let Some(extra) = &args.bal {
        bail!("unexpected argument {extra:?}: `mssante audit BAL` or `mssante audit verify [BAL]`");
    }
    let since = args
        .since
        .as_deref()
        .map(|d| {
            parse_iso_date(d).ok_or_else(|| anyhow!("--since: {d:?} is not a date (YYYY-MM-DD)"))
        })
        .transpose()?;
    let query = AuditQuery {
        since,
        author: args.author.clone(),
        ..AuditQuery::default()
    };
    for entry in store.audit_entries(&args.target, &query).await? {
        if args.json {
            println!("{}", entry_json(&entry));
        } else {
            println!("{}", entry_line(&entry));
        }
    }
    Ok(())
}

fn timestamp(unix: i64) -> String {
    let t = UtcDateTime::from_unix(unix);
    format!("{:04}-{:02}-{:02}T{}Z", t.year, t.month, t.day, t.clock())
}

fn entry_line(e: &AuditEntry) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        e.seq,
        timestamp(e.at),
        e.author,
        e.action,
        dash(&e.folder),
        dash(&e.message_ids),
        dash(&e.client),
        e.result,
        dash(&e.detail)
    )
}

fn entry_json(e: &AuditEntry) -> serde_json::Value {
    json!({
        "seq": e.seq, "at": e.at, "time": timestamp(e.at), "bal": e.bal, "author": e.author,
        "action": e.action, "folder": e.folder,
        "message_ids": e.message_ids.split_whitespace().collect::<Vec<_>>(),
        "client": e.client, "result": e.result, "detail": e.detail, "hash": e.hash,
    })
}
