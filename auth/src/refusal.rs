//! Why a token was refused: one typed reason per check, for the server log.
//!
//! The client never hears the reason (it only learns [`CLIENT_MESSAGE`]): telling an attacker
//! which check failed helps them forge the next attempt. No variant carries the token or any
//! part of its signature; issuer and `azp` values are public and help the operator.

/// What a refused client is told, whatever the reason.
pub const CLIENT_MESSAGE: &str = "invalid credentials";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not three base64url parts, bad JSON, a claim of the wrong type, too long…
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `none`, `HS256` or anything but RS256, PS256, ES256.
    #[error("algorithm {0:?} is not accepted (RS256, PS256, ES256 only)")]
    UnsupportedAlgorithm(String),
    /// The header carries `crit` (RFC 7515 §4.1.11): we understand no extension.
    #[error("critical header extensions are not supported")]
    CriticalHeader,
    /// The `alg` does not fit the key (RSA key for ES256, or the JWK's own `alg` differs).
    #[error("algorithm {alg} does not match key {kid:?}")]
    AlgorithmKeyMismatch { alg: &'static str, kid: String },
    /// No key with this `kid`, even after a refresh (or the refresh was rate limited).
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    /// The issuer's keys were never fetched successfully.
    #[error("no issuer keys available: {0}")]
    KeysUnavailable(String),
    #[error("bad signature")]
    BadSignature,
    #[error("issuer {0:?} is not allowed")]
    WrongIssuer(String),
    #[error("expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("issued in the future at {iat} (now {now})")]
    IssuedInFuture { iat: i64, now: i64 },
    /// An audience is configured and the token does not name it.
    #[error("audience does not include {0:?}")]
    WrongAudience(String),
    #[error("authorized party {0:?} is not allowed")]
    PartyNotAllowed(String),
    #[error("authentication level {0:?} is below the configured minimum")]
    AcrTooLow(String),
    /// None of the configured identity claims holds a non-empty string.
    #[error("no identity claim ({0})")]
    MissingIdentity(String),
    /// RFC 7662 introspection answered `"active": false` (revoked, or unknown to the issuer).
    #[error("token is not active (introspection)")]
    Inactive,
    /// Introspection is configured and could not be done: refused rather than guessed.
    #[error("introspection failed: {0}")]
    IntrospectionUnavailable(String),
}

impl Refusal {
    /// A short stable name for metrics and log filters.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::UnsupportedAlgorithm(_) => "unsupported_alg",
            Refusal::CriticalHeader => "crit_header",
            Refusal::AlgorithmKeyMismatch { .. } => "alg_key_mismatch",
            Refusal::UnknownKey(_) => "unknown_kid",
            Refusal::KeysUnavailable(_) => "keys_unavailable",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongIssuer(_) => "wrong_iss",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::IssuedInFuture { .. } => "iat_in_future",
            Refusal::WrongAudience(_) => "wrong_aud",
            Refusal::PartyNotAllowed(_) => "azp_not_allowed",
            Refusal::AcrTooLow(_) => "acr_too_low",
            Refusal::MissingIdentity(_) => "missing_identity",
            Refusal::Inactive => "inactive",
            Refusal::IntrospectionUnavailable(_) => "introspection_unavailable",
        }
    }
}
