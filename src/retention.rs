//! Retention policy (`[retention]`, README "Retention"): traces expire after a period, and
//! BALs without a login are warned, then suspended or closed — never silently: each step
//! is printed by `mssante retention run` and logged by the daily run inside `serve`.

use std::time::Duration;

use anyhow::{Result, bail};
use mssante_store::{
    Address, BalStatus, InactiveBal, IncomingMessage, MessageMeta, RcptDisposition, RecipientSpec,
    Source, Store,
};
use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;
/// Traces are kept at least six months (issue 17; the operator may keep them longer).
const MIN_TRACES_DAYS: u64 = 183;
/// Audit trails too (issue 14).
const MIN_AUDIT_DAYS: u64 = 183;

/// `[retention]` as written and in force.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Delivery traces (`recipients` rows out of the queue, DSN/MDN tracking events) older
    /// than this many days are deleted; at least 183.
    pub traces_days: u64,
    /// Audit trail entries (grants, delegates' actions) older than this many days are
    /// removed, leaving an anchor that `mssante audit verify` checks from; at least 183.
    pub audit_days: u64,
    /// Rows deleted per transaction.
    pub batch: u64,
    /// A BAL without a login for this many days is inactive (the CNIL asked one year).
    pub inactive_days: u64,
    /// What happens to an inactive BAL once its holder was warned: `warn` (only warn and
    /// list), `suspend` or `close`.
    pub inactive_action: InactiveAction,
    /// Days between the warning and the action.
    pub notice_days: u64,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InactiveAction {
    Warn,
    Suspend,
    Close,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            traces_days: 365,
            audit_days: 365,
            batch: 1000,
            inactive_days: 365,
            inactive_action: InactiveAction::Warn,
            notice_days: 30,
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> Result<()> {
        if self.traces_days < MIN_TRACES_DAYS {
            bail!(
                "retention.traces_days: {} is less than the {MIN_TRACES_DAYS} days (six months) \
                 traces must be kept",
                self.traces_days
            );
        }
        if self.audit_days < MIN_AUDIT_DAYS {
            bail!(
                "retention.audit_days: {} is less than the {MIN_AUDIT_DAYS} days (six months) \
                 audit trails must be kept",
                self.audit_days
            );
        }
        if self.batch == 0 {
            bail!("retention.batch: must be at least 1");
        }
        if self.inactive_days == 0 {
            bail!("retention.inactive_days: must be at least 1");
        }
        Ok(())
    }
}

/// One line per thing done (or, with `dry_run`, that would be done).
pub async fn run(
    store: &Store,
    config: &RetentionConfig,
    hostname: &str,
    dry_run: bool,
) -> Result<Vec<String>> {
    let now = mssante_store::now();
    let mut report = Vec::new();
    let cutoff = now - config.traces_days as i64 * DAY;
    if dry_run {
        report.push(format!(
            "traces: would delete those older than {} days (before {})",
            config.traces_days,
            mssante_mail::date::iso_date(cutoff)
        ));
    } else {
        let expired = store.expire_traces(cutoff, config.batch as i64).await?;
        report.push(format!(
            "traces: deleted {} delivery records and {} tracking events older than {} days \
             (before {}), in {} batches",
            expired.recipients,
            expired.tracking_events,
            config.traces_days,
            mssante_mail::date::iso_date(cutoff),
            expired.batches
        ));
    }
    report.push(prune_audit(store, config, now, dry_run).await?);
    let inactive = store
        .inactive_bals(now - config.inactive_days as i64 * DAY)
        .await?;
    for bal in inactive {
        report.push(handle_inactive(store, config, hostname, &bal, now, dry_run).await?);
    }
    Ok(report)
}

/// Audit entries past `audit_days` leave, each chain keeping an anchor (ADR 0016).
async fn prune_audit(
    store: &Store,
    config: &RetentionConfig,
    now: i64,
    dry_run: bool,
) -> Result<String> {
    let cutoff = now - config.audit_days as i64 * DAY;
    let before = mssante_mail::date::iso_date(cutoff);
    if dry_run {
        return Ok(format!(
            "audit: would remove entries older than {} days (before {before}), an anchor kept \
             in each trail",
            config.audit_days
        ));
    }
    let pruned = store.prune_audit(cutoff).await?;
    Ok(format!(
        "audit: removed {} entries older than {} days (before {before}) from {} trails, each \
         with an anchor entry",
        pruned.entries, config.audit_days, pruned.chains
    ))
}

