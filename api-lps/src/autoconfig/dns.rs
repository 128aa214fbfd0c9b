//! The zone lines an operator publishes for a local domain (`mssante dns records DOMAIN`):
//! MX for other operators, SRV records for mail clients (RFC 6186, RFC 8314 §5.1) and the
//! `autoconfig` host Thunderbird asks.

use std::fmt::Write;
use std::net::IpAddr;

use crate::Advertised;

const TTL: u32 = 3600;
/// RFC 8314 §5.1: implicit TLS is preferred, so its SRV records get the lower
/// (preferred) priority.
const PRIORITY_IMPLICIT_TLS: u16 = 0;
const PRIORITY_STARTTLS: u16 = 10;

/// Zone-file lines (with `;` comments) for `domain`, from the advertised services.
pub fn zone_lines(domain: &str, public: &Advertised) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut out = format!("; DNS records for {domain}, to publish in its zone\n");
    let mut warnings = Vec::new();

    out.push_str(";\n; Mail from other operators (RFC 5321 §5)\n");
    match &public.mx {
        Some(mx) => {
            record(&mut out, &domain, "MX", &format!("10 {}", target(&mx.host)));
            if mx.port != 25 {
                warnings.push(format!(
                    "the MX listener is on port {}, but other operators connect to port 25 (an MX record carries no port)",
                    mx.port
                ));
            }
            warnings.extend(name_required("MX", &mx.host));
        }
        None => out.push_str("; (none: the MX listener is off or [public] mx = \"off\")\n"),
    }

    out.push_str(
        ";\n; Mail clients: RFC 6186 SRV records, implicit TLS preferred (RFC 8314 §5.1);\n",
    );
    out.push_str("; target \".\" = service not offered (RFC 6186 §4)\n");
    for srv in srv_records(&domain, public) {
        out.push_str(&srv.zone_line());
        if srv.port != 0 {
            let host = srv.target.trim_end_matches('.');
            warnings.extend(name_required(&format!("SRV {}", srv.service), host));
        }
    }

    out.push_str(";\n; Thunderbird autoconfiguration: https://autoconfig.");
    let _ = writeln!(
        out,
        "{domain}/mail/config-v1.1.xml\n; (HTTPS on port 443 with a certificate for autoconfig.{domain}: [listen] https or a proxy)"
    );
    let owner = format!("autoconfig.{domain}");
    match public
        .autoconfig
        .as_deref()
        .map(|h| (h, h.parse::<IpAddr>()))
    {
        Some((_, Ok(IpAddr::V4(ip)))) => record(&mut out, &owner, "A", &ip.to_string()),
        Some((_, Ok(IpAddr::V6(ip)))) => record(&mut out, &owner, "AAAA", &ip.to_string()),
        Some((host, Err(_))) => record(&mut out, &owner, "CNAME", &target(host)),
        None => out.push_str("; (none: no HTTP listener, or [public] autoconfig = \"off\")\n"),
    }

    let hosts = [&public.mx, &public.submission, &public.imap]
        .into_iter()
        .flatten()
        .map(|e| e.host.as_str());
    if hosts.clone().any(|h| h == "localhost") {
        warnings.push(
            "a service is advertised on \"localhost\": set hostname, or the [public] keys, to the server's public name".into(),
        );
    }
    out.push_str(";\n; The targets above need their own A/AAAA records (not printed: the server does not\n; know its public addresses).\n");
    for w in warnings {
        let _ = writeln!(out, "; WARNING: {w}");
    }
    out
}

/// One SRV record a local domain publishes for mail clients (RFC 6186 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvRecord {
    /// `_submissions`, `_imap`…
    pub service: &'static str,
    /// `_submissions._tcp.example.fr` (no final dot).
    pub owner: String,
    pub priority: u16,
    pub weight: u16,
    /// 0 with target `.`: the service is not offered (RFC 6186 §4).
    pub port: u16,
    /// A host name with its final dot, or `.`.
    pub target: String,
}

impl SrvRecord {
    /// `priority weight port target`.
    pub fn data(&self) -> String {
        format!(
            "{} {} {} {}",
            self.priority, self.weight, self.port, self.target
        )
    }

