//! Claim checks on a token whose signature is verified (RFC 7519 §4.1, RFC 9068 §4).
//!
//! PSC access tokens carry `iss`, `exp`, `iat`, `azp`/`client_id` (the calling software),
//! `acr`, `sub` and `preferred_username`, and **no audience for an operator**
//! (docs/mssante.md §4): the audience check runs only when one is configured.

use serde_json::Value;

use crate::config::PscConfig;
use crate::refusal::Refusal;

/// A token's claims set.
pub type Claims = serde_json::Map<String, Value>;

/// What a successful check keeps of the claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub issuer: String,
    pub expires_at: i64,
    pub jti: Option<String>,
    pub subject: Option<String>,
    /// `azp`, else `client_id`: the software the token was issued to.
    pub party: Option<String>,
    pub acr: Option<String>,
}

/// The checks configured in `[psc]`, prepared once.
#[derive(Clone, Debug)]
pub struct ClaimPolicy {
    pub issuers: Vec<String>,
    pub audience: Option<String>,
    pub azp_allowed: Vec<String>,
    /// The `acr` values at or above the configured minimum; `None` = no minimum.
    pub acr_accepted: Option<Vec<String>>,
    pub identity_claims: Vec<String>,
    pub leeway_secs: i64,
}

impl ClaimPolicy {
    pub fn from_config(config: &PscConfig) -> ClaimPolicy {
        let acr_accepted = config.acr_minimum.as_ref().map(|minimum| {
            config
                .acr_levels
                .iter()
                .skip_while(|level| *level != minimum)
                .cloned()
                .collect()
        });
        ClaimPolicy {
            issuers: config.issuers.clone(),
            audience: config.audience.clone(),
            azp_allowed: config.azp_allowed.clone(),
            acr_accepted,
            identity_claims: config.identity_claims.clone(),
            leeway_secs: i64::try_from(config.leeway_secs).unwrap_or(i64::MAX / 2),
        }
    }

    /// Every check but the identity (which introspection may supply), in the order that
    /// makes the log most useful: a foreign issuer first, then time, then the optional ones.
    pub fn check(&self, claims: &Claims, now: i64) -> Result<Checked, Refusal> {
        let issuer = string_claim(claims, "iss")?.ok_or(Refusal::Malformed("no iss claim"))?;
        if !self.issuers.contains(&issuer) {
            return Err(Refusal::WrongIssuer(issuer));
        }
        let expires_at = numeric_date(claims, "exp")?.ok_or(Refusal::Malformed("no exp claim"))?;
        self.check_times(claims, expires_at, now)?;
        self.check_audience(claims)?;
        let party = match string_claim(claims, "azp")? {
            Some(azp) => Some(azp),
            None => string_claim(claims, "client_id")?,
        };
        if !self.azp_allowed.is_empty()
            && !party.as_ref().is_some_and(|p| self.azp_allowed.contains(p))
        {
            return Err(Refusal::PartyNotAllowed(party.unwrap_or_default()));
        }
        let acr = string_claim(claims, "acr")?;
        if let Some(accepted) = &self.acr_accepted
            && !acr.as_ref().is_some_and(|a| accepted.contains(a))
        {
            return Err(Refusal::AcrTooLow(acr.unwrap_or_default()));
        }
        Ok(Checked {
            issuer,
            expires_at,
            jti: string_claim(claims, "jti")?,
            subject: string_claim(claims, "sub")?,
            party,
            acr,
        })
    }

    /// RFC 7519 §4.1.4 (the token is refused on or after `exp`), §4.1.5 (before `nbf`),
    /// §4.1.6 (`iat` in the future means a clock or a forgery problem), each with the leeway.
    fn check_times(&self, claims: &Claims, expires_at: i64, now: i64) -> Result<(), Refusal> {
        let leeway = self.leeway_secs;
        if now >= expires_at.saturating_add(leeway) {
            return Err(Refusal::Expired {
                exp: expires_at,
                now,
            });
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && now.saturating_add(leeway) < nbf
        {
            return Err(Refusal::NotYetValid { nbf, now });
        }
        if let Some(iat) = numeric_date(claims, "iat")?
            && iat > now.saturating_add(leeway)
        {
            return Err(Refusal::IssuedInFuture { iat, now });
        }
        Ok(())
    }

    /// RFC 7519 §4.1.3: `aud` is one string or an array of strings.
    fn check_audience(&self, claims: &Claims) -> Result<(), Refusal> {
        let Some(expected) = &self.audience else {
            return Ok(());
        };
        let named = match claims.get("aud") {
            Some(Value::String(one)) => one == expected,
            Some(Value::Array(many)) => many.iter().any(|v| v.as_str() == Some(expected)),
            None => false,
            Some(_) => return Err(Refusal::Malformed("aud is neither a string nor an array")),
        };
        if named {
            Ok(())
        } else {
            Err(Refusal::WrongAudience(expected.clone()))
        }
    }

    /// The professional's identity: the first configured claim holding a non-empty string.
    /// Opaque: `8`+RPPS for most, other forms for staff enrolled outside RPPS.
    pub fn identity_of(&self, claims: &Claims) -> Option<String> {
        self.identity_claims
            .iter()
            .find_map(|name| match claims.get(name) {
                Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_string()),
                _ => None,
            })
    }

