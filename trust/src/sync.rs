//! The live whitelist, with last-good-copy semantics (docs/mssante.md §3: fetch
//! on a schedule, verify the checksum, keep the last good copy when a download is missing or
//! corrupt).
//!
//! - At startup, [`Trust::open`] loads the copy kept in `<data_dir>/trust/` — never the
//!   network, so a server restarts even when the publisher is unreachable.
//! - [`Trust::sync`] downloads, verifies the checksum, parses; only a list that passed all
//!   three replaces the live one and the kept copy (written atomically). Any failure leaves
//!   both untouched.
//! - [`Trust::run_refresh`] repeats that on a schedule for `serve`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use mssante_mail::date::UtcDateTime;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::TrustConfig;
use crate::whitelist::TrustList;

/// Name of the kept copy inside `<data_dir>/trust/`.
pub const LIST_FILE: &str = "listeblanchemssante.xml";
/// Sidecar describing the kept copy (when, from where, its SHA-256 and counts).
pub const RECORD_FILE: &str = "listeblanchemssante.json";
/// The real list is ~350 kB; anything near this is not a whitelist.
pub const MAX_LIST_BYTES: usize = 50 * 1024 * 1024;
const MAX_CHECKSUM_BYTES: usize = 64 * 1024;
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed refresh, try again sooner than the full period (but not in a tight loop).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);
/// Floor on the refresh period, so that a typo cannot hammer the publisher.
const MIN_REFRESH: Duration = Duration::from_secs(60);

/// What a successful sync installed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncReport {
    pub source: String,
    pub sha256: String,
    pub entries: usize,
    pub domains: usize,
    pub generated_at: String,
}

/// The sidecar written beside the kept copy.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SyncRecord {
    synced_at: String,
    synced_at_unix: u64,
    #[serde(flatten)]
    report: SyncReport,
}

/// The live trust list, shared by the SMTP server and the relay.
#[derive(Debug)]
pub struct Trust {
    config: TrustConfig,
    dir: PathBuf,
    current: RwLock<Option<Arc<TrustList>>>,
    /// When the kept copy was last synced, from the sidecar; drives the first refresh.
    last_sync: Mutex<Option<SystemTime>>,
    /// One sync at a time: two concurrent syncs would race on the kept copy.
    sync_lock: tokio::sync::Mutex<()>,
}

/// Where a list, checksum or CRL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    Url(reqwest::Url),
}

impl Source {
    /// Classifies a configured source. Plain `http://` is refused: the checksum is fetched
    /// the same way, so an on-path attacker could replace both (docs/mssante.md §3 trusts only what ANS
    /// publishes). `http://127.0.0.1` is allowed for tests.
    pub(crate) fn parse(s: &str) -> anyhow::Result<Source> {
        Source::parse_with(s, false)
    }

    /// For documents that carry their own signature (CRLs, RFC 5280 §5): plain `http://` is
    /// accepted, as CAs publish them (an attacker on path can withhold, not forge).
    pub(crate) fn parse_signed(s: &str) -> anyhow::Result<Source> {
        Source::parse_with(s, true)
    }

    fn parse_with(s: &str, signed: bool) -> anyhow::Result<Source> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(Source::File(PathBuf::from(path)));
        }
        if !s.contains("://") {
            return Ok(Source::File(PathBuf::from(s)));
        }
        let url = reqwest::Url::parse(s).with_context(|| format!("invalid URL {s:?}"))?;
        match url.scheme() {
            "https" => Ok(Source::Url(url)),
            "http" if signed || is_loopback(&url) => Ok(Source::Url(url)),
            "http" => bail!("{s}: plain http is refused, use https"),
            other => bail!("{s}: unsupported scheme {other:?} (use https:// or a file path)"),
        }
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    url.host_str() == Some("127.0.0.1")
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Url(u) => write!(f, "{u}"),
        }
    }
}

