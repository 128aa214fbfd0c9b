//! PSC access token validation against the testkit's loopback OIDC provider (HTTPS with a test
//! PKI, PSC's non-standard discovery path): one test per refusal of issue 12's acceptance list,
//! then key rotation, issuer outage, the unknown-kid refresh rate limit and introspection.

use std::path::PathBuf;
use std::time::Duration;

use mssante_auth::config::{PSC_PRODUCTION_ISSUER, PSC_SANDBOX_ISSUER};
use mssante_auth::{PscConfig, PscVerifier, Refusal};
use mssante_testkit::oidc::{
    CLIENT_ID, CLIENT_SECRET, OidcOptions, OidcProvider, payload_of, replace_payload,
};
use serde_json::{Value, json};

const NATIONAL_ID: &str = "810001234567";

struct Fixture {
    provider: OidcProvider,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// An HTTPS provider with one RSA key `rsa-1` and one EC key `ec-1`.
fn provider() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (options, ca_file) = OidcOptions::tls(dir.path());
    let provider = OidcProvider::start(options);
    provider.add_rsa_key("rsa-1");
    provider.add_ec_key("ec-1");
    Fixture {
        provider,
        ca_file,
        _dir: dir,
    }
}

impl Fixture {
    /// Keys by discovery, the provider's issuer allowed, a 60 s unknown-kid interval.
    fn config(&self) -> PscConfig {
        PscConfig {
            discovery_url: Some(self.provider.discovery_url()),
            issuers: vec![self.provider.issuer()],
            ca_file: Some(self.ca_file.clone()),
            ..PscConfig::default()
        }
    }

    fn verifier(&self) -> PscVerifier {
        PscVerifier::from_config(&self.config()).unwrap()
    }

    fn claims(&self) -> Value {
        self.provider.psc_claims(NATIONAL_ID)
    }

