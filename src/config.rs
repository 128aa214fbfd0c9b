//! Configuration: TOML with embedded defaults; every problem is reported with its key.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

/// The file as written: everything optional, unknown keys refused.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hostname: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    #[serde(default)]
    listen: RawListen,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    smtp: RawSmtp,
    #[serde(default)]
    imap: RawImap,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    directory: mssante_directory::DirectoryConfig,
    #[serde(default)]
    trust: mssante_trust::TrustConfig,
    #[serde(default)]
    relay: RawRelay,
    #[serde(default)]
    public: mssante_api_lps::PublicConfig,
    #[serde(default)]
    psc: mssante_auth::PscConfig,
    #[serde(default)]
    retention: crate::retention::RetentionConfig,
    #[serde(default)]
    api: mssante_api_lps::ApiLimits,
    #[serde(default)]
    login: RawLogin,
}

/// `[login]`: password failures slowed then locked (docs/limits.md).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLogin {
    slow_after: Option<u64>,
    first_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
    lock_account_after: Option<u64>,
    lock_address_after: Option<u64>,
    window_secs: Option<u64>,
    lock_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    enabled: Option<bool>,
    port: Option<u16>,
    nameserver: Option<String>,
    retry_schedule_secs: Option<Vec<u64>>,
    give_up_after_secs: Option<u64>,
    delay_notify_after_secs: Option<u64>,
    max_per_destination: Option<u64>,
    max_in_flight: Option<u64>,
    lease_secs: Option<u64>,
    poll_interval_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawListen {
    smtp: Option<String>,
    submission: Option<String>,
    submissions: Option<String>,
    imap: Option<String>,
    imaps: Option<String>,
    http: Option<String>,
    https: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    max_message_size: Option<u64>,
    max_recipients: Option<u64>,
    max_errors: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_address: Option<u64>,
    command_timeout_secs: Option<u64>,
    data_timeout_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImap {
    max_literal: Option<u64>,
    max_line: Option<u64>,
    autologout_secs: Option<u64>,
    line_timeout_secs: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_address: Option<u64>,
    idle_report_delay_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

/// `[log] format`: how each log line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: colours on a terminal, plain text in the journal.
    Text,
    /// One JSON object per line, the fields at the top level (for collectors).
    Json,
}

fn log_format(value: Option<String>) -> Result<LogFormat> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => bail!("log.format: {other:?} is not a format (give \"text\" or \"json\")"),
    }
}

/// Listener addresses; `None` = not opened.
#[derive(Clone, Debug)]
pub struct Listen {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub submissions: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    /// HTTPS with the server certificate (`[tls]`); off by default.
    pub https: Option<SocketAddr>,
}

