//! Certificate revocation lists of the configured CAs (docs/mssante.md §3: peers are checked
//! for revocation; ADR 0041).
//!
//! - [`Revocation::open`] loads the CRLs kept in `<data_dir>/crl/` (no network at startup)
//!   and installs them in the peer verifiers;
//! - [`Revocation::refresh`] downloads every `[trust] crl_urls` entry; a CRL replaces the
//!   kept one of its CA only when it is signed by that CA, not expired (nextUpdate in the
//!   future) and not older than the kept one. Anything else is logged and the kept CRL stays
//!   (SC.MSS/CONF.22: the last non-expired CRL is kept);
//! - [`Revocation::run_refresh`] repeats that on a schedule for `serve`, on every node.
//!
//! A kept CRL whose nextUpdate has passed stays in force: what it lists is revoked for good
//! (RFC 5280 §3.3); the CA is reported stale (log, `mssante doctor`). A certificate whose
//! CA has no CRL is not refused for it (fail-open, ADR 0041).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::sync::{Source, fetch_with, rfc3339_utc, write_atomic};
use crate::verify::PeerVerifier;

/// Default refresh period of the CRLs: IGC-Santé publishes them daily; hourly checks pick a
/// revocation up within the hour.
pub const DEFAULT_CRL_REFRESH_SECS: u64 = 3600;
/// Folder of the kept CRLs inside the data dir.
pub const CRL_DIR: &str = "crl";
/// A CA's CRL may list many thousands of certificates; anything near this is not one.
const MAX_CRL_BYTES: usize = 64 * 1024 * 1024;
/// Floor on the refresh period, so that a typo cannot hammer the publisher.
const MIN_REFRESH: Duration = Duration::from_secs(2);

/// A CRL that passed the checks: signed by one of the configured CAs.
#[derive(Clone, Debug)]
pub struct Crl {
    pub der: CertificateRevocationListDer<'static>,
    /// The issuing CA's DN (RFC 4514 order).
    pub issuer: String,
    issuer_raw: Vec<u8>,
    /// thisUpdate and nextUpdate, Unix seconds.
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// The cRLNumber extension (RFC 5280 §5.2.3), decimal.
    pub number: Option<String>,
    pub revoked: usize,
}