    fn claims_with(&self, changes: Value) -> Value {
        let mut claims = self.claims();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn rsa_token(&self, claims: &Value) -> String {
        self.provider.token("rsa-1", claims)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn good_tokens_in_rs256_ps256_and_es256_are_accepted() {
    let f = provider();
    let verifier = f.verifier();
    let claims = f.claims();
    let rs256 = f.rsa_token(&claims);
    let ps256 = f
        .provider
        .mint(&json!({"alg": "PS256", "kid": "rsa-1"}), &claims);
    let es256 = f.provider.token("ec-1", &claims);
    for token in [rs256, ps256, es256] {
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(identity.national_id, NATIONAL_ID);
        assert_eq!(identity.issuer, f.provider.issuer());
        assert_eq!(identity.party.as_deref(), Some("lps-test"));
        assert_eq!(identity.acr.as_deref(), Some("eidas3"));
        assert_eq!(identity.log_id.len(), 12);
        assert!(
            !token.contains(&identity.log_id),
            "the log id is a hash, not a piece"
        );
    }
    // One discovery and one JWKS fetch served all three: keys are cached.
    assert_eq!(f.provider.hits("discovery"), 1);
    assert_eq!(f.provider.hits("jwks"), 1);
}

#[tokio::test]
async fn an_opaque_identity_outside_rpps_is_kept_as_is() {
    let f = provider();
    let uuid = "3b2f1c9e-7d1a-4c55-9a0e-2f6f0b1d4e21";
    let claims = f.claims_with(json!({"SubjectNameID": null, "preferred_username": uuid}));
    let identity = f.verifier().verify(&f.rsa_token(&claims)).await.unwrap();
    assert_eq!(identity.national_id, uuid);
}

#[tokio::test]
async fn refuses_an_expired_token() {
    let f = provider();
    let claims = f.claims_with(json!({"iat": now() - 600, "exp": now() - 300}));
    let refusal = f
        .verifier()
        .verify(&f.rsa_token(&claims))
        .await
        .unwrap_err();
    assert!(matches!(refusal, Refusal::Expired { .. }), "{refusal}");
}

#[tokio::test]
async fn refuses_a_token_not_yet_valid() {
    let f = provider();
    let claims = f.claims_with(json!({"nbf": now() + 300, "exp": now() + 600}));
    let refusal = f
        .verifier()
        .verify(&f.rsa_token(&claims))
        .await
        .unwrap_err();
    assert!(matches!(refusal, Refusal::NotYetValid { .. }), "{refusal}");
}

#[tokio::test]
async fn refuses_a_wrong_issuer() {
    let f = provider();
    let claims = f.claims_with(json!({"iss": "https://evil.example/auth/realms/esante-wallet"}));
    let refusal = f
        .verifier()
        .verify(&f.rsa_token(&claims))
        .await
        .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::WrongIssuer("https://evil.example/auth/realms/esante-wallet".into())
    );
}

#[tokio::test]
async fn refuses_the_sandbox_issuer_when_only_production_is_allowed() {
    let f = provider();
    let sandbox_token = f.rsa_token(&f.claims_with(json!({"iss": PSC_SANDBOX_ISSUER})));
    let production_only = PscVerifier::from_config(&PscConfig {
        issuers: vec![PSC_PRODUCTION_ISSUER.into()],
        ..f.config()
    })
    .unwrap();
    assert_eq!(
        production_only.verify(&sandbox_token).await.unwrap_err(),
        Refusal::WrongIssuer(PSC_SANDBOX_ISSUER.into())
    );
    // The same token passes where the sandbox is the allowed issuer: only iss decided.
    let sandbox_allowed = PscVerifier::from_config(&PscConfig {
        issuers: vec![PSC_SANDBOX_ISSUER.into()],
        ..f.config()
    })
    .unwrap();
    assert!(sandbox_allowed.verify(&sandbox_token).await.is_ok());
}

#[tokio::test]
async fn refuses_a_wrong_audience_when_one_is_configured() {
    let f = provider();
    let verifier = PscVerifier::from_config(&PscConfig {
        audience: Some("mssante-operateur".into()),
        ..f.config()
    })
    .unwrap();
    let wrong = f.rsa_token(&f.claims_with(json!({"aud": "another-service"})));
    assert_eq!(
        verifier.verify(&wrong).await.unwrap_err(),
        Refusal::WrongAudience("mssante-operateur".into())
    );
    let right = f.rsa_token(&f.claims_with(json!({"aud": ["x", "mssante-operateur"]})));
    assert!(verifier.verify(&right).await.is_ok());
    // Without a configured audience (PSC's case), aud is not looked at.
    assert!(f.verifier().verify(&wrong).await.is_ok());
}

#[tokio::test]
async fn refuses_an_unknown_kid_after_one_refresh() {
    let f = provider();
    f.provider.add_unpublished_rsa_key("rsa-unpublished");
    let verifier = f.verifier();
    verifier.verify(&f.rsa_token(&f.claims())).await.unwrap();
    assert_eq!(f.provider.hits("jwks"), 1);
    let token = f.provider.token("rsa-unpublished", &f.claims());
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        Refusal::UnknownKey("rsa-unpublished".into())
    );
    assert_eq!(
        f.provider.hits("jwks"),
        2,
        "the unknown kid triggered one refresh"
    );
}

#[tokio::test]
async fn refuses_alg_none() {
    let f = provider();
    let token = f
        .provider
        .mint(&json!({"alg": "none", "typ": "JWT"}), &f.claims());
    assert!(token.ends_with('.'), "unsigned: {token:.30}");
    assert_eq!(
        f.verifier().verify(&token).await.unwrap_err(),
        Refusal::UnsupportedAlgorithm("none".into())
    );
    assert_eq!(f.provider.hits("jwks"), 0, "refused before any key lookup");
}

#[tokio::test]
async fn refuses_hs256_signed_with_the_public_key() {
    let f = provider();
    let verifier = f.verifier();
    verifier.verify(&f.rsa_token(&f.claims())).await.unwrap();
    let forged = f
        .provider
        .mint(&json!({"alg": "HS256", "kid": "rsa-1"}), &f.claims());
    assert_eq!(
        verifier.verify(&forged).await.unwrap_err(),
        Refusal::UnsupportedAlgorithm("HS256".into())
    );
}

#[tokio::test]
async fn refuses_a_tampered_payload() {
    let f = provider();
    let verifier = f.verifier();
    let token = f.rsa_token(&f.claims());
    verifier.verify(&token).await.unwrap();
    let mut claims = payload_of(&token);
    claims["SubjectNameID"] = json!("810009999999");
    let tampered = replace_payload(&token, &claims);
    assert_eq!(
        verifier.verify(&tampered).await.unwrap_err(),
        Refusal::BadSignature
    );
    // Same for an EC-signed token.
    let ec_token = f.provider.token("ec-1", &f.claims());
    let tampered = replace_payload(&ec_token, &claims);
    assert_eq!(
        verifier.verify(&tampered).await.unwrap_err(),
        Refusal::BadSignature
    );
}

#[tokio::test]
async fn refuses_a_token_without_national_id() {
    let f = provider();
    let claims = f.claims_with(json!({"SubjectNameID": null, "preferred_username": null}));
    assert_eq!(
        f.verifier()
            .verify(&f.rsa_token(&claims))
            .await
            .unwrap_err(),
        Refusal::MissingIdentity("SubjectNameID, preferred_username".into())
    );
}

#[tokio::test]
async fn refuses_an_alg_that_does_not_fit_the_key() {
    let f = provider();
    let es256 = f.provider.token("ec-1", &f.claims());
    // Same ES256 token, header now naming the RSA key.
    let header = base64_json(&json!({"alg": "ES256", "kid": "rsa-1"}));
    let rest = es256.split_once('.').unwrap().1;
    let confused = format!("{header}.{rest}");
    assert!(matches!(
        f.verifier().verify(&confused).await.unwrap_err(),
        Refusal::AlgorithmKeyMismatch { alg: "ES256", .. }
    ));
}

fn base64_json(value: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_without_restart() {
    let f = provider();
    let verifier = PscVerifier::from_config(&PscConfig {
        refresh_secs: 1,
        ..f.config()
    })
    .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let refresher = verifier.spawn_refresh(cancel.clone());
    let old_token = f.rsa_token(&f.claims());
    verifier.verify(&old_token).await.unwrap();

    // The issuer rotates: a new key appears (fetched on demand at its first token)...
    f.provider.add_rsa_key("rsa-2");
    let new_token = f.provider.token("rsa-2", &f.claims());
    assert_eq!(
        verifier.verify(&new_token).await.unwrap().national_id,
        NATIONAL_ID,
        "the new kid fetched the keys on demand"
    );
    assert!(verifier.keys().cached_kids().contains(&"rsa-1".to_string()));
    // ...then the old one leaves the JWKS.
    f.provider.set_published("rsa-1", false);
    // The periodic refresh (every second) drops the retired key; allow a loaded machine 5 s.
    let mut kids = verifier.keys().cached_kids();
    for _ in 0..50 {
        if !kids.contains(&"rsa-1".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        kids = verifier.keys().cached_kids();
    }
    assert!(kids.contains(&"rsa-2".to_string()), "{kids:?}");
    assert!(!kids.contains(&"rsa-1".to_string()), "{kids:?}");
    assert_eq!(
        verifier.verify(&old_token).await.unwrap_err(),
        Refusal::UnknownKey("rsa-1".into())
    );
    cancel.cancel();
    refresher.await.unwrap();
}

#[tokio::test]
async fn an_issuer_outage_keeps_the_cached_keys() {
    let f = provider();
    let verifier = f.verifier();
    verifier.verify(&f.rsa_token(&f.claims())).await.unwrap();

    f.provider.set_outage(true);
    let failed = verifier.keys().refresh().await.unwrap_err();
    assert!(failed.contains("503"), "{failed}");
    // Tokens signed with the cached keys still pass, with fresh claims.
    let during = f.provider.token("ec-1", &f.claims());
    assert_eq!(
        verifier.verify(&during).await.unwrap().national_id,
        NATIONAL_ID
    );
    let kids = verifier.keys().cached_kids();
    assert_eq!(kids, ["rsa-1", "ec-1"]);

    // A verifier that never got keys refuses, saying why.
    let cold = f.verifier();
    let refusal = cold.verify(&during).await.unwrap_err();
    assert!(
        matches!(&refusal, Refusal::KeysUnavailable(why) if why.contains("503")),
        "{refusal}"
    );
    f.provider.set_outage(false);
}

#[tokio::test]
async fn unknown_kids_refresh_at_most_once_per_interval() {
    let f = provider();
    let verifier = PscVerifier::from_config(&PscConfig {
        unknown_kid_refresh_secs: 1,
        ..f.config()
    })
    .unwrap();
    verifier.verify(&f.rsa_token(&f.claims())).await.unwrap();
    assert_eq!(f.provider.hits("jwks"), 1);

    f.provider.add_unpublished_rsa_key("rsa-late");
    let late = f.provider.token("rsa-late", &f.claims());
    assert!(matches!(
        verifier.verify(&late).await,
        Err(Refusal::UnknownKey(_))
    ));
    assert_eq!(f.provider.hits("jwks"), 2, "first unknown kid: one refresh");

    // Made-up kids within the interval do not reach the issuer.
    for i in 0..5 {
        let forged = f.rsa_token(&f.claims());
        let header = base64_json(&json!({"alg": "RS256", "kid": format!("made-up-{i}")}));
        let forged = format!("{header}.{}", forged.split_once('.').unwrap().1);
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(Refusal::UnknownKey(_))
        ));
    }
    // Even the real new key waits for the interval.
    f.provider.set_published("rsa-late", true);
    assert!(matches!(
        verifier.verify(&late).await,
        Err(Refusal::UnknownKey(_))
    ));
    assert_eq!(f.provider.hits("jwks"), 2, "rate limited");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        verifier.verify(&late).await.unwrap().national_id,
        NATIONAL_ID
    );
    assert_eq!(f.provider.hits("jwks"), 3);
}

