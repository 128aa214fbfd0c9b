//! `PscConfig`: the `[psc]` section of the server configuration.
//!
//! Which checks ANS expects of an operator is not published (docs/mssante.md §4), so every
//! check beyond signature, issuer and lifetime is a setting: audience, `azp` allow-list,
//! minimum `acr`, identity claim names, introspection.

use std::path::PathBuf;

/// Production issuer of Pro Santé Connect, as its discovery document names it (an example for
/// `issuers`; check the discovery document of the environment you register with).
pub const PSC_PRODUCTION_ISSUER: &str = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet";
/// Sandbox ("BAS") issuer: tokens from it must never open a production BAL.
pub const PSC_SANDBOX_ISSUER: &str =
    "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet";
/// PSC's discovery document is not at the standard `openid-configuration` path.
pub const PSC_DISCOVERY_SUFFIX: &str = "/.well-known/wallet-openid-configuration";

pub const DEFAULT_LEEWAY_SECS: u64 = 30;
pub const DEFAULT_REFRESH_SECS: u64 = 3600;
pub const DEFAULT_UNKNOWN_KID_REFRESH_SECS: u64 = 60;
pub const DEFAULT_HTTP_TIMEOUT_SECS: u64 = 10;

/// The `[psc]` section. PSC login is off unless `discovery_url` or `jwks_url` is set.
#[derive(Clone, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PscConfig {
    /// Discovery document URL (PSC: `<issuer>/.well-known/wallet-openid-configuration`); gives
    /// `jwks_uri` and `introspection_endpoint`.
    pub discovery_url: Option<String>,
    /// JWKS URL; overrides the discovery document's `jwks_uri`.
    pub jwks_url: Option<String>,
    /// Accepted `iss` values, exactly (production and sandbox differ: list only one of them).
    pub issuers: Vec<String>,
    /// When set, tokens must name it in `aud`. PSC access tokens carry no audience for an
    /// operator: leave unset for PSC.
    pub audience: Option<String>,
    /// When not empty, `azp` (else `client_id`) must be one of these: the calling software.
    pub azp_allowed: Vec<String>,
    /// Authentication levels from weakest to strongest, as the issuer writes `acr`.
    pub acr_levels: Vec<String>,
    /// When set, `acr` must be this level of `acr_levels` or a stronger one.
    pub acr_minimum: Option<String>,
    /// Claims holding the professional's identity, first present wins.
    pub identity_claims: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    /// Seconds between key refreshes; 0 = only on demand (unknown `kid`).
    pub refresh_secs: u64,
    /// An unknown `kid` refreshes the keys at most once per this many seconds.
    pub unknown_kid_refresh_secs: u64,
    /// RFC 7662 introspection of every new token (cached by `jti` until `exp`): the only way
    /// to see a revoked token. Needs `client_id` and a secret.
    pub introspect: bool,
    /// Introspection endpoint; overrides the discovery document's `introspection_endpoint`.
    pub introspection_endpoint: Option<String>,
    /// The operator's own PSC client credentials (HTTP Basic on introspection).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// A file holding the secret (first line), instead of `client_secret` in the configuration.
    pub client_secret_file: Option<PathBuf>,
    /// Extra PEM trust anchors for the issuer's HTTPS (tests, private issuers); the Mozilla
    /// roots stay trusted.
    pub ca_file: Option<PathBuf>,
    pub http_timeout_secs: u64,
}

impl Default for PscConfig {
    fn default() -> Self {
        PscConfig {
            discovery_url: None,
            jwks_url: None,
            issuers: Vec::new(),
            audience: None,
            azp_allowed: Vec::new(),
            acr_levels: ["eidas1", "eidas2", "eidas3"].map(String::from).to_vec(),
            acr_minimum: None,
            identity_claims: ["SubjectNameID", "preferred_username"]
                .map(String::from)
                .to_vec(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            refresh_secs: DEFAULT_REFRESH_SECS,
            unknown_kid_refresh_secs: DEFAULT_UNKNOWN_KID_REFRESH_SECS,
            introspect: false,
            introspection_endpoint: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            ca_file: None,
            http_timeout_secs: DEFAULT_HTTP_TIMEOUT_SECS,
        }
    }
}

/// The secret never reaches a log or `config check`.
impl std::fmt::Debug for PscConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PscConfig")
            .field("discovery_url", &self.discovery_url)
            .field("jwks_url", &self.jwks_url)
            .field("issuers", &self.issuers)
            .field("audience", &self.audience)
            .field("azp_allowed", &self.azp_allowed)
            .field("acr_levels", &self.acr_levels)
            .field("acr_minimum", &self.acr_minimum)
            .field("identity_claims", &self.identity_claims)
            .field("leeway_secs", &self.leeway_secs)
            .field("refresh_secs", &self.refresh_secs)
            .field("unknown_kid_refresh_secs", &self.unknown_kid_refresh_secs)
            .field("introspect", &self.introspect)
            .field("introspection_endpoint", &self.introspection_endpoint)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "(redacted)"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("ca_file", &self.ca_file)
            .field("http_timeout_secs", &self.http_timeout_secs)
            .finish()
    }
}

impl PscConfig {
    /// PSC login is offered only when the keys have a source.
    pub fn is_enabled(&self) -> bool {
        self.discovery_url.is_some() || self.jwks_url.is_some()
    }

