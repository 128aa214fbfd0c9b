//! `login` mode: how many logins per second a server takes, issue 12's benchmark. Each of
//! `-c` clients loops until `--duration`: connect, TLS (implicit or STARTTLS), AUTHENTICATE
//! (XOAUTH2 with a Pro Santé Connect token from `psc-issuer`, or PLAIN with the password;
//! both with SASL-IR), SELECT INBOX, LOGOUT, close. Reports logins/s, the latency of the
//! whole cycle and of AUTHENTICATE alone (p50/p90/p99), and server CPU per login.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::common::{self, CpuMeter, CpuReport, Users};
use crate::imap::ImapSession;
use crate::imap_args::ImapTarget;
use crate::imap_run::load_avg;
use crate::stats::OpStats;
use crate::stats::{Errors, LatencySummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// AUTHENTICATE PLAIN with `--password`.
    Plain,
    /// AUTHENTICATE XOAUTH2 with the user's token from `--tokens`.
    Xoauth2,
}

#[derive(Debug, clap::Args, Clone)]
pub struct LoginArgs {
    #[command(flatten)]
    pub target: ImapTarget,
    /// Concurrent clients.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,
    /// Length of the timed run in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    #[arg(long, value_enum, default_value = "plain")]
    pub mechanism: Mechanism,
    /// With xoauth2: the `address<TAB>token` file `psc-issuer` wrote.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct LoginResult {
    pub mode: &'static str,
    pub addr: String,
    pub tls: crate::net::TlsMode,
    pub mechanism: Mechanism,
    pub clients: usize,
    pub users: usize,
    pub duration_s: f64,
    pub logins: u64,
    pub logins_per_s: f64,
    /// Connect to the end of LOGOUT.
    pub login_cycle: Option<LatencySummary>,
    pub authenticate: Option<LatencySummary>,
    pub errors: Errors,
    pub cpu: CpuReport,
    pub server_cpu_ms_per_login: Option<f64>,
    pub load_avg: String,
}

/// The SASL message each user logs in with.
fn credentials(a: &LoginArgs, users: &Users) -> Result<Vec<(String, Vec<u8>)>> {
    let addresses = users.all();
    match a.mechanism {
        Mechanism::Plain => Ok(addresses
            .into_iter()
            .map(|u| {
                let msg = format!("\0{u}\0{}", a.target.password).into_bytes();
                (u, msg)
            })
            .collect()),
        Mechanism::Xoauth2 => {
            let path = a
                .tokens
                .as_ref()
                .context("--mechanism xoauth2 needs --tokens")?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let tokens: HashMap<&str, &str> =
                text.lines().filter_map(|l| l.split_once('\t')).collect();
            addresses
                .into_iter()
                .map(|u| {
                    let token = tokens
                        .get(u.as_str())
                        .with_context(|| format!("no token for {u} in {}", path.display()))?;
                    let msg = format!("user={u}\x01auth=Bearer {token}\x01\x01").into_bytes();
                    Ok((u, msg))
                })
                .collect()
        }
    }
}

fn sasl_name(m: Mechanism) -> &'static str {
    match m {
        Mechanism::Plain => "PLAIN",
        Mechanism::Xoauth2 => "XOAUTH2",
    }
}

/// One connect → AUTHENTICATE → SELECT → LOGOUT.
async fn cycle(a: &LoginArgs, user: &str, message: &[u8], st: &mut OpStats) -> Result<()> {
    let t0 = Instant::now();
    let mut s = ImapSession::connect(&a.target.addr, a.target.tls).await?;
    let r = st
        .timed(
            "authenticate",
            s.authenticate(sasl_name(a.mechanism), message),
        )
        .await?;
    if !r.ok() {
        bail!("login {user} refused: {}", r.text);
    }
    let sel = s.command("SELECT INBOX").await?;
    if !sel.ok() {
        bail!("SELECT for {user}: {}", sel.text);
    }
    s.logout().await;
    st.ops.entry("login_cycle").or_default().push(t0.elapsed());
    Ok(())
}

