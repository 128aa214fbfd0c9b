//! Delivery status notifications owed to senders (RFC 3461 §6, RFC 3464): the store marks
//! what is due when an outcome is recorded; this task builds each report and delivers it
//! like any message — from the null sender, into the sender's BAL when it is ours, or back
//! through the queue to the sender's operator. A report is never reported on (null sender).
//!
//! Reports do not depend on relaying: a local delivery owes its `delivered` report whether
//! or not the queue worker runs (it is off without `[trust] ca_file`), so the server starts
//! this task on its own.

use std::time::Duration;

use mssante_mail::dsn::{Notify, Ret};
use mssante_receipts::{Action, DsnRecipient, DsnReport, build_dsn};
use mssante_store::{
    Address, DueReport, IncomingMessage, MessageMeta, RcptDisposition, RcptLookup, RecipientSpec,
    Source, now,
};

const BATCH: i64 = 200;

/// What the report task needs.
pub struct Reports {
    pub store: mssante_store::Store,
    /// Our name as reporting MTA and in report Message-IDs.
    pub hostname: String,
    /// The relay's give-up age, announced in `delayed` reports (Will-Retry-Until).
    pub give_up_after: Duration,
    /// How often an idle task looks for due reports.
    pub poll_interval: Duration,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Sends due reports until shutdown.
pub async fn run(reports: Reports) {
    loop {
        match send_due(&reports).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!("reports: {e}"),
        }
        tokio::select! {
            _ = reports.shutdown.cancelled() => return,
            _ = tokio::time::sleep(reports.poll_interval) => {}
        }
    }
}

/// Sends every report due now; returns how many recipients were reported on.
pub async fn send_due(reports: &Reports) -> anyhow::Result<usize> {
    let store = &reports.store;
    let due = store.due_reports(BATCH).await?;
    let mut done = 0;
    for group in group_reports(due) {
        let ids: Vec<i64> = group.iter().map(|r| r.recipient_id).collect();
        // At least once: the report is stored durably before it is marked sent.
        send_one(reports, &group).await?;
        store.clear_reports(&ids).await?;
        done += ids.len();
    }
    Ok(done)
}

/// One report per (message, action): all recipients that ended the same way together.
fn group_reports(due: Vec<DueReport>) -> Vec<Vec<DueReport>> {
    let mut groups: Vec<Vec<DueReport>> = Vec::new();
    for r in due {
        match groups
            .iter_mut()
            .find(|g| g[0].message_id == r.message_id && g[0].action == r.action)
        {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

fn dsn_recipient(r: &DueReport, reports: &Reports) -> DsnRecipient {
    let action = r.action;
    let will_retry_until =
        (action == Action::Delayed).then(|| r.received_at + reports.give_up_after.as_secs() as i64);
    DsnRecipient {
        original_recipient: r.orcpt.clone(),
        final_recipient: r.address.clone(),
        action,
        status: r
            .dsn_status
            .clone()
            .unwrap_or_else(|| action.default_status().into()),
        remote_mta: r.remote_mta.clone(),
        diagnostic: match action {
            Action::Delivered => None,
            _ => r.last_error.clone(),
        },
        last_attempt: Some(r.updated_at),
        will_retry_until,
    }
}

/// A unique Message-ID for a report.
fn report_message_id(hostname: &str, r: &DueReport) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "dsn.{}.{}.{}.{}@{hostname}",
        r.message_id,
        r.recipient_id,
        now(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn send_one(reports: &Reports, group: &[DueReport]) -> anyhow::Result<()> {
    let ctx = reports;
    let first = &group[0];
    let Ok(sender) = Address::parse(&first.mail_from) else {
        tracing::warn!(sender = %first.mail_from, "report dropped: the sender address is not valid");
        return Ok(());
    };
    let disposition = match ctx.store.lookup_recipient(&sender).await? {
        RcptLookup::Local { bal, .. } => RcptDisposition::Local { bal_id: bal.id },
        RcptLookup::NotLocal => RcptDisposition::Remote,
        RcptLookup::UnknownLocal => {
            tracing::warn!(sender = %sender, "report dropped: the sender's BAL no longer exists");
            return Ok(());
        }
    };
    let original = ctx.store.read_blob(&first.blob_hash).await?;
    let report = DsnReport {
        reporting_mta: &ctx.hostname,
        received_from_mta: None,
        envid: first.envid.as_deref(),
        arrival_date: first.received_at,
        sender: sender.as_str(),
        original: &original,
        // RFC 3461 §4.3: without RET, the MTA chooses; headers only keeps reports small.
        return_full: first.ret == Some(Ret::Full),
        recipients: group.iter().map(|r| dsn_recipient(r, reports)).collect(),
        now: now(),
        message_id: report_message_id(&ctx.hostname, first),
    };
    let raw = build_dsn(&report);
    let message_id = report.message_id.clone();
    ctx.store
        .deliver(IncomingMessage {
            raw,
            mail_from: String::new(),
            envid: None,
            ret: None,
            source: Source::Report,
            auth_bal_id: None,
            meta: MessageMeta {
                message_id: Some(message_id),
                subject: None,
                ..MessageMeta::default()
            },
            recipients: vec![RecipientSpec {
                address: sender,
                orcpt: None,
                notify: Some(Notify::NEVER),
                disposition,
            }],
        })
        .await?;
    tracing::info!(message = first.message_id, action = %first.action, recipients = group.len(), "delivery report sent");
    Ok(())
}