    /// Checks the section as a whole; the error names the key (`psc.issuers: …`).
    pub fn validate(&self) -> Result<(), String> {
        if !self.is_enabled() {
            return Ok(());
        }
        for (key, url) in [
            ("discovery_url", &self.discovery_url),
            ("jwks_url", &self.jwks_url),
            ("introspection_endpoint", &self.introspection_endpoint),
        ] {
            if let Some(url) = url {
                check_url(url).map_err(|why| format!("psc.{key}: {why}"))?;
            }
        }
        if self.issuers.is_empty() || self.issuers.iter().any(|i| i.is_empty()) {
            return Err("psc.issuers: list the accepted issuers (iss), none empty".into());
        }
        if self.identity_claims.is_empty() {
            return Err("psc.identity_claims: name at least one claim".into());
        }
        if let Some(minimum) = &self.acr_minimum
            && !self.acr_levels.contains(minimum)
        {
            return Err(format!(
                "psc.acr_minimum: {minimum:?} is not one of acr_levels {:?}",
                self.acr_levels
            ));
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return Err("psc.client_secret_file: set client_secret or the file, not both".into());
        }
        if self.introspect {
            if self.client_id.is_none() {
                return Err("psc.client_id: introspection needs the operator's client id".into());
            }
            if self.client_secret.is_none() && self.client_secret_file.is_none() {
                return Err("psc.client_secret: introspection needs a client secret".into());
            }
            if self.introspection_endpoint.is_none() && self.discovery_url.is_none() {
                return Err(
                    "psc.introspection_endpoint: set it, or discovery_url to find it".into(),
                );
            }
        }
        if self.http_timeout_secs == 0 {
            return Err("psc.http_timeout_secs: must be at least 1".into());
        }
        Ok(())
    }

    /// The client secret, from the configuration or its file.
    pub fn read_client_secret(&self) -> Result<Option<String>, String> {
        if let Some(secret) = &self.client_secret {
            return Ok(Some(secret.clone()));
        }
        let Some(path) = &self.client_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("psc.client_secret_file: {}: {e}", path.display()))?;
        let secret = text.lines().next().unwrap_or("").trim().to_string();
        if secret.is_empty() {
            return Err(format!(
                "psc.client_secret_file: {} is empty",
                path.display()
            ));
        }
        Ok(Some(secret))
    }
}

/// `https://`, or `http://` to a loopback address (tests): keys fetched in clear from
/// anywhere else could be replaced on the way.
pub(crate) fn check_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!("{text}: plain http is refused, use https")),
        other => Err(format!("{text}: unsupported scheme {other:?}")),
    }
}

pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> PscConfig {
        PscConfig {
            discovery_url: Some(format!("{PSC_SANDBOX_ISSUER}{PSC_DISCOVERY_SUFFIX}")),
            issuers: vec![PSC_SANDBOX_ISSUER.into()],
            ..PscConfig::default()
        }
    }

    #[test]
    fn defaults_are_off_and_valid() {
        let empty: PscConfig = toml::from_str("").unwrap();
        assert!(!empty.is_enabled());
        assert_eq!(empty.validate(), Ok(()));
        assert_eq!(
            empty.identity_claims,
            ["SubjectNameID", "preferred_username"]
        );
        assert_eq!(empty.leeway_secs, 30);
        assert!(toml::from_str::<PscConfig>("issuer = \"typo\"").is_err());
    }

    #[test]
    fn a_full_section_parses() {
        let text = r#"
            discovery_url = "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet/.well-known/wallet-openid-configuration"
            issuers = ["https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet"]
            azp_allowed = ["lps-cabinet"]
            acr_minimum = "eidas2"
            identity_claims = ["SubjectNameID"]
            leeway_secs = 10
            introspect = true
            client_id = "operateur-x"
            client_secret = "s3cret"
        "#;
        let config: PscConfig = toml::from_str(text).unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.azp_allowed, ["lps-cabinet"]);
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("(redacted)"));
    }

    #[test]
    fn validation_names_the_key() {
        let cases: Vec<(PscConfig, &str)> = vec![
            (
                PscConfig {
                    issuers: vec![],
                    ..enabled()
                },
                "psc.issuers",
            ),
            (
                PscConfig {
                    jwks_url: Some("http://keys.example/jwks".into()),
                    ..enabled()
                },
                "psc.jwks_url: http://keys.example/jwks: plain http is refused",
            ),
            (
                PscConfig {
                    acr_minimum: Some("eidas9".into()),
                    ..enabled()
                },
                "psc.acr_minimum",
            ),
            (
                PscConfig {
                    introspect: true,
                    ..enabled()
                },
                "psc.client_id",
            ),
            (
                PscConfig {
                    introspect: true,
                    client_id: Some("op".into()),
                    ..enabled()
                },
                "psc.client_secret",
            ),
            (
                PscConfig {
                    identity_claims: vec![],
                    ..enabled()
                },
                "psc.identity_claims",
            ),
        ];
        for (config, expected) in cases {
            let error = config.validate().unwrap_err();
            assert!(error.starts_with(expected), "{error} / {expected}");
        }
        let loopback = PscConfig {
            jwks_url: Some("http://127.0.0.1:8080/jwks".into()),
            ..enabled()
        };
        assert_eq!(loopback.validate(), Ok(()));
    }

    #[test]
    fn secret_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").unwrap();
        let config = PscConfig {
            client_secret_file: Some(path.clone()),
            ..PscConfig::default()
        };
        assert_eq!(config.read_client_secret(), Ok(Some("from-file".into())));
        std::fs::write(&path, "\n").unwrap();
        assert!(
            config
                .read_client_secret()
                .unwrap_err()
                .contains("is empty")
        );
    }
}
