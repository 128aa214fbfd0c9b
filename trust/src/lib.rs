//! The MSSanté trust space (docs/mssante.md §3).
//!
//! - [`whitelist`]: the ANS whitelist `listeblanchemssante.xml` (which domains, with which
//!   operator certificate DNs) and the deliberate parsing policy for it;
//! - [`dn`]: distinguished names from the whitelist's strings and from certificates, compared
//!   independently of attribute order;
//! - [`verify`]: peer certificate checks against the IGC-Santé roots, for inbound (client
//!   certificates) and outbound (server certificates) TLS;
//! - [`names`]: the names of a client certificate (subject DN, subjectAltName) that bind it
//!   to an application BAL (SASL EXTERNAL);
//! - [`sync`]: the live list, refreshed on a schedule, with last-good-copy semantics;
//! - [`crl`]: the CRLs of the configured CAs, refreshed on a schedule, the last non-expired
//!   one kept, installed in the peer verifiers (ADR 0041).
//!
//! The `mssante trust` subcommands live in the binary (`src/cli/trust.rs`).

use std::path::PathBuf;

pub mod crl;
pub mod dn;
pub mod names;
pub mod sync;
pub mod verify;
pub mod whitelist;

pub use crl::{Crl, Revocation};
pub use dn::{Dn, DnError, certificate_validity};
pub use names::{BadSan, CertName};
pub use sync::{SyncReport, Trust};
pub use verify::{CertRefusal, PeerVerifier};
pub use whitelist::{Entry, TrustList, WhitelistError};

/// Default refresh period: the list changes daily, four checks a day pick a change up within
/// hours without loading the publisher.
pub const DEFAULT_REFRESH_SECS: u64 = 6 * 3600;

/// The `[trust]` section of the server configuration.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustConfig {
    /// When true (the default): inbound MX requires TLS, a client certificate valid to the
    /// roots and a DN listed for the sender domain; outbound relays only to listed domains.
    pub enforce: bool,
    /// A file path or an `https://` URL (`http://` is refused, except `http://127.0.0.1` for
    /// tests).
    pub whitelist: Option<String>,
    /// A file path or URL of the published SHA-256 (hex, possibly followed by whitespace and a
    /// file name); verified when given.
    pub checksum: Option<String>,
    /// Seconds between refreshes; 0 disables the refresh loop.
    pub refresh_secs: u64,
    /// PEM trust anchors (the IGC-Santé roots, and the intermediate CAs that sign CRLs).
    pub ca_file: Option<PathBuf>,
    /// CRLs of the CAs of `ca_file` and `[tls] client_ca_file` (`http://` accepted: a CRL is
    /// signed; or a file path). Each CRL names its CA (ADR 0041).
    pub crl_urls: Vec<String>,
    /// Seconds between CRL downloads; 0 disables the refresh loop.
    pub crl_refresh_secs: u64,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            enforce: true,
            whitelist: None,
            checksum: None,
            refresh_secs: DEFAULT_REFRESH_SECS,
            ca_file: None,
            crl_urls: Vec::new(),
            crl_refresh_secs: crl::DEFAULT_CRL_REFRESH_SECS,
        }
    }
}

impl TrustConfig {
    /// The peer verifier over `ca_file`, or None when no trust anchors are configured.
    pub fn peer_verifier(&self) -> anyhow::Result<Option<PeerVerifier>> {
        self.ca_file
            .as_deref()
            .map(PeerVerifier::from_pem_file)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let empty: TrustConfig = toml::from_str("").unwrap();
        assert!(empty.enforce);
        assert_eq!(empty.refresh_secs, 21600);
        assert!(empty.whitelist.is_none() && empty.checksum.is_none() && empty.ca_file.is_none());

        let set: TrustConfig = toml::from_str(
            "enforce = false\nwhitelist = \"https://x/l.xml\"\nrefresh_secs = 60\nca_file = \"/etc/igc.pem\"",
        )
        .unwrap();
        assert!(!set.enforce);
        assert_eq!(set.whitelist.as_deref(), Some("https://x/l.xml"));
        assert_eq!(set.refresh_secs, 60);
        assert_eq!(set.ca_file, Some(PathBuf::from("/etc/igc.pem")));

        assert!(toml::from_str::<TrustConfig>("whitelst = \"typo\"").is_err());
    }

    #[test]
    fn no_ca_file_means_no_verifier() {
        assert!(TrustConfig::default().peer_verifier().unwrap().is_none());
    }
}
