//! Checks on this machine: configuration, database, data dir and disk, listeners.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use mssante_store::SchemaPolicy;

use super::Check;
use crate::config::Config;

/// Free space below which the data dir FAILs (mail can no longer be accepted safely), and
/// below which it WARNs.
const DISK_FAIL_BYTES: u64 = 200 * 1024 * 1024;
const DISK_WARN_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The national directory is published daily: a copy older than this WARNs (a missed day or
/// two is tolerated), older than the other FAILs (recipients and directory API answers are
/// a week behind the national one). docs/production.md §6.
const DIRECTORY_WARN_DAYS: i64 = 2;
const DIRECTORY_FAIL_DAYS: i64 = 7;
const DAY: i64 = 86_400;

/// The configuration did not load: the error names the file, and the line (TOML syntax and
/// types) or the key (values).
pub fn config_refused(error: &anyhow::Error) -> Check {
    Check::fail(
        "config",
        one_line(&format!("{error:#}")),
        "correct the line or key named; `mssante config example` shows every key with its meaning",
    )
}

/// toml's report on one line: its first line ("… at line 2, column 8") and its explanation,
/// without the quoted source (the lines drawn with `|`).
fn one_line(report: &str) -> String {
    let mut lines = report.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let why: Vec<&str> = lines.filter(|l| !l.contains('|')).collect();
    match why.as_slice() {
        [] => first.to_string(),
        why => format!("{first}: {}", why.join(" ")),
    }
}

pub fn config_parsed(config: &Config) -> Check {
    match &config.file {
        Some(file) => Check::ok("config", format!("{} parses", file.display())),
        None => Check::warn(
            "config",
            "no configuration file: embedded defaults (loopback, test ports)",
            "pass --config /etc/mssante/config.toml (or set MSSANTE_CONFIG)",
        ),
    }
}

/// The data dir: initialised, writable by this user, with room left.
pub fn data_dir(config: &Config) -> Vec<Check> {
    let dir = &config.data_dir;
    if !crate::config::is_initialised(dir) {
        return vec![Check::fail(
            "data_dir",
            format!(
                "{} is not an initialised data dir (no blobs/)",
                dir.display()
            ),
            "`mssante init` (as the service user) creates it, or correct data_dir",
        )];
    }
    let mut checks = vec![writable(dir)];
    checks.push(disk_space(dir));
    checks
}

/// Creates and removes a file: what the server does with every message body.
fn writable(dir: &Path) -> Check {
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"probe") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Check::ok("data_dir", format!("{} is writable", dir.display()))
        }
        Err(e) => Check::fail(
            "data_dir",
            format!("{} is not writable by this user: {e}", dir.display()),
            "give it to the service user: `chown -R mssante:mssante` the data dir (and run \
             administration commands as that user, `sudo -u mssante`)",
        ),
    }
}

fn disk_space(dir: &Path) -> Check {
    let Some((free, total)) = free_bytes(dir) else {
        return Check::warn(
            "disk",
            format!("cannot read the free space of {}", dir.display()),
            "check the file system with `df`",
        );
    };
    let message = format!(
        "{} free of {} on {}",
        human(free),
        human(total),
        dir.display()
    );
    let fix = "free space or grow the file system holding the data dir (blobs grow with mail)";
    if free < DISK_FAIL_BYTES {
        Check::fail("disk", message, fix)
    } else if free < DISK_WARN_BYTES {
        Check::warn("disk", message, fix)
    } else {
        Check::ok("disk", message)
    }
}

/// (available to unprivileged users, total) bytes of the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    Some((stat.f_bavail as u64 * block, stat.f_blocks as u64 * block))
}

fn human(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if bytes as f64 >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{} MiB", bytes / (1024 * 1024))
    }
}

