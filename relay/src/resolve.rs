//! Where mail for a domain goes (RFC 5321 §5.1): MX records by preference, the domain itself
//! when it has none (implicit MX), nowhere for a null MX (RFC 7505). Tests point the
//! resolver at a loopback dnsmasq; production uses the system's resolv.conf.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, ResolveErrorKind, TokioResolver};

use crate::client::ClientError;

/// One MX host with its addresses, in the order to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxHost {
    pub name: String,
    pub addrs: Vec<IpAddr>,
}

pub struct MxResolver {
    resolver: TokioResolver,
}

/// RFC 3463 X.1.2: bad destination system address (the domain does not exist / takes no mail).
fn no_such_domain(domain: &str, why: &str) -> ClientError {
    ClientError {
        permanent: true,
        status: "5.1.2".into(),
        message: format!("{domain}: {why}"),
    }
}

/// RFC 3463 X.4.3: directory server failure (DNS did not answer).
fn dns_trouble(name: &str, e: &ResolveError) -> ClientError {
    ClientError::temporary("4.4.3", format!("DNS lookup of {name} failed: {e}"))
}

/// NXDOMAIN, as opposed to "the name exists but has no record of this type".
fn is_nxdomain(e: &ResolveError) -> bool {
    let ResolveErrorKind::Proto(proto) = e.kind() else {
        return false;
    };
    matches!(proto.kind(), ProtoErrorKind::NoRecordsFound { response_code, .. } if *response_code == ResponseCode::NXDomain)
}

impl MxResolver {
    /// `nameserver`: one DNS server to ask (UDP and TCP); `None`: the system configuration.
    pub fn new(nameserver: Option<SocketAddr>) -> anyhow::Result<MxResolver> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match nameserver {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
                hickory_resolver::Resolver::builder_with_config(config, provider)
            }
            None => hickory_resolver::Resolver::builder(provider)
                .map_err(|e| anyhow::anyhow!("cannot read the system DNS configuration: {e}"))?,
        };
        let mut opts = ResolverOpts::default();
        opts.attempts = 2;
        opts.timeout = std::time::Duration::from_secs(5);
        *builder.options_mut() = opts;
        Ok(MxResolver {
            resolver: builder.build(),
        })
    }

    /// The MX records `domain` publishes, best first (`None`: the name exists without MX).
    /// No implicit MX here: `doctor` asks what is published, [`Self::destinations`] decides.
    pub async fn mx_records(
        &self,
        domain: &str,
    ) -> Result<Option<Vec<(u16, String)>>, ClientError> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(mx) => {
                let mut records: Vec<(u16, String)> = mx
                    .iter()
                    .map(|r| (r.preference(), r.exchange().to_utf8()))
                    .collect();
                records.sort();
                Ok(Some(records))
            }
            Err(e) if is_nxdomain(&e) => Err(no_such_domain(domain, "no such domain")),
            Err(e) if e.is_no_records_found() => Ok(None),
            Err(e) => Err(dns_trouble(domain, &e)),
        }
    }

    /// The SRV records published at `owner` (`_imaps._tcp.example.fr`) as (priority,
    /// weight, port, target), best first; `None`: no SRV record there. For `doctor`, which
    /// compares them with what `mssante dns records` prints (RFC 6186 §3).
    pub async fn srv_records(
        &self,
        owner: &str,
    ) -> Result<Option<Vec<(u16, u16, u16, String)>>, ClientError> {
        let fqdn = format!("{}.", owner.trim_end_matches('.'));
        match self.resolver.srv_lookup(fqdn.as_str()).await {
            Ok(srv) => {
                let mut records: Vec<(u16, u16, u16, String)> = srv
                    .iter()
                    .map(|r| (r.priority(), r.weight(), r.port(), r.target().to_utf8()))
                    .collect();
                records.sort();
                Ok(Some(records))
            }
            Err(e) if e.is_no_records_found() => Ok(None),
            Err(e) => Err(dns_trouble(owner, &e)),
        }
    }

    /// The addresses (A and AAAA) of `host`.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, ClientError> {
        let ips = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| dns_trouble(host, &e))?;
        Ok(ips.iter().collect())
    }

    /// The hosts to try for `domain`, best first, each with its addresses.
    pub async fn destinations(&self, domain: &str) -> Result<Vec<MxHost>, ClientError> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let names = match self.mx_records(domain).await? {
            // RFC 7505 §3: a single MX with an empty exchange ("."): no mail.
            Some(records)
                if records.len() == 1 && records[0].1.trim_end_matches('.').is_empty() =>
            {
                return Err(no_such_domain(
                    domain,
                    "the domain accepts no mail (null MX)",
                ));
            }
            Some(records) => records.into_iter().map(|(_, name)| name).collect(),
            // RFC 5321 §5.1: no MX: the domain itself is the implicit MX.
            None => vec![fqdn],
        };
        let mut hosts = Vec::with_capacity(names.len());
        let mut last_error = None;
        for name in names {
            match self.addresses(&name).await {
                Ok(addrs) => hosts.push(MxHost {
                    name: name.trim_end_matches('.').to_string(),
                    addrs,
                }),
                Err(e) => last_error = Some(e),
            }
        }
        match (hosts.is_empty(), last_error) {
            (true, Some(e)) => Err(e),
            (true, None) => Err(no_such_domain(domain, "no address for any MX host")),
            (false, _) => Ok(hosts),
        }
    }
}
