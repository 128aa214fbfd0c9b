//! The command line, all of it: the clap definitions and one module per command group.
//! The work itself is done by library crates (`store`, `directory`, `trust`, `portability`); these
//! modules parse, call and print.

mod access;
mod apikey;
mod audit;
mod backup;
mod bal;
mod bench;
mod client_cert;
mod config;
mod db;
mod directory;
mod dns;
mod domain;
mod init;
mod message;
mod migrate;
mod portability;
mod queue;
mod report;
mod retention;
mod trust;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(name = "mssante", version, about = "MSSanté operator mail server")]
pub struct Cli {
    /// Configuration file (TOML); without one, the embedded defaults apply.
    #[arg(long, global = true, env = "MSSANTE_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines as text or JSON objects (one per line); overrides `[log] format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<crate::config::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server (and initialises its data dir on first start).
    Serve,
    /// Initialises the data dir and database without starting the server, for provisioning
    /// domains and BALs before the first `serve`.
    Init,
    /// The database schema: status, and `migrate`, the explicit upgrade step.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Local domains.
    #[command(subcommand)]
    Domain(domain::DomainCommand),
    /// Mailboxes (BAL).
    #[command(subcommand)]
    Bal(bal::BalCommand),
    /// Who may open which ORG/CAB BAL with a Pro Santé Connect identity (habilitations).
    #[command(subcommand)]
    Access(access::AccessCommand),
    /// Who works in a BAL on its holder's behalf (delegations): grant, revoke, list.
    #[command(subcommand)]
    Delegation(access::DelegationCommand),
    /// Client certificates that open application BALs (SASL EXTERNAL): bind, unbind, list.
    #[command(subcommand)]
    ClientCert(client_cert::ClientCertCommand),
    /// The audit trail of a BAL (`mssante audit BAL`), or `mssante audit verify [BAL]` to
    /// check its hash chain.
    Audit(audit::AuditArgs),
    /// Keys of the HTTP API (laboratory and hospital systems): create, list, revoke.
    #[command(subcommand)]
    Apikey(apikey::ApikeyCommand),
    /// National directory: import, LDAP sync, lookups, history.
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
    /// The MSSanté whitelist (trust space): sync, show, check a domain.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// The outbound queue: list, show, retry, delete.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Indicators for the trust-space manager: `report monthly [--json|--csv]`.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Retention: expire old traces, warn then suspend or close inactive BALs ([retention]).
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// What became of a message sent from here (DSN and MDN tracking).
    #[command(subcommand)]
    Message(message::MessageCommand),
    /// DNS records to publish for a local domain (MX, SRV, autoconfig).
    #[command(subcommand)]
    Dns(dns::DnsCommand),
    /// Online copy of a SQLite instance (database snapshot, bodies, certificate, whitelist)
    /// into a new folder, while the server runs.
    Backup {
        /// A folder that does not exist yet or is empty.
        dest: PathBuf,
    },
    /// Restores a backup into the configured data dir, which must not hold an instance yet.
    Restore {
        /// A folder written by `mssante backup`.
        src: PathBuf,
    },
    /// Writes BALs (one, a domain or all) with their folders, flags, UIDs, grants and
    /// receipts state to an archive (tar of Maildirs + manifest.json, optionally zstd).
    Export(portability::ExportArgs),
    /// Recreates the BALs of an archive written by `export` (checked first; resumable).
    Import(portability::ImportArgs),
    /// Checks what breaks in production (configuration, database, certificate, whitelist,
    /// DNS, listeners, disk, PSC): one line per check with its fix; exits 1 on a FAIL.
    Doctor(crate::doctor::DoctorArgs),
    /// Copies BALs from another operator's IMAP server (one, or a CSV list): folders, flags,
    /// dates, subscriptions; re-runs copy only what is new; ends with a verification report.
    Migrate(migrate::MigrateArgs),
    /// Benchmarks only: inserts many tracked messages in large transactions and prints the
    /// status lookup's query plans (bench/README.md, `http-status`).
    #[command(hide = true)]
    BenchSeed(bench::BenchSeedArgs),
}

