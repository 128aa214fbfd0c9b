//! What the HTTP listener needs to know, filled by the binary from its configuration.
//!
//! The `[public]` section says what clients and other operators are told to connect to. It
//! differs from `[listen]` whenever the server sits behind NAT, a load balancer or a port
//! redirect (`0.0.0.0:1143` bound, `imap.example.fr:143` published).

use std::net::IpAddr;

use serde::Deserialize;

/// Everything the router needs besides the store.
#[derive(Clone, Debug, Default)]
pub struct ApiSettings {
    /// Host names and ports handed to clients (autoconfig, mobileconfig).
    pub public: Advertised,
    /// OAuth2 hints for mail clients when Pro Santé Connect login is configured.
    pub oauth2: Option<OAuth2Hints>,
    /// The HTTP API's limits (`[api]`).
    pub limits: ApiLimits,
}

/// `[api]`: the rate each client may use and the largest bulk request.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiLimits {
    /// Requests per second per client (API key or PSC identity), on average.
    pub rate_per_sec: u32,
    /// Requests a client may make at once above its rate.
    pub burst: u32,
    /// Largest bulk send request, in bytes.
    pub max_bulk_bytes: usize,
    /// Webhooks (ADR 0019): the wait after a first failed attempt, doubled after each one…
    pub webhook_retry_first_secs: u64,
    /// …up to this wait between attempts,
    pub webhook_retry_max_secs: u64,
    /// …and this many attempts, after which the event is a dead letter (listed, retried on
    /// demand).
    pub webhook_max_attempts: u32,
    /// Whether webhook URLs may name loopback, private or link-local addresses (a receiver
    /// on the operator's own network); off, such URLs are refused when registered.
    pub webhook_private_targets: bool,
    /// Largest archive `POST /api/v1/imports` accepts, in bytes (ADR 0039).
    pub max_import_bytes: u64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            rate_per_sec: 50,
            burst: 100,
            max_bulk_bytes: 256 * 1024 * 1024,
            webhook_retry_first_secs: 10,
            webhook_retry_max_secs: 3600,
            webhook_max_attempts: 24,
            webhook_private_targets: false,
            max_import_bytes: 64 << 30,
        }
    }
}

/// The OAuth2 authorisation server that issues the tokens our IMAP and submission accept
/// (Pro Santé Connect), as Thunderbird's `<oAuth2>` element describes it; `[public.oauth2]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Hints {
    pub issuer: String,
    pub scope: String,
    pub auth_url: String,
    pub token_url: String,
}

/// A service as clients reach it.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// The advertised services; `None` = not offered (its listener is off, or `"off"` in
/// `[public]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Advertised {
    /// The MX target of our domains; its port is in `mx_port` (MX records carry none).
    pub mx: Option<Endpoint>,
    pub submission: Option<Endpoint>,
    pub submissions: Option<Endpoint>,
    pub imap: Option<Endpoint>,
    pub imaps: Option<Endpoint>,
    /// The host that serves autoconfiguration over HTTPS on 443 (the target of
    /// `autoconfig.<domain>`).
    pub autoconfig: Option<String>,
}

/// `[public]` as written; every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    /// Host name of our MX (the port is always the MX listener's, 25 in production).
    pub mx: Option<String>,
    /// `"HOST:PORT"`, `"HOST"` (the listener's port) or `"off"`.
    pub submission: Option<String>,
    pub submissions: Option<String>,
    pub imap: Option<String>,
    pub imaps: Option<String>,
    /// Host that serves `https://autoconfig.<domain>/…`, or `"off"`.
    pub autoconfig: Option<String>,
    /// OAuth2 hints for mail clients; all four keys or none.
    pub oauth2: Option<OAuth2Hints>,
}

/// The ports the server listens on, `None` for a closed listener: the defaults of
/// [`PublicConfig::resolve`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ListenPorts {
    pub smtp: Option<u16>,
    pub submission: Option<u16>,
    pub submissions: Option<u16>,
    pub imap: Option<u16>,
    pub imaps: Option<u16>,
    pub http: Option<u16>,
    pub https: Option<u16>,
}

impl PublicConfig {
    /// The advertised services: each key as written, else `hostname` and the port the
    /// listener is bound to. Errors name the key (`public.imap: …`).
    pub fn resolve(&self, hostname: &str, ports: &ListenPorts) -> Result<Advertised, String> {
        let endpoint = |key: &str, value: &Option<String>, port: Option<u16>| {
            resolve_endpoint(key, value.as_deref(), hostname, port)
        };
        let mx = match &self.mx {
            Some(v) if v == "off" => None,
            Some(v) => Some(checked_host("mx", v)?.to_string()),
            None => Some(hostname.to_string()),
        };
        let autoconfig = match &self.autoconfig {
            Some(v) if v == "off" => None,
            Some(v) => Some(checked_host("autoconfig", v)?.to_string()),
            None => (ports.http.is_some() || ports.https.is_some()).then(|| hostname.to_string()),
        };
        Ok(Advertised {
            mx: mx
                .zip(ports.smtp)
                .map(|(host, port)| Endpoint { host, port }),
            submission: endpoint("submission", &self.submission, ports.submission)?,
            submissions: endpoint("submissions", &self.submissions, ports.submissions)?,
            imap: endpoint("imap", &self.imap, ports.imap)?,
            imaps: endpoint("imaps", &self.imaps, ports.imaps)?,
            autoconfig,
        })
    }
}

