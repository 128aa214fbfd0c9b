//! A loopback OpenID Connect provider standing in for Pro Santé Connect in tests.
//!
//! It serves, on 127.0.0.1 over TLS or plain HTTP (hyper, on a thread of its own so that
//! synchronous and async tests can both use it):
//! - a discovery document at a configurable path (PSC's is the non-standard
//!   `/auth/realms/esante-wallet/.well-known/wallet-openid-configuration`, the default);
//! - a JWKS with the RSA and EC P-256 keys the test added, rotated at will (a key can stay
//!   usable for minting while absent from the JWKS: "unknown kid" cases);
//! - an RFC 7662 introspection endpoint (HTTP Basic client credentials, revocation by `jti`);
//! - an outage switch (every endpoint answers 503), and request counters per endpoint.
//!
//! Tokens are minted with any claims and any header, including `alg: none` and HS256 signed
//! with a public key, for the negative tests. RSA keys come from the `openssl` CLI (ring
//! cannot generate them); EC keys from ring.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

use crate::pki::{OperatorSpec, TestPki};

/// PSC's realm path; the issuer is `<base URL><REALM_PATH>`.
pub const REALM_PATH: &str = "/auth/realms/esante-wallet";
/// PSC's discovery document path (not the standard `openid-configuration`).
pub const PSC_DISCOVERY_PATH: &str =
    "/auth/realms/esante-wallet/.well-known/wallet-openid-configuration";
const JWKS_PATH: &str = "/auth/realms/esante-wallet/protocol/openid-connect/certs";
const INTROSPECT_PATH: &str = "/auth/realms/esante-wallet/protocol/openid-connect/token/introspect";

/// The operator's client credentials the introspection endpoint accepts by default.
pub const CLIENT_ID: &str = "mssante-operator";
pub const CLIENT_SECRET: &str = "operator-secret";

/// How to start the provider.
#[derive(Clone, Debug)]
pub struct OidcOptions {
    /// PEM certificate chain and key: HTTPS; `None`: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where the discovery document is served.
    pub discovery_path: String,
}

impl OidcOptions {
    /// Plain HTTP, PSC's discovery path.
    pub fn plain() -> OidcOptions {
        OidcOptions {
            tls: None,
            discovery_path: PSC_DISCOVERY_PATH.into(),
        }
    }

    /// HTTPS with a certificate for 127.0.0.1 from a test PKI written in `dir`; returns the
    /// options and the root certificate (PEM) a client must trust.
    pub fn tls(dir: &Path) -> (OidcOptions, PathBuf) {
        let pki = TestPki::new(dir);
        let identity = pki.operator(
            "oidc",
            &OperatorSpec {
                mta: "localhost",
                siret: "00000000000000",
                org: "PSC TEST",
                departement: "Paris (75)",
            },
        );
        let options = OidcOptions {
            tls: Some((identity.chain_pem, identity.key_pem)),
            discovery_path: PSC_DISCOVERY_PATH.into(),
        };
        (options, pki.root_pem.clone())
    }
}

enum KeyKind {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

struct TestKey {
    kid: String,
    kind: KeyKind,
    /// In the JWKS; an unpublished key still signs (tokens with an unknown kid).
    published: bool,
}

#[derive(Default)]
struct State {
    keys: Vec<TestKey>,
    outage: bool,
    revoked: HashSet<String>,
    hits: HashMap<&'static str, usize>,
    /// Claims only introspection reveals (PSC's `SubjectNameID`), merged into active answers.
    introspection_extra: serde_json::Map<String, Value>,
}

struct Shared {
    base_url: String,
    discovery_path: String,
    state: Mutex<State>,
}

/// The running provider; stopped on drop.
pub struct OidcProvider {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OidcProvider {
    /// Binds 127.0.0.1 on a free port and serves until dropped. No key yet: add some.
    pub fn start(options: OidcOptions) -> OidcProvider {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind OIDC provider");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local addr");
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let shared = Arc::new(Shared {
            base_url: format!("{scheme}://{addr}"),
            discovery_path: options.discovery_path.clone(),
            state: Mutex::new(State::default()),
        });
        let acceptor = options
            .tls
            .as_ref()
            .map(|(chain, key)| tls_acceptor(chain, key));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let served = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("oidc-provider".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(serve(listener, acceptor, served, stopped));
            })
            .expect("spawn OIDC provider");
        OidcProvider {
            shared,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http(s)://127.0.0.1:PORT/auth/realms/esante-wallet`, the `iss` of minted tokens.
    pub fn issuer(&self) -> String {
        format!("{}{REALM_PATH}", self.shared.base_url)
    }

    pub fn discovery_url(&self) -> String {
        format!("{}{}", self.shared.base_url, self.shared.discovery_path)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.shared.base_url)
    }

