//! `mssante serve`: opens the store, binds the listeners, runs until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use mssante_smtp::{ListenerKind, SmtpContext};
use mssante_store::SchemaPolicy;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// How long sessions get to finish after a shutdown signal (a message in DATA completes;
/// idle sessions are told 421 at once).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub async fn run(config: Config) -> Result<()> {
    // Before any listener opens: a SIGTERM that comes while the server starts up (a test
    // that stops it at once, systemd) stops it gracefully too.
    let signals = Signals::install()?;
    config.check_files()?;
    let _lock = crate::lock::lock_data_dir(&config.data_dir)?;
    println!("data dir   {}", config.data_dir.display());
    let store = open_store(&config).await?;
    let identity =
        crate::tls::Identity::load(config.tls.as_ref(), &config.data_dir, &config.hostname)?;
    let certificates = crate::tls::Certificates::new(&identity)?;
    // Application BALs log in with a client certificate (SASL EXTERNAL, ADR 0029): the
    // handshake asks for one, optionally, and the chain is checked after it.
    let client_ca = config.client_ca()?;
    let tls = crate::tls::server_config(
        &certificates,
        client_ca.as_ref().map(|ca| ca.tls_client_verifier()),
    )?;
    if let Some(ca) = &config.client_ca_file {
        println!(
            "external   SASL EXTERNAL on (IMAP, submission), client CA {}",
            ca.display()
        );
    }
    let shutdown = CancellationToken::new();
    let trust = open_trust(&config).await?;
    warn_unlisted_local_domains(&config, &store, &trust).await?;
    let verifier = config.trust.peer_verifier()?;
    let revocation = open_revocation(&config, [&verifier, &client_ca])?;
    let mx_tls = match &verifier {
        Some(v) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            &certificates,
            Some(v.tls_client_verifier()),
        )?)),
        None => None,
    };
    let psc = start_psc(&config, &shutdown)?;
    let auth_guard = Arc::new(mssante_net::AuthGuard::new(config.login.clone()));
    let ctx = Arc::new(SmtpContext {
        store: store.clone(),
        config: config.smtp.clone(),
        tls: Some(tokio_rustls::TlsAcceptor::from(tls)),
        shutdown: shutdown.clone(),
        trust: mssante_smtp::TrustPolicy {
            enforce: config.trust.enforce,
            list: Some(trust.clone()),
            verifier: verifier.clone(),
            mx_tls,
            revocation: revocation.clone(),
        },
        psc: psc.clone(),
        auth_guard: auth_guard.clone(),
        client_ca: client_ca.clone(),
    });
    tokio::spawn(trust.clone().run_refresh(shutdown.clone()));
    if let Some(revocation) = &revocation {
        // On every node, like the whitelist: each enforces the CRLs it holds (ADR 0041).
        tokio::spawn(revocation.clone().run_refresh(shutdown.clone()));
    }
    let periodic = tokio::spawn(crate::periodic::lead(store.clone(), shutdown.clone(), {
        let (config, store) = (config.clone(), store.clone());
        move |jobs| periodic_jobs(&config, &store, jobs)
    }));
    start_relay(
        &config,
        &store,
        &certificates,
        trust.clone(),
        verifier,
        &shutdown,
    )?;

    let smtp_listeners = [
        (
            ListenerKind::Mx,
            "smtp",
            config.listen.smtp,
            "MX, inbound from operators",
        ),
        (
            ListenerKind::Submission,
            "submission",
            config.listen.submission,
            "submission, STARTTLS + AUTH",
        ),
        (
            ListenerKind::Submissions,
            "submissions",
            config.listen.submissions,
            "submission, implicit TLS + AUTH",
        ),
    ];
    let tracker = TaskTracker::new();
    let mut accept_loops = Vec::new();
    for (kind, key, addr, what) in smtp_listeners {
        let Some(addr) = addr else { continue };
        let listener = bind(key, addr, mssante_smtp::bind(addr)).await?;
        println!("listening  {key:<12} {addr:<22} {what}");
        accept_loops.push(tokio::spawn(mssante_smtp::serve(
            listener,
            kind,
            ctx.clone(),
            tracker.clone(),
        )));
    }
    let imap_ctx = Arc::new(mssante_imap::ImapContext {
        store: store.clone(),
        config: config.imap.clone(),
        tls: ctx.tls.clone(),
        shutdown: shutdown.clone(),
        psc: psc.clone(),
        auth_guard,
        client_ca,
    });
    let imap_listeners = [
        (
            mssante_imap::ListenerKind::Imap,
            "imap",
            config.listen.imap,
            "IMAP, STARTTLS then login",
        ),
        (
            mssante_imap::ListenerKind::Imaps,
            "imaps",
            config.listen.imaps,
            "IMAP, implicit TLS",
        ),
    ];
    for (kind, key, addr, what) in imap_listeners {
        let Some(addr) = addr else { continue };
        let listener = bind(key, addr, mssante_imap::bind(addr)).await?;
        println!("listening  {key:<12} {addr:<22} {what}");
        accept_loops.push(tokio::spawn(mssante_imap::serve(
            listener,
            kind,
            imap_ctx.clone(),
            tracker.clone(),
        )));
    }
    let jobs = start_jobs(&config, &store, &shutdown)?;
    let api = api_context(&config, &store, &ctx, psc.clone(), Some(jobs));
    accept_loops.extend(start_http(&config, api, &certificates, &shutdown, &tracker).await?);
    if store.list_bals(None).await?.is_empty() {
        print_first_steps(&config);
    }

    signals
        .wait(|| reload(&config, &certificates, &trust, revocation.as_deref()))
        .await;
    tracing::info!("shutting down: no new connections; sessions finish within {SHUTDOWN_GRACE:?}");
    shutdown.cancel();
    for l in accept_loops {
        let _ = l.await;
    }
    let _ = periodic.await;
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "sessions still running after {SHUTDOWN_GRACE:?}; aborting them (unacknowledged messages are not kept)"
        );
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The whitelist: the last good copy kept in the data dir, or a first sync when there is
/// none yet (docs/mssante.md §3). A failed first sync is not fatal: local mail flows, the MX refuses
/// peers with 451 and the relay waits until a list is loaded.
async fn open_trust(config: &Config) -> Result<Arc<mssante_trust::Trust>> {
    let trust = Arc::new(
        mssante_trust::Trust::open(&config.trust, &config.data_dir)
            .context("trust: cannot open the kept whitelist")?,
    );
    if trust.snapshot().is_none()
        && config.trust.whitelist.is_some()
        && let Err(e) = trust.sync().await
    {
        tracing::warn!("trust: first whitelist sync failed: {e:#}");
    }
    let state = match (config.trust.enforce, trust.snapshot()) {
        (false, _) => "off: no trust-space checks (trust.enforce = false)".to_string(),
        (true, Some(list)) => format!(
            "enforced, whitelist of {} domains generated {}",
            list.domain_count(),
            list.generated_at()
        ),
        (true, None) => "enforced, NO whitelist loaded: peers get 451, nothing is relayed".into(),
    };
    println!("trust      {state}");
    Ok(trust)
}