impl Listen {
    /// Each listener with its `[listen]` key, open or not.
    pub fn named(&self) -> [(&'static str, Option<SocketAddr>); 7] {
        [
            ("smtp", self.smtp),
            ("submission", self.submission),
            ("submissions", self.submissions),
            ("imap", self.imap),
            ("imaps", self.imaps),
            ("http", self.http),
            ("https", self.https),
        ]
    }

    /// The bound ports: what `[public]` advertises by default.
    fn ports(&self) -> mssante_api_lps::ListenPorts {
        let port = |a: Option<SocketAddr>| a.map(|a| a.port());
        mssante_api_lps::ListenPorts {
            smtp: port(self.smtp),
            submission: port(self.submission),
            submissions: port(self.submissions),
            imap: port(self.imap),
            imaps: port(self.imaps),
            http: port(self.http),
            https: port(self.https),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The file read, absolute; `None`: the embedded defaults.
    pub file: Option<PathBuf>,
    pub hostname: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub listen: Listen,
    /// PEM certificate chain and key; `None` = self-signed, generated on first run.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `[tls] client_ca_file`: PEM CA certificates that issue the client certificates of
    /// application BALs (SASL EXTERNAL on IMAP and submission, ADR 0029); `None`: no EXTERNAL.
    pub client_ca_file: Option<PathBuf>,
    pub smtp: mssante_smtp::SmtpConfig,
    pub imap: mssante_imap::ImapConfig,
    pub log_level: String,
    /// `[log] format` (`--log-format` overrides it).
    pub log_format: LogFormat,
    /// `[directory]`: national directory import, LDAP, FHIR, publication (directory crate).
    pub directory: mssante_directory::DirectoryConfig,
    /// `[trust]`: the MSSanté whitelist and trust anchors (trust crate).
    pub trust: mssante_trust::TrustConfig,
    /// `[relay]`: the outbound queue worker; `None` when disabled.
    pub relay: Option<mssante_relay::RelayConfig>,
    /// `[public]`: host names and ports clients and peers are told (autoconfig, DNS).
    pub public: mssante_api_lps::Advertised,
    /// `[public.oauth2]`: OAuth2 hints for mail clients.
    pub oauth2: Option<mssante_api_lps::OAuth2Hints>,
    /// `[psc]`: Pro Santé Connect token login (XOAUTH2 / OAUTHBEARER), off unless configured.
    pub psc: mssante_auth::PscConfig,
    /// `[retention]`: trace expiry and inactive BALs.
    pub retention: crate::retention::RetentionConfig,
    /// `[api]`: the HTTP API's rate limit and bulk size.
    pub api: mssante_api_lps::ApiLimits,
    /// `[login]`: password failures slowed then locked, shared by SMTP and IMAP.
    pub login: mssante_net::GuardConfig,
}

pub const EXAMPLE: &str = include_str!("../docs/mssante.example.toml");

impl Config {
    /// Reads `path`, or the embedded defaults when there is none. Relative paths in the
    /// file are taken from the file's folder (without a file, from the current directory),
    /// so that a command gives the same answer from wherever it is run.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let file = path.map(std::path::absolute).transpose()?;
        let raw = match &file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read configuration file {}", p.display()))?;
                toml::from_str::<RawConfig>(&text)
                    .map_err(|e| anyhow!("configuration file {}: {e}", p.display()))?
            }
            None => RawConfig::default(),
        };
        let base = match &file {
            Some(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => std::env::current_dir()?,
        };
        let mut config = Config::from_raw(raw.resolve_paths(&base)).map_err(|e| match &file {
            Some(p) => anyhow!("configuration file {}: {e}", p.display()),
            None => e,
        })?;
        config.file = file;
        Ok(config)
    }

    /// The files the configuration names can be read and hold what they should: checked by
    /// `config check` and at `serve` start, not by every administration command.
    pub fn check_files(&self) -> Result<()> {
        if self.tls.is_some() {
            let identity =
                crate::tls::Identity::load(self.tls.as_ref(), &self.data_dir, &self.hostname)?;
            crate::tls::Certificates::new(&identity)?;
        }
        self.client_ca()?;
        if let Some(ca) = &self.trust.ca_file {
            self.trust
                .peer_verifier()
                .with_context(|| format!("trust.ca_file: {}", ca.display()))?;
        }
        Ok(())
    }

    /// The verifier of application client certificates, when `[tls] client_ca_file` is set.
    pub fn client_ca(&self) -> Result<Option<mssante_trust::PeerVerifier>> {
        self.client_ca_file
            .as_deref()
            .map(|ca| {
                mssante_trust::PeerVerifier::from_pem_file(ca)
                    .with_context(|| format!("tls.client_ca_file: {}", ca.display()))
            })
            .transpose()
    }

    fn from_raw(raw: RawConfig) -> Result<Config> {
        let hostname = raw.hostname.unwrap_or_else(|| "localhost".into());
        if !mssante_api_lps::is_dns_name(&hostname) {
            bail!("hostname: {hostname:?} is not a valid host name");
        }
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
        if data_dir.as_os_str().is_empty() {
            bail!("data_dir: must not be empty");
        }
        let database_url = raw
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("mssante.db").display()));
        mssante_store::Engine::from_url(&database_url).map_err(|e| anyhow!("database_url: {e}"))?;
        let tls = match (raw.tls.cert, raw.tls.key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => bail!("tls.key: missing (tls.cert is set; give both or neither)"),
            (None, Some(_)) => bail!("tls.cert: missing (tls.key is set; give both or neither)"),
        };
        let listen = listen_from_raw(raw.listen)?;
        let public = raw
            .public
            .resolve(&hostname, &listen.ports())
            .map_err(|e| anyhow!(e))?;
        if let Some(hints) = &raw.public.oauth2 {
            hints.check().map_err(|e| anyhow!(e))?;
        }
        raw.psc.validate().map_err(|e| anyhow!(e))?;
        raw.retention.validate()?;
        // Clients told of another issuer would fetch tokens that every login refuses.
        if let Some(hints) = &raw.public.oauth2
            && raw.psc.is_enabled()
            && !raw.psc.issuers.contains(&hints.issuer)
        {
            bail!(
                "public.oauth2.issuer: {:?} is not one of psc.issuers {:?}",
                hints.issuer,
                raw.psc.issuers
            );
        }
        if raw.api.rate_per_sec == 0 || raw.api.burst == 0 {
            bail!("api.rate_per_sec, api.burst: at least 1");
        }
        if raw.api.webhook_retry_first_secs == 0
            || raw.api.webhook_retry_max_secs < raw.api.webhook_retry_first_secs
            || raw.api.webhook_max_attempts == 0
        {
            bail!(
                "api.webhook_retry_first_secs: at least 1, api.webhook_retry_max_secs: at least that, api.webhook_max_attempts: at least 1"
            );
        }
        Ok(Config {
            file: None,
            psc: raw.psc,
            retention: raw.retention,
            api: raw.api,
            login: login_from_raw(raw.login)?,
            hostname: hostname.clone(),
            listen,
            public,
            oauth2: raw.public.oauth2,
            relay: relay_from_raw(raw.relay, &hostname, raw.trust.enforce)?,
            imap: imap_from_raw(raw.imap, hostname.clone())?,
            smtp: smtp_from_raw(raw.smtp, hostname)?,
            log_format: log_format(raw.log.format)?,
            log_level: log_level(raw.log.level)?,
            directory: raw.directory,
            trust: raw.trust,
            data_dir,
            database_url,
            tls,
            client_ca_file: raw.tls.client_ca_file,
        })
    }
}

