//! `mssante queue` (the outbound queue) and `mssante message status` (what became of a
//! message we sent: SPEC.md §6), against the configured database.

use anyhow::{Result, bail};
use clap::Subcommand;
use mssante_store::{QueueItem, Store};

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Lists the recipients waiting in the outbound queue.
    List,
    /// Shows one queue entry (recipient id from `queue list`).
    Show { id: i64 },
    /// Makes entries due now: one id, or all with --all.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        #[arg(long)]
        all: bool,
    },
    /// Takes an entry out of the queue as failed (no report is sent).
    Delete { id: i64 },
}

#[derive(Subcommand)]
pub enum MessageCommand {
    /// Per-recipient status of a message sent from here: queued, relayed, delivered, failed,
    /// and the read receipts (MDN) received.
    Status {
        /// The Message-ID header, with or without <>.
        message_id: String,
    },
    /// Messages per sending software (`X-MSS-NIL`, SPEC.md §5), for the operator's statistics.
    NilStats,
}

fn time(unix: Option<i64>) -> String {
    unix.map(mssante_receipts::rfc5322_date)
        .unwrap_or_else(|| "-".into())
}

fn print_item(item: &QueueItem) {
    println!("id:            {}", item.id);
    println!("recipient:     {}", item.address);
    println!("sender:        <{}>", item.mail_from);
    println!("status:        {}", item.status);
    println!("message:       #{} ({} bytes)", item.message_id, item.size);
    println!("received:      {}", time(Some(item.received_at)));
    println!("attempts:      {}", item.attempts);
    println!("next attempt:  {}", time(item.next_attempt));
    println!(
        "last error:    {}",
        item.last_error.as_deref().unwrap_or("-")
    );
    println!(
        "notify:        {}",
        item.notify.as_deref().unwrap_or("(default)")
    );
    if let Some(envid) = &item.envid {
        println!("envid:         {envid}");
    }
}

pub async fn queue(store: &Store, cmd: QueueCommand) -> Result<()> {
    match cmd {
        QueueCommand::List => {
            let items = store.queue_list().await?;
            for i in &items {
                println!(
                    "{:>8}  {:<40}  attempts {:>3}  next {}  {}",
                    i.id,
                    i.address,
                    i.attempts,
                    time(i.next_attempt),
                    i.last_error.as_deref().unwrap_or("")
                );
            }
            println!("{} recipient(s) queued", items.len());
        }
        QueueCommand::Show { id } => match store.queue_item(id).await? {
            Some(item) => print_item(&item),
            None => bail!("queue: no entry {id}"),
        },
        QueueCommand::Retry { id, all: _ } => {
            let n = store.queue_retry(id).await?;
            if id.is_some() && n == 0 {
                bail!("queue: entry {} is not queued", id.unwrap_or_default());
            }
            println!("{n} recipient(s) due now");
        }
        QueueCommand::Delete { id } => {
            if !store.queue_delete(id).await? {
                bail!("queue: entry {id} is not queued");
            }
            println!("entry {id} removed from the queue (marked failed, no report sent)");
        }
    }
    Ok(())
}

pub async fn message(store: &Store, cmd: MessageCommand) -> Result<()> {
    let message_id = match cmd {
        MessageCommand::Status { message_id } => message_id,
        MessageCommand::NilStats => {
            for (nil, count) in store.x_mss_nil_counts().await? {
                println!("{count:>10}  {nil}");
            }
            return Ok(());
        }
    };
    let found = store.message_status(&message_id).await?;
    if found.is_empty() {
        bail!("message: no message with Message-ID {message_id} was sent from here");
    }
    for m in found {
        println!(
            "message #{}  <{}>",
            m.id,
            m.message_id_hdr.unwrap_or_default()
        );
        println!("  from:     <{}>", m.mail_from);
        println!("  subject:  {}", m.subject.unwrap_or_default());
        println!("  received: {}", time(Some(m.received_at)));
        for r in m.recipients {
            let read = match &r.disposition {
                Some(mdn) if mdn.error_codes.is_empty() => format!("  {}", mdn.state),
                Some(mdn) => format!(
                    "  {} (error {})",
                    mdn.state,
                    mdn.error_codes
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => String::new(),
            };
            println!(
                "  {:<40} {}{}  {}",
                r.address,
                r.state,
                read,
                r.detail.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}