/// Runs one command line to its end.
pub fn run(cli: Cli) -> Result<()> {
    if let Command::Config(config::ConfigCommand::Example) = cli.command {
        return config::example();
    }
    if let Command::Doctor(args) = cli.command {
        return crate::doctor::run(cli.config.as_deref(), args);
    }
    let config = Config::load(cli.config.as_deref())?;
    init_logging(
        &config.log_level,
        cli.log_format.unwrap_or(config.log_format),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => crate::serve::run(config).await,
            Command::Init => init::run(&config).await,
            Command::Config(cmd) => config::run(cmd, &config),
            Command::Db(cmd) => db::run(&config, cmd).await,
            Command::Domain(cmd) => domain::run(&open_store(&config).await?, cmd).await,
            Command::Bal(cmd) => {
                let publish = config.directory.publication.is_some();
                bal::run(&open_store(&config).await?, cmd, publish).await
            }
            Command::Directory(cmd) => {
                directory::run(cmd, &open_store(&config).await?, &config.directory).await
            }
            Command::Trust(cmd) => {
                let client_ca = config.client_ca()?;
                trust::run(cmd, &config.trust, client_ca, instance_dir(&config)?).await
            }
            Command::Access(cmd) => access::run(&open_store(&config).await?, cmd).await,
            Command::Delegation(cmd) => {
                access::run_delegation(&open_store(&config).await?, cmd).await
            }
            Command::ClientCert(cmd) => client_cert::run(&open_store(&config).await?, cmd).await,
            Command::Audit(args) => audit::run(&open_store(&config).await?, args).await,
            Command::Apikey(cmd) => apikey::run(&open_store(&config).await?, cmd).await,
            Command::Queue(cmd) => queue::run(&open_store(&config).await?, cmd).await,
            Command::Report(cmd) => report::run(&open_store(&config).await?, cmd).await,
            Command::Retention(cmd) => {
                retention::run(&open_store(&config).await?, &config, cmd).await
            }
            Command::Message(cmd) => message::run(&open_store(&config).await?, cmd).await,
            Command::Dns(cmd) => dns::run(&open_store(&config).await?, &config, cmd).await,
            Command::Backup { dest } => backup::backup(&config, &dest).await,
            Command::Restore { src } => backup::restore(&config, &src).await,
            Command::Export(args) => portability::export(&open_store(&config).await?, args).await,
            Command::Import(args) => portability::import(&open_store(&config).await?, args).await,
            Command::Doctor(_) => unreachable!("run before the configuration is loaded"),
            Command::Migrate(args) => migrate::run(&open_store(&config).await?, args).await,
            Command::BenchSeed(args) => bench::seed(&open_store(&config).await?, args).await,
        }
    })
}

/// The data dir of the instance an administration command works on, said on stderr. It must
/// be one `serve` has initialised: a command run from the wrong folder or with the wrong
/// configuration would otherwise create an empty instance and report on it.
fn instance_dir(config: &Config) -> Result<&Path> {
    let dir = &config.data_dir;
    let from = match &config.file {
        Some(file) => format!("configuration {}", file.display()),
        None => "no configuration file: embedded defaults".into(),
    };
    eprintln!("data dir {} ({from})", dir.display());
    if !crate::config::is_initialised(dir) {
        bail!(
            "data_dir: {} is not an initialised data dir (no blobs/ folder): `mssante serve` \
             creates it on first start, `mssante init` without serving; or is another \
             configuration meant (--config, MSSANTE_CONFIG)?",
            dir.display()
        );
    }
    Ok(dir)
}

async fn open_store(config: &Config) -> Result<mssante_store::Store> {
    instance_dir(config)?;
    crate::serve::open_store(config).await
}

/// The log filter: `RUST_LOG` if set and valid, else `level`; either way rustls's
/// per-handshake complaints about what a client sent (an IP address as TLS server name,
/// which RFC 6066 §3 forbids, is common) are kept out unless the filter names rustls: one
/// WARN per connection filled the log. `RUST_LOG=info,rustls=warn` shows them again.
fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| level.to_string());
    let spec = if spec.contains("rustls") {
        spec
    } else {
        format!("{spec},rustls::msgs::handshake=error")
    };
    tracing_subscriber::EnvFilter::try_new(spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level))
}

fn init_logging(level: &str, format: crate::config::LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(level))
        .with_writer(std::io::stderr);
    match format {
        crate::config::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Fields at the top level (`{"timestamp":…,"level":…,"target":…,"queue_id":…}`):
        // what collectors index and `jq` selects without a path.
        crate::config::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}
