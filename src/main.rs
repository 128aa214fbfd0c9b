//! The `mssante` binary: command line, configuration and wiring only.

mod admin;
mod config;
mod queue;
mod serve;
mod tls;

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mssante", version, about = "MSSanté operator mail server")]
struct Cli {
    /// Configuration file (TOML); without one, the embedded defaults apply.
    #[arg(long, global = true, env = "MSSANTE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve,
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Local domains.
    #[command(subcommand)]
    Domain(admin::DomainCommand),
    /// Mailboxes (BAL).
    #[command(subcommand)]
    Bal(admin::BalCommand),
    /// National directory: import, LDAP sync, lookups, history.
    #[command(subcommand)]
    Directory(mssante_directory::DirectoryCommand),
    /// The MSSanté whitelist (trust space): sync, show, check a domain.
    #[command(subcommand)]
    Trust(mssante_trust::TrustCommand),
    /// The outbound queue: list, show, retry, delete.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// What became of a message sent from here (DSN and MDN tracking).
    #[command(subcommand)]
    Message(queue::MessageCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Prints a complete, commented configuration.
    Example,
    /// Checks the configuration and prints the values in force.
    Check,
}

fn main() {
    tune_allocator();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// glibc raises its mmap threshold after large blocks are freed, so argon2id's 19 MiB
/// working memory ends up in per-thread arenas that are never given back (measured: 1.6 MB
/// per idle IMAP session after a login storm, 19 KB with a fixed threshold). A fixed
/// threshold keeps large blocks in mmap, returned to the system on free.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    let config = config::Config::load(cli.config.as_deref())?;
    init_logging(&config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(config).await,
            Command::Config(ConfigCommand::Check) => {
                println!("{config:#?}");
                Ok(())
            }
            Command::Config(ConfigCommand::Example) => unreachable!("handled above"),
            Command::Domain(cmd) => admin::domain(&open_store(&config).await?, cmd).await,
            Command::Bal(cmd) => {
                let publish = config.directory.publication.is_some();
                admin::bal(&open_store(&config).await?, cmd, publish).await
            }
            Command::Directory(cmd) => {
                mssante_directory::run(cmd, &open_store(&config).await?, &config.directory).await
            }
            Command::Trust(cmd) => {
                mssante_trust::cli::run(cmd, &config.trust, &config.data_dir).await
            }
            Command::Queue(cmd) => queue::queue(&open_store(&config).await?, cmd).await,
            Command::Message(cmd) => queue::message(&open_store(&config).await?, cmd).await,
        }
    })
}

async fn open_store(config: &config::Config) -> Result<mssante_store::Store> {
    mssante_store::Store::open(&config.database_url, &config.data_dir)
        .await
        .map_err(|e| {
            anyhow!(
                "database_url: cannot open {}: {e}",
                serve::redact(&config.database_url)
            )
        })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
