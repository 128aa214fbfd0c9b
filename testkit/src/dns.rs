//! A loopback DNS server (dnsmasq) serving only the records a test gives it.
//!
//! It listens on 127.0.0.1 (UDP and TCP, same port), reads no system configuration
//! (`/etc/dnsmasq.conf`, `/etc/hosts`, `/etc/resolv.conf`), has no upstream server and answers
//! NXDOMAIN for every name it was not given: nothing ever reaches the real DNS.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// A record served by [`Dnsmasq`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsRecord {
    /// `domain MX preference host`.
    Mx {
        domain: String,
        host: String,
        preference: u16,
    },
    /// `host A ip` (and the matching PTR).
    A { host: String, ip: Ipv4Addr },
    /// `owner SRV priority weight port target` (target `.`: service not offered).
    Srv {
        owner: String,
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
}

impl DnsRecord {
    pub fn mx(domain: &str, host: &str, preference: u16) -> DnsRecord {
        DnsRecord::Mx {
            domain: domain.to_string(),
            host: host.to_string(),
            preference,
        }
    }

    pub fn a(host: &str, ip: Ipv4Addr) -> DnsRecord {
        DnsRecord::A {
            host: host.to_string(),
            ip,
        }
    }

    /// The SRV record of a zone-file line (`owner TTL IN SRV priority weight port target`),
    /// as `mssante dns records` prints them; `None` for any other line.
    pub fn srv_from_zone_line(line: &str) -> Option<DnsRecord> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [owner, _ttl, "IN", "SRV", priority, weight, port, target] = fields[..] else {
            return None;
        };
        Some(DnsRecord::Srv {
            owner: owner.trim_end_matches('.').to_string(),
            priority: priority.parse().ok()?,
            weight: weight.parse().ok()?,
            port: port.parse().ok()?,
            target: target.trim_end_matches('.').to_string(),
        })
    }

    fn arg(&self) -> String {
        match self {
            DnsRecord::Mx {
                domain,
                host,
                preference,
            } => format!("--mx-host={domain},{host},{preference}"),
            DnsRecord::A { host, ip } => format!("--host-record={host},{ip}"),
            // dnsmasq's order is target, port, priority, weight; an empty target is ".".
            DnsRecord::Srv {
                owner,
                priority,
                weight,
                port,
                target,
            } => format!("--srv-host={owner},{target},{port},{priority},{weight}"),
        }
    }
}

/// A running dnsmasq; stopped (killed and reaped) on drop.
pub struct Dnsmasq {
    /// `127.0.0.1:<port>`, UDP and TCP.
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

/// DNS query types used by [`Dnsmasq::query`].
pub const TYPE_A: u16 = 1;
pub const TYPE_MX: u16 = 15;

fn dnsmasq_bin() -> PathBuf {
    for candidate in ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    let out = Command::new("sh")
        .args(["-c", "command -v dnsmasq"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "dnsmasq not found: install Debian's `dnsmasq-base` package (see scripts/apt-packages.txt)"
    );
    PathBuf::from(path)
}

/// A loopback port free for both UDP and TCP at the time of the call.
fn free_udp_tcp_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut pkt = Vec::with_capacity(32 + name.len());
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    pkt.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        pkt.push(label.len() as u8);
        pkt.extend_from_slice(label.as_bytes());
    }
    pkt.push(0);
    pkt.extend_from_slice(&qtype.to_be_bytes());
    pkt.extend_from_slice(&1u16.to_be_bytes()); // IN
    pkt
}

/// One UDP query: `Some((rcode, answer count))`, or `None` when nothing answered in `timeout`.
fn udp_query(addr: SocketAddr, name: &str, qtype: u16, timeout: Duration) -> Option<(u8, u16)> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    static NEXT_ID: AtomicU16 = AtomicU16::new(1);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() as u16);
    sock.send_to(&encode_query(id, name, qtype), addr).ok()?;
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let (n, from) = sock.recv_from(&mut buf).ok()?;
        if from == addr && n >= 12 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            let rcode = buf[3] & 0x0f;
            let ancount = u16::from_be_bytes([buf[6], buf[7]]);
            return Some((rcode, ancount));
        }
    }
    None
}