/// Reachability and schema state; on success also the local domains (for the DNS and
/// whitelist checks).
pub async fn database(config: &Config) -> (Vec<Check>, Vec<String>) {
    let url = crate::serve::redact(&config.database_url);
    if !crate::config::is_initialised(&config.data_dir) {
        let skipped = Check::fail(
            "database",
            format!("{url}: not checked, the data dir is not initialised"),
            "`mssante init`",
        );
        return (vec![skipped], Vec::new());
    }
    let store = match crate::serve::open_store_with(config, SchemaPolicy::AsIs).await {
        Ok(store) => store,
        Err(e) => {
            let check = Check::fail(
                "database",
                format!("{e:#}"),
                "check database_url (host, port, database, user and password) and that the \
                 database server runs and lets this machine in",
            );
            return (vec![check], Vec::new());
        }
    };
    let mut checks = vec![Check::ok("database", format!("{url} reachable"))];
    checks.push(match store.schema_status().await {
        Err(e) => Check::fail(
            "migrations",
            format!("cannot read them: {e}"),
            "see the error",
        ),
        Ok(status) if status.is_fresh() => Check::fail(
            "migrations",
            "empty database: no schema yet",
            "`mssante init` creates it",
        ),
        Ok(status) => match status.refusal(SchemaPolicy::MigrateFresh) {
            Some(refusal) => Check::fail(
                "migrations",
                refusal.to_string(),
                "back up (`mssante backup`), then `mssante db migrate`, then restart",
            ),
            None => Check::ok(
                "migrations",
                format!(
                    "current (migration {})",
                    status.applied.last().copied().unwrap_or_default()
                ),
            ),
        },
    });
    if checks.iter().all(|c| c.status != super::Status::Fail) {
        checks.push(directory_freshness(&store).await);
    }
    let domains = match store.list_domains().await {
        Ok(domains) => domains.into_iter().map(|d| d.name).collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    if domains.is_empty() {
        checks.push(Check::warn(
            "domains",
            "no local domain",
            "`mssante domain add DOMAIN` for each domain whose mail this server takes",
        ));
    }
    store.close().await;
    (checks, domains)
}

/// The local copy of the national directory: when its last successful bulk import (the
/// daily extraction, or an LDAP mirror of it) finished.
async fn directory_freshness(store: &mssante_store::Store) -> Check {
    use mssante_store::directory_sources::{EXTRACTION, LDAP};
    let fix = "`mssante directory import` (the daily Extraction_Correspondance_MSSante file or URL, \
               [directory] extraction) from a daily timer; `mssante directory history` shows \
               why the last runs failed";
    let mut latest = None;
    for source in [EXTRACTION, LDAP] {
        match store.directory_current_import(source).await {
            Ok(Some(import)) => {
                let at = import.finished_at.unwrap_or(import.started_at);
                if latest.as_ref().is_none_or(|(t, _)| at > *t) {
                    latest = Some((at, import));
                }
            }
            Ok(None) => {}
            Err(e) => {
                return Check::fail("directory", format!("cannot read the imports: {e}"), fix);
            }
        }
    }
    let Some((at, import)) = latest else {
        return Check::fail(
            "directory",
            "the national directory was never imported: directory lookups (CLI, API) find \
             no other operator's BAL",
            fix,
        );
    };
    let age = super::unix_now() - at;
    let message = format!(
        "last {} import #{} ({} rows) finished {} h ago",
        import.source,
        import.id,
        import.rows,
        age / 3600
    );
    if age > DIRECTORY_FAIL_DAYS * DAY {
        Check::fail(
            "directory",
            format!(
                "{message}: stale, more than {DIRECTORY_FAIL_DAYS} days (it is published daily)"
            ),
            fix,
        )
    } else if age > DIRECTORY_WARN_DAYS * DAY {
        Check::warn(
            "directory",
            format!("{message}: more than {DIRECTORY_WARN_DAYS} days"),
            fix,
        )
    } else {
        Check::ok("directory", message)
    }
}

/// Each open listener: ours and listening when `serve` runs, else free to bind.
pub fn listeners(config: &Config) -> Vec<Check> {
    let running = crate::lock::serve_holding(&config.data_dir);
    config
        .listen
        .named()
        .into_iter()
        .filter_map(|(name, addr)| addr.map(|a| listener(name, a, running.as_deref())))
        .collect()
}

fn listener(name: &str, addr: SocketAddr, serve_pid: Option<&str>) -> Check {
    let check = format!("listen.{name}");
    let answering = TcpStream::connect_timeout(&probe_target(addr), Duration::from_secs(2)).is_ok();
    match (serve_pid, answering) {
        (Some(pid), true) => Check::ok(check, format!("{addr} listening (serve, pid {pid})")),
        (Some(pid), false) => Check::fail(
            check,
            format!("{addr}: serve runs (pid {pid}) but nothing answers there"),
            "read the server's log (`journalctl -u mssante`) for the listener error",
        ),
        (None, true) => Check::fail(
            check,
            format!("{addr} is already taken by another program"),
            "stop it (`ss -ltnp` names it), or move this listener in [listen]",
        ),
        (None, false) => bindable(check, addr),
    }
}

/// A wildcard address is probed on loopback.
fn probe_target(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

fn bindable(check: String, addr: SocketAddr) -> Check {
    match TcpListener::bind(addr) {
        Ok(_) => Check::ok(check, format!("{addr} free (serve is not running)")),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Check::warn(
            check,
            format!("{addr}: this user may not bind a port below 1024"),
            "the systemd unit grants CAP_NET_BIND_SERVICE; run the server through it",
        ),
        Err(e) => Check::fail(
            check,
            format!("{addr} cannot be bound: {e}"),
            "use an address of this machine (`ip addr`), or 0.0.0.0",
        ),
    }
}