/// The CRLs of the CAs that verify peers (`[trust] ca_file`) and application clients
/// (`[tls] client_ca_file`), kept ones installed at once; None when neither is configured.
fn open_revocation(
    config: &Config,
    verifiers: [&Option<mssante_trust::PeerVerifier>; 2],
) -> Result<Option<Arc<mssante_trust::Revocation>>> {
    let verifiers: Vec<_> = verifiers.into_iter().flatten().cloned().collect();
    if verifiers.is_empty() {
        return Ok(None);
    }
    let revocation = mssante_trust::Revocation::open(
        &config.trust.crl_urls,
        config.trust.crl_refresh_secs,
        &config.data_dir,
        verifiers,
    )
    .context("trust: cannot open the kept CRLs")?;
    let state = match (config.trust.crl_urls.len(), revocation.snapshot().len()) {
        (0, _) => "off: no [trust] crl_urls, revoked peer certificates are not refused".into(),
        (urls, kept) => format!(
            "{urls} URL(s), {kept} CRL(s) kept, refreshed every {} s",
            config.trust.crl_refresh_secs
        ),
    };
    println!("crl        {state}");
    Ok(Some(Arc::new(revocation)))
}

/// Peers check our DN against the whitelist entry of our sender domains: a local domain
/// missing from the list will see its mail refused by every other operator.
async fn warn_unlisted_local_domains(
    config: &Config,
    store: &mssante_store::Store,
    trust: &mssante_trust::Trust,
) -> Result<()> {
    let Some(list) = trust.snapshot().filter(|_| config.trust.enforce) else {
        return Ok(());
    };
    for domain in store.list_domains().await? {
        if !list.is_listed(&domain.name) {
            println!(
                "warning    local domain {} is not in the MSSanté whitelist: other operators will refuse its mail",
                domain.name
            );
            tracing::warn!(domain = %domain.name, "local domain not in the MSSanté whitelist");
        }
    }
    Ok(())
}