impl Dnsmasq {
    /// Starts dnsmasq on a free 127.0.0.1 port serving `records`, and waits until it answers.
    /// Its log (every query) is `<dir>/dnsmasq.log`.
    pub fn start(dir: &Path, records: &[DnsRecord]) -> Dnsmasq {
        let bin = dnsmasq_bin();
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let mut last_error = String::new();
        // The port is free when picked but may be taken before dnsmasq binds it: retry.
        for _ in 0..5 {
            let port = free_udp_tcp_port();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let log = dir.join("dnsmasq.log");
            let stderr_path = dir.join("dnsmasq.stderr");
            let stderr = std::fs::File::create(&stderr_path).expect("create dnsmasq.stderr");
            let mut cmd = Command::new(&bin);
            cmd.args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                // Every name not given below is answered NXDOMAIN here, never forwarded.
                "--local=/#/",
                "--pid-file=",
                "--log-queries",
                "--cache-size=0",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--log-facility={}", log.display()));
            if crate::is_root() {
                // Keep root: the default user/group (dnsmasq, dip) may not exist.
                cmd.args(["--user=root", "--group=root"]);
            }
            for r in records {
                cmd.arg(r.arg());
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut server = Dnsmasq {
                addr,
                child,
                dir: dir.to_path_buf(),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = server.child.try_wait() {
                    last_error = format!(
                        "dnsmasq exited ({status}): {}{}",
                        std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                        server.log()
                    );
                    break;
                }
                if udp_query(addr, "ready.invalid", TYPE_A, Duration::from_millis(100)).is_some() {
                    return server;
                }
                if Instant::now() > deadline {
                    panic!(
                        "dnsmasq on {addr} did not answer within 10 s: {}{}",
                        std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                        server.log()
                    );
                }
            }
        }
        panic!("dnsmasq did not start: {last_error}");
    }

    /// The query log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }

    /// A raw UDP query: `(rcode, answer count)` (rcode 0 = NOERROR, 3 = NXDOMAIN). Panics when
    /// nothing answers within 2 s.
    pub fn query(&self, name: &str, qtype: u16) -> (u8, u16) {
        udp_query(self.addr, name, qtype, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("no DNS answer from {} for {name}", self.addr))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::Resolver;
    use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
    use hickory_resolver::name_server::TokioConnectionProvider;

    fn records() -> Vec<DnsRecord> {
        vec![
            DnsRecord::mx("operator-a.test", "mx1.operator-a.test", 10),
            DnsRecord::mx("operator-a.test", "mx2.operator-a.test", 20),
            DnsRecord::a("mx1.operator-a.test", Ipv4Addr::new(127, 0, 0, 2)),
            DnsRecord::a("mx2.operator-a.test", Ipv4Addr::new(127, 0, 0, 3)),
        ]
    }

    #[test]
    fn raw_queries_answer_as_configured_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dns = Dnsmasq::start(tmp.path(), &records());
        assert!(dns.addr.ip().is_loopback());
        assert_eq!(dns.query("operator-a.test", TYPE_MX), (0, 2));
        assert_eq!(dns.query("mx1.operator-a.test", TYPE_A), (0, 1));
        // Unknown names: NXDOMAIN at once, not forwarded anywhere.
        let t0 = Instant::now();
        assert_eq!(dns.query("example.com", TYPE_A).0, 3);
        assert_eq!(dns.query("unknown.test", TYPE_MX).0, 3);
        assert!(t0.elapsed() < Duration::from_secs(1));
        let log = dns.log();
        assert!(log.contains("query[MX] operator-a.test"), "{log}");
        assert!(!log.contains("forwarded"), "{log}");
    }

    #[tokio::test]
    async fn hickory_resolves_mx_and_a_through_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dns = Dnsmasq::start(tmp.path(), &records());
        let config = ResolverConfig::from_parts(
            None,
            vec![],
            NameServerConfigGroup::from_ips_clear(&[dns.addr.ip()], dns.addr.port(), true),
        );
        let resolver =
            Resolver::builder_with_config(config, TokioConnectionProvider::default()).build();

        let mx = resolver.mx_lookup("operator-a.test.").await.unwrap();
        let mut got: Vec<(u16, String)> = mx
            .iter()
            .map(|m| (m.preference(), m.exchange().to_utf8()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (10, "mx1.operator-a.test.".to_string()),
                (20, "mx2.operator-a.test.".to_string())
            ]
        );
        let a = resolver.ipv4_lookup("mx2.operator-a.test.").await.unwrap();
        let ips: Vec<Ipv4Addr> = a.iter().map(|a| a.0).collect();
        assert_eq!(ips, vec![Ipv4Addr::new(127, 0, 0, 3)]);

        let err = resolver.mx_lookup("nowhere.test.").await.unwrap_err();
        assert!(err.is_nx_domain(), "{err}");
    }
}
