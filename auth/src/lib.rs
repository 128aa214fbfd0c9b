//! Pro Santé Connect (PSC) access tokens for IMAP and SMTP logins (docs/mssante.md §4).
//!
//! LPS log in with SASL XOAUTH2 (or OAUTHBEARER) carrying a PSC access token. This crate
//! validates such a token locally — signature against the issuer's cached keys, issuer,
//! lifetime, the optional audience, `azp`, `acr` and introspection checks — and returns the
//! professional's identity; which BALs that identity may open is the store's business.
//!
//! - [`jws`]: compact JWS split and the closed algorithm list (RS256, PS256, ES256).
//! - [`jwk`]: JWKS parsing into ring public keys, signature verification.
//! - [`keys`]: the key cache (discovery, periodic and on-demand refresh, outage tolerance).
//! - [`claims`]: claim checks; [`introspect`]: RFC 7662 with a per-`jti` cache.
//! - [`verifier`]: [`PscVerifier`], all of the above behind one call.
//! - [`seen`]: tokens whose signature already held, so a reconnecting LPS costs no RSA.
//! - [`sasl`]: XOAUTH2 and OAUTHBEARER message codecs, no I/O.
//! - [`login`]: a whole bearer login (codec, token, the store's access check) for IMAP and
//!   SMTP, which only do the I/O.
//! - [`external`]: SASL EXTERNAL with a TLS client certificate bound to an application BAL.
//! - [`config`]: [`PscConfig`], the `[psc]` section.
//!
//! Every refusal is a typed [`Refusal`] for the log; clients only hear [`CLIENT_MESSAGE`].
//! Tokens are never logged: [`short_hash`] and [`token_log_id`] give correlation ids.

pub mod claims;
pub mod config;
pub mod external;
mod http;
pub mod introspect;
pub mod jwk;
pub mod jws;
pub mod keys;
pub mod login;
pub mod refusal;
pub mod sasl;
pub mod seen;
pub mod verifier;

pub use config::PscConfig;
pub use external::{
    ClientCertificate, ExternalFailure, ExternalOutcome, external_exchange, external_login,
    verified_certificate,
};
pub use login::{BearerLogin, BearerLoginFailure, BearerMechanism, bearer_login};
pub use refusal::{CLIENT_MESSAGE, Refusal};
pub use verifier::{PscIdentity, PscVerifier, short_hash, token_log_id};