/// Warns the holder of an inactive BAL, or applies the action once the notice has run out.
async fn handle_inactive(
    store: &Store,
    config: &RetentionConfig,
    hostname: &str,
    inactive: &InactiveBal,
    now: i64,
    dry_run: bool,
) -> Result<String> {
    let address = inactive.bal.address.as_str();
    let since = match inactive.last_login_at {
        Some(t) => format!("last login {}", mssante_mail::date::iso_date(t)),
        None => format!(
            "never logged in, created {}",
            mssante_mail::date::iso_date(inactive.bal.created_at)
        ),
    };
    let Some(warned_at) = inactive.warned_at else {
        if !dry_run {
            deliver_warning(store, config, hostname, inactive, now).await?;
            store.mark_inactivity_warned(inactive.bal.id, now).await?;
        }
        return Ok(format!(
            "inactive BAL {address} ({since}): holder {}warned{}",
            if dry_run { "would be " } else { "" },
            action_clause(config, now)
        ));
    };
    let due = warned_at + config.notice_days as i64 * DAY;
    let status = match config.inactive_action {
        InactiveAction::Warn => None,
        InactiveAction::Suspend => Some(BalStatus::Suspended),
        InactiveAction::Close => Some(BalStatus::Closed),
    };
    match status {
        Some(status) if now >= due => {
            if !dry_run {
                store.set_bal_status(address, status).await?;
            }
            Ok(format!(
                "inactive BAL {address} ({since}, warned {}): {}{}",
                mssante_mail::date::iso_date(warned_at),
                if dry_run { "would be " } else { "" },
                status.as_str()
            ))
        }
        _ => Ok(format!(
            "inactive BAL {address} ({since}): warned {}{}",
            mssante_mail::date::iso_date(warned_at),
            action_clause(config, warned_at)
        )),
    }
}

/// ", suspended on or after DATE" for a warning given at `warned_at`, nothing for `warn`.
fn action_clause(config: &RetentionConfig, warned_at: i64) -> String {
    let due = mssante_mail::date::iso_date(warned_at + config.notice_days as i64 * DAY);
    match config.inactive_action {
        InactiveAction::Warn => String::new(),
        InactiveAction::Suspend => format!(", suspended on or after {due}"),
        InactiveAction::Close => format!(", closed on or after {due}"),
    }
}

/// The warning, delivered into the BAL's INBOX (its holder reads it at the next login, and
/// a forwarding client sees it at once).
async fn deliver_warning(
    store: &Store,
    config: &RetentionConfig,
    hostname: &str,
    inactive: &InactiveBal,
    now: i64,
) -> Result<()> {
    let address = inactive.bal.address.as_str();
    let consequence = match config.inactive_action {
        InactiveAction::Warn => "Your operator may suspend it.".to_string(),
        InactiveAction::Suspend => format!(
            "Without a login before {}, it will be suspended.",
            mssante_mail::date::iso_date(now + config.notice_days as i64 * DAY)
        ),
        InactiveAction::Close => format!(
            "Without a login before {}, it will be closed.",
            mssante_mail::date::iso_date(now + config.notice_days as i64 * DAY)
        ),
    };
    let message_id = format!("<inactive.{}.{now}@{hostname}>", inactive.bal.id);
    let raw = format!(
        "From: MSSante postmaster <postmaster@{hostname}>\r\nTo: <{address}>\r\n\
         Subject: Your MSSante mailbox is inactive\r\nDate: {}\r\nMessage-ID: {message_id}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Nobody has logged into {address} for {} days.\r\n{consequence}\r\n\
         Logging in (IMAP, webmail or Pro Sante Connect) keeps it open.\r\n",
        mssante_mail::date::rfc5322(now),
        config.inactive_days
    );
    store
        .deliver(IncomingMessage {
            raw: raw.into_bytes(),
            mail_from: String::new(),
            envid: None,
            ret: None,
            source: Source::Report,
            auth_bal_id: None,
            meta: MessageMeta {
                message_id: Some(message_id),
                subject: Some("Your MSSante mailbox is inactive".into()),
                ..MessageMeta::default()
            },
            recipients: vec![RecipientSpec {
                address: Address::parse(address)?,
                orcpt: None,
                notify: None,
                disposition: RcptDisposition::Local {
                    bal_id: inactive.bal.id,
                },
            }],
        })
        .await?;
    Ok(())
}

/// The daily run inside `serve`, logged line by line.
pub async fn run_daily(
    store: Store,
    config: RetentionConfig,
    hostname: String,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        match run(&store, &config, &hostname, false).await {
            Ok(lines) => lines
                .iter()
                .for_each(|line| tracing::info!(target: "retention", "{line}")),
            Err(e) => tracing::warn!(target: "retention", "retention run failed: {e:#}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(DAY as u64)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
