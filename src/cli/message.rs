//! `mssante message …`: what became of a message sent from here (DSN and MDN tracking,
//! docs/mssante.md §6) and per-software statistics.

use anyhow::{Result, bail};
use clap::Subcommand;
use mssante_store::Store;

use super::queue::time;

#[derive(Subcommand)]
pub enum MessageCommand {
    /// Per-recipient status of a message sent from here: queued, relayed, delivered, failed,
    /// and the read receipts (MDN) received.
    Status {
        /// The Message-ID header, with or without <>.
        message_id: String,
    },
    /// Messages per sending software (`X-MSS-NIL`, docs/mssante.md §5), for the operator's statistics.
    NilStats,
}

pub async fn run(store: &Store, cmd: MessageCommand) -> Result<()> {
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
