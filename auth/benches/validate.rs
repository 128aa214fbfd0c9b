//! Token validation CPU per login with a cached key (issue 12's target: ≤ 50 µs).
//!
//! `cargo bench -p mssante-auth --bench validate` mints PSC-shaped tokens at the testkit's
//! loopback provider, loads its keys once, then times `PscVerifier::verify` in a loop on one
//! thread: JWS split, base64url, signature, claims, identity. No network call is in the loop
//! (the provider's JWKS counter is checked). Both wall time and the thread's CPU time are
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
    let claims = provider.psc_claims("810001234567");
    let cases = [
        ("RS256 (RSA-2048)", provider.token("rsa", &claims), 20_000),
        (
            "PS256 (RSA-2048)",
            provider.mint(&json!({"alg": "PS256", "kid": "rsa"}), &claims),
            20_000,
        ),
        ("ES256 (P-256)", provider.token("ec", &claims), 5_000),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys = runtime.block_on(async {
        let keys = reqwest::get(provider.jwks_url()).await.expect("jwks");
        parse_jwks(&keys.bytes().await.expect("jwks body")).expect("jwks")
    });
    for (name, token, iterations) in &cases {
        runtime.block_on(verifier.verify(token)).expect("warm-up");
        let (wall, cpu) = time(*iterations, || {
            let identity = runtime.block_on(verifier.verify(std::hint::black_box(token)));
            std::hint::black_box(identity.expect("valid"));
        });
        let parsed = jws::parse(token).expect("token");
        let key = keys
            .find(parsed.header.kid.as_deref(), parsed.header.alg)
            .expect("key");
        let (_, signature_cpu) = time(*iterations, || {
            key.verify(parsed.header.alg, parsed.signing_input, &parsed.signature)
                .expect("signature");
        });
        println!(
            "{name}: {cpu:.1} µs CPU per token ({wall:.1} µs wall; signature alone {signature_cpu:.1} µs CPU), \
             {iterations} validations of a {}-byte token",
            token.len()
        );
    }
    assert_eq!(
        provider.hits("jwks"),
        2,
        "keys fetched once by the verifier, then cached"
    );
}
