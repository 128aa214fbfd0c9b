//! The names a client certificate is known by, for binding it to an application BAL (SASL
//! EXTERNAL, ADR 0029): its subject DN and its subjectAltName entries (RFC 5280 §4.2.1.6:
//! rfc822Name, dNSName, uniformResourceIdentifier).
//!
//! Each name has a **binding key**, the string the store keeps and looks up: `dn:` and the
//! DN's canonical form (attribute order and case do not matter, as for the whitelist), or
//! `email:`, `dns:` (both case-insensitive) and `uri:` (kept as written) for the SANs.

use std::fmt;

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::dn::{Dn, DnError};

/// One name of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertName {
    /// The subject distinguished name.
    Dn(Dn),
    /// SAN rfc822Name (an e-mail address).
    Email(String),
    /// SAN dNSName.
    Dns(String),
    /// SAN uniformResourceIdentifier.
    Uri(String),
}

/// A name an operator typed (`--san`) that is not `email:`, `dns:` or `uri:`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected email:ADDRESS, dns:NAME or uri:URI")]
pub struct BadSan(pub String);

impl CertName {
    /// The string the store keeps and looks a certificate up by.
    pub fn binding_key(&self) -> String {
        match self {
            CertName::Dn(dn) => format!("dn:{}", dn.canonical()),
            CertName::Email(e) => format!("email:{}", e.trim().to_lowercase()),
            CertName::Dns(d) => format!("dns:{}", d.trim().trim_end_matches('.').to_lowercase()),
            CertName::Uri(u) => format!("uri:{}", u.trim()),
        }
    }

    /// A SAN as an operator writes it: `email:lab@ch.fr`, `dns:lab.ch.fr`, `uri:…`.
    pub fn parse_san(text: &str) -> Result<CertName, BadSan> {
        let (kind, value) = text.split_once(':').ok_or_else(|| BadSan(text.into()))?;
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(BadSan(text.into()));
        }
        match kind.trim().to_ascii_lowercase().as_str() {
            "email" => Ok(CertName::Email(value.into())),
            "dns" => Ok(CertName::Dns(value.into())),
            "uri" => Ok(CertName::Uri(value.into())),
            _ => Err(BadSan(text.into())),
        }
    }

    /// Every name of a DER certificate: the subject DN first (when not empty), then the
    /// SANs of the kinds above, in the certificate's order.
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Vec<CertName>, DnError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| DnError::Certificate(format!("unreadable certificate: {e}")))?;
        let mut names = Vec::new();
        match Dn::from_certificate(cert) {
            Ok(dn) => names.push(CertName::Dn(dn)),
            // RFC 5280 §4.1.2.6: an empty subject is allowed when the SAN names the holder.
            Err(DnError::Certificate(_)) if parsed.subject().iter_rdn().next().is_none() => {}
            Err(e) => return Err(e),
        }
        let san = parsed
            .subject_alternative_name()
            .map_err(|e| DnError::Certificate(format!("unreadable subjectAltName: {e}")))?;
        for general in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match general {
                GeneralName::RFC822Name(e) => names.push(CertName::Email((*e).into())),
                GeneralName::DNSName(d) => names.push(CertName::Dns((*d).into())),
                GeneralName::URI(u) => names.push(CertName::Uri((*u).into())),
                _ => {}
            }
        }
        Ok(names)
    }
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertName::Dn(dn) => write!(f, "DN {dn}"),
            CertName::Email(e) => write!(f, "email:{e}"),
            CertName::Dns(d) => write!(f, "dns:{d}"),
            CertName::Uri(u) => write!(f, "uri:{u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_keys_ignore_order_and_case() {
        let a = CertName::Dn(Dn::parse("CN=Lab.Example,O=Labo,C=FR").unwrap());
        let b = CertName::Dn(Dn::parse("c=fr, o=LABO, cn=lab.example").unwrap());
        assert_eq!(a.binding_key(), b.binding_key());
        assert_eq!(a.binding_key(), "dn:C=fr,CN=lab.example,O=labo");
        let other = CertName::Dn(Dn::parse("CN=lab.example,O=Labo2,C=FR").unwrap());
        assert_ne!(a.binding_key(), other.binding_key());
        assert_eq!(
            CertName::parse_san("EMAIL:Lab@CH.fr")
                .unwrap()
                .binding_key(),
            "email:lab@ch.fr"
        );
        assert_eq!(
            CertName::parse_san("dns:Lab.CH.fr.").unwrap().binding_key(),
            "dns:lab.ch.fr"
        );
    }

    #[test]
    fn bad_sans_are_refused() {
        for bad in ["lab@ch.fr", "ip:127.0.0.1", "email:", "dns:\u{7}x"] {
            assert!(CertName::parse_san(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_of_a_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["lab.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Lab app");
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "app@lab.example".try_into().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let names = CertName::of_certificate(cert.der()).unwrap();
        let keys: Vec<String> = names.iter().map(CertName::binding_key).collect();
        assert_eq!(
            keys,
            ["dn:CN=lab app", "dns:lab.example", "email:app@lab.example"]
        );
    }
}