/// The jobs that run on one node at a time (the leader, `src/periodic.rs`), stopping when
/// `jobs` is cancelled.
fn periodic_jobs(
    config: &Config,
    store: &mssante_store::Store,
    jobs: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = vec![tokio::spawn(mssante_relay::reports::run(report_task(
        config, store, &jobs,
    )))];
    if let Some(publication) = config.directory.publication.clone() {
        // docs/mssante.md §7: our BALs are published to the national directory through an outbox.
        // It has no token of its own: aborted by `periodic::lead` when leadership ends.
        handles.push(tokio::spawn(mssante_directory::publication::run_outbox(
            store.clone(),
            publication,
            Duration::from_secs(30),
        )));
    }
    handles.push(tokio::spawn(expire_delegations(store.clone())));
    // Webhooks of the HTTP API (ADR 0019): one node scans and delivers the outbox.
    handles.push(tokio::spawn(mssante_api_lps::api::webhook_delivery::run(
        store.clone(),
        config.api.clone(),
        jobs.clone(),
    )));
    // One node applies retention, once a day while it leads.
    handles.push(tokio::spawn(crate::retention::run_daily(
        store.clone(),
        config.retention.clone(),
        config.hostname.clone(),
        jobs,
    )));
    handles
}

/// The DSN task: delivery reports are owed for local deliveries too, so it runs whether or
/// not the relay does (with the relay's timing when it is configured).
fn report_task(
    config: &Config,
    store: &mssante_store::Store,
    shutdown: &CancellationToken,
) -> mssante_relay::reports::Reports {
    let relay = config.relay.clone().unwrap_or_default();
    mssante_relay::reports::Reports {
        store: store.clone(),
        hostname: config.hostname.clone(),
        give_up_after: relay.give_up_after,
        poll_interval: relay.poll_interval,
        shutdown: shutdown.clone(),
    }
}

/// Ended delegations leave the table with an `expire` entry in the audit trail (ADR 0016);
/// sessions refuse them at their end date already, this keeps the trail exact.
async fn expire_delegations(store: mssante_store::Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match store.expire_delegations().await {
            Ok(ended) if !ended.is_empty() => {
                tracing::info!(count = ended.len(), "delegations ended");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("expiring delegations failed: {e}"),
        }
    }
}

/// The outbound queue worker, when enabled and able to verify peers.
fn start_relay(
    config: &Config,
    store: &mssante_store::Store,
    certificates: &Arc<crate::tls::Certificates>,
    trust: Arc<mssante_trust::Trust>,
    verifier: Option<mssante_trust::PeerVerifier>,
    shutdown: &CancellationToken,
) -> Result<()> {
    let Some(relay_config) = config.relay.clone() else {
        println!("relay      off (relay.enabled = false): queued mail waits");
        return Ok(());
    };
    let Some(verifier) = verifier else {
        println!(
            "relay      off: trust.ca_file is not set, peers cannot be verified; queued mail waits"
        );
        return Ok(());
    };
    let client = crate::tls::client_config(certificates, verifier.tls_server_verifier())?;
    println!(
        "relay      on, to port {} of the MX hosts",
        relay_config.port
    );
    let relay = mssante_relay::Relay::new(mssante_relay::RelayContext {
        store: store.clone(),
        config: relay_config,
        trust: Some(trust),
        tls: tokio_rustls::TlsConnector::from(client),
        shutdown: shutdown.clone(),
    })?;
    tokio::spawn(relay.run());
    Ok(())
}

