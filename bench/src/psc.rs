//! `psc-issuer`: a stand-in for Pro Santé Connect for the `login` workload. It serves a JWKS
//! (one RSA-2048 key: PSC signs RS256) on a loopback port with the testkit's OIDC provider and
//! writes one access token per user (`address<TAB>token` lines), PSC-shaped, whose identity
//! (`SubjectNameID`) is the national id `8` + RPPS of that user's PER BAL as `ours.sh`
//! creates them (RPPS = `--rpps-base` + n). Runs until killed.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use mssante_testkit::oidc::{OidcOptions, OidcProvider};

use crate::common::Users;

#[derive(Debug, clap::Args, Clone)]
pub struct IssuerArgs {
    /// Where the tokens are written (`address<TAB>token` per line).
    #[arg(long)]
    pub tokens: PathBuf,
    /// Where `PSC_JWKS_URL=…` and `PSC_ISSUER=…` are written (shell `eval`-able), once the
    /// JWKS is served.
    #[arg(long)]
    pub env: PathBuf,
    /// Login pattern; {n} runs from 1 to --users.
    #[arg(long, default_value = "user{n}@bench.test")]
    pub user: String,
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// User n's RPPS is this + n (ours.sh: 10000000000 + n).
    #[arg(long, default_value_t = 10_000_000_000)]
    pub rpps_base: u64,
    /// Token lifetime in seconds (PSC's are ~120 s; a run needs them valid throughout).
    #[arg(long, default_value_t = 3600)]
    pub lifetime: u64,
}

pub async fn run(a: IssuerArgs) -> Result<()> {
    let provider = OidcProvider::start(OidcOptions::plain());
    provider.add_rsa_key("bench-rs256");
    let users = Users::new(&a.user, a.users)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut lines = String::new();
    for n in 1..=a.users {
        let national_id = format!("8{}", a.rpps_base + n as u64);
        let mut claims = provider.psc_claims(&national_id);
        claims["exp"] = serde_json::json!(now + a.lifetime);
        let token = provider.token("bench-rs256", &claims);
        lines.push_str(&format!("{}\t{token}\n", users.addr(n)));
    }
    std::fs::write(&a.tokens, lines).with_context(|| format!("writing {}", a.tokens.display()))?;
    let env = format!(
        "PSC_JWKS_URL={}\nPSC_ISSUER={}\n",
        provider.jwks_url(),
        provider.issuer()
    );
    std::fs::write(&a.env, env).with_context(|| format!("writing {}", a.env.display()))?;
    eprintln!(
        "psc-issuer: JWKS at {}, {} tokens in {}",
        provider.jwks_url(),
        a.users,
        a.tokens.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(provider);
    Ok(())
}