impl RawConfig {
    /// Every relative path of the file made absolute against `base` (URLs stay as they are).
    fn resolve_paths(mut self, base: &Path) -> RawConfig {
        let data_dir = self
            .data_dir
            .take()
            .unwrap_or_else(|| PathBuf::from("./data"));
        self.data_dir = Some(resolve(base, &data_dir));
        self.database_url = self.database_url.map(|url| resolve_sqlite_url(base, &url));
        self.tls.cert = self.tls.cert.map(|p| resolve(base, &p));
        self.tls.key = self.tls.key.map(|p| resolve(base, &p));
        self.tls.client_ca_file = self.tls.client_ca_file.map(|p| resolve(base, &p));
        let trust = &mut self.trust;
        trust.ca_file = trust.ca_file.take().map(|p| resolve(base, &p));
        trust.whitelist = trust.whitelist.take().map(|s| resolve_location(base, s));
        trust.checksum = trust.checksum.take().map(|s| resolve_location(base, s));
        let psc = &mut self.psc;
        psc.ca_file = psc.ca_file.take().map(|p| resolve(base, &p));
        psc.client_secret_file = psc.client_secret_file.take().map(|p| resolve(base, &p));
        let directory = &mut self.directory;
        directory.extraction = directory
            .extraction
            .take()
            .map(|s| resolve_location(base, s));
        self
    }
}

/// `p` against `base` when relative, without `./` steps (for messages people read).
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let rest: PathBuf = p
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    base.join(rest)
}

/// A file path or a URL (`scheme://…`): only the path is resolved.
fn resolve_location(base: &Path, location: String) -> String {
    if location.contains("://") {
        return location;
    }
    resolve(base, Path::new(&location)).display().to_string()
}

/// `sqlite://relative/x.db` (or `sqlite:relative/x.db`) against `base`; other URLs as given.
fn resolve_sqlite_url(base: &Path, url: &str) -> String {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return url.to_string();
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" || Path::new(path).is_absolute() {
        return url.to_string();
    }
    let path = resolve(base, Path::new(path));
    match query {
        Some(q) => format!("sqlite://{}?{q}", path.display()),
        None => format!("sqlite://{}", path.display()),
    }
}

/// Levels `[log] level` takes; anything else would silently filter every event out (an
/// unknown word reads as a target name). `RUST_LOG` takes full filter directives.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn log_level(value: Option<String>) -> Result<String> {
    let level = value.unwrap_or_else(|| "info".into()).to_ascii_lowercase();
    if !LOG_LEVELS.contains(&level.as_str()) {
        bail!(
            "log.level: {level:?} is not a level (give one of {}; RUST_LOG takes filter directives)",
            LOG_LEVELS.join(", ")
        );
    }
    Ok(level)
}