impl Trust {
    /// Loads the last good copy kept in `data_dir/trust/listeblanchemssante.xml` (if any) — no
    /// network at startup. A kept copy that no longer parses is an error (it was written
    /// atomically after passing the same parser, so something else damaged it).
    pub fn open(config: &TrustConfig, data_dir: &Path) -> anyhow::Result<Trust> {
        for (what, src) in [
            ("whitelist", &config.whitelist),
            ("checksum", &config.checksum),
        ] {
            if let Some(src) = src {
                Source::parse(src).with_context(|| format!("[trust] {what}"))?;
            }
        }
        let dir = data_dir.join("trust");
        let path = dir.join(LIST_FILE);
        let current = match std::fs::read(&path) {
            Ok(bytes) => Some(Arc::new(TrustList::parse(&bytes).with_context(|| {
                format!(
                    "the kept whitelist {} is unreadable; remove it and run `mssante trust sync`",
                    path.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let last_sync = current
            .as_ref()
            .and_then(|_| read_record(&dir))
            .map(|r| UNIX_EPOCH + Duration::from_secs(r.synced_at_unix));
        Ok(Trust {
            config: config.clone(),
            dir,
            current: RwLock::new(current),
            last_sync: Mutex::new(last_sync),
            sync_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &TrustConfig {
        &self.config
    }

    /// Where the kept copy lives (`<data_dir>/trust/listeblanchemssante.xml`).
    pub fn kept_copy_path(&self) -> PathBuf {
        self.dir.join(LIST_FILE)
    }

    /// The live list; None when no list was ever loaded.
    pub fn snapshot(&self) -> Option<Arc<TrustList>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// When the live list was last fetched and checked (from the kept copy's sidecar after
    /// a restart); None when it never was.
    pub fn last_sync(&self) -> Option<SystemTime> {
        *self.last_sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Syncs from the configured `whitelist` and `checksum`.
    pub async fn sync(&self) -> anyhow::Result<SyncReport> {
        let source = self.config.whitelist.as_deref().ok_or_else(|| {
            anyhow!(
                "whitelist: no source configured ([trust] whitelist = \"https://…\" or a file path)"
            )
        })?;
        self.sync_from(source, self.config.checksum.as_deref())
            .await
    }

    /// Fetches `source`, verifies it against `checksum` when given, parses it; on success
    /// writes the kept copy atomically and swaps the live list. On any failure the live list
    /// and the kept copy stay as they were, and the error says so.
    pub async fn sync_from(
        &self,
        source: &str,
        checksum: Option<&str>,
    ) -> anyhow::Result<SyncReport> {
        let _one_at_a_time = self.sync_lock.lock().await;
        let kept = self.previous_description();
        let result = self.fetch_and_verify(source, checksum).await;
        let (list, report, bytes) =
            result.map_err(|e| anyhow!("whitelist: {e:#}; the previous list ({kept}) is kept"))?;
        let now = SystemTime::now();
        self.persist(bytes, &report, now).await.map_err(|e| {
            anyhow!(
                "whitelist: cannot save the new list: {e:#}; the previous list ({kept}) is kept"
            )
        })?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(list));
        *self.last_sync.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        tracing::info!(
            source = %report.source, entries = report.entries, domains = report.domains,
            generated_at = %report.generated_at, sha256 = %report.sha256,
            "whitelist updated"
        );
        Ok(report)
    }

    async fn fetch_and_verify(
        &self,
        source: &str,
        checksum: Option<&str>,
    ) -> anyhow::Result<(TrustList, SyncReport, Vec<u8>)> {
        let src = Source::parse(source)?;
        let bytes = fetch(&src, MAX_LIST_BYTES)
            .await
            .with_context(|| format!("download from {src} failed"))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        match checksum {
            Some(c) => {
                let c_src = Source::parse(c)?;
                let text = fetch(&c_src, MAX_CHECKSUM_BYTES)
                    .await
                    .with_context(|| format!("checksum download from {c_src} failed"))?;
                let expected =
                    parse_checksum(&text).with_context(|| format!("checksum from {c_src}"))?;
                if expected != sha256 {
                    bail!("checksum mismatch: expected {expected}, got {sha256}");
                }
            }
            None => {
                tracing::warn!(source = %src, "whitelist: no checksum configured, not verified")
            }
        }
        let list = TrustList::parse(&bytes).with_context(|| format!("list from {src} refused"))?;
        let report = SyncReport {
            source: src.to_string(),
            sha256,
            entries: list.entries().len(),
            domains: list.domain_count(),
            generated_at: list.generated_at().to_string(),
        };
        Ok((list, report, bytes))
    }

    /// A short description of the live list for error messages.
    fn previous_description(&self) -> String {
        match self.snapshot() {
            Some(l) => format!(
                "generated {}, {} entries, {} domains",
                l.generated_at(),
                l.entries().len(),
                l.domain_count()
            ),
            None => "none: no list was ever loaded".into(),
        }
    }

    /// Writes the list then its sidecar, each atomically.
    async fn persist(
        &self,
        bytes: Vec<u8>,
        report: &SyncReport,
        now: SystemTime,
    ) -> anyhow::Result<()> {
        let unix = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let record = SyncRecord {
            synced_at: rfc3339_utc(unix),
            synced_at_unix: unix,
            report: report.clone(),
        };
        let json = serde_json::to_vec_pretty(&record)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            write_atomic(&dir, LIST_FILE, &bytes)?;
            write_atomic(&dir, RECORD_FILE, &json)
        })
        .await
        .context("the writer task failed")?
    }

    /// Refresh loop for `serve`: syncs every `refresh_secs` until `shutdown` is cancelled.
    /// Failures are logged and the old list stays; the next try comes sooner (15 min) than the
    /// full period. The first sync happens as soon as the kept copy is older than the period
    /// (at once when there is none).
    pub async fn run_refresh(self: Arc<Self>, shutdown: CancellationToken) {
        if self.config.whitelist.is_none() {
            tracing::info!("whitelist: no [trust] whitelist source, refresh disabled");
            return;
        }
        if self.config.refresh_secs == 0 {
            tracing::info!("whitelist: refresh_secs = 0, refresh disabled");
            return;
        }
        let period = Duration::from_secs(self.config.refresh_secs).max(MIN_REFRESH);
        let mut delay = self.first_delay(period);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.sync() => r,
            };
            delay = match outcome {
                Ok(_) => period,
                Err(e) => {
                    tracing::warn!("{e:#}");
                    period.min(RETRY_AFTER_FAILURE)
                }
            };
        }
    }

    fn first_delay(&self, period: Duration) -> Duration {
        let last = *self.last_sync.lock().unwrap_or_else(|p| p.into_inner());
        match (self.snapshot(), last) {
            (Some(_), Some(at)) => {
                let age = SystemTime::now().duration_since(at).unwrap_or_default();
                period.saturating_sub(age)
            }
            _ => Duration::ZERO,
        }
    }
}

fn read_record(dir: &Path) -> Option<SyncRecord> {
    let bytes = std::fs::read(dir.join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads a file or downloads a URL, refusing bodies larger than `max` bytes; redirects to
/// plain http are followed only for a signed document (`Source::parse_signed`).
pub(crate) async fn fetch(src: &Source, max: usize) -> anyhow::Result<Vec<u8>> {
    fetch_with(src, max, false).await
}

pub(crate) async fn fetch_with(src: &Source, max: usize, signed: bool) -> anyhow::Result<Vec<u8>> {
    match src {
        Source::File(path) => {
            let len = tokio::fs::metadata(path).await?.len();
            if len > max as u64 {
                bail!(
                    "{} is {len} bytes, more than the {max} accepted",
                    path.display()
                );
            }
            Ok(tokio::fs::read(path).await?)
        }
        Source::Url(url) => download(url, max, signed).await,
    }
}

async fn download(url: &reqwest::Url, max: usize, signed: bool) -> anyhow::Result<Vec<u8>> {
    let mut builder = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("mssante-trust/", env!("CARGO_PKG_VERSION")))
        // A redirect must not downgrade to plain http (same reason as Source::parse).
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if signed || attempt.url().scheme() == "https" || is_loopback(attempt.url()) {
                attempt.follow()
            } else {
                attempt.error("redirect to plain http refused")
            }
        }));
    if is_loopback(url) {
        // Tests: a proxy from the environment must not intercept 127.0.0.1.
        builder = builder.no_proxy();
    }
    let client = builder.build()?;
    let mut response = client.get(url.clone()).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("HTTP status {status}");
    }
    if response.content_length().is_some_and(|n| n > max as u64) {
        bail!("the body is larger than the {max} bytes accepted");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            bail!("the body is larger than the {max} bytes accepted");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The published checksum: 64 hex digits, possibly followed by whitespace and a file name
/// (`sha256sum` format).
fn parse_checksum(text: &[u8]) -> anyhow::Result<String> {
    let text = std::str::from_utf8(text).context("not text")?;
    let token = text.split_whitespace().next().unwrap_or("");
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "not a SHA-256 in hex: {:?}",
            token.chars().take(80).collect::<String>()
        );
    }
    Ok(token.to_ascii_lowercase())
}

/// Temp file + fsync + rename + directory fsync: after a crash the file is either the old or
/// the new content, never a mix (rename is atomic on POSIX file systems).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("writing {}: {e}", target.display())
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (RFC 3339 §5.6, in UTC).
pub(crate) fn rfc3339_utc(unix: u64) -> String {
    let t = UtcDateTime::from_unix(unix as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("/var/lib/l.xml").unwrap(),
            Source::File("/var/lib/l.xml".into())
        );
        assert_eq!(
            Source::parse("file:///x/l.xml").unwrap(),
            Source::File("/x/l.xml".into())
        );
        assert!(matches!(
            Source::parse("https://ans.example/l.xml"),
            Ok(Source::Url(_))
        ));
        assert!(matches!(
            Source::parse("http://127.0.0.1:8080/l.xml"),
            Ok(Source::Url(_))
        ));
        let err = Source::parse("http://ans.example/l.xml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain http is refused"), "{err}");
        assert!(Source::parse("ftp://ans.example/l.xml").is_err());
    }

    #[test]
    fn checksum_formats() {
        let h = "FCEC0113FE62C11C551882ADC97F9EB254665D41FC31404CF984A0672CD9B2B2";
        assert_eq!(
            parse_checksum(h.as_bytes()).unwrap(),
            h.to_ascii_lowercase()
        );
        let with_name = format!("{h}  listeblanchemssante.xml\n");
        assert_eq!(
            parse_checksum(with_name.as_bytes()).unwrap(),
            h.to_ascii_lowercase()
        );
        assert!(parse_checksum(b"<html>not found</html>").is_err());
        assert!(parse_checksum(b"").is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_741_877_650), "2025-03-13T14:54:10Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn trust_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Trust>();
    }
}
