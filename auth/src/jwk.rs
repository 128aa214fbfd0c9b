//! JSON Web Key Sets (RFC 7517) reduced to what verifies PSC tokens: RSA keys (`n`, `e`,
//! RFC 7518 §6.3.1) and EC P-256 keys (`x`, `y`, RFC 7518 §6.2.1), as ring public keys.
//!
//! A set may hold keys we do not use (encryption keys for UserInfo JWE, other curves,
//! symmetric keys): they are skipped, never an error, so that one odd key does not take the
//! signing keys down with it. A set with no usable key at all is an error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use crate::jws::Alg;
use crate::refusal::Refusal;

/// RSA moduli below 2048 bits are refused by ring's `*_2048_8192_*` parameters anyway;
/// checking at load time reports a weak key once instead of at every login.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;
/// An uncompressed P-256 point: `04 || x || y` (SEC 1 §2.3.3).
const P256_COORDINATE_LEN: usize = 32;

/// A verification key in the form ring takes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// Big-endian modulus and exponent, leading zeros stripped.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed point, 65 bytes.
    EcP256 { point: Vec<u8> },
}

/// One usable signing key of the issuer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The JWK's own `alg` (RFC 7517 §4.4), when it names one: the key is then good for that
    /// algorithm only.
    pub alg: Option<String>,
    pub key: PublicKey,
}

/// The usable keys of a JWKS document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    /// Keys present in the document but not usable for signatures (with why), for the log.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    #[error("not a JWKS document: {0}")]
    NotJwks(String),
    #[error("no usable signing key (skipped: {0})")]
    NoUsableKey(String),
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parses a JWKS document, keeping the RSA and P-256 signing keys.
pub fn parse_jwks(document: &[u8]) -> Result<KeySet, JwksError> {
    let raw: RawSet =
        serde_json::from_slice(document).map_err(|e| JwksError::NotJwks(e.to_string()))?;
    let mut set = KeySet::default();
    for (index, value) in raw.keys.into_iter().enumerate() {
        match parse_key(value) {
            Ok(jwk) => set.keys.push(jwk),
            Err(why) => set.skipped.push(format!("key #{index}: {why}")),
        }
    }
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKey(set.skipped.join("; ")));
    }
    Ok(set)
}

fn parse_key(value: serde_json::Value) -> Result<Jwk, String> {
    let raw: RawKey = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let kid = raw.kid.clone();
    let label = kid.as_deref().unwrap_or("(no kid)");
    // RFC 7517 §4.2: "enc" keys are for encryption (PSC's UserInfo JWE), not for us.
    if let Some(usage) = raw.use_.as_deref()
        && usage != "sig"
    {
        return Err(format!("{label}: use {usage:?}"));
    }
    let key = match raw.kty.as_str() {
        "RSA" => rsa_key(&raw).map_err(|why| format!("{label}: {why}"))?,
        "EC" => ec_key(&raw).map_err(|why| format!("{label}: {why}"))?,
        other => return Err(format!("{label}: kty {other:?}")),
    };
    Ok(Jwk {
        kid,
        alg: raw.alg,
        key,
    })
}

fn rsa_key(raw: &RawKey) -> Result<PublicKey, String> {
    let n = strip_leading_zeros(decode_member(raw.n.as_deref(), "n")?);
    let e = strip_leading_zeros(decode_member(raw.e.as_deref(), "e")?);
    let bits = bit_length(&n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(format!("RSA modulus of {bits} bits"));
    }
    if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
        return Err("RSA exponent out of range".into());
    }
    Ok(PublicKey::Rsa { n, e })
}

fn ec_key(raw: &RawKey) -> Result<PublicKey, String> {
    match raw.crv.as_deref() {
        Some("P-256") => {}
        other => return Err(format!("curve {other:?}")),
    }
    let x = decode_member(raw.x.as_deref(), "x")?;
    let y = decode_member(raw.y.as_deref(), "y")?;
    // RFC 7518 §6.2.1.2: the coordinates are the full size of the field, leading zeros kept.
    if x.len() != P256_COORDINATE_LEN || y.len() != P256_COORDINATE_LEN {
        return Err("P-256 coordinates must be 32 bytes".into());
    }
    let mut point = Vec::with_capacity(1 + 2 * P256_COORDINATE_LEN);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(PublicKey::EcP256 { point })
}

fn decode_member(value: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let text = value.ok_or_else(|| format!("missing {name:?}"))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("{name:?} is not base64url"))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(&top) => big_endian.len() * 8 - top.leading_zeros() as usize,
    }
}

impl Jwk {
    /// Verifies `signature` over `signing_input` with `alg`, which must fit this key.
    pub fn verify(&self, alg: Alg, signing_input: &[u8], signature: &[u8]) -> Result<(), Refusal> {
        let mismatch = || Refusal::AlgorithmKeyMismatch {
            alg: alg.name(),
            kid: self.kid.clone().unwrap_or_default(),
        };
        if self.alg.as_deref().is_some_and(|own| own != alg.name()) {
            return Err(mismatch());
        }
        let verified = match (&self.key, alg) {
            (PublicKey::Rsa { n, e }, Alg::Rs256) => RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                signing_input,
                signature,
            ),
            (PublicKey::Rsa { n, e }, Alg::Ps256) => RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PSS_2048_8192_SHA256,
                signing_input,
                signature,
            ),
            // RFC 7518 §3.4: ES256 signatures are R || S, 64 bytes, not DER.
            (PublicKey::EcP256 { point }, Alg::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(signing_input, signature)
            }
            _ => return Err(mismatch()),
        };
        verified.map_err(|_| Refusal::BadSignature)
    }
}