fn introspecting(f: &Fixture) -> PscVerifier {
    PscVerifier::from_config(&PscConfig {
        introspect: true,
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        ..f.config()
    })
    .unwrap()
}

#[tokio::test]
async fn introspection_sees_a_revoked_token_and_caches_by_jti() {
    let f = provider();
    let verifier = introspecting(&f);

    let live = f.rsa_token(&f.claims());
    verifier.verify(&live).await.unwrap();
    verifier.verify(&live).await.unwrap();
    assert_eq!(f.provider.hits("introspect"), 1, "cached by jti");

    let revoked = f.rsa_token(&f.claims());
    f.provider
        .revoke(payload_of(&revoked)["jti"].as_str().unwrap());
    assert_eq!(
        verifier.verify(&revoked).await.unwrap_err(),
        Refusal::Inactive
    );
    assert_eq!(f.provider.hits("introspect"), 2);
    assert_eq!(
        verifier.verify(&revoked).await.unwrap_err(),
        Refusal::Inactive
    );
    assert_eq!(
        f.provider.hits("introspect"),
        2,
        "inactive answers are cached too"
    );

    // The documented trade-off: a revocation after the first answer is seen by later tokens
    // only (the cache lasts the token's two minutes).
    f.provider
        .revoke(payload_of(&live)["jti"].as_str().unwrap());
    assert!(verifier.verify(&live).await.is_ok());
    assert_eq!(verifier.introspector().unwrap().cached_answers(), 2);
}

