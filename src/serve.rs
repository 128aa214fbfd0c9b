//! `mssante serve`: opens the store, binds the listeners, runs until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use mssante_smtp::{ListenerKind, SmtpContext};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// How long sessions get to finish after a shutdown signal (a message in DATA completes;
/// idle sessions are told 421 at once).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub async fn run(config: Config) -> Result<()> {
    let store = mssante_store::Store::open(&config.database_url, &config.data_dir)
        .await
        .map_err(|e| {
            anyhow!(
                "database_url: cannot open {}: {e}",
                redact(&config.database_url)
            )
        })?;
    let tls = crate::tls::server_config(config.tls.as_ref(), &config.data_dir, &config.hostname)?;
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(SmtpContext {
        store: store.clone(),
        config: config.smtp.clone(),
        tls: Some(tokio_rustls::TlsAcceptor::from(tls)),
        shutdown: shutdown.clone(),
    });

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
        let listener = bind(key, addr).await?;
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
        config: mssante_imap::ImapConfig {
            hostname: config.hostname.clone(),
            ..mssante_imap::ImapConfig::default()
        },
        tls: ctx.tls.clone(),
        shutdown: shutdown.clone(),
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
        let listener = bind(key, addr).await?;
        println!("listening  {key:<12} {addr:<22} {what}");
        accept_loops.push(tokio::spawn(mssante_imap::serve(
            listener,
            kind,
            imap_ctx.clone(),
            tracker.clone(),
        )));
    }
    if let Some(addr) = config.listen.http {
        println!("not opened {:<12} {addr:<22} not built yet", "http");
    }
    if let Some(publication) = config.directory.publication.clone() {
        // SPEC.md §7: our BALs are published to the national directory through an outbox.
        tokio::spawn(mssante_directory::publication::run_outbox(
            store.clone(),
            publication,
            Duration::from_secs(30),
        ));
    }
    print_first_steps(&config);

    wait_for_signal().await?;
    tracing::info!("shutting down: no new connections; sessions finish within {SHUTDOWN_GRACE:?}");
    shutdown.cancel();
    for l in accept_loops {
        let _ = l.await;
    }
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

async fn bind(key: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    mssante_smtp::bind(addr)
        .await
        .with_context(|| format!("listen.{key}: cannot listen on {addr}"))
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn print_first_steps(config: &Config) {
    let cfg = std::env::args()
        .skip_while(|a| a != "--config")
        .nth(1)
        .map(|p| format!(" --config {p}"))
        .unwrap_or_default();
    println!(
        "\nFirst mailbox:\n  mssante{cfg} domain add example.mssante.fr\n  \
         echo 'a long passphrase' | mssante{cfg} bal create dr.martin@example.mssante.fr --type PER --rpps 10001234567 --password-stdin\n\
         Then send with swaks (submission, STARTTLS): swaks --server {} --tls --auth-user dr.martin@example.mssante.fr \
         --auth-password 'a long passphrase' --from dr.martin@example.mssante.fr --to dr.martin@example.mssante.fr\n",
        config
            .listen
            .submission
            .map(|a| a.to_string())
            .unwrap_or_else(|| "HOST:PORT".into())
    );
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