    pub fn missing_identity(&self) -> Refusal {
        Refusal::MissingIdentity(self.identity_claims.join(", "))
    }
}

/// Parses the payload of a verified token.
pub fn parse_claims(payload: &[u8]) -> Result<Claims, Refusal> {
    match serde_json::from_slice(payload) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(Refusal::Malformed("payload is not a JSON object")),
    }
}

fn string_claim(claims: &Claims, name: &'static str) -> Result<Option<String>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::Malformed(match name {
            "iss" => "iss is not a string",
            "sub" => "sub is not a string",
            "jti" => "jti is not a string",
            "azp" => "azp is not a string",
            "acr" => "acr is not a string",
            _ => "a claim is not a string",
        })),
    }
}

/// RFC 7519 §2 NumericDate: seconds, possibly fractional (truncated).
fn numeric_date(claims: &Claims, name: &'static str) -> Result<Option<i64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(seconds) => Ok(Some(seconds)),
            None => match n.as_f64() {
                Some(seconds) if seconds.is_finite() && seconds.abs() < 1e15 => {
                    Ok(Some(seconds as i64))
                }
                _ => Err(Refusal::Malformed("a date claim is out of range")),
            },
        },
        Some(_) => Err(Refusal::Malformed(match name {
            "exp" => "exp is not a number",
            "nbf" => "nbf is not a number",
            _ => "iat is not a number",
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const ISS: &str = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet";

    fn policy() -> ClaimPolicy {
        ClaimPolicy::from_config(&PscConfig {
            issuers: vec![ISS.into()],
            ..PscConfig::default()
        })
    }

    fn claims(value: Value) -> Claims {
        let mut base = json!({"iss": ISS, "exp": NOW + 120, "iat": NOW, "sub": "f:uuid:899700218896",
            "preferred_username": "899700218896", "azp": "lps-a", "acr": "eidas3", "jti": "j1"});
        for (k, v) in value.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base.as_object().unwrap().clone()
    }

    #[test]
    fn a_psc_shaped_token_passes() {
        let checked = policy().check(&claims(json!({})), NOW).unwrap();
        assert_eq!(checked.issuer, ISS);
        assert_eq!(checked.expires_at, NOW + 120);
        assert_eq!(checked.party.as_deref(), Some("lps-a"));
        assert_eq!(checked.jti.as_deref(), Some("j1"));
        assert_eq!(
            policy().identity_of(&claims(json!({}))).as_deref(),
            Some("899700218896")
        );
    }

    #[test]
    fn lifetime_checks_with_leeway() {
        let p = policy();
        let expired = claims(json!({"exp": NOW - 30}));
        assert_eq!(
            p.check(&expired, NOW),
            Err(Refusal::Expired {
                exp: NOW - 30,
                now: NOW
            })
        );
        assert!(
            p.check(&claims(json!({"exp": NOW - 29})), NOW).is_ok(),
            "within leeway"
        );
        assert!(matches!(
            p.check(&claims(json!({"nbf": NOW + 31})), NOW),
            Err(Refusal::NotYetValid { .. })
        ));
        assert!(p.check(&claims(json!({"nbf": NOW + 30})), NOW).is_ok());
        assert!(matches!(
            p.check(&claims(json!({"iat": NOW + 31})), NOW),
            Err(Refusal::IssuedInFuture { .. })
        ));
        assert!(
            p.check(&claims(json!({"exp": (NOW + 60) as f64 + 0.5})), NOW)
                .is_ok()
        );
        assert_eq!(
            p.check(&claims(json!({"exp": null})), NOW),
            Err(Refusal::Malformed("no exp claim"))
        );
        assert_eq!(
            p.check(&claims(json!({"exp": "soon"})), NOW),
            Err(Refusal::Malformed("exp is not a number"))
        );
    }

    #[test]
    fn issuer_must_be_listed_exactly() {
        let sandbox = "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet";
        assert_eq!(
            policy().check(&claims(json!({"iss": sandbox})), NOW),
            Err(Refusal::WrongIssuer(sandbox.into()))
        );
        let trailing = format!("{ISS}/");
        assert!(matches!(
            policy().check(&claims(json!({"iss": trailing})), NOW),
            Err(Refusal::WrongIssuer(_))
        ));
        assert_eq!(
            policy().check(&claims(json!({"iss": null})), NOW),
            Err(Refusal::Malformed("no iss claim"))
        );
    }

    #[test]
    fn audience_only_when_configured() {
        let mut p = policy();
        assert!(
            p.check(&claims(json!({"aud": "someone-else"})), NOW)
                .is_ok()
        );
        p.audience = Some("mssante-operateur".into());
        assert!(
            p.check(&claims(json!({"aud": "mssante-operateur"})), NOW)
                .is_ok()
        );
        assert!(
            p.check(&claims(json!({"aud": ["x", "mssante-operateur"]})), NOW)
                .is_ok()
        );
        assert_eq!(
            p.check(&claims(json!({"aud": "someone-else"})), NOW),
            Err(Refusal::WrongAudience("mssante-operateur".into()))
        );
        assert!(matches!(
            p.check(&claims(json!({})), NOW),
            Err(Refusal::WrongAudience(_))
        ));
        assert!(matches!(
            p.check(&claims(json!({"aud": 3})), NOW),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn azp_allow_list_falls_back_to_client_id() {
        let mut p = policy();
        p.azp_allowed = vec!["lps-a".into()];
        assert!(p.check(&claims(json!({})), NOW).is_ok());
        assert_eq!(
            p.check(&claims(json!({"azp": "lps-b"})), NOW),
            Err(Refusal::PartyNotAllowed("lps-b".into()))
        );
        assert!(
            p.check(&claims(json!({"azp": null, "client_id": "lps-a"})), NOW)
                .is_ok()
        );
        assert_eq!(
            p.check(&claims(json!({"azp": null})), NOW),
            Err(Refusal::PartyNotAllowed(String::new()))
        );
    }

    #[test]
    fn acr_minimum() {
        let p = ClaimPolicy::from_config(&PscConfig {
            issuers: vec![ISS.into()],
            acr_minimum: Some("eidas2".into()),
            ..PscConfig::default()
        });
        assert!(p.check(&claims(json!({"acr": "eidas3"})), NOW).is_ok());
        assert!(p.check(&claims(json!({"acr": "eidas2"})), NOW).is_ok());
        assert_eq!(
            p.check(&claims(json!({"acr": "eidas1"})), NOW),
            Err(Refusal::AcrTooLow("eidas1".into()))
        );
        assert_eq!(
            p.check(&claims(json!({"acr": "strong-ish"})), NOW),
            Err(Refusal::AcrTooLow("strong-ish".into()))
        );
        assert!(matches!(
            p.check(&claims(json!({"acr": null})), NOW),
            Err(Refusal::AcrTooLow(_))
        ));
    }

    #[test]
    fn identity_claims_in_order_and_opaque() {
        let p = policy();
        let both = claims(json!({"SubjectNameID": "899700218896", "preferred_username": "other"}));
        assert_eq!(p.identity_of(&both).as_deref(), Some("899700218896"));
        // Staff enrolled outside RPPS: not 8+RPPS, kept as is.
        let uuid = claims(json!({"preferred_username": "3b2f1c9e-7d1a-4c55-9a0e-2f6f0b1d4e21"}));
        assert_eq!(
            p.identity_of(&uuid).as_deref(),
            Some("3b2f1c9e-7d1a-4c55-9a0e-2f6f0b1d4e21")
        );
        let empty = claims(json!({"SubjectNameID": "", "preferred_username": null}));
        assert_eq!(p.identity_of(&empty), None);
        let not_string = claims(json!({"preferred_username": 899700218896u64}));
        assert_eq!(p.identity_of(&not_string), None);
        assert_eq!(
            p.missing_identity(),
            Refusal::MissingIdentity("SubjectNameID, preferred_username".into())
        );
    }

    #[test]
    fn payload_must_be_an_object() {
        assert!(parse_claims(br#"{"a":1}"#).is_ok());
        assert_eq!(
            parse_claims(b"[1]"),
            Err(Refusal::Malformed("payload is not a JSON object"))
        );
        assert!(parse_claims(b"\xff").is_err());
    }
}
