//! A bearer-token SASL login, start to end: decode the SASL message, verify the PSC token,
//! then ask the store whether that identity may open the BAL the message names
//! (docs/mssante.md §4, ADR 0012). IMAP and SMTP call this and only do the I/O.

use mssante_store::{Access, AccessRefusal, Store, StoreError};

use crate::refusal::Refusal;
use crate::sasl::{self, BearerResponse, SaslError};
use crate::verifier::{PscIdentity, PscVerifier};

/// The two bearer mechanisms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerMechanism {
    XOAuth2,
    OAuthBearer,
}

impl BearerMechanism {
    /// The mechanism for a SASL name (case-insensitive, RFC 4422 §3.1), if it is one of ours.
    pub fn from_name(name: &str) -> Option<BearerMechanism> {
        if name.eq_ignore_ascii_case("XOAUTH2") {
            Some(BearerMechanism::XOAuth2)
        } else if name.eq_ignore_ascii_case("OAUTHBEARER") {
            Some(BearerMechanism::OAuthBearer)
        } else {
            None
        }
    }

    /// The failure challenge sent before the final refusal (RFC 7628 §3.2.2; XOAUTH2 does the
    /// same with Google's JSON). The client answers it, then hears the refusal.
    pub fn error_challenge(self) -> Vec<u8> {
        match self {
            BearerMechanism::XOAuth2 => sasl::xoauth2_error_challenge(),
            BearerMechanism::OAuthBearer => sasl::oauthbearer_error_challenge(None),
        }
    }
}

/// Why a bearer login failed (for the log; the client hears "invalid credentials").
#[derive(Debug, thiserror::Error)]
pub enum BearerLoginFailure {
    #[error("bad SASL message: {0}")]
    Sasl(SaslError),
    /// OAUTHBEARER without an authzid: the BAL to open is not named.
    #[error("no BAL named (OAUTHBEARER without a=)")]
    NoBal,
    #[error("token refused ({}): {refusal}", refusal.code())]
    Token { refusal: Refusal, log_id: String },
    #[error("identity {log_id} may not open {bal}: {refusal:?}")]
    Access {
        refusal: AccessRefusal,
        bal: String,
        log_id: String,
    },
}

/// A successful bearer login: the BAL opened and who opened it.
#[derive(Clone, Debug)]
pub struct BearerLogin {
    pub access: Access,
    pub identity: PscIdentity,
}

/// Runs a bearer login. `Ok(Err(_))` is a refusal; `Err(_)` a storage failure (temporary).
pub async fn bearer_login(
    verifier: &PscVerifier,
    store: &Store,
    mechanism: BearerMechanism,
    message: &[u8],
) -> Result<Result<BearerLogin, BearerLoginFailure>, StoreError> {
    let parsed = match mechanism {
        BearerMechanism::XOAuth2 => sasl::parse_xoauth2(message),
        BearerMechanism::OAuthBearer => sasl::parse_oauthbearer(message),
    };
    let BearerResponse { user, token } = match parsed {
        Ok(response) => response,
        Err(error) => return Ok(Err(BearerLoginFailure::Sasl(error))),
    };
    let Some(bal) = user else {
        return Ok(Err(BearerLoginFailure::NoBal));
    };
    let identity = match verifier.verify(&token).await {
        Ok(identity) => identity,
        Err(refusal) => {
            return Ok(Err(BearerLoginFailure::Token {
                refusal,
                log_id: crate::token_log_id(&token),
            }));
        }
    };
    match store
        .access_for_identity(&identity.national_id, &bal)
        .await?
    {
        Ok(access) => Ok(Ok(BearerLogin { access, identity })),
        Err(refusal) => Ok(Err(BearerLoginFailure::Access {
            refusal,
            bal,
            log_id: identity.log_id,
        })),
    }
}