    pub fn introspection_url(&self) -> String {
        format!("{}{INTROSPECT_PATH}", self.shared.base_url)
    }

    /// Adds a published RSA-2048 key.
    pub fn add_rsa_key(&self, kid: &str) {
        self.add_key(kid, KeyKind::Rsa(generate_rsa()));
    }

    /// Adds a published EC P-256 key.
    pub fn add_ec_key(&self, kid: &str) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("EC key");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("EC key");
        self.add_key(kid, KeyKind::Ec(pair));
    }

    /// Adds a key that signs but is absent from the JWKS (publish it later to rotate).
    pub fn add_unpublished_rsa_key(&self, kid: &str) {
        self.add_rsa_key(kid);
        self.set_published(kid, false);
    }

    fn add_key(&self, kid: &str, kind: KeyKind) {
        self.state().keys.push(TestKey {
            kid: kid.into(),
            kind,
            published: true,
        });
    }

    /// Puts a key in, or takes it out of, the JWKS (it keeps signing either way).
    pub fn set_published(&self, kid: &str, published: bool) {
        let mut state = self.state();
        let key = state
            .keys
            .iter_mut()
            .find(|k| k.kid == kid)
            .unwrap_or_else(|| panic!("no test key {kid:?}"));
        key.published = published;
    }

    /// Every endpoint answers 503 while on.
    pub fn set_outage(&self, outage: bool) {
        self.state().outage = outage;
    }

    /// Introspection answers `"active": false` for this `jti` from now on.
    pub fn revoke(&self, jti: &str) {
        self.state().revoked.insert(jti.into());
    }

    /// Claims added to every active introspection answer.
    pub fn set_introspection_claims(&self, claims: Value) {
        self.state().introspection_extra = claims.as_object().cloned().unwrap_or_default();
    }

    /// Requests served so far by `endpoint`: "discovery", "jwks" or "introspect".
    pub fn hits(&self, endpoint: &str) -> usize {
        self.state().hits.get(endpoint).copied().unwrap_or(0)
    }

    /// A PSC-shaped claim set for `national_id`, valid for two minutes from now.
    pub fn psc_claims(&self, national_id: &str) -> Value {
        let now = unix_now();
        json!({
            "iss": self.issuer(),
            "exp": now + 120,
            "iat": now,
            "auth_time": now,
            "jti": random_id(),
            "sub": format!("f:{}:{national_id}", random_id()),
            "typ": "Bearer",
            "azp": "lps-test",
            "client_id": "lps-test",
            "preferred_username": national_id,
            "SubjectNameID": national_id,
            "acr": "eidas3",
            "scope": "openid scope_all",
        })
    }

    /// A token signed by key `kid` with its natural algorithm (RS256 for RSA, ES256 for EC).
    pub fn token(&self, kid: &str, claims: &Value) -> String {
        let alg = match self.key_kind(kid) {
            "RSA" => "RS256",
            _ => "ES256",
        };
        self.mint(&json!({"alg": alg, "typ": "JWT", "kid": kid}), claims)
    }

    /// A token with exactly this header and claims. The signature follows the header's `alg`
    /// with the key its `kid` names: RS256, PS256, ES256; `none` (empty signature); HS256
    /// keyed with the named key's *public* key (the classic algorithm-confusion forgery).
    pub fn mint(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let alg = header["alg"].as_str().expect("header alg");
        let signature = if alg == "none" {
            Vec::new()
        } else {
            let kid = header["kid"]
                .as_str()
                .expect("header kid names the signing key");
            self.sign(kid, alg, signing_input.as_bytes())
        };
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn sign(&self, kid: &str, alg: &str, message: &[u8]) -> Vec<u8> {
        let state = self.state();
        let key = state
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .unwrap_or_else(|| panic!("no test key {kid:?}"));
        let rng = SystemRandom::new();
        match (&key.kind, alg) {
            (KeyKind::Rsa(pair), "RS256" | "PS256") => {
                let padding: &dyn signature::RsaEncoding = if alg == "RS256" {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, message, &mut out)
                    .expect("RSA sign");
                out
            }
            (KeyKind::Ec(pair), "ES256") => {
                pair.sign(&rng, message).expect("EC sign").as_ref().to_vec()
            }
            (kind, "HS256") => {
                let public = match kind {
                    KeyKind::Rsa(pair) => pair.public().as_ref().to_vec(),
                    KeyKind::Ec(pair) => pair.public_key().as_ref().to_vec(),
                };
                let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public);
                ring::hmac::sign(&hmac_key, message).as_ref().to_vec()
            }
            (_, other) => panic!("cannot sign {other} with key {kid:?}"),
        }
    }