impl KeySet {
    /// The key for a token header: by `kid` when the token names one; without a `kid`, only
    /// when the set holds exactly one key of the algorithm's type (no guessing among several).
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                let first = fitting.next();
                match fitting.next() {
                    None => first,
                    Some(_) => None,
                }
            }
        }
    }
}

impl Jwk {
    fn fits(&self, alg: Alg) -> bool {
        matches!(
            (&self.key, alg),
            (PublicKey::Rsa { .. }, Alg::Rs256 | Alg::Ps256)
                | (PublicKey::EcP256 { .. }, Alg::Es256)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_json(kid: &str, n_bytes: usize) -> serde_json::Value {
        let mut n = vec![0xC5; n_bytes];
        n[n_bytes - 1] = 0x01;
        serde_json::json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&n), "e": "AQAB"})
    }

    fn ec_json(kid: &str) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "kid": kid, "crv": "P-256",
            "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    #[test]
    fn keeps_rsa_and_p256_and_skips_the_rest() {
        let doc = serde_json::json!({"keys": [
            rsa_json("r1", 256),
            ec_json("e1"),
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&[0xC5; 256]), "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[2; 48])},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            rsa_json("weak", 128),
        ]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["r1", "e1"]);
        assert_eq!(set.skipped.len(), 4, "{:?}", set.skipped);
        assert!(set.skipped[3].contains("1024 bits"), "{:?}", set.skipped);
        match &set.keys[1].key {
            PublicKey::EcP256 { point } => {
                assert_eq!(point.len(), 65);
                assert_eq!(point[0], 4);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rsa_modulus_leading_zero_is_stripped() {
        let mut n = vec![0u8];
        n.extend_from_slice(&[0xC5; 256]);
        let doc = serde_json::json!({"keys": [{"kty": "RSA", "n": b64(&n), "e": "AQAB"}]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        match &set.keys[0].key {
            PublicKey::Rsa { n, e } => {
                assert_eq!(n.len(), 256);
                assert_eq!(e, &[1, 0, 1]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(matches!(parse_jwks(b"[]"), Err(JwksError::NotJwks(_))));
        assert!(matches!(
            parse_jwks(b"not json"),
            Err(JwksError::NotJwks(_))
        ));
        let only_enc = serde_json::json!({"keys": [{"kty": "oct", "k": "AA"}]});
        assert!(matches!(
            parse_jwks(only_enc.to_string().as_bytes()),
            Err(JwksError::NoUsableKey(_))
        ));
        let short_ec = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256",
            "x": b64(&[1; 31]), "y": b64(&[2; 32])}]});
        assert!(parse_jwks(short_ec.to_string().as_bytes()).is_err());
        let even_e =
            serde_json::json!({"keys": [{"kty": "RSA", "n": b64(&[0xC5; 256]), "e": "AAI"}]});
        assert!(parse_jwks(even_e.to_string().as_bytes()).is_err());
    }

    #[test]
    fn find_by_kid_or_the_only_fitting_key() {
        let doc = serde_json::json!({"keys": [rsa_json("r1", 256), ec_json("e1")]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(
            set.find(Some("e1"), Alg::Rs256).unwrap().kid.as_deref(),
            Some("e1")
        );
        assert!(set.find(Some("zz"), Alg::Rs256).is_none());
        assert_eq!(
            set.find(None, Alg::Ps256).unwrap().kid.as_deref(),
            Some("r1")
        );
        assert_eq!(
            set.find(None, Alg::Es256).unwrap().kid.as_deref(),
            Some("e1")
        );
        let two = serde_json::json!({"keys": [rsa_json("r1", 256), rsa_json("r2", 256)]});
        let set = parse_jwks(two.to_string().as_bytes()).unwrap();
        assert!(
            set.find(None, Alg::Rs256).is_none(),
            "two RSA keys: no guessing"
        );
    }

    #[test]
    fn alg_must_fit_the_key() {
        let doc = serde_json::json!({"keys": [rsa_json("r1", 256), ec_json("e1"),
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": b64(&[0xC5; 256]), "e": "AQAB"}]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let rsa = set.find(Some("r1"), Alg::Es256).unwrap();
        assert!(matches!(
            rsa.verify(Alg::Es256, b"x", &[0; 64]),
            Err(Refusal::AlgorithmKeyMismatch { alg: "ES256", .. })
        ));
        let ec = set.find(Some("e1"), Alg::Rs256).unwrap();
        assert!(matches!(
            ec.verify(Alg::Rs256, b"x", &[0; 256]),
            Err(Refusal::AlgorithmKeyMismatch { .. })
        ));
        let ps_only = set.find(Some("ps"), Alg::Rs256).unwrap();
        assert!(matches!(
            ps_only.verify(Alg::Rs256, b"x", &[0; 256]),
            Err(Refusal::AlgorithmKeyMismatch { alg: "RS256", .. })
        ));
        assert_eq!(
            rsa.verify(Alg::Rs256, b"x", &[0; 256]),
            Err(Refusal::BadSignature)
        );
    }
}
