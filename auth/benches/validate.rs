//! Token validation CPU per login with a cached key (issue 12's target: ≤ 50 µs).
//!
//! `cargo bench -p mssante-auth --bench validate` mints PSC-shaped tokens at the testkit's
//! loopback provider, loads its keys once, then times `PscVerifier::verify` in a loop on one
//! thread: JWS split, base64url, signature, claims, identity. Two figures per algorithm: a
//! token seen for the first time (2,000 distinct tokens, the signature is checked) and a
//! login repeated with a token already seen (the signature is remembered, `auth/src/seen.rs`).
//! No network call is in the loop (the provider's JWKS counter is checked). Both wall time and the thread's CPU time are
//! printed: on a shared machine the CPU time is the figure that means something. The ring
//! signature check alone is timed too, to show what the rest of the path costs.

use std::time::Instant;

use mssante_auth::jwk::parse_jwks;
use mssante_auth::jws;
use mssante_auth::{PscConfig, PscVerifier};
use mssante_testkit::oidc::{OidcOptions, OidcProvider};
use serde_json::json;

/// CPU time consumed by this thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime");
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Runs `body` `iterations` times; returns (wall µs, CPU µs) per iteration.
fn time<F: FnMut()>(iterations: u32, mut body: F) -> (f64, f64) {
    let wall = Instant::now();
    let cpu = thread_cpu_seconds();
    for _ in 0..iterations {
        body();
    }
    let per = |seconds: f64| seconds * 1e6 / f64::from(iterations);
    (
        per(wall.elapsed().as_secs_f64()),
        per(thread_cpu_seconds() - cpu),
    )
}

/// A token per login, each with its own `jti`, signed by `kid` with `alg`.
fn distinct_tokens(provider: &OidcProvider, alg: &str, kid: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let claims = provider.psc_claims("810001234567");
            provider.mint(&json!({"alg": alg, "kid": kid}), &claims)
        })
        .collect()
}

fn main() {
    let provider = OidcProvider::start(OidcOptions::plain());
    provider.add_rsa_key("rsa");
    provider.add_ec_key("ec");
    let verifier = PscVerifier::from_config(&PscConfig {
        jwks_url: Some(provider.jwks_url()),
        issuers: vec![provider.issuer()],
        ..PscConfig::default()
    })
    .expect("verifier");
    // Minting is the slow part for RSA (a private-key operation per token): 2,000 each.
    let cases = [
        (
            "RS256 (RSA-2048)",
            distinct_tokens(&provider, "RS256", "rsa", 2_000),
        ),
        (
            "PS256 (RSA-2048)",
            distinct_tokens(&provider, "PS256", "rsa", 2_000),
        ),
        (
            "ES256 (P-256)",
            distinct_tokens(&provider, "ES256", "ec", 2_000),
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys = runtime.block_on(async {
        let keys = reqwest::get(provider.jwks_url()).await.expect("jwks");
        parse_jwks(&keys.bytes().await.expect("jwks body")).expect("jwks")
    });
    let verify = |token: &str| {
        let identity = runtime.block_on(verifier.verify(std::hint::black_box(token)));
        std::hint::black_box(identity.expect("valid"));
    };
    for (name, tokens) in &cases {
        // First sight: every login brings a token never seen (the signature is checked).
        let mut next = tokens.iter();
        let (first_wall, first_cpu) = time(tokens.len() as u32, || {
            verify(next.next().expect("a token per login"));
        });
        // Repeat: an LPS reconnecting with the token it already used (signature remembered).
        let token = &tokens[0];
        let repeats = 20_000;
        let (repeat_wall, repeat_cpu) = time(repeats, || verify(token));
        let parsed = jws::parse(token).expect("token");
        let key = keys
            .find(parsed.header.kid.as_deref(), parsed.header.alg)
            .expect("key");
        let (_, signature_cpu) = time(tokens.len() as u32, || {
            key.verify(parsed.header.alg, parsed.signing_input, &parsed.signature)
                .expect("signature");
        });
        println!(
            "{name}: first sight {first_cpu:.1} µs CPU per token ({first_wall:.1} µs wall; \
             signature alone {signature_cpu:.1} µs CPU), {} distinct {}-byte tokens; \
             repeat login {repeat_cpu:.1} µs CPU ({repeat_wall:.1} µs wall), {repeats} logins",
            tokens.len(),
            token.len()
        );
    }
    assert_eq!(
        provider.hits("jwks"),
        2,
        "keys fetched once by the verifier, then cached"
    );
    assert_eq!(
        verifier.verified_tokens(),
        6_000,
        "every distinct token remembered once"
    );
}