    /// The zone-file line, as `mssante dns records` prints it.
    pub fn zone_line(&self) -> String {
        let mut out = String::new();
        record(&mut out, &self.owner, "SRV", &self.data());
        out
    }
}

/// The SRV records of `domain` for mail clients, implicit TLS first; `0 0 0 .` for a
/// service not offered (RFC 6186 §4; POP3 never is).
pub fn srv_records(domain: &str, public: &Advertised) -> Vec<SrvRecord> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    [
        ("_submissions", &public.submissions, PRIORITY_IMPLICIT_TLS),
        ("_submission", &public.submission, PRIORITY_STARTTLS),
        ("_imaps", &public.imaps, PRIORITY_IMPLICIT_TLS),
        ("_imap", &public.imap, PRIORITY_STARTTLS),
        ("_pop3s", &None, 0),
        ("_pop3", &None, 0),
    ]
    .into_iter()
    .map(|(service, endpoint, priority)| {
        let owner = format!("{service}._tcp.{domain}");
        match endpoint {
            Some(e) => SrvRecord {
                service,
                owner,
                priority,
                weight: 1,
                port: e.port,
                target: target(&e.host),
            },
            None => SrvRecord {
                service,
                owner,
                priority: 0,
                weight: 0,
                port: 0,
                target: ".".into(),
            },
        }
    })
    .collect()
}

fn record(out: &mut String, owner: &str, kind: &str, data: &str) {
    let _ = writeln!(out, "{:<40} {TTL} IN {kind:<5} {data}", format!("{owner}."));
}

/// A host name as a fully qualified zone target.
fn target(host: &str) -> String {
    format!("{}.", host.trim_end_matches('.'))
}

/// MX and SRV targets must be host names (RFC 2181 §10.3, RFC 2782).
fn name_required(what: &str, host: &str) -> Option<String> {
    host.parse::<IpAddr>().is_ok().then(|| {
        format!("{what} target {host} is an IP address; publish a host name ([public] in the configuration)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;

    fn at(host: &str, port: u16) -> Option<Endpoint> {
        Some(Endpoint {
            host: host.into(),
            port,
        })
    }

    #[test]
    fn production_records() {
        let public = Advertised {
            mx: at("mx.ch.fr", 25),
            submission: at("smtp.ch.fr", 587),
            submissions: at("smtp.ch.fr", 465),
            imap: at("imap.ch.fr", 143),
            imaps: None,
            autoconfig: Some("www.ch.fr".into()),
        };
        let zone = zone_lines("CH.fr.", &public);
        let lines: Vec<&str> = zone.lines().filter(|l| !l.starts_with(';')).collect();
        let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        let lines: Vec<String> = lines.into_iter().map(squeeze).collect();
        assert_eq!(
            lines,
            [
                "ch.fr. 3600 IN MX 10 mx.ch.fr.",
                "_submissions._tcp.ch.fr. 3600 IN SRV 0 1 465 smtp.ch.fr.",
                "_submission._tcp.ch.fr. 3600 IN SRV 10 1 587 smtp.ch.fr.",
                "_imaps._tcp.ch.fr. 3600 IN SRV 0 0 0 .",
                "_imap._tcp.ch.fr. 3600 IN SRV 10 1 143 imap.ch.fr.",
                "_pop3s._tcp.ch.fr. 3600 IN SRV 0 0 0 .",
                "_pop3._tcp.ch.fr. 3600 IN SRV 0 0 0 .",
                "autoconfig.ch.fr. 3600 IN CNAME www.ch.fr.",
            ]
        );
        assert!(!zone.contains("WARNING"), "{zone}");
    }

    #[test]
    fn warns_about_what_peers_and_clients_cannot_use() {
        let public = Advertised {
            mx: at("localhost", 2525),
            imap: at("192.0.2.1", 143),
            autoconfig: Some("192.0.2.1".into()),
            ..Default::default()
        };
        let zone = zone_lines("ch.fr", &public);
        assert!(zone.contains("port 2525"), "{zone}");
        assert!(zone.contains("SRV _imap target 192.0.2.1"), "{zone}");
        assert!(zone.contains("\"localhost\""), "{zone}");
        assert!(zone.contains("IN A     192.0.2.1"), "{zone}");
    }
}