#[tokio::test]
async fn introspection_supplies_the_national_id_and_needs_the_client_credentials() {
    let f = provider();
    f.provider
        .set_introspection_claims(json!({"SubjectNameID": NATIONAL_ID}));
    let claims = f.claims_with(json!({"SubjectNameID": null, "preferred_username": null}));
    let token = f.rsa_token(&claims);
    let identity = introspecting(&f).verify(&token).await.unwrap();
    assert_eq!(identity.national_id, NATIONAL_ID);

    let wrong_secret = PscVerifier::from_config(&PscConfig {
        introspect: true,
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some("not-the-secret".into()),
        ..f.config()
    })
    .unwrap();
    let refusal = wrong_secret.verify(&token).await.unwrap_err();
    assert!(
        matches!(&refusal, Refusal::IntrospectionUnavailable(why) if why.contains("401")),
        "{refusal}"
    );
}

#[tokio::test]
async fn plain_http_loopback_with_an_explicit_jwks_url() {
    let provider = OidcProvider::start(OidcOptions::plain());
    provider.add_ec_key("ec-plain");
    let verifier = PscVerifier::from_config(&PscConfig {
        jwks_url: Some(provider.jwks_url()),
        issuers: vec![provider.issuer()],
        ..PscConfig::default()
    })
    .unwrap();
    let token = provider.token("ec-plain", &provider.psc_claims(NATIONAL_ID));
    assert_eq!(
        verifier.verify(&token).await.unwrap().national_id,
        NATIONAL_ID
    );
    assert_eq!(provider.hits("discovery"), 0);
    assert_eq!(provider.hits("jwks"), 1);
}

#[tokio::test]
async fn an_untrusted_issuer_certificate_is_refused() {
    let f = provider();
    // No ca_file: the test root is not among the Mozilla roots.
    let verifier = PscVerifier::from_config(&PscConfig {
        ca_file: None,
        ..f.config()
    })
    .unwrap();
    let refusal = verifier
        .verify(&f.rsa_token(&f.claims()))
        .await
        .unwrap_err();
    assert!(matches!(refusal, Refusal::KeysUnavailable(_)), "{refusal}");
    assert_eq!(
        f.provider.hits("discovery"),
        0,
        "the TLS handshake failed first"
    );
}

#[tokio::test]
async fn a_token_seen_before_skips_only_its_signature_check() {
    let f = provider();
    let verifier = f.verifier();
    let claims = f.claims();
    let token = f.rsa_token(&claims);
    let exp = claims["exp"].as_i64().unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.verified_tokens(), 1);
    // The LPS reconnects with the same token: accepted, nothing new remembered.
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.verified_tokens(), 1);
    // Its claims are checked at every login: past `exp` (and the leeway) it is refused,
    // although its signature is remembered.
    let refusal = verifier.verify_at(&token, exp + 3600).await.unwrap_err();
    assert!(matches!(refusal, Refusal::Expired { .. }), "{refusal}");
    // One changed byte is another token: the signature is checked, and fails.
    let mut changed = claims.clone();
    changed["SubjectNameID"] = json!("810009999999");
    assert_eq!(
        verifier
            .verify(&replace_payload(&token, &changed))
            .await
            .unwrap_err(),
        Refusal::BadSignature
    );
    // A refused token is not remembered.
    assert_eq!(verifier.verified_tokens(), 1);
}