    fn key_kind(&self, kid: &str) -> &'static str {
        match self
            .state()
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .map(|k| &k.kind)
        {
            Some(KeyKind::Rsa(_)) => "RSA",
            Some(KeyKind::Ec(_)) => "EC",
            None => panic!("no test key {kid:?}"),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("OIDC state")
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `token` with its payload replaced by `claims`, header and signature kept (tampering).
pub fn replace_payload(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().expect("header");
    let _ = parts.next();
    let signature = parts.next().expect("signature");
    format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The claims of `token`, unverified (tests read back what they minted).
pub fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

fn generate_rsa() -> RsaKeyPair {
    let output = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-outform",
            "DER",
        ])
        .output()
        .expect("openssl CLI (Debian package `openssl`) generates the test RSA keys");
    assert!(
        output.status.success(),
        "openssl genpkey: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // OpenSSL 3 writes the traditional PKCS#1 RSAPrivateKey in DER.
    RsaKeyPair::from_der(&output.stdout).expect("openssl RSA key (PKCS#1 DER)")
}

fn tls_acceptor(chain: &Path, key: &Path) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
        .expect("chain PEM")
        .collect::<Result<_, _>>()
        .expect("chain PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("key PEM");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("certificate and key");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(shared.handle(request).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                            .await;
                    }
                }
                None => {
                    let _ = http
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

impl Shared {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let authorization = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = match request.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return reply(StatusCode::BAD_REQUEST, json!({"error": "body"})),
        };
        let mut state = self.state.lock().expect("OIDC state");
        let endpoint = match path.as_str() {
            p if p == self.discovery_path => "discovery",
            JWKS_PATH => "jwks",
            INTROSPECT_PATH => "introspect",
            _ => return reply(StatusCode::NOT_FOUND, json!({"error": "not found"})),
        };
        *state.hits.entry(endpoint).or_default() += 1;
        if state.outage {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "temporarily_unavailable"}),
            );
        }
        match endpoint {
            "discovery" => reply(StatusCode::OK, self.discovery()),
            "jwks" => reply(StatusCode::OK, jwks(&state.keys)),
            _ => introspect(&state, authorization.as_deref(), &body),
        }
    }

    fn discovery(&self) -> Value {
        let issuer = format!("{}{REALM_PATH}", self.base_url);
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{}{JWKS_PATH}", self.base_url),
            "introspection_endpoint": format!("{}{INTROSPECT_PATH}", self.base_url),
            "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
            "acr_values_supported": ["eidas1", "eidas2", "eidas3"],
        })
    }
}

fn jwks(keys: &[TestKey]) -> Value {
    let published: Vec<Value> = keys
        .iter()
        .filter(|k| k.published)
        .map(|k| match &k.kind {
            KeyKind::Rsa(pair) => {
                let components: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                json!({"kty": "RSA", "kid": k.kid, "use": "sig",
                    "n": URL_SAFE_NO_PAD.encode(&components.n),
                    "e": URL_SAFE_NO_PAD.encode(&components.e)})
            }
            KeyKind::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "kid": k.kid, "use": "sig", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
            }
        })
        .collect();
    json!({ "keys": published })
}

/// RFC 7662 §2: client authentication, then `active` and the token's claims.
fn introspect(state: &State, authorization: Option<&str>, body: &[u8]) -> Response<Full<Bytes>> {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if authorization != Some(expected.as_str()) {
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    let form = String::from_utf8_lossy(body);
    let Some(token) = form
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(form_decode)
    else {
        return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
    };
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.as_object().cloned());
    let Some(mut claims) = claims else {
        return reply(StatusCode::OK, json!({"active": false}));
    };
    let revoked = claims
        .get("jti")
        .and_then(|j| j.as_str())
        .is_some_and(|jti| state.revoked.contains(jti));
    let expired = claims
        .get("exp")
        .and_then(|e| e.as_i64())
        .is_none_or(|exp| exp <= unix_now());
    if revoked || expired {
        return reply(StatusCode::OK, json!({"active": false}));
    }
    claims.extend(state.introspection_extra.clone());
    claims.insert("active".into(), Value::Bool(true));
    reply(StatusCode::OK, Value::Object(claims))
}

fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random 128-bit identifier in hex (jti, sub).
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut bytes).expect("random");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
