//! Fuzz targets: one plain function per parser family that reads the network or a file.
//!
//! Each target takes arbitrary bytes, feeds them to the real parsing code the way the server
//! does, and panics only when an invariant the server relies on is broken (or when the parser
//! itself panics, overflows or recurses without bound). The same functions serve two drivers:
//! `tests/corpus.rs` replays the committed corpus under `corpus/<target>/` in every
//! `cargo test`, and `src/bin/fuzz.rs` is the libFuzzer binary `scripts/fuzz` builds with
//! coverage instrumentation (docs/fuzzing.md, ADR 0022).

mod archive;
mod crl;
mod imap;
mod smtp;

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus folder and `MSSANTE_FUZZ_TARGET` use.
pub const TARGETS: &[(&str, Target)] = &[
    ("smtp_command", smtp::command),
    ("smtp_data", smtp::data),
    ("smtp_reply", smtp::reply),
    ("imap_command", imap::command),
    ("imap_message", imap::message),
    ("imap_response", imap::response),
    ("sasl", sasl),
    ("jwt", jwt),
    ("receipts", receipts),
    ("whitelist", whitelist),
    ("directory", directory),
    ("export_archive", archive::archive),
    ("crl", crl::crl),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, run)| *run)
}

/// Splits at LF as the servers' line reader does (`mssante_net::take_line`), CR dropped.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// SASL payloads after base64 (SMTP AUTH PLAIN, XOAUTH2, OAUTHBEARER: RFC 4616, RFC 7628).
/// The first byte picks the mechanism; PLAIN gets the base64 text as the client sends it.
fn sasl(data: &[u8]) {
    let Some((&which, payload)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(text) = std::str::from_utf8(payload)
                && let Some(plain) = mssante_smtp::decode_plain(text)
            {
                // RFC 4616 §2: the fields never contain NUL, and the login is never empty.
                assert!(!plain.login.is_empty());
                assert!(!(plain.authzid + &plain.login + &plain.password).contains('\0'));
            }
        }
        1 => {
            let _ = mssante_auth::sasl::parse_xoauth2(payload);
        }
        _ => {
            let _ = mssante_auth::sasl::parse_oauthbearer(payload);
        }
    }
}

/// A bearer token (JWS compact form), its claims and an issuer's JWKS document (ADR 0011).
fn jwt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = mssante_auth::jwk::parse_jwks(data);
        return;
    };
    if let Ok(jws) = mssante_auth::jws::parse(text) {
        // The signature covers exactly `header.payload` as sent.
        assert!(text.as_bytes().starts_with(jws.signing_input));
        if let Ok(claims) = mssante_auth::claims::parse_claims(&jws.payload) {
            let policy =
                mssante_auth::claims::ClaimPolicy::from_config(&mssante_auth::PscConfig::default());
            let _ = policy.check(&claims, 1_800_000_000);
            let _ = policy.identity_of(&claims);
        }
    }
    let _ = mssante_auth::claims::parse_claims(data);
    let _ = mssante_auth::jwk::parse_jwks(data);
}

/// Delivery reports coming back from the network: DSNs (RFC 3464) and MDNs (RFC 8098).
fn receipts(data: &[u8]) {
    let _ = mssante_receipts::is_report(data);
    let _ = mssante_receipts::parse_dsn(data);
    let _ = mssante_receipts::parse_mdn(data);
}

/// The MSSanté whitelist XML (trust space) and the distinguished names it lists.
fn whitelist(data: &[u8]) {
    if let Ok(list) = mssante_trust::TrustList::parse(data) {
        for entry in list.entries() {
            // Every entry parsed is found again by its domain (the MX check relies on it).
            assert!(
                list.is_listed(&entry.domain),
                "{:?} not listed",
                entry.domain
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            let _ = mssante_trust::Dn::parse(line);
        }
    }
}

/// The national directory extraction file: the header line, then rows; and LDAP times.
fn directory(data: &[u8]) {
    use mssante_directory::extraction::{Layout, parse_header, parse_line};
    let mut rows = data.split_inclusive(|&b| b == b'\n');
    let layout = rows
        .next()
        .and_then(|header| parse_header(header).ok())
        .unwrap_or(Layout {
            trailing_pipe: data.first() == Some(&b'|'),
        });
    for row in rows {
        let _ = parse_line(row, layout);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mssante_directory::ldap::parse_generalized_time(text);
    }
}
