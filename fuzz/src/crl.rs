//! The CRL acceptance decision (`trust/src/crl.rs::judge`, ADR 0041): parse (DER or PEM),
//! signature by the configured CA that the CRL names, expiry, and "not older than the kept
//! one"; then what is accepted must go into the verifiers that enforce it (rustls-webpki).
//!
//! One CA is configured (`fixtures/crl/ca.der`, an Ed25519 key so that signing here is
//! deterministic), with a kept CRL of its own (`kept.der`: thisUpdate 2026-12-01, number 5).
//! A mutated signed CRL no longer verifies, so the first input byte picks what the rest is:
//! - `% 3 == 0`: a whole CRL as downloaded (DER or PEM);
//! - `% 3 == 1`: a `tbsCertList` this target signs with the configured CA's key;
//! - `% 3 == 2`: the same signed with another key (an impostor with the CA's name): such a
//!   CRL is never accepted.

use std::sync::{Arc, OnceLock};

use mssante_trust::PeerVerifier;
use mssante_trust::crl::{Crl, Verdict, judge};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use rustls_pki_types::CertificateDer;

/// "Now" for every input, 2026-12-06T00:00:00Z: the outcome of an input never changes.
const NOW: i64 = 1_796_515_200;
/// AlgorithmIdentifier of Ed25519 (RFC 8410 §3).
const ED25519_ALGORITHM: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

struct Pki {
    anchors: Vec<CertificateDer<'static>>,
    ca: Ed25519KeyPair,
    impostor: Ed25519KeyPair,
    kept: Arc<Crl>,
    verifier: PeerVerifier,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let key = |pkcs8| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).expect("fixture key");
        let anchors = vec![CertificateDer::from(
            include_bytes!("../fixtures/crl/ca.der").to_vec(),
        )];
        let kept = Crl::verified(include_bytes!("../fixtures/crl/kept.der"), &anchors)
            .expect("fixtures/crl/kept.der is signed by fixtures/crl/ca.der");
        Pki {
            verifier: PeerVerifier::new(anchors.clone()).expect("fixture CA"),
            anchors,
            ca: key(include_bytes!("../fixtures/crl/ca.pk8")),
            impostor: key(include_bytes!("../fixtures/crl/impostor.pk8")),
            kept: Arc::new(kept),
        }
    })
}

pub fn crl(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pki = pki();
    let (bytes, by_impostor) = match mode % 3 {
        0 => (rest.to_vec(), false),
        1 => (signed(rest, &pki.ca), false),
        _ => (signed(rest, &pki.impostor), true),
    };
    for kept in [None, Some(pki.kept.clone())] {
        let Ok(verdict) = judge(&bytes, &pki.anchors, NOW, |_| kept.clone()) else {
            continue;
        };
        assert!(
            !by_impostor,
            "a CRL not signed by the configured CA was accepted"
        );
        let crl = match &verdict {
            Verdict::Newer(crl) | Verdict::Same(crl) => crl,
        };
        assert!(
            signature_verifies(&crl.der, pki.ca.public_key().as_ref()),
            "accepted, but the CA's key does not verify its signature"
        );
        assert!(!crl.expired_at(NOW), "an expired CRL was accepted");
        if let Some(kept) = &kept {
            match verdict {
                Verdict::Newer(_) => assert!(crl.this_update >= kept.this_update),
                Verdict::Same(_) => assert_eq!(crl.this_update, kept.this_update),
            }
        }
        pki.verifier
            .install_crls(std::slice::from_ref(&crl.der))
            .expect("an accepted CRL that the verifiers cannot use");
    }
}

/// `CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }`
/// (RFC 5280 §5.1) around `tbs` as it is, signed by `key`.
fn signed(tbs: &[u8], key: &Ed25519KeyPair) -> Vec<u8> {
    let signature = key.sign(tbs);
    let mut bits = vec![0u8];
    bits.extend_from_slice(signature.as_ref());
    let mut body = tbs.to_vec();
    body.extend_from_slice(&ED25519_ALGORITHM);
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n => {
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    out.extend_from_slice(content);
    out
}

/// The CRL's outer signature checked with ring over the `tbsCertList` bytes, the DER split
/// here (not by the parsers under test).
fn signature_verifies(der: &[u8], public_key: &[u8]) -> bool {
    let Some((0x30, list, [])) = split_tlv(der) else {
        return false;
    };
    let Some((0x30, _, after_tbs)) = split_tlv(list) else {
        return false;
    };
    let tbs = &list[..list.len() - after_tbs.len()];
    let Some((_, _, after_algorithm)) = split_tlv(after_tbs) else {
        return false;
    };
    let Some((0x03, [0, signature @ ..], [])) = split_tlv(after_algorithm) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(tbs, signature)
        .is_ok()
}

/// One DER element at the start of `bytes`: its tag, its contents and what follows.
fn split_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, &b| len << 8 | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_crl_is_the_same_publication_and_an_impostor_is_refused() {
        let pki = pki();
        let kept = include_bytes!("../fixtures/crl/kept.der");
        let same = judge(kept, &pki.anchors, NOW, |_| Some(pki.kept.clone())).unwrap();
        assert!(matches!(same, Verdict::Same(_)));
        assert!(signature_verifies(kept, pki.ca.public_key().as_ref()));
        let (_, list, _) = split_tlv(kept).unwrap();
        let (_, _, after) = split_tlv(list).unwrap();
        let tbs = &list[..list.len() - after.len()];
        assert_eq!(
            signed(tbs, &pki.ca),
            kept.to_vec(),
            "Ed25519 signs the same"
        );
        assert!(judge(&signed(tbs, &pki.impostor), &pki.anchors, NOW, |_| None).is_err());
    }
}
