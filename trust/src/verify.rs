//! Peer certificate checks against the configured trust anchors (docs/mssante.md §3): the IGC-Santé
//! roots in production, a test CA in tests.
//!
//! Inbound (MX), the TLS handshake asks for a client certificate but does not fail when the
//! chain is missing or invalid: a failed handshake gives the peer operator nothing but a TLS
//! alert, whereas an SMTP session can answer with a 5xx sentence they can act on ("client
//! certificate expired"). The chain is then checked by [`PeerVerifier::check_client_chain`].
//! The handshake signatures themselves are always verified, so a peer cannot present someone
//! else's certificate without holding its key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{Error as TlsError, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::dn::Dn;

/// Why a peer's client certificate is refused. `Display` is a sentence for the peer operator
/// (it goes into the SMTP reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRefusal {
    Missing,
    Expired,
    UnknownIssuer,
    Other(String),
}

impl fmt::Display for CertRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertRefusal::Missing => f.write_str("no client certificate presented"),
            CertRefusal::Expired => f.write_str("client certificate expired"),
            CertRefusal::UnknownIssuer => {
                f.write_str("client certificate not issued by a trusted IGC-Santé CA")
            }
            CertRefusal::Other(why) => write!(f, "client certificate refused: {why}"),
        }
    }
}

impl std::error::Error for CertRefusal {}

/// Checks peer certificates against a fixed set of trust anchors.
#[derive(Debug, Clone)]
pub struct PeerVerifier {
    /// The strict client verifier, used after the handshake.
    client: Arc<dyn ClientCertVerifier>,
    server: Arc<dyn ServerCertVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The ring provider: the project uses no other (no aws-lc, no OpenSSL).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl PeerVerifier {
    /// Reads PEM trust anchors (`CERTIFICATE` blocks; other blocks are ignored).
    pub fn from_pem_file(path: &Path) -> anyhow::Result<PeerVerifier> {
        let pem = std::fs::read(path)
            .with_context(|| format!("trust anchors: cannot read {}", path.display()))?;
        let roots = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("trust anchors: {} is not valid PEM", path.display()))?;
        if roots.is_empty() {
            bail!(
                "trust anchors: {} contains no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
                path.display()
            );
        }
        PeerVerifier::new(roots).with_context(|| format!("trust anchors: {}", path.display()))
    }

    /// Builds the verifiers over `roots` (at least one).
    pub fn new(roots: Vec<CertificateDer<'static>>) -> anyhow::Result<PeerVerifier> {
        if roots.is_empty() {
            bail!("no trust anchor given");
        }
        let mut store = RootCertStore::empty();
        for (i, root) in roots.into_iter().enumerate() {
            store.add(root).map_err(|e| {
                anyhow::anyhow!("certificate #{} is not a usable trust anchor: {e}", i + 1)
            })?;
        }
        let store = Arc::new(store);
        let provider = provider();
        let client = WebPkiClientVerifier::builder_with_provider(store.clone(), provider.clone())
            .build()
            .context("building the client certificate verifier")?;
        let server = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
            .build()
            .context("building the server certificate verifier")?;
        Ok(PeerVerifier {
            client,
            server,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// For the inbound MX rustls `ServerConfig`: requests a client certificate (the
    /// CertificateRequest carries the roots' subjects as hints, RFC 8446 §4.2.4 /
    /// RFC 5246 §7.4.4), accepts any or none, and verifies the handshake signatures.
    pub fn tls_client_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(LenientClientVerifier {
            hints: self.client.root_hint_subjects().to_vec(),
            algorithms: self.algorithms,
        })
    }

    /// After the handshake: validates `chain` (leaf first) to the roots (signature chain,
    /// validity period, clientAuth extended key usage) and returns the leaf's subject DN.
    pub fn check_client_chain(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Dn, CertRefusal> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(CertRefusal::Missing);
        };
        self.client
            .verify_client_cert(leaf, intermediates, now)
            .map_err(refusal)?;
        Dn::from_certificate(leaf).map_err(|e| CertRefusal::Other(e.to_string()))
    }

    /// For the outbound SMTP client: webpki server verification over the same roots (chain,
    /// name, validity period, serverAuth usage).
    pub fn tls_server_verifier(&self) -> Arc<dyn ServerCertVerifier> {
        self.server.clone()
    }
}

/// Maps a webpki verdict to what the peer operator needs to hear.
fn refusal(e: TlsError) -> CertRefusal {
    match e {
        TlsError::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertRefusal::Expired
            }
            CertificateError::UnknownIssuer => CertRefusal::UnknownIssuer,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertRefusal::Other("not valid yet (check the clocks)".into())
            }
            CertificateError::Revoked => CertRefusal::Other("revoked".into()),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                CertRefusal::Other(
                    "not valid for TLS client authentication (extended key usage)".into(),
                )
            }
            CertificateError::BadSignature => {
                CertRefusal::Other("bad signature in the certificate chain".into())
            }
            CertificateError::BadEncoding => CertRefusal::Other("unreadable certificate".into()),
            other => CertRefusal::Other(format!("{other:?}")),
        },
        other => CertRefusal::Other(other.to_string()),
    }
}

/// Asks for a client certificate, never fails the handshake on the chain, verifies the
/// handshake signatures for real.
#[derive(Debug)]
struct LenientClientVerifier {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for LenientClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Optional: a peer without certificate gets an SMTP refusal, not a TLS alert.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    /// Deferred to `PeerVerifier::check_client_chain` (see the module documentation).
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        Ok(ClientCertVerified::assertion())
    }

    /// CertificateVerify (RFC 5246 §7.4.8): proves the peer holds the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    /// CertificateVerify (RFC 8446 §4.4.3).
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            CertRefusal::Missing.to_string(),
            "no client certificate presented"
        );
        assert_eq!(
            CertRefusal::Expired.to_string(),
            "client certificate expired"
        );
        assert_eq!(
            CertRefusal::UnknownIssuer.to_string(),
            "client certificate not issued by a trusted IGC-Santé CA"
        );
        assert_eq!(
            refusal(TlsError::InvalidCertificate(
                CertificateError::InvalidPurpose
            ))
            .to_string(),
            "client certificate refused: not valid for TLS client authentication (extended key usage)"
        );
    }

    #[test]
    fn refuses_empty_roots_and_pem_without_certificate() {
        assert!(PeerVerifier::new(Vec::new()).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roots.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = PeerVerifier::from_pem_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("roots.pem") && err.contains("no certificate"),
            "{err}"
        );
        let missing = dir.path().join("absent.pem");
        let err = format!("{:#}", PeerVerifier::from_pem_file(&missing).unwrap_err());
        assert!(err.contains("absent.pem"), "{err}");
    }
}
