//! JWS compact serialization (RFC 7515 §7.1): `BASE64URL(header) . BASE64URL(payload) .
//! BASE64URL(signature)`, split and decoded without trusting anything yet.
//!
//! The algorithm is decided here, from a closed list: RS256, PS256, ES256 (RFC 7518 §3.3,
//! §3.5, §3.4). `none` and every HMAC algorithm are refused by name before any key is looked
//! up: accepting `HS256` would let anyone sign with the issuer's *public* key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::refusal::Refusal;

/// Tokens longer than this are refused before decoding. PSC access tokens are 1–2 KB; the
/// SASL line limit (12,288 octets, RFC 4954 §4) bounds what a client can send anyway.
pub const MAX_TOKEN_LEN: usize = 12 * 1024;

/// The accepted signature algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Ps256,
    Es256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
            Alg::Es256 => "ES256",
        }
    }

    fn from_name(name: &str) -> Result<Alg, Refusal> {
        // Exact, case-sensitive match (RFC 7515 §4.1.1: "alg" values are case-sensitive).
        match name {
            "RS256" => Ok(Alg::Rs256),
            "PS256" => Ok(Alg::Ps256),
            "ES256" => Ok(Alg::Es256),
            other => Err(Refusal::UnsupportedAlgorithm(
                other.chars().take(32).collect(),
            )),
        }
    }
}

/// The header members we act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A split, decoded token whose signature is not verified yet.
#[derive(Debug)]
pub struct Jws<'a> {
    pub header: Header,
    /// `header . payload` as sent: the bytes the signature covers.
    pub signing_input: &'a [u8],
    /// The decoded payload (JSON, not parsed yet).
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Splits and decodes `token`; refuses a wrong shape or a refused algorithm.
pub fn parse(token: &str) -> Result<Jws<'_>, Refusal> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // Five parts would be a JWE: PSC access tokens are signed, not encrypted.
        return Err(Refusal::Malformed("not a three-part JWS"));
    };
    let header_json = decode(header_b64, "header is not base64url")?;
    let raw: RawHeader = serde_json::from_slice(&header_json)
        .map_err(|_| Refusal::Malformed("header is not a JSON object with alg"))?;
    let alg = Alg::from_name(&raw.alg)?;
    if raw.crit.is_some() {
        return Err(Refusal::CriticalHeader);
    }
    let payload = decode(payload_b64, "payload is not base64url")?;
    let signature = decode(signature_b64, "signature is not base64url")?;
    if signature.is_empty() {
        return Err(Refusal::Malformed("empty signature"));
    }
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    Ok(Jws {
        header: Header { alg, kid: raw.kid },
        signing_input: &token.as_bytes()[..signing_input_len],
        payload,
        signature,
    })
}

fn decode(part: &str, error: &'static str) -> Result<Vec<u8>, Refusal> {
    // RFC 7515 §2: base64url without padding; padding or `+`/`/` are refused by the engine.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refusal::Malformed(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[test]
    fn splits_a_good_token() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#,
            r#"{"a":1}"#,
            &[7; 64],
        );
        let jws = parse(&t).unwrap();
        assert_eq!(jws.header.alg, Alg::Es256);
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(jws.payload, br#"{"a":1}"#);
        assert_eq!(jws.signature, [7; 64]);
        let dot = t.rfind('.').unwrap();
        assert_eq!(jws.signing_input, &t.as_bytes()[..dot]);
    }

    #[test]
    fn refuses_none_hmac_and_unknown_algorithms() {
        for alg in [
            "none", "None", "HS256", "HS512", "RS512", "rs256", "EdDSA", "",
        ] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}", &[1]);
            assert_eq!(
                parse(&t).unwrap_err(),
                Refusal::UnsupportedAlgorithm(alg.into()),
                "{alg}"
            );
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        let good_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let cases = [
            ("a.b".to_string(), "not a three-part JWS"),
            ("a.b.c.d.e".to_string(), "not a three-part JWS"),
            ("!!.e30.AA".to_string(), "header is not base64url"),
            (
                format!("{}.e30.AA", URL_SAFE_NO_PAD.encode("[1]")),
                "header is not a JSON object with alg",
            ),
            (
                format!("{}.e30.AA", URL_SAFE_NO_PAD.encode(r#"{"kid":"x"}"#)),
                "header is not a JSON object with alg",
            ),
            (format!("{good_header}.e30=.AA"), "payload is not base64url"),
            (
                format!("{good_header}.e30.A+A"),
                "signature is not base64url",
            ),
            (format!("{good_header}.e30."), "empty signature"),
            ("x".repeat(MAX_TOKEN_LEN + 1), "token too long"),
        ];
        for (t, why) in cases {
            assert_eq!(parse(&t).unwrap_err(), Refusal::Malformed(why), "{t:.40}");
        }
    }

    #[test]
    fn refuses_critical_extensions() {
        let t = token(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#, "{}", &[1]);
        assert_eq!(parse(&t).unwrap_err(), Refusal::CriticalHeader);
    }
}
