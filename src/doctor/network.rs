//! Checks that ask the network: DNS through the resolver the relay uses (`[relay]
//! nameserver`, else the system's), and the Pro Santé Connect keys when `[psc]` is set.

use mssante_api_lps::autoconfig::dns::{SrvRecord, srv_records};
use mssante_relay::resolve::MxResolver;

use super::Check;
use crate::config::Config;

pub async fn dns(config: &Config, domains: &[String], peers: &[String]) -> Vec<Check> {
    let nameserver = config.relay.as_ref().and_then(|r| r.nameserver);
    let via = nameserver.map_or("the system resolver".to_string(), |a| a.to_string());
    let resolver = match MxResolver::new(nameserver) {
        Ok(r) => r,
        Err(e) => {
            return vec![Check::fail(
                "dns",
                format!("{e:#}"),
                "fix /etc/resolv.conf or set [relay] nameserver",
            )];
        }
    };
    let mx_host = config.public.mx.as_ref().map(|e| e.host.clone());
    let mut checks = Vec::new();
    for domain in domains {
        checks.push(local_mx(&resolver, domain, mx_host.as_deref(), &via).await);
        for expected in client_srv_records(domain, config) {
            checks.push(local_srv(&resolver, domain, &expected, &via).await);
        }
    }
    let mut hosts: Vec<&str> = mx_host.iter().map(String::as_str).collect();
    if !hosts.contains(&config.hostname.as_str()) {
        hosts.push(&config.hostname);
    }
    for host in hosts {
        checks.push(address(&resolver, host, &via).await);
    }
    for peer in peers {
        checks.push(peer_mx(&resolver, peer, &via).await);
    }
    checks
}

/// A local domain publishes an MX, pointing at our `[public] mx` host.
async fn local_mx(resolver: &MxResolver, domain: &str, mx_host: Option<&str>, via: &str) -> Check {
    let name = format!("dns.mx {domain}");
    let publish = format!("publish the lines of `mssante dns records {domain}` in the zone");
    let records = match resolver.mx_records(domain).await {
        Ok(Some(records)) => records,
        Ok(None) => return Check::fail(name, format!("no MX record (asked {via})"), &publish),
        Err(e) => return Check::fail(name, format!("{} (asked {via})", e.message), &publish),
    };
    let hosts: Vec<String> = records
        .iter()
        .map(|(pref, host)| format!("{pref} {}", host.trim_end_matches('.')))
        .collect();
    let ours = mx_host.is_some_and(|mx| {
        records
            .iter()
            .any(|(_, host)| host.trim_end_matches('.').eq_ignore_ascii_case(mx))
    });
    if records
        .iter()
        .all(|(_, host)| host.trim_end_matches('.').is_empty())
    {
        Check::fail(name, "null MX: the domain says it takes no mail", &publish)
    } else if ours || mx_host.is_none() {
        Check::ok(name, format!("MX {}", hosts.join(", ")))
    } else {
        Check::warn(
            name,
            format!(
                "MX {} does not name {} (the [public] mx)",
                hosts.join(", "),
                mx_host.unwrap_or_default()
            ),
            &publish,
        )
    }
}

/// The SRV records mail clients look up (RFC 6186 §3, implicit TLS per RFC 8314 §5.1), as
/// `mssante dns records` prints them; POP3 is never offered, its records are not checked.
fn client_srv_records(domain: &str, config: &Config) -> Vec<SrvRecord> {
    srv_records(domain, &config.public)
        .into_iter()
        .filter(|r| {
            matches!(
                r.service,
                "_submission" | "_submissions" | "_imap" | "_imaps"
            )
        })
        .collect()
}

/// One SRV record of a local domain is published and names our host and port; the fix is
/// the zone line to publish.
async fn local_srv(resolver: &MxResolver, domain: &str, expected: &SrvRecord, via: &str) -> Check {
    let name = format!("dns.srv {}", expected.owner);
    let line = expected
        .zone_line()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let fix = format!(
        "publish `{line}` in the zone of {domain} (`mssante dns records {domain}` prints every line)"
    );
    let published = match resolver.srv_records(&expected.owner).await {
        Ok(Some(records)) => records,
        Ok(None) if expected.port == 0 => {
            return Check::ok(
                name,
                "service not offered, no record (RFC 6186 §4 allows it)",
            );
        }
        Ok(None) => return Check::fail(name, format!("no SRV record (asked {via})"), &fix),
        Err(e) => return Check::fail(name, format!("{} (asked {via})", e.message), &fix),
    };
    let same_host = |a: &str, b: &str| {
        a.trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.'))
    };
    let shown: Vec<String> = published
        .iter()
        .map(|(priority, weight, port, target)| format!("{priority} {weight} {port} {target}"))
        .collect();
    let ours = published
        .iter()
        .any(|(_, _, port, target)| *port == expected.port && same_host(target, &expected.target));
    if ours {
        Check::ok(name, format!("SRV {}", shown.join(", ")))
    } else {
        Check::fail(
            name,
            format!(
                "SRV {} does not name this server's port {} on {}",
                shown.join(", "),
                expected.port,
                expected.target
            ),
            &fix,
        )
    }
}

/// Our host names resolve (peers connect to the MX host, clients to `hostname`).
async fn address(resolver: &MxResolver, host: &str, via: &str) -> Check {
    let name = format!("dns.address {host}");
    match resolver.addresses(host).await {
        Ok(addrs) if !addrs.is_empty() => {
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            Check::ok(name, list.join(", "))
        }
        Ok(_) => Check::fail(
            name,
            format!("no A or AAAA record (asked {via})"),
            "publish the A (and AAAA) record",
        ),
        Err(e) => Check::fail(
            name,
            format!("{} (asked {via})", e.message),
            "publish the A (and AAAA) record of this host",
        ),
    }
}

/// A peer's mail goes somewhere: what the relay resolves before each delivery.
async fn peer_mx(resolver: &MxResolver, domain: &str, via: &str) -> Check {
    let name = format!("dns.peer {domain}");
    match resolver.destinations(domain).await {
        Ok(hosts) => {
            let list: Vec<String> = hosts
                .iter()
                .map(|h| {
                    let addrs: Vec<String> = h.addrs.iter().map(|a| a.to_string()).collect();
                    format!("{} ({})", h.name, addrs.join(" "))
                })
                .collect();
            Check::ok(name, format!("relay would try {}", list.join(", ")))
        }
        Err(e) => Check::fail(
            name,
            format!("{} (asked {via})", e.message),
            "check [relay] nameserver (or /etc/resolv.conf) and that this machine reaches it",
        ),
    }
}

/// The PSC keys can be fetched: every PSC login needs them.
pub async fn psc(config: &Config) -> Vec<Check> {
    if !config.psc.is_enabled() {
        return Vec::new();
    }
    let fix = "check [psc] discovery_url or jwks_url, ca_file, and that this machine reaches it \
               (proxy, firewall)";
    let verifier = match mssante_auth::PscVerifier::from_config(&config.psc) {
        Ok(v) => v,
        Err(e) => return vec![Check::fail("psc", e, fix)],
    };
    vec![match verifier.keys().refresh().await {
        Ok(count) => Check::ok("psc", format!("{count} signing key(s) fetched")),
        Err(e) => Check::fail("psc", e, fix),
    }]
}
