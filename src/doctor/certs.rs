//! Our certificate and the trust space: key and chain readable and matching, expiry, chain
//! to the IGC-Santé roots (as a server for our MX and as the relay's client certificate,
//! docs/mssante.md §3), the whitelist loaded and fresh, our DN listed for each local domain.

use std::time::{Duration, SystemTime};

use mssante_trust::{Dn, Trust};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::{Check, unix_now};
use crate::config::Config;

/// Days of validity left under which the certificate WARNs (IGC-Santé renewals take time).
const EXPIRY_WARN_DAYS: i64 = 30;
const DAY: i64 = 86400;

pub fn checks(config: &Config, domains: &[String]) -> Vec<Check> {
    let mut checks = Vec::new();
    let chain = match certificate(config) {
        Ok((chain, check)) => {
            checks.push(check);
            Some(chain)
        }
        Err(check) => {
            checks.push(check);
            None
        }
    };
    if let Some(chain) = &chain {
        checks.push(expiry(&chain[0]));
        checks.push(chain_to_roots(config, chain));
    }
    checks.extend(crls(config));
    let (whitelist, trust) = whitelist(config);
    checks.push(whitelist);
    if let (Some(trust), Some(chain)) = (trust, &chain) {
        checks.extend(dn_listed(config, &trust, &chain[0], domains));
    }
    checks
}

/// Loads the configured pair (or the generated self-signed one, never generating it).
fn certificate(config: &Config) -> Result<(Vec<CertificateDer<'static>>, Check), Check> {
    let (pair, self_signed) = match &config.tls {
        Some(pair) => (pair.clone(), false),
        None => (crate::tls::self_signed_paths(&config.data_dir), true),
    };
    if self_signed && !pair.0.exists() {
        return Err(Check::fail(
            "tls.certificate",
            "no [tls] certificate, and the self-signed one is not generated yet",
            "set [tls] cert and key to your IGC-Santé server certificate (chain) and key",
        ));
    }
    let loaded = crate::tls::Identity::load(Some(&pair), &config.data_dir, &config.hostname)
        .and_then(|identity| {
            crate::tls::Certificates::new(&identity)?;
            Ok(identity)
        });
    let identity = loaded.map_err(|e| {
        Check::fail(
            "tls.certificate",
            format!("{e:#}"),
            "check the paths in [tls], that the service user can read both files, and that \
             the key is the certificate's",
        )
    })?;
    let chain = identity.chain().to_vec();
    let subject = Dn::from_certificate(&chain[0]).map_or_else(|e| e.to_string(), |d| d.to_string());
    let check = if self_signed {
        Check::warn(
            "tls.certificate",
            format!("self-signed ({subject}): other operators refuse it"),
            "set [tls] cert and key to your IGC-Santé server certificate (chain) and key",
        )
    } else {
        Check::ok(
            "tls.certificate",
            format!("{} ({subject}), key matches", pair.0.display()),
        )
    };
    Ok((chain, check))
}

fn expiry(leaf: &CertificateDer<'_>) -> Check {
    let fix = "renew the certificate with IGC-Santé, install it, then `systemctl reload mssante`";
    let (not_before, not_after) = match mssante_trust::certificate_validity(leaf) {
        Ok(v) => v,
        Err(e) => return Check::fail("tls.expiry", e.to_string(), fix),
    };
    let now = unix_now();
    let days_left = (not_after - now).div_euclid(DAY);
    if now < not_before {
        Check::fail(
            "tls.expiry",
            format!(
                "not valid yet (for {} more day(s))",
                (not_before - now) / DAY
            ),
            "check this machine's clock (timedatectl)",
        )
    } else if now > not_after {
        Check::fail(
            "tls.expiry",
            format!("expired {} day(s) ago", (now - not_after) / DAY),
            fix,
        )
    } else if days_left < EXPIRY_WARN_DAYS {
        Check::warn("tls.expiry", format!("expires in {days_left} day(s)"), fix)
    } else {
        Check::ok("tls.expiry", format!("{days_left} days left"))
    }
}

/// The chain verifies to `[trust] ca_file` as a server certificate for `hostname` and as a
/// client certificate (the relay presents it).
fn chain_to_roots(config: &Config, chain: &[CertificateDer<'static>]) -> Check {
    let verifier = match config.trust.peer_verifier() {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Check::warn(
                "tls.chain",
                "not checked: no [trust] ca_file (the relay stays off without it)",
                "set [trust] ca_file to the IGC-Santé roots (PEM)",
            );
        }
        Err(e) => {
            return Check::fail(
                "tls.chain",
                format!("trust.ca_file: {e:#}"),
                "point [trust] ca_file at the IGC-Santé roots (PEM), readable by the service user",
            );
        }
    };
    let fix = "put the whole chain (certificate then intermediates) in [tls] cert, issued by \
               IGC-Santé for this host name, with serverAuth and clientAuth usages";
    let (leaf, intermediates) = chain.split_first().expect("a loaded chain is not empty");
    let now = UnixTime::now();
    let name = match ServerName::try_from(config.hostname.clone()) {
        Ok(name) => name,
        Err(e) => return Check::fail("tls.chain", format!("hostname: {e}"), fix),
    };
    if let Err(e) =
        verifier
            .tls_server_verifier()
            .verify_server_cert(leaf, intermediates, &name, &[], now)
    {
        return Check::fail(
            "tls.chain",
            format!("as a server certificate for {}: {e}", config.hostname),
            fix,
        );
    }
    match verifier.check_client_chain(chain, now) {
        Ok(_) => Check::ok(
            "tls.chain",
            format!(
                "verifies to the roots of {} (server for {}, relay client)",
                config
                    .trust
                    .ca_file
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
                config.hostname
            ),
        ),
        Err(e) => Check::fail(
            "tls.chain",
            format!("as the relay's client certificate: {e}"),
            fix,
        ),
    }
}