impl Crl {
    /// Parses `bytes` (DER or PEM `X509 CRL`) and verifies its signature with the CA of
    /// `anchors` whose subject is the CRL's issuer. Dates are not checked here.
    pub fn verified(bytes: &[u8], anchors: &[CertificateDer<'static>]) -> anyhow::Result<Crl> {
        let der = match CertificateRevocationListDer::from_pem_slice(bytes) {
            Ok(der) => der,
            Err(_) => CertificateRevocationListDer::from(bytes.to_vec()),
        };
        let (trailing, crl) = CertificateRevocationList::from_der(der.as_ref())
            .map_err(|e| anyhow!("not a CRL (DER or PEM): {e}"))?;
        if !trailing.is_empty() {
            bail!("{} trailing bytes after the CRL", trailing.len());
        }
        // What enforces it is rustls-webpki, whose reading is stricter than x509-parser's
        // (delta and indirect CRLs, critical extensions): a CRL it cannot read must not be
        // kept, or every later start would fail on it.
        webpki::OwnedCertRevocationList::from_der(der.as_ref())
            .map_err(|e| anyhow!("the certificate verifiers cannot use it: {e}"))?;
        let issuer_raw = crl.issuer().as_raw().to_vec();
        let issuer = crl.issuer().to_string();
        let ca = anchors
            .iter()
            .filter_map(|a| X509Certificate::from_der(a).ok().map(|(_, c)| c))
            .find(|c| c.subject().as_raw() == issuer_raw.as_slice())
            .ok_or_else(|| anyhow!("issued by {issuer}, which is not a configured CA"))?;
        crl.verify_signature(ca.public_key())
            .map_err(|e| anyhow!("its signature does not verify with the key of {issuer}: {e}"))?;
        let this_update = crl.last_update().timestamp();
        let next_update = crl.next_update().map(|t| t.timestamp());
        let number = crl.crl_number().map(|n| n.to_string());
        let revoked = crl.iter_revoked_certificates().count();
        drop(crl);
        Ok(Crl {
            der,
            issuer,
            issuer_raw,
            this_update,
            next_update,
            number,
            revoked,
        })
    }

    /// True once nextUpdate has passed (a CRL without nextUpdate never expires).
    pub fn expired_at(&self, now: i64) -> bool {
        self.next_update.is_some_and(|next| next <= now)
    }

    /// One line for logs and `doctor`.
    pub fn describe(&self) -> String {
        format!(
            "CRL of {} (number {}, thisUpdate {}, nextUpdate {}, {} revoked)",
            self.issuer,
            self.number.as_deref().unwrap_or("none"),
            rfc3339_utc(self.this_update.max(0) as u64),
            self.next_update
                .map_or("none".into(), |t| rfc3339_utc(t.max(0) as u64)),
            self.revoked
        )
    }

    /// Whether `self` (downloaded) may replace `kept`: not older (thisUpdate, then the CRL
    /// number when both have one). Equal dates are the same publication.
    fn newer_than(&self, kept: &Crl) -> Ordering {
        match self.this_update.cmp(&kept.this_update) {
            std::cmp::Ordering::Equal => {}
            std::cmp::Ordering::Less => return Ordering::Older,
            std::cmp::Ordering::Greater => return Ordering::Newer,
        }
        let number = |c: &Crl| c.number.as_deref().map(|n| (n.len(), n.to_string()));
        match (number(self), number(kept)) {
            (Some(new), Some(old)) if new > old => Ordering::Newer,
            (Some(new), Some(old)) if new < old => Ordering::Older,
            _ => Ordering::Same,
        }
    }

    /// The kept copy's file name: one per CA.
    fn file_name(&self) -> String {
        format!(
            "{}.crl",
            &hex::encode(Sha256::digest(&self.issuer_raw))[..16]
        )
    }
}

enum Ordering {
    Newer,
    Same,
    Older,
}

/// What one URL gave in a refresh.
#[derive(Debug)]
pub enum Outcome {
    /// A newer CRL is now in force.
    Installed(String),
    /// The same CRL as the kept one.
    Unchanged(String),
    /// Refused or unreachable; the kept CRL stays.
    Refused(String),
}

/// The CRLs in force, one per CA, shared by the verifiers it updates.
#[derive(Debug)]
pub struct Revocation {
    urls: Vec<String>,
    refresh: Duration,
    dir: PathBuf,
    anchors: Vec<CertificateDer<'static>>,
    verifiers: Vec<PeerVerifier>,
    current: RwLock<BTreeMap<Vec<u8>, Arc<Crl>>>,
    /// One refresh at a time: two would race on the kept copies.
    refreshing: tokio::sync::Mutex<()>,
}

impl Revocation {
    /// Checks the URLs, loads the kept CRLs (a kept CRL that no longer verifies is logged
    /// and ignored) and installs them in `verifiers`, whose anchors are the CAs whose CRLs
    /// are accepted.
    pub fn open(
        urls: &[String],
        refresh_secs: u64,
        data_dir: &Path,
        verifiers: Vec<PeerVerifier>,
    ) -> anyhow::Result<Revocation> {
        for url in urls {
            Source::parse_signed(url).with_context(|| format!("[trust] crl_urls: {url}"))?;
        }
        let anchors: Vec<CertificateDer<'static>> = verifiers
            .iter()
            .flat_map(|v| v.anchors().iter().cloned())
            .collect();
        let dir = data_dir.join(CRL_DIR);
        let mut current = BTreeMap::new();
        for (path, kept) in load_kept(&dir, &anchors) {
            match kept {
                Ok(crl) => {
                    tracing::info!(
                        "crl: kept {} loaded from {}",
                        crl.describe(),
                        path.display()
                    );
                    current.insert(crl.issuer_raw.clone(), Arc::new(crl));
                }
                Err(e) => tracing::warn!("crl: kept copy {} ignored: {e:#}", path.display()),
            }
        }
        let revocation = Revocation {
            urls: urls.to_vec(),
            refresh: Duration::from_secs(refresh_secs),
            dir,
            anchors,
            verifiers,
            current: RwLock::new(current),
            refreshing: tokio::sync::Mutex::new(()),
        };
        revocation.install(&revocation.snapshot())?;
        Ok(revocation)
    }

    /// The CRLs in force, one per CA.
    pub fn snapshot(&self) -> Vec<Arc<Crl>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn install(&self, crls: &[Arc<Crl>]) -> anyhow::Result<()> {
        let ders: Vec<_> = crls.iter().map(|c| c.der.clone()).collect();
        for verifier in &self.verifiers {
            verifier.install_crls(&ders)?;
        }
        Ok(())
    }

    /// Downloads every configured URL once; see the module documentation for what is kept.
    pub async fn refresh(&self) -> Vec<(String, Outcome)> {
        let _one_at_a_time = self.refreshing.lock().await;
        let mut outcomes = Vec::new();
        for url in &self.urls {
            let outcome = match self.refresh_one(url).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Refused(format!("{e:#}")),
            };
            match &outcome {
                Outcome::Installed(what) => tracing::info!("crl: {url}: {what} now in force"),
                Outcome::Unchanged(_) => tracing::debug!("crl: {url}: unchanged"),
                Outcome::Refused(why) => tracing::warn!("crl: {url}: {why}"),
            }
            outcomes.push((url.clone(), outcome));
        }
        self.warn_stale();
        outcomes
    }