/// The Pro Santé Connect token verifier when `[psc]` is configured, with its key refresh
/// running until shutdown (the first fetch starts at once, not at the first login).
fn start_psc(
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<Option<Arc<mssante_auth::PscVerifier>>> {
    if !config.psc.is_enabled() {
        return Ok(None);
    }
    let verifier = mssante_auth::PscVerifier::from_config(&config.psc).map_err(|e| anyhow!(e))?;
    verifier.spawn_refresh(shutdown.clone());
    println!(
        "psc        XOAUTH2/OAUTHBEARER on, issuers {}",
        config.psc.issuers.join(", ")
    );
    Ok(Some(Arc::new(verifier)))
}

/// What the HTTP listener serves from: the store, the settings, the submission path shared
/// with SMTP and the PSC token checks.
fn api_context(
    config: &Config,
    store: &mssante_store::Store,
    smtp: &mssante_smtp::Context,
    psc: Option<Arc<mssante_auth::PscVerifier>>,
    jobs: Option<Arc<mssante_api_lps::api::job_work::Jobs>>,
) -> Arc<mssante_api_lps::ApiContext> {
    let mut api = mssante_api_lps::ApiContext::new(
        store.clone(),
        mssante_api_lps::ApiSettings {
            public: config.public.clone(),
            oauth2: config.oauth2.clone(),
            limits: config.api.clone(),
        },
    );
    api.submission = Some(smtp.clone());
    api.psc = psc;
    api.jobs = jobs;
    Arc::new(api)
}

/// Export and import jobs of the HTTP API (ADR 0039): this node's `jobs/` folder and its
/// workers, which run on every node (each runs the jobs whose files it holds).
fn start_jobs(
    config: &Config,
    store: &mssante_store::Store,
    shutdown: &CancellationToken,
) -> Result<Arc<mssante_api_lps::api::job_work::Jobs>> {
    let jobs =
        mssante_api_lps::api::job_work::Jobs::open(&config.data_dir, config.api.max_import_bytes)
            .with_context(|| format!("{}: cannot prepare jobs/", config.data_dir.display()))?;
    let jobs = Arc::new(jobs);
    tokio::spawn(mssante_api_lps::api::job_work::run(
        store.clone(),
        jobs.clone(),
        shutdown.clone(),
    ));
    Ok(jobs)
}

/// The HTTP and HTTPS listeners (api-lps): autoconfiguration for mail clients, the API for
/// software, metrics and health.
async fn start_http(
    config: &Config,
    api: Arc<mssante_api_lps::ApiContext>,
    certificates: &Arc<crate::tls::Certificates>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let router = mssante_api_lps::router(api);
    if config.oauth2.is_some() && !config.psc.is_enabled() {
        println!(
            "warning    [public.oauth2] is set but PSC login is off ([psc]): clients are offered OAuth2 logins that fail"
        );
    }
    let mut loops = Vec::new();
    for (key, addr, tls) in [
        ("http", config.listen.http, None),
        (
            "https",
            config.listen.https,
            Some(crate::tls::server_config(certificates, None)?),
        ),
    ] {
        let Some(addr) = addr else { continue };
        let listener = bind(key, addr, mssante_api_lps::bind(addr)).await?;
        println!("listening  {key:<12} {addr:<22} autoconfiguration, API (/api/v1), metrics");
        loops.push(tokio::spawn(mssante_api_lps::serve(
            listener,
            tls,
            router.clone(),
            shutdown.clone(),
            tracker.clone(),
        )));
    }
    Ok(loops)
}

/// Waits for a protocol crate's `bind`, naming the configuration key when it fails.
async fn bind(
    key: &str,
    addr: SocketAddr,
    binding: impl std::future::Future<Output = std::io::Result<tokio::net::TcpListener>>,
) -> Result<tokio::net::TcpListener> {
    binding
        .await
        .with_context(|| format!("listen.{key}: cannot listen on {addr}"))
}

/// `SIGHUP`: the certificate files named by `[tls]` (or the generated one) are read again
/// and serve the handshakes that follow; sessions already open keep theirs. The whitelist
/// is synced again, the CRLs downloaded again. A certificate that does not load leaves the
/// one in force. Other settings take a restart (README, "Reload").
async fn reload(
    config: &Config,
    certificates: &crate::tls::Certificates,
    trust: &mssante_trust::Trust,
    revocation: Option<&mssante_trust::Revocation>,
) {
    let loaded =
        crate::tls::Identity::load(config.tls.as_ref(), &config.data_dir, &config.hostname)
            .and_then(|identity| certificates.replace(&identity));
    match loaded {
        Ok(()) => tracing::info!("reload: TLS certificate reloaded"),
        Err(e) => tracing::error!("reload: TLS certificate kept, the new one fails: {e:#}"),
    }
    if config.trust.whitelist.is_some() {
        match trust.sync().await {
            Ok(_) => tracing::info!("reload: whitelist synced"),
            Err(e) => {
                tracing::warn!("reload: whitelist sync failed, the last good one stays: {e:#}")
            }
        }
    }
    if let Some(revocation) = revocation {
        revocation.refresh().await;
    }
}

/// SIGTERM and SIGINT (stop), SIGHUP (reload), listened to from the start.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Until SIGTERM or SIGINT, running `on_hup` at each SIGHUP.
    async fn wait<F: std::future::Future<Output = ()>>(mut self, on_hup: impl Fn() -> F) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => on_hup().await,
            }
        }
    }
}