/// The kept CRLs (ADR 0041): one check per CA, FAIL once nextUpdate has passed (later
/// revocations are unknown: such peers would be accepted) or when none was ever downloaded.
fn crls(config: &Config) -> Vec<Check> {
    let fix = "check that [trust] crl_urls are reachable from this host (the server keeps the                last non-expired CRL and logs why a download is refused)";
    if config.trust.crl_urls.is_empty() {
        return vec![Check::warn(
            "trust.crl",
            "no [trust] crl_urls: revoked peer certificates are not refused",
            "set [trust] crl_urls to the IGC-Santé CRL addresses of the CAs in ca_file",
        )];
    }
    let mut anchors = Vec::new();
    for verifier in [config.trust.peer_verifier(), config.client_ca()] {
        if let Ok(Some(v)) = verifier {
            anchors.extend(v.anchors().iter().cloned());
        }
    }
    let dir = config.data_dir.join(mssante_trust::crl::CRL_DIR);
    let kept = mssante_trust::crl::load_kept(&dir, &anchors);
    if kept.is_empty() {
        return vec![Check::fail(
            "trust.crl",
            "no CRL downloaded yet: revoked peer certificates are not refused",
            fix,
        )];
    }
    let now = unix_now();
    kept.into_iter()
        .map(|(path, crl)| match crl {
            Ok(crl) if crl.expired_at(now) => Check::fail(
                format!("trust.crl {}", crl.issuer),
                format!("{}: past its nextUpdate", crl.describe()),
                fix,
            ),
            Ok(crl) => Check::ok(
                format!("trust.crl {}", crl.issuer),
                format!(
                    "{}, {} h old",
                    crl.describe(),
                    (now - crl.this_update) / 3600
                ),
            ),
            Err(e) => Check::fail(
                "trust.crl",
                format!("{}: {e:#}", path.display()),
                "remove the file; the server downloads the CRL again",
            ),
        })
        .collect()
}

/// The kept whitelist: present, and synced recently enough.
fn whitelist(config: &Config) -> (Check, Option<Trust>) {
    let trust = match Trust::open(&config.trust, &config.data_dir) {
        Ok(trust) => trust,
        Err(e) => {
            let fix = "`mssante trust sync` replaces it (check [trust] whitelist and checksum)";
            return (Check::fail("trust.whitelist", format!("{e:#}"), fix), None);
        }
    };
    let Some(list) = trust.snapshot() else {
        let message = "no whitelist loaded: the MX refuses every other operator (4xx)";
        let fix =
            "set [trust] whitelist and checksum to the ANS addresses, then `mssante trust sync`";
        let check = if config.trust.enforce {
            Check::fail("trust.whitelist", message, fix)
        } else {
            Check::warn(
                "trust.whitelist",
                "no whitelist loaded ([trust] enforce = false)",
                fix,
            )
        };
        return (check, None);
    };
    let period = match config.trust.refresh_secs {
        0 => DAY as u64,
        secs => secs,
    };
    let stale_after = Duration::from_secs((2 * period).max(DAY as u64));
    let age = trust
        .last_sync()
        .and_then(|at| SystemTime::now().duration_since(at).ok());
    let summary = format!(
        "{} domains, generated {}",
        list.domain_count(),
        list.generated_at()
    );
    let check = match age {
        Some(age) if age <= stale_after => Check::ok(
            "trust.whitelist",
            format!("{summary}, synced {} h ago", age.as_secs() / 3600),
        ),
        Some(age) => Check::warn(
            "trust.whitelist",
            format!(
                "{summary}, last synced {} h ago: stale",
                age.as_secs() / 3600
            ),
            "`mssante trust sync` says why the download fails (the server keeps the last good copy)",
        ),
        None => Check::warn(
            "trust.whitelist",
            format!("{summary}, sync time unknown"),
            "`mssante trust sync`",
        ),
    };
    (check, Some(trust))
}

/// Our certificate's DN is the one the whitelist lists for each local domain: peers check
/// it on every connection our relay makes.
fn dn_listed(
    config: &Config,
    trust: &Trust,
    leaf: &CertificateDer<'_>,
    domains: &[String],
) -> Vec<Check> {
    let (Some(list), Ok(dn)) = (trust.snapshot(), Dn::from_certificate(leaf)) else {
        return Vec::new();
    };
    domains
        .iter()
        .map(|domain| {
            let name = format!("trust.dn {domain}");
            if list.dn_allowed(domain, &dn) {
                return Check::ok(name, format!("listed with {dn}"));
            }
            let listed: Vec<String> = list
                .entries_for(domain)
                .iter()
                .map(|e| e.dn.to_string())
                .collect();
            let message = match listed.as_slice() {
                [] => format!("{domain} is not in the whitelist"),
                dns => format!("our DN {dn} is not the listed one ({})", dns.join("; ")),
            };
            let fix = "ask ANS to list the domain with this certificate's DN, or install the \
                       certificate whose DN is listed";
            if config.trust.enforce {
                Check::fail(name, message, fix)
            } else {
                Check::warn(name, message, fix)
            }
        })
        .collect()
}