    async fn refresh_one(&self, url: &str) -> anyhow::Result<Outcome> {
        let source = Source::parse_signed(url)?;
        let bytes = fetch_with(&source, MAX_CRL_BYTES, true)
            .await
            .context("download failed")?;
        let kept = |crl: &Crl| {
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&crl.issuer_raw)
                .cloned()
        };
        match judge(&bytes, &self.anchors, unix_now(), kept)? {
            Verdict::Same(crl) => Ok(Outcome::Unchanged(crl.describe())),
            Verdict::Newer(crl) => self.keep(crl).await,
        }
    }

    /// Writes the kept copy, then puts the new set in force.
    async fn keep(&self, crl: Crl) -> anyhow::Result<Outcome> {
        let what = crl.describe();
        let (dir, name, bytes) = (self.dir.clone(), crl.file_name(), crl.der.to_vec());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            write_atomic(&dir, &name, &bytes)
        })
        .await
        .context("the writer task failed")??;
        let mut next = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        next.insert(crl.issuer_raw.clone(), Arc::new(crl));
        let crls: Vec<Arc<Crl>> = next.values().cloned().collect();
        self.install(&crls)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(Outcome::Installed(what))
    }

    /// A CRL past its nextUpdate stays in force but says so at every refresh.
    fn warn_stale(&self) {
        let now = unix_now();
        for crl in self.snapshot().iter().filter(|c| c.expired_at(now)) {
            tracing::warn!(
                "crl: STALE {}: past its nextUpdate and no newer one could be fetched; \
                 certificates it lists stay refused, later revocations are not known",
                crl.describe()
            );
        }
        if !self.urls.is_empty() && self.snapshot().is_empty() {
            tracing::warn!(
                "crl: no CRL in force: revoked peer certificates are NOT refused (fail-open)"
            );
        }
    }

    /// The refresh loop for `serve`: a first refresh at once, then every period.
    pub async fn run_refresh(self: Arc<Self>, shutdown: CancellationToken) {
        if self.urls.is_empty() {
            tracing::info!(
                "crl: no [trust] crl_urls, peer certificates are not checked for revocation"
            );
            return;
        }
        if self.refresh.is_zero() {
            tracing::info!("crl: crl_refresh_secs = 0, refresh disabled");
            return;
        }
        let period = self.refresh.max(MIN_REFRESH);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.refresh() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }
}

/// What a refresh may do with a downloaded CRL that passed [`judge`].
#[derive(Debug)]
pub enum Verdict {
    /// Newer than the kept CRL of its CA (or its CA has none): to keep and put in force.
    Newer(Crl),
    /// The same publication as the kept one: nothing to do.
    Same(Crl),
}

/// The acceptance decision on downloaded bytes, without I/O (ADR 0041): the CRL must parse,
/// be signed by the CA of `anchors` it names as issuer, not be expired at `now`, and not be
/// older than what `kept` returns for it (the CRL in force for that CA). The error says why
/// it was refused and what stays in force.
pub fn judge(
    bytes: &[u8],
    anchors: &[CertificateDer<'static>],
    now: i64,
    kept: impl FnOnce(&Crl) -> Option<Arc<Crl>>,
) -> anyhow::Result<Verdict> {
    let crl = Crl::verified(bytes, anchors).context("refused")?;
    let kept = kept(&crl);
    let keeping = || match &kept {
        Some(k) => format!("the kept {} stays", k.describe()),
        None => format!("no CRL of {} is in force", crl.issuer),
    };
    if crl.expired_at(now) {
        bail!("refused: {} is expired; {}", crl.describe(), keeping());
    }
    if let Some(kept) = &kept {
        match crl.newer_than(kept) {
            Ordering::Same => return Ok(Verdict::Same(crl)),
            Ordering::Older => bail!("refused: {} is older; {}", crl.describe(), keeping()),
            Ordering::Newer => {}
        }
    }
    Ok(Verdict::Newer(crl))
}

/// The kept CRLs under `dir`, each verified against `anchors` (dates not checked).
pub fn load_kept(
    dir: &Path,
    anchors: &[CertificateDer<'static>],
) -> Vec<(PathBuf, anyhow::Result<Crl>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let crl = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| Crl::verified(&bytes, anchors));
            (path, crl)
        })
        .collect()
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