async fn client(
    a: Arc<LoginArgs>,
    creds: Arc<Vec<(String, Vec<u8>)>>,
    k: usize,
    end: Instant,
) -> OpStats {
    let mut st = OpStats::default();
    let mut n = k;
    while Instant::now() < end {
        let (user, message) = &creds[n % creds.len()];
        if let Err(e) = cycle(&a, user, message, &mut st).await {
            st.errors.add("login");
            eprintln!("login cycle error: {e:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n += a.clients;
    }
    st
}

pub async fn run(a: LoginArgs, pids: &[u32], json: Option<&std::path::Path>) -> Result<()> {
    let result = measure(a, pids).await?;
    print(&result);
    common::write_json(json, &result)
}

/// The timed run, after one login that must succeed.
pub async fn measure(a: LoginArgs, pids: &[u32]) -> Result<LoginResult> {
    let users = Users::new(&a.target.user, a.target.users)?;
    let creds = Arc::new(credentials(&a, &users)?);
    // One login first: a wrong setup fails here, not as a stream of errors.
    let mut probe = OpStats::default();
    cycle(&a, &creds[0].0, &creds[0].1, &mut probe)
        .await
        .context("first login")?;
    let a = Arc::new(a);
    let meter = CpuMeter::start(pids);
    let end = Instant::now() + Duration::from_secs(a.duration);
    let tasks: Vec<_> = (0..a.clients)
        .map(|k| tokio::spawn(client(a.clone(), creds.clone(), k, end)))
        .collect();
    let mut all = OpStats::default();
    for t in tasks {
        all.merge(t.await?);
    }
    let cpu = meter.stop();
    let cycles = all
        .ops
        .get("login_cycle")
        .map(|s| s.len() as u64)
        .unwrap_or(0);
    let result = LoginResult {
        mode: "login",
        addr: a.target.addr.clone(),
        tls: a.target.tls,
        mechanism: a.mechanism,
        clients: a.clients,
        users: a.target.users,
        duration_s: cpu.wall_s,
        logins: cycles,
        logins_per_s: cycles as f64 / cpu.wall_s,
        login_cycle: all.ops.get("login_cycle").map(|s| s.summary()),
        authenticate: all.ops.get("authenticate").map(|s| s.summary()),
        errors: std::mem::take(&mut all.errors),
        server_cpu_ms_per_login: cpu
            .server_cpu_s
            .filter(|_| cycles > 0)
            .map(|s| s * 1000.0 / cycles as f64),
        cpu,
        load_avg: load_avg(),
    };
    Ok(result)
}

fn print(r: &LoginResult) {
    println!(
        "login {:?} on {} ({:?}), {} clients, {:.1} s: {} logins, {:.1} logins/s",
        r.mechanism, r.addr, r.tls, r.clients, r.duration_s, r.logins, r.logins_per_s
    );
    for (name, l) in [("cycle", &r.login_cycle), ("authenticate", &r.authenticate)] {
        if let Some(l) = l {
            println!(
                "{name:<13} p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            );
        }
    }
    if r.errors.total() > 0 {
        println!("errors         {:?}", r.errors.0);
    }
    common::print_cpu(&r.cpu, r.logins, "login");
    println!("load           {}", r.load_avg);
}

#[cfg(test)]
mod tests {
    //! The workload against our IMAP server in process (SQLite), its PSC verifier pointed at
    //! `psc-issuer`'s provider: both mechanisms log in, every cycle completes.
    use std::sync::Arc;

    use mssante_store::{BalType, NewBal, Store};
    use mssante_testkit::{Engine, TestDb};

    use super::*;
    use crate::net::TlsMode;

    const PASSWORD: &str = "bench-pass";

    fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn xoauth2_and_plain_login_cycles_complete() {
        let db = TestDb::new(Engine::Sqlite);
        let store = Store::open(&db.url, db.data_path()).await.unwrap();
        store.add_domain("bench.test").await.unwrap();
        let hash = mssante_store::hash_password(PASSWORD).unwrap();
        for n in 1..=3u64 {
            let address = format!("user{n}@bench.test");
            store
                .create_bal(&NewBal {
                    address: address.clone(),
                    bal_type: BalType::Per,
                    rpps: Some(format!("{}", 10_000_000_000 + n)),
                    adeli: None,
                    finess: None,
                    siret: None,
                    display_name: None,
                    password_hash: None,
                    liste_rouge: false,
                })
                .await
                .unwrap();
            store.set_bal_password(&address, &hash).await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let (tokens, env) = (dir.path().join("tokens"), dir.path().join("env"));
        let issuer = tokio::spawn(crate::psc::run(crate::psc::IssuerArgs {
            tokens: tokens.clone(),
            env: env.clone(),
            user: "user{n}@bench.test".into(),
            users: 3,
            rpps_base: 10_000_000_000,
            lifetime: 600,
        }));
        while !env.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let env = std::fs::read_to_string(&env).unwrap();
        let value = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap()
                .to_string()
        };
        let verifier = mssante_auth::PscVerifier::from_config(&mssante_auth::PscConfig {
            jwks_url: Some(value("PSC_JWKS_URL=")),
            issuers: vec![value("PSC_ISSUER=")],
            ..Default::default()
        })
        .unwrap();
        let ctx = Arc::new(mssante_imap::ImapContext {
            store: store.clone(),
            config: Default::default(),
            tls: Some(tls_acceptor()),
            shutdown: tokio_util::sync::CancellationToken::new(),
            psc: Some(Arc::new(verifier)),
            auth_guard: Default::default(),
            client_ca: None,
        });
        let listener = mssante_imap::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let tracker = tokio_util::task::TaskTracker::new();
        tokio::spawn(mssante_imap::serve(
            listener,
            mssante_imap::ListenerKind::Imaps,
            ctx.clone(),
            tracker,
        ));
        for (mechanism, tokens) in [
            (Mechanism::Xoauth2, Some(tokens.clone())),
            (Mechanism::Plain, None),
        ] {
            let args = LoginArgs {
                target: ImapTarget {
                    addr: addr.clone(),
                    tls: TlsMode::Implicit,
                    user: "user{n}@bench.test".into(),
                    users: 3,
                    password: PASSWORD.into(),
                    delegate_prefix: None,
                },
                clients: 4,
                duration: 1,
                mechanism,
                tokens,
            };
            let r = measure(args, &[]).await.unwrap();
            assert!(r.logins >= 4, "{mechanism:?}: {r:?}");
            assert_eq!(r.errors.total(), 0, "{mechanism:?}: {r:?}");
            assert_eq!(r.login_cycle.as_ref().unwrap().count as u64, r.logins);
        }
        // A refused login stops the run before timing: failures are never counted as logins.
        let bad = LoginArgs {
            target: ImapTarget {
                addr,
                tls: TlsMode::Implicit,
                user: "user{n}@bench.test".into(),
                users: 3,
                password: "wrong-password".into(),
                delegate_prefix: None,
            },
            clients: 1,
            duration: 1,
            mechanism: Mechanism::Plain,
            tokens: None,
        };
        assert!(
            measure(bad, &[]).await.is_err(),
            "the first login must fail"
        );
        ctx.shutdown.cancel();
        issuer.abort();
    }
}