fn relay_from_raw(
    raw: RawRelay,
    hostname: &str,
    enforce_trust: bool,
) -> Result<Option<mssante_relay::RelayConfig>> {
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let d = mssante_relay::RelayConfig::default();
    let secs = |key: &str, v: Option<u64>, default: Duration, min: u64, max: u64| {
        let v = v.unwrap_or(default.as_secs());
        if !(min..=max).contains(&v) {
            bail!("relay.{key}: {v} is out of range ({min} to {max})");
        }
        Ok(Duration::from_secs(v))
    };
    let nameserver = match raw.nameserver {
        None => None,
        Some(v) => Some(v.parse().map_err(|_| {
            anyhow!("relay.nameserver: {v:?} is not an address of the form IP:PORT")
        })?),
    };
    let retry_schedule = match raw.retry_schedule_secs {
        None => d.retry_schedule.clone(),
        Some(v) if v.is_empty() || v.contains(&0) => {
            bail!("relay.retry_schedule_secs: give at least one wait, each at least 1 second")
        }
        Some(v) => v.into_iter().map(Duration::from_secs).collect(),
    };
    let count = |key: &str, v: Option<u64>, default: usize| -> Result<usize> {
        let v = v.unwrap_or(default as u64);
        if !(1..=100_000).contains(&v) {
            bail!("relay.{key}: {v} is out of range (1 to 100000)");
        }
        Ok(v as usize)
    };
    Ok(Some(mssante_relay::RelayConfig {
        hostname: hostname.to_string(),
        port: match raw.port {
            Some(0) => bail!("relay.port: 0 is not a port"),
            Some(p) => p,
            None => d.port,
        },
        nameserver,
        retry_schedule,
        give_up_after: secs(
            "give_up_after_secs",
            raw.give_up_after_secs,
            d.give_up_after,
            1,
            30 * 86400,
        )?,
        delay_notify_after: secs(
            "delay_notify_after_secs",
            raw.delay_notify_after_secs,
            d.delay_notify_after,
            1,
            30 * 86400,
        )?,
        max_per_destination: count(
            "max_per_destination",
            raw.max_per_destination,
            d.max_per_destination,
        )?,
        max_in_flight: count("max_in_flight", raw.max_in_flight, d.max_in_flight)?,
        lease: secs("lease_secs", raw.lease_secs, d.lease, 10, 86400)?,
        poll_interval: Duration::from_millis(
            raw.poll_interval_ms
                .unwrap_or(d.poll_interval.as_millis() as u64)
                .clamp(10, 60_000),
        ),
        enforce_trust,
        ..d
    }))
}

/// `"127.0.0.1:2525"` opens a listener, `"off"` or `""` leaves it closed.
fn listen_addr(key: &str, value: Option<String>, default: &str) -> Result<Option<SocketAddr>> {
    let value = value.unwrap_or_else(|| default.to_string());
    if value.is_empty() || value == "off" {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        anyhow!("listen.{key}: {value:?} is not an address of the form IP:PORT (or \"off\")")
    })
}

fn listen_from_raw(raw: RawListen) -> Result<Listen> {
    Ok(Listen {
        smtp: listen_addr("smtp", raw.smtp, "127.0.0.1:2525")?,
        submission: listen_addr("submission", raw.submission, "127.0.0.1:5587")?,
        submissions: listen_addr("submissions", raw.submissions, "127.0.0.1:5465")?,
        imap: listen_addr("imap", raw.imap, "127.0.0.1:1143")?,
        imaps: listen_addr("imaps", raw.imaps, "127.0.0.1:1993")?,
        http: listen_addr("http", raw.http, "127.0.0.1:8080")?,
        https: listen_addr("https", raw.https, "off")?,
    })
}

fn in_range(key: &str, value: Option<u64>, default: u64, min: u64, max: u64) -> Result<u64> {
    section_in_range("smtp", key, value, default, min, max)
}