impl OAuth2Hints {
    /// The URLs are handed to clients that open them: HTTPS only.
    pub fn check(&self) -> Result<(), String> {
        for (key, url) in [
            ("issuer", &self.issuer),
            ("auth_url", &self.auth_url),
            ("token_url", &self.token_url),
        ] {
            if !url.starts_with("https://") || url.len() <= "https://".len() {
                return Err(format!(
                    "public.oauth2.{key}: {url:?} is not an https:// URL"
                ));
            }
        }
        if self.scope.trim().is_empty() {
            return Err("public.oauth2.scope: must not be empty".into());
        }
        Ok(())
    }
}

fn resolve_endpoint(
    key: &str,
    value: Option<&str>,
    hostname: &str,
    listen_port: Option<u16>,
) -> Result<Option<Endpoint>, String> {
    let value = match value {
        Some("off") => return Ok(None),
        Some(v) => v,
        None => {
            return Ok(listen_port.map(|port| Endpoint {
                host: hostname.to_string(),
                port,
            }));
        }
    };
    let (host, port) = split_host_port(value);
    let host = checked_host(key, host)?;
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("public.{key}: {p:?} is not a port")),
        },
        // A name alone keeps the listener's port; a closed listener has none to keep.
        None => listen_port.ok_or_else(|| {
            format!("public.{key}: give HOST:PORT (listen.{key} is off, so there is no port to advertise)")
        })?,
    };
    Ok(Some(Endpoint {
        host: host.to_string(),
        port,
    }))
}

/// `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(value: &str) -> (&str, Option<&str>) {
    if let Some(rest) = value.strip_prefix('[')
        && let Some((ip, after)) = rest.split_once(']')
    {
        return (ip, after.strip_prefix(':'));
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (value, None),
    }
}

fn checked_host<'a>(key: &str, host: &'a str) -> Result<&'a str, String> {
    if is_dns_name(host) || host.parse::<IpAddr>().is_ok() {
        Ok(host)
    } else {
        Err(format!(
            "public.{key}: {host:?} is not a host name or IP address"
        ))
    }
}

/// A host name as DNS carries it: dot-separated labels of letters, digits and hyphens.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> ListenPorts {
        ListenPorts {
            smtp: Some(2525),
            submission: Some(5587),
            submissions: Some(5465),
            imap: Some(1143),
            imaps: None,
            http: Some(8080),
            https: None,
        }
    }

    fn at(host: &str, port: u16) -> Option<Endpoint> {
        Some(Endpoint {
            host: host.into(),
            port,
        })
    }

    #[test]
    fn defaults_are_the_hostname_and_the_listener_ports() {
        let a = PublicConfig::default()
            .resolve("mail.ch.fr", &ports())
            .unwrap();
        assert_eq!(a.mx, at("mail.ch.fr", 2525));
        assert_eq!(a.submission, at("mail.ch.fr", 5587));
        assert_eq!(a.imap, at("mail.ch.fr", 1143));
        assert_eq!(a.imaps, None, "a closed listener is not advertised");
        assert_eq!(a.autoconfig.as_deref(), Some("mail.ch.fr"));
    }

    #[test]
    fn written_values_win_and_off_hides_a_service() {
        let public = PublicConfig {
            mx: Some("mx.ch.fr".into()),
            imap: Some("imap.ch.fr:143".into()),
            imaps: Some("imap.ch.fr:993".into()),
            submission: Some("smtp.ch.fr".into()),
            submissions: Some("off".into()),
            autoconfig: Some("off".into()),
            oauth2: None,
        };
        let a = public.resolve("mail.ch.fr", &ports()).unwrap();
        assert_eq!(a.mx, at("mx.ch.fr", 2525));
        assert_eq!(a.imap, at("imap.ch.fr", 143));
        assert_eq!(
            a.imaps,
            at("imap.ch.fr", 993),
            "advertised although bound elsewhere"
        );
        assert_eq!(
            a.submission,
            at("smtp.ch.fr", 5587),
            "a name alone keeps the port"
        );
        assert_eq!(a.submissions, None);
        assert_eq!(a.autoconfig, None);
    }

    #[test]
    fn errors_name_the_key() {
        for (public, key) in [
            (
                PublicConfig {
                    imap: Some("imap.ch.fr:99999".into()),
                    ..Default::default()
                },
                "public.imap",
            ),
            (
                PublicConfig {
                    mx: Some("bad host".into()),
                    ..Default::default()
                },
                "public.mx",
            ),
            (
                PublicConfig {
                    imaps: Some("imap.ch.fr".into()),
                    ..Default::default()
                },
                "public.imaps",
            ),
        ] {
            let err = public.resolve("mail.ch.fr", &ports()).unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
    }

    #[test]
    fn oauth2_urls_must_be_https() {
        let mut hints = OAuth2Hints {
            issuer: "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet".into(),
            scope: "openid scope_all".into(),
            auth_url: "https://wallet.esw.esante.gouv.fr/auth".into(),
            token_url: "https://auth.esw.esante.gouv.fr/token".into(),
        };
        assert_eq!(hints.check(), Ok(()));
        hints.token_url = "http://auth.esw.esante.gouv.fr/token".into();
        assert!(
            hints
                .check()
                .unwrap_err()
                .starts_with("public.oauth2.token_url")
        );
    }

    #[test]
    fn ipv6_literals_are_split_at_their_bracket() {
        assert_eq!(split_host_port("[::1]:143"), ("::1", Some("143")));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("h.fr:25"), ("h.fr", Some("25")));
    }
}
