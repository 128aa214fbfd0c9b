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
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{Error as TlsError, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};

use crate::dn::Dn;

/// Why a peer's client certificate is refused. `Display` is a sentence for the peer operator
/// (it goes into the SMTP reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRefusal {
    Missing,
    Expired,
    UnknownIssuer,
    /// Listed in the issuing CA's CRL (ADR 0041): serial in hex, the CA's DN.
    Revoked {
        serial: String,
        issuer: String,
    },
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
            CertRefusal::Revoked { serial, issuer } => write!(
                f,
                "client certificate revoked (serial {serial}, CA {issuer})"
            ),
            CertRefusal::Other(why) => write!(f, "client certificate refused: {why}"),
        }
    }
}

impl std::error::Error for CertRefusal {}

/// Checks peer certificates against a fixed set of trust anchors and the CRLs installed
/// for them. Clones share the verifiers: [`PeerVerifier::install_crls`] on one reaches every
/// listener and the relay at their next check, without restart (ADR 0041).
#[derive(Debug, Clone)]
pub struct PeerVerifier {
    anchors: Arc<Vec<CertificateDer<'static>>>,
    store: Arc<RootCertStore>,
    live: Arc<RwLock<Verifiers>>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The webpki verifiers over the anchors and the CRLs in force.
#[derive(Debug)]
struct Verifiers {
    /// The strict client verifier, used after the handshake.
    client: Arc<dyn ClientCertVerifier>,
    server: Arc<dyn ServerCertVerifier>,
}

impl Verifiers {
    /// Revocation is checked for the leaf and the intermediates that a CRL covers; a
    /// certificate whose CA has no CRL in force is not refused for it (fail-open, ADR 0041).
    fn build(
        store: &Arc<RootCertStore>,
        crls: &[CertificateRevocationListDer<'static>],
    ) -> anyhow::Result<Verifiers> {
        let provider = provider();
        let client = WebPkiClientVerifier::builder_with_provider(store.clone(), provider.clone())
            .with_crls(crls.iter().cloned())
            .allow_unknown_revocation_status()
            .build()
            .context("building the client certificate verifier")?;
        let server = WebPkiServerVerifier::builder_with_provider(store.clone(), provider)
            .with_crls(crls.iter().cloned())
            .allow_unknown_revocation_status()
            .build()
            .context("building the server certificate verifier")?;
        Ok(Verifiers { client, server })
    }
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
        for (i, root) in roots.iter().enumerate() {
            store.add(root.clone()).map_err(|e| {
                anyhow::anyhow!("certificate #{} is not a usable trust anchor: {e}", i + 1)
            })?;
        }
        let store = Arc::new(store);
        let live = Verifiers::build(&store, &[])?;
        Ok(PeerVerifier {
            anchors: Arc::new(roots),
            store,
            live: Arc::new(RwLock::new(live)),
            algorithms: provider().signature_verification_algorithms,
        })
    }

    /// The trust anchors as configured (the CAs whose CRLs may be installed).
    pub fn anchors(&self) -> &[CertificateDer<'static>] {
        &self.anchors
    }

    /// Puts `crls` in force for every clone of this verifier, replacing the previous set;
    /// checks already made are not revisited. On error the previous set stays.
    pub fn install_crls(
        &self,
        crls: &[CertificateRevocationListDer<'static>],
    ) -> anyhow::Result<()> {
        let built = Verifiers::build(&self.store, crls)?;
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = built;
        Ok(())
    }

    fn client(&self) -> Arc<dyn ClientCertVerifier> {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .client
            .clone()
    }

    fn server(&self) -> Arc<dyn ServerCertVerifier> {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .server
            .clone()
    }

    /// For the inbound MX rustls `ServerConfig`: requests a client certificate (the
    /// CertificateRequest carries the roots' subjects as hints, RFC 8446 §4.2.4 /
    /// RFC 5246 §7.4.4), accepts any or none, and verifies the handshake signatures.
    pub fn tls_client_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(LenientClientVerifier {
            hints: self.client().root_hint_subjects().to_vec(),
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
        self.client()
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| match refusal(e) {
                CertRefusal::Other(why) if why == REVOKED => revoked(leaf),
                other => other,
            })?;
        Dn::from_certificate(leaf).map_err(|e| CertRefusal::Other(e.to_string()))
    }

    /// For the outbound SMTP client: webpki server verification over the same roots (chain,
    /// name, validity period, serverAuth usage, the CRLs in force at each handshake).
    pub fn tls_server_verifier(&self) -> Arc<dyn ServerCertVerifier> {
        Arc::new(LiveServerVerifier(self.clone()))
    }
}

const REVOKED: &str = "revoked";

/// The refusal of a revoked leaf, logged with what an administrator needs to look it up.
fn revoked(leaf: &CertificateDer<'_>) -> CertRefusal {
    let (serial, issuer) = serial_and_issuer(leaf);
    tracing::warn!(%serial, ca = %issuer, "peer certificate refused: revoked by its CA's CRL");
    CertRefusal::Revoked { serial, issuer }
}

/// The serial (hex) and issuer DN of a certificate, for logs.
pub fn serial_and_issuer(cert: &CertificateDer<'_>) -> (String, String) {
    match x509_parser::parse_x509_certificate(cert) {
        Ok((_, c)) => (
            c.tbs_certificate.raw_serial_as_string(),
            c.issuer().to_string(),
        ),
        Err(_) => ("?".into(), "?".into()),
    }
}

/// Delegates every call to the server verifier in force, so that a CRL installed after the
/// relay's TLS configuration was built applies to its next handshake.
#[derive(Debug)]
struct LiveServerVerifier(PeerVerifier);

impl ServerCertVerifier for LiveServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, TlsError> {
        let verdict = self.0.server().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(TlsError::InvalidCertificate(CertificateError::Revoked)) = &verdict {
            let (serial, ca) = serial_and_issuer(end_entity);
            tracing::warn!(%serial, %ca, peer = ?server_name, "peer server certificate revoked by its CA's CRL");
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.server().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.server().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.server().supported_verify_schemes()
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
            CertificateError::Revoked => CertRefusal::Other(REVOKED.into()),
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
