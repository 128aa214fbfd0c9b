//! SASL EXTERNAL (RFC 4422 Appendix A) with a TLS client certificate, for application BALs
//! (docs/mssante.md §2, ADR 0029): the certificate chains to `[tls] client_ca_file` and one of
//! its names is bound to the BAL by the operator. IMAP and SMTP call this and only do the I/O.
//!
//! The chain is checked once, after the handshake ([`verified_certificate`]): only then is
//! EXTERNAL advertised. The login ([`external_login`]) is the store's lookup of the bound BAL.

use mssante_store::{Bal, CertificateRefusal, Store, StoreError};
pub use mssante_trust::PeerVerifier;
use mssante_trust::{CertName, CertRefusal};
use rustls_pki_types::{CertificateDer, UnixTime};

/// A client certificate that chains to the configured CA: its names, for the binding lookup.
#[derive(Clone, Debug)]
pub struct ClientCertificate {
    /// Binding keys of its subject DN and subjectAltNames (trust crate, `names.rs`).
    pub name_keys: Vec<String>,
    /// The subject, for the log (a certificate's subject is no secret).
    pub subject: String,
}

/// Checks the chain the client presented (leaf first). `Ok(None)`: no certificate;
/// `Err(_)`: one that does not chain to the CA, is expired, or is not for client use.
pub fn verified_certificate(
    verifier: &PeerVerifier,
    chain: &[CertificateDer<'_>],
) -> Result<Option<ClientCertificate>, CertRefusal> {
    if chain.is_empty() {
        return Ok(None);
    }
    let dn = verifier.check_client_chain(chain, UnixTime::now())?;
    let names =
        CertName::of_certificate(&chain[0]).map_err(|e| CertRefusal::Other(e.to_string()))?;
    Ok(Some(ClientCertificate {
        name_keys: names.iter().map(CertName::binding_key).collect(),
        subject: dn.to_string(),
    }))
}

/// The certificate a client presented on a connection just secured, when it can be used for
/// EXTERNAL; one that cannot is logged (subject and reason, nothing secret) and ignored: the
/// client still connects and may log in otherwise. `verifier`: `[tls] client_ca_file`.
pub fn connection_certificate(
    verifier: Option<&PeerVerifier>,
    chain: &[CertificateDer<'_>],
    peer: std::net::SocketAddr,
) -> Option<ClientCertificate> {
    let verifier = verifier?;
    match verified_certificate(verifier, chain) {
        Ok(certificate) => certificate,
        Err(refusal) => {
            let subject = chain
                .first()
                .and_then(|leaf| mssante_trust::Dn::from_certificate(leaf).ok())
                .map(|dn| dn.to_string())
                .unwrap_or_default();
            tracing::info!(%peer, subject, reason = %refusal,
                "client certificate not usable for SASL EXTERNAL");
            None
        }
    }
}

/// Why an EXTERNAL login failed (for the log).
#[derive(Debug, thiserror::Error)]
pub enum ExternalFailure {
    /// No verified client certificate on this connection.
    #[error("no client certificate chaining to tls.client_ca_file")]
    NoCertificate,
    #[error("the authorization identity is not UTF-8")]
    BadAuthzid,
    #[error("certificate {subject:?}: {refusal:?}")]
    Refused {
        subject: String,
        authzid: Option<String>,
        refusal: CertificateRefusal,
    },
}

impl ExternalFailure {
    /// The client asked for a BAL its certificate may not open (IMAP `AUTHORIZATIONFAILED`,
    /// RFC 5530 §3), rather than failing to authenticate at all.
    pub fn is_authorization(&self) -> bool {
        matches!(
            self,
            ExternalFailure::Refused {
                refusal: CertificateRefusal::NotAuthorized,
                ..
            }
        )
    }
}

/// What an EXTERNAL exchange came to once the client's response is in (logged already).
#[derive(Debug)]
pub enum ExternalOutcome {
    /// Logged in as this BAL.
    LoggedIn(Bal),
    /// The response is not base64 (SMTP 501 5.5.2, IMAP BAD).
    BadEncoding,
    /// Refused: no usable certificate, no binding, or a BAL the certificate may not open.
    Refused(ExternalFailure),
    /// The store failed: a temporary failure.
    Unavailable,
}

/// The part of an EXTERNAL login that SMTP and IMAP share: decodes the client's base64
/// response (the authorization identity), looks up the BAL the certificate is bound to, and
/// logs the outcome with the certificate's subject (never a secret). The protocols only
/// read the response and word the reply.
pub async fn external_exchange(
    store: &Store,
    certificate: Option<&ClientCertificate>,
    response: &str,
    peer: std::net::SocketAddr,
    protocol: &'static str,
) -> ExternalOutcome {
    use base64::Engine;
    let Ok(authzid) = base64::engine::general_purpose::STANDARD.decode(response.trim()) else {
        return ExternalOutcome::BadEncoding;
    };
    match external_login(store, certificate, &authzid).await {
        Ok(Ok(bal)) => {
            let subject = certificate.map(|c| c.subject.as_str()).unwrap_or_default();
            tracing::info!(%peer, protocol, login = %bal.address, certificate = subject,
                "login with a client certificate");
            ExternalOutcome::LoggedIn(bal)
        }
        Ok(Err(why)) => {
            tracing::info!(%peer, protocol, reason = %why, "EXTERNAL login failed");
            ExternalOutcome::Refused(why)
        }
        Err(e) => {
            tracing::error!(%peer, protocol, "EXTERNAL login lookup failed: {e}");
            ExternalOutcome::Unavailable
        }
    }
}

/// Runs an EXTERNAL login: `message` is the client's response, the authorization identity
/// (RFC 4422 Appendix A.1), empty to let the server choose the one BAL the certificate is
/// bound to. `Ok(Err(_))` is a refusal; `Err(_)` a storage failure (temporary).
pub async fn external_login(
    store: &Store,
    certificate: Option<&ClientCertificate>,
    message: &[u8],
) -> Result<Result<Bal, ExternalFailure>, StoreError> {
    let Some(certificate) = certificate else {
        return Ok(Err(ExternalFailure::NoCertificate));
    };
    let Ok(authzid) = std::str::from_utf8(message) else {
        return Ok(Err(ExternalFailure::BadAuthzid));
    };
    let authzid = Some(authzid).filter(|a| !a.is_empty());
    Ok(store
        .bal_for_client_certificate(&certificate.name_keys, authzid)
        .await?
        .map_err(|refusal| ExternalFailure::Refused {
            subject: certificate.subject.clone(),
            authzid: authzid.map(str::to_string),
            refusal,
        }))
}