/// On an instance without any BAL: the README's first session, with this server's
/// configuration and submission port.
fn print_first_steps(config: &Config) {
    let cfg = config
        .file
        .as_ref()
        .map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default();
    let submission = config
        .listen
        .submission
        .map(|a| a.to_string())
        .unwrap_or_else(|| "HOST:PORT".into());
    println!(
        "\nNo mailbox yet. A first one (README, \"A first session\"):\n  \
         mssante{cfg} domain add {FIRST_DOMAIN}\n  \
         echo '{FIRST_PASSWORD}' | mssante{cfg} bal create dr.martin@{FIRST_DOMAIN} \\\n      \
         --type PER --rpps 10001234567 --name \"Dr Jeanne Martin\" --password-stdin\n\
         Then send with swaks (submission, STARTTLS + AUTH):\n  \
         swaks --server {submission} --tls --auth PLAIN --auth-user dr.martin@{FIRST_DOMAIN} \\\n      \
         --auth-password '{FIRST_PASSWORD}' --from dr.martin@{FIRST_DOMAIN} --to dr.martin@{FIRST_DOMAIN}\n"
    );
}

/// The README's first-session domain and password (tests/readme_e2e.rs keeps them in step).
pub const FIRST_DOMAIN: &str = "ch-exemple.mssante.fr";
pub const FIRST_PASSWORD: &str = "une longue phrase de passe";

/// The configured store (its schema created on first use, never upgraded: that is
/// `mssante db migrate`, ADR 0021), errors naming the key and hiding the password.
pub async fn open_store(config: &Config) -> Result<mssante_store::Store> {
    open_store_with(config, SchemaPolicy::MigrateFresh).await
}

/// The configured store with the schema handling `policy` says.
pub async fn open_store_with(
    config: &Config,
    policy: SchemaPolicy,
) -> Result<mssante_store::Store> {
    mssante_store::Store::open_with(&config.database_url, &config.data_dir, policy)
        .await
        .map_err(|e| {
            anyhow!(
                "database_url: cannot open {}: {e}",
                redact(&config.database_url)
            )
        })
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            super::redact("sqlite://./data/x.db"),
            "sqlite://./data/x.db"
        );
    }
}
