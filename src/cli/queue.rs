//! `mssante queue …`: the outbound queue (list, show, retry, delete).

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

pub(super) fn time(unix: Option<i64>) -> String {
    unix.map(mssante_mail::date::rfc5322)
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
        item.notify
            .map_or("(default)".to_string(), |n| n.to_string())
    );
    if let Some(envid) = &item.envid {
        println!("envid:         {envid}");
    }
}

pub async fn run(store: &Store, cmd: QueueCommand) -> Result<()> {
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
