//! `mssante migrate`: copies BALs from another operator's IMAP server (ADR 0032,
//! docs/migration.md). The work is in `portability/src/migrate/`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use mssante_portability::migrate::{self, Account, Endpoint, Options, Secret};
use mssante_store::Store;

#[derive(Args)]
pub struct MigrateArgs {
    /// The source server: imaps://HOST[:PORT] (implicit TLS) or imap://HOST[:PORT] (STARTTLS).
    #[arg(long)]
    source: String,
    /// The CA (PEM) that issued the source's certificate; Mozilla's roots otherwise.
    #[arg(long)]
    source_ca: Option<PathBuf>,
    /// A CSV file of accounts: source login, password or xoauth2:TOKEN_FILE, target BAL.
    #[arg(long, conflicts_with_all = ["login", "bal"])]
    csv: Option<PathBuf>,
    /// One account: its login at the source.
    #[arg(long, requires = "bal")]
    login: Option<String>,
    /// One account: the BAL here that receives it (it must exist).
    #[arg(long, requires = "login")]
    bal: Option<String>,
    /// One account: read the password from standard input (one line).
    #[arg(long, conflicts_with_all = ["password_file", "xoauth2_token_file"])]
    password_stdin: bool,
    /// One account: read the password from this file.
    #[arg(long, conflicts_with = "xoauth2_token_file")]
    password_file: Option<PathBuf>,
    /// One account: log in with AUTHENTICATE XOAUTH2 and the access token in this file.
    #[arg(long)]
    xoauth2_token_file: Option<PathBuf>,
    /// Accounts migrated at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// One JSON object per BAL on standard output instead of the text report.
    #[arg(long)]
    json: bool,
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

fn accounts(args: &MigrateArgs) -> Result<Vec<Account>> {
    if let Some(csv) = &args.csv {
        let text = std::fs::read_to_string(csv)
            .with_context(|| format!("cannot read {}", csv.display()))?;
        return match migrate::accounts::parse(&csv.display().to_string(), &text) {
            Ok(accounts) if accounts.is_empty() => bail!("{}: no account in it", csv.display()),
            Ok(accounts) => Ok(accounts),
            Err(errors) => bail!("{}\nnothing was migrated", errors.join("\n")),
        };
    }
    let (Some(login), Some(bal)) = (&args.login, &args.bal) else {
        bail!("say what to migrate: --csv FILE, or --login LOGIN --bal ADDRESS with a secret");
    };
    let secret = if let Some(path) = &args.xoauth2_token_file {
        Secret::TokenFile(path.clone())
    } else if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Secret::Password(first_line(&text))
    } else if args.password_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Secret::Password(first_line(&text))
    } else {
        bail!(
            "--login needs a secret: --password-stdin, --password-file FILE or --xoauth2-token-file FILE"
        );
    };
    if matches!(&secret, Secret::Password(p) if p.is_empty()) {
        bail!("the password is empty");
    }
    Ok(vec![Account {
        origin: "command line".into(),
        login: login.clone(),
        secret,
        target: bal.clone(),
    }])
}

pub async fn run(store: &Store, args: MigrateArgs) -> Result<()> {
    let source = Endpoint::parse(&args.source).map_err(anyhow::Error::msg)?;
    let tls = migrate::client::tls_config(args.source_ca.as_deref()).context("--source-ca")?;
    let accounts = accounts(&args)?;
    let options = Options {
        source,
        tls,
        jobs: usize::from(args.jobs),
    };
    let total = accounts.len();
    eprintln!(
        "migrating {total} account(s) from {}, {} at a time",
        options.source, options.jobs
    );
    let json = args.json;
    let reports = migrate::migrate_all(store, &options, accounts, |report| {
        if json {
            println!(
                "{}",
                serde_json::to_string(report).expect("a report serialises")
            );
        } else {
            print!("{}", report.text());
        }
    })
    .await;
    let unsafe_bals: Vec<String> = reports
        .iter()
        .filter(|r| !r.safe())
        .map(|r| format!("{} ({})", r.target, r.origin))
        .collect();
    let copied: u64 = reports.iter().map(|r| r.copied()).sum();
    eprintln!(
        "{total} account(s): {} safe to cut over, {copied} message(s) copied",
        total - unsafe_bals.len()
    );
    if !unsafe_bals.is_empty() {
        bail!(
            "{} BAL(s) not safe to cut over yet: {}",
            unsafe_bals.len(),
            unsafe_bals.join(", ")
        );
    }
    Ok(())
}