fn section_in_range(
    section: &str,
    key: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64> {
    let v = value.unwrap_or(default);
    if !(min..=max).contains(&v) {
        bail!("{section}.{key}: {v} is out of range ({min} to {max})");
    }
    Ok(v)
}

fn smtp_from_raw(raw: RawSmtp, hostname: String) -> Result<mssante_smtp::SmtpConfig> {
    let d = mssante_smtp::SmtpConfig::default();
    Ok(mssante_smtp::SmtpConfig {
        hostname,
        max_message_size: in_range(
            "max_message_size",
            raw.max_message_size,
            d.max_message_size as u64,
            1024,
            1 << 31,
        )? as usize,
        // RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted.
        max_recipients: in_range(
            "max_recipients",
            raw.max_recipients,
            d.max_recipients as u64,
            100,
            100_000,
        )? as usize,
        max_errors: in_range("max_errors", raw.max_errors, d.max_errors as u64, 1, 1000)? as u32,
        max_connections: in_range(
            "max_connections",
            raw.max_connections,
            d.max_connections as u64,
            1,
            1_000_000,
        )? as usize,
        max_connections_per_address: per_address(
            "smtp",
            raw.max_connections_per_address,
            d.max_connections_per_address,
        )?,
        // RFC 5321 §4.5.3.2: 5 minutes for commands, 3 for data blocks, at least.
        command_timeout: Duration::from_secs(in_range(
            "command_timeout_secs",
            raw.command_timeout_secs,
            300,
            1,
            3600,
        )?),
        data_timeout: Duration::from_secs(in_range(
            "data_timeout_secs",
            raw.data_timeout_secs,
            180,
            1,
            3600,
        )?),
    })
}

fn imap_from_raw(raw: RawImap, hostname: String) -> Result<mssante_imap::ImapConfig> {
    let d = mssante_imap::ImapConfig::default();
    let in_range =
        |key, value, default, min, max| section_in_range("imap", key, value, default, min, max);
    Ok(mssante_imap::ImapConfig {
        hostname,
        max_literal: in_range(
            "max_literal",
            raw.max_literal,
            d.max_literal as u64,
            1024,
            1 << 31,
        )? as usize,
        // RFC 7162 §4 asks servers to take command lines of at least 8192 octets.
        max_line: in_range("max_line", raw.max_line, d.max_line as u64, 8192, 1 << 24)? as usize,
        // RFC 9051 §5.4: the autologout timer is at least 30 minutes.
        autologout: Duration::from_secs(in_range(
            "autologout_secs",
            raw.autologout_secs,
            d.autologout.as_secs(),
            30 * 60,
            86400,
        )?),
        line_timeout: Duration::from_secs(in_range(
            "line_timeout_secs",
            raw.line_timeout_secs,
            d.line_timeout.as_secs(),
            1,
            3600,
        )?),
        max_connections: in_range(
            "max_connections",
            raw.max_connections,
            d.max_connections as u64,
            1,
            1_000_000,
        )? as usize,
        max_connections_per_address: per_address(
            "imap",
            raw.max_connections_per_address,
            d.max_connections_per_address,
        )?,
        // ADR 0058: 0 reports each change at once; Dovecot waits 500 ms. Past 5 s a client
        // would see new mail late.
        idle_report_delay: Duration::from_millis(in_range(
            "idle_report_delay_ms",
            raw.idle_report_delay_ms,
            d.idle_report_delay.as_millis() as u64,
            0,
            5000,
        )?),
    })
}

/// `max_connections_per_address` of a listener section (docs/limits.md).
fn per_address(section: &str, value: Option<u64>, default: usize) -> Result<usize> {
    let key = "max_connections_per_address";
    Ok(section_in_range(section, key, value, default as u64, 1, 1_000_000)? as usize)
}

fn login_from_raw(raw: RawLogin) -> Result<mssante_net::GuardConfig> {
    let d = mssante_net::GuardConfig::default();
    let in_range =
        |key, value, default, min, max| section_in_range("login", key, value, default, min, max);
    let count = |key, value, default: u32| {
        Ok::<_, anyhow::Error>(in_range(key, value, default as u64, 1, 1_000_000)? as u32)
    };
    let millis = |key, value, default: Duration| {
        in_range(key, value, default.as_millis() as u64, 0, 3_600_000).map(Duration::from_millis)
    };
    let secs = |key, value, default: Duration| {
        in_range(key, value, default.as_secs(), 1, 7 * 86400).map(Duration::from_secs)
    };
    Ok(mssante_net::GuardConfig {
        slow_after: count("slow_after", raw.slow_after, d.slow_after)?,
        first_delay: millis("first_delay_ms", raw.first_delay_ms, d.first_delay)?,
        max_delay: millis("max_delay_ms", raw.max_delay_ms, d.max_delay)?,
        lock_account_after: count(
            "lock_account_after",
            raw.lock_account_after,
            d.lock_account_after,
        )?,
        lock_address_after: count(
            "lock_address_after",
            raw.lock_address_after,
            d.lock_address_after,
        )?,
        window: secs("window_secs", raw.window_secs, d.window)?,
        lock_for: secs("lock_secs", raw.lock_secs, d.lock_for)?,
    })
}

/// A data dir the store has opened once (it creates `blobs/` on both engines).
pub(crate) fn is_initialised(dir: &Path) -> bool {
    dir.join("blobs").is_dir()
}

#[cfg(test)]
mod tests;
