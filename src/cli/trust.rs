//! `mssante trust …`: sync the whitelist by hand, show it, check a domain and DN (the
//! whitelist itself, its sync and checks are the `trust` crate's).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, anyhow, bail};

use mssante_trust::crl::Outcome;
use mssante_trust::{Dn, PeerVerifier, Revocation, Trust, TrustConfig, TrustList};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TrustCommand {
    /// Download the whitelist now, verify its checksum and keep it as the last good copy.
    Sync {
        /// A file path or https:// URL instead of the configured `[trust] whitelist`.
        /// The configured checksum is then not used: give --checksum for this source.
        #[arg(long)]
        source: Option<String>,
        /// A file path or https:// URL of the SHA-256 to verify against.
        #[arg(long)]
        checksum: Option<String>,
    },
    /// Download the CRLs of `[trust] crl_urls` now and keep each one that is signed by its CA,
    /// not expired and not older than the kept one (ADR 0041); a running server takes them at
    /// its next refresh or SIGHUP. Fails when one URL gave nothing usable.
    Crl,
    /// Print the kept whitelist: generation date, counts and entries.
    Show {
        /// Only this domain's entries.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Say whether a domain is listed, with which DNs, and whether a given DN is allowed.
    /// Fails (non-zero exit) when the domain is not listed or the DN is not allowed.
    Check {
        domain: String,
        /// A DN such as "CN=mss.example.fr,OU=…,O=…,ST=…,C=FR".
        #[arg(long)]
        dn: Option<String>,
    },
}

/// Runs a `trust` subcommand and prints its report on stdout. `client_ca`: the verifier of
/// `[tls] client_ca_file`, whose CA's CRLs are kept too.
pub async fn run(
    cmd: TrustCommand,
    config: &TrustConfig,
    client_ca: Option<PeerVerifier>,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let mut out = String::new();
    let result = match cmd {
        TrustCommand::Crl => crl(config, client_ca, data_dir, &mut out).await,
        cmd => execute(cmd, config, data_dir, &mut out).await,
    };
    print!("{out}");
    result
}

/// Same as [`run`], writing the report into `out` (what `run` prints).
async fn execute(
    cmd: TrustCommand,
    config: &TrustConfig,
    data_dir: &Path,
    out: &mut String,
) -> anyhow::Result<()> {
    let trust = Trust::open(config, data_dir)?;
    match cmd {
        TrustCommand::Sync { source, checksum } => {
            let report = match source {
                Some(src) => trust.sync_from(&src, checksum.as_deref()).await?,
                None => {
                    let src = config.whitelist.as_deref().ok_or_else(|| {
                        anyhow!("whitelist: no source configured: set [trust] whitelist or pass --source")
                    })?;
                    let sum = checksum.as_deref().or(config.checksum.as_deref());
                    trust.sync_from(src, sum).await?
                }
            };
            writeln!(
                out,
                "whitelist synced from {}\ngenerated: {}\nentries: {}\ndomains: {}\nsha256: {}\nkept in: {}",
                report.source,
                report.generated_at,
                report.entries,
                report.domains,
                report.sha256,
                trust.kept_copy_path().display()
            )?;
            Ok(())
        }
        TrustCommand::Crl => unreachable!("handled by `run`"),
        TrustCommand::Show { domain } => show(loaded(&trust)?.as_ref(), domain.as_deref(), out),
        TrustCommand::Check { domain, dn } => {
            check(loaded(&trust)?.as_ref(), &domain, dn.as_deref(), out)
        }
    }
}

/// `mssante trust crl`: one line per URL.
async fn crl(
    config: &TrustConfig,
    client_ca: Option<PeerVerifier>,
    data_dir: &Path,
    out: &mut String,
) -> anyhow::Result<()> {
    if config.crl_urls.is_empty() {
        bail!("no CRL source: set [trust] crl_urls");
    }
    let verifiers: Vec<PeerVerifier> = [config.peer_verifier()?, client_ca]
        .into_iter()
        .flatten()
        .collect();
    if verifiers.is_empty() {
        bail!("no CA to check CRLs with: set [trust] ca_file or [tls] client_ca_file");
    }
    let revocation = Revocation::open(
        &config.crl_urls,
        config.crl_refresh_secs,
        data_dir,
        verifiers,
    )?;
    let mut refused = 0;
    for (url, outcome) in revocation.refresh().await {
        match outcome {
            Outcome::Installed(what) => writeln!(out, "{url}: kept {what}")?,
            Outcome::Unchanged(what) => writeln!(out, "{url}: unchanged, {what}")?,
            Outcome::Refused(why) => {
                refused += 1;
                writeln!(out, "{url}: {why}")?
            }
        }
    }
    if refused > 0 {
        bail!("{refused} CRL source(s) gave nothing usable (see above)");
    }
    Ok(())
}

fn loaded(trust: &Trust) -> anyhow::Result<std::sync::Arc<TrustList>> {
    trust.snapshot().ok_or_else(|| {
        anyhow!(
            "no whitelist has been synced yet ({} does not exist); run `mssante trust sync`",
            trust.kept_copy_path().display()
        )
    })
}

fn show(list: &TrustList, domain: Option<&str>, out: &mut String) -> anyhow::Result<()> {
    writeln!(out, "generated: {}", list.generated_at())?;
    writeln!(out, "entries: {}", list.entries().len())?;
    writeln!(out, "domains: {}", list.domain_count())?;
    let entries: Vec<_> = match domain {
        Some(d) => list.entries_for(d),
        None => list.entries().iter().collect(),
    };
    if let (Some(d), true) = (domain, entries.is_empty()) {
        writeln!(out, "{d}: not listed")?;
    }
    for e in entries {
        writeln!(out, "{}\t{}\t{}", e.domain, e.dn, one_line(&e.description))?;
    }
    Ok(())
}

/// Some descriptions span several lines; `show` prints one entry per line (tab-separated).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn check(list: &TrustList, domain: &str, dn: Option<&str>, out: &mut String) -> anyhow::Result<()> {
    let entries = list.entries_for(domain);
    if entries.is_empty() {
        bail!(
            "{domain} is not listed in the MSSanté whitelist (generated {})",
            list.generated_at()
        );
    }
    writeln!(
        out,
        "{domain}: listed with {} operator certificate DN(s)",
        entries.len()
    )?;
    for e in &entries {
        writeln!(out, "  {}", e.dn)?;
    }
    let Some(dn) = dn else {
        return Ok(());
    };
    let dn = Dn::parse(dn).context("--dn")?;
    if list.dn_allowed(domain, &dn) {
        writeln!(out, "{dn}: allowed for {domain}")?;
        Ok(())
    } else {
        bail!("{dn} is not allowed for {domain}: it is not one of the DNs listed above")
    }
}
