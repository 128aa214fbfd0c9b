//! Two (or more) operators of a test trust space: a test PKI ("IGC-Santé TEST"), a
//! whitelist built from it, a loopback dnsmasq with the MX records, and one mssante server
//! per operator, each with its MX on its own loopback address and one shared port (the
//! stand-in for port 25).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mssante_testkit::dns::{DnsRecord, Dnsmasq};
use mssante_testkit::pki::{Identity, OperatorSpec, TestPki};

use super::{Engine, PASSWORD, Server};

/// One operator of the test trust space.
pub struct OperatorDef {
    pub domain: &'static str,
    pub mta: &'static str,
    pub ip: Ipv4Addr,
    pub siret: &'static str,
    pub org: &'static str,
}

pub const A: OperatorDef = OperatorDef {
    domain: "operateur-a.mssante.fr",
    mta: "mx.operateur-a.mssante.fr",
    ip: Ipv4Addr::new(127, 0, 0, 2),
    siret: "11111111100011",
    org: "OPERATEUR A",
};

pub const B: OperatorDef = OperatorDef {
    domain: "operateur-b.mssante.fr",
    mta: "mx.operateur-b.mssante.fr",
    ip: Ipv4Addr::new(127, 0, 0, 3),
    siret: "22222222200022",
    org: "OPERATEUR B",
};

/// Postfix, the real-MTA peer of the interop test.
pub const P: OperatorDef = OperatorDef {
    domain: "postfix-op.mssante.fr",
    mta: "mx.postfix-op.mssante.fr",
    ip: Ipv4Addr::new(127, 0, 0, 4),
    siret: "33333333300033",
    org: "OPERATEUR POSTFIX",
};

impl OperatorDef {
    pub fn spec(&self) -> OperatorSpec<'static> {
        OperatorSpec {
            mta: self.mta,
            siret: self.siret,
            org: self.org,
            departement: "Gironde (33)",
        }
    }

    pub fn user(&self, local: &str) -> String {
        format!("{local}@{}", self.domain)
    }
}

/// The shared world of a trust test: PKI, whitelist, DNS, one MX port.
pub struct TrustSpace {
    pub dir: tempfile::TempDir,
    pub pki: TestPki,
    pub dns: Dnsmasq,
    pub port: u16,
    pub whitelist: PathBuf,
    identities: Vec<(&'static str, Identity)>,
}

/// A port free on every given loopback address.
fn common_free_port(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..100 {
        let probe = std::net::TcpListener::bind((ips[0], 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        if ips[1..]
            .iter()
            .all(|ip| std::net::TcpListener::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

impl TrustSpace {
    /// PKI and identities for `operators`, a whitelist listing each domain with its DN,
    /// and MX + A records for each.
    pub fn new(operators: &[&OperatorDef]) -> TrustSpace {
        TrustSpace::with_extra_domains(operators, &[])
    }

    /// Like [`TrustSpace::new`], plus domains served by an operator's MX (`mx_of`) but listed
    /// in the whitelist with `dn` (which may not be that operator's).
    pub fn with_extra_domains(
        operators: &[&OperatorDef],
        extra: &[(&str, &OperatorDef, &str)],
    ) -> TrustSpace {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(&dir.path().join("pki"));
        let identities: Vec<(&'static str, Identity)> = operators
            .iter()
            .map(|op| (op.domain, pki.operator(op.domain, &op.spec())))
            .collect();
        let mut entries: Vec<(&str, &str)> = identities
            .iter()
            .map(|(domain, id)| (*domain, id.dn.as_str()))
            .collect();
        entries.extend(extra.iter().map(|(domain, _, dn)| (*domain, *dn)));
        let whitelist = dir.path().join("listeblanchemssante.xml");
        std::fs::write(&whitelist, mssante_testkit::pki::whitelist_xml(&entries)).unwrap();
        let mut records = Vec::new();
        for op in operators {
            records.push(DnsRecord::mx(op.domain, op.mta, 10));
            records.push(DnsRecord::a(op.mta, op.ip));
        }
        for (domain, mx_of, _) in extra {
            records.push(DnsRecord::mx(domain, mx_of.mta, 10));
        }
        let dns = Dnsmasq::start(&dir.path().join("dns"), &records);
        let ips: Vec<Ipv4Addr> = operators.iter().map(|o| o.ip).collect();
        let port = common_free_port(&ips);
        TrustSpace {
            dir,
            pki,
            dns,
            port,
            whitelist,
            identities,
        }
    }

    pub fn identity(&self, domain: &str) -> &Identity {
        &self
            .identities
            .iter()
            .find(|(d, _)| *d == domain)
            .expect("operator of this trust space")
            .1
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration of an operator's server: its certificate, the whitelist, the test
    /// CA, fast retries, and the relay pointed at the loopback DNS and the shared port.
    pub fn server_config(&self, op: &OperatorDef, relay_extra: &str) -> String {
        let id = self.identity(op.domain);
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n\
             [trust]\nenforce = true\nwhitelist = \"{}\"\nca_file = \"{}\"\n\
             [relay]\nport = {}\nnameserver = \"{}\"\nretry_schedule_secs = [1]\npoll_interval_ms = 100\n{relay_extra}\n",
            id.chain_pem.display(),
            id.key_pem.display(),
            self.whitelist.display(),
            self.pki.root_pem.display(),
            self.port,
            self.dns.addr,
        )
    }

    /// A configured, not yet running server for `op` with its domain and the given BALs
    /// (password PASSWORD).
    pub fn prepare_operator(
        &self,
        engine: Engine,
        op: &OperatorDef,
        relay_extra: &str,
        bals: &[&str],
    ) -> Server {
        let mx = SocketAddr::new(IpAddr::V4(op.ip), self.port);
        let server = Server::configure_at(
            engine,
            op.mta,
            Some(mx),
            &self.server_config(op, relay_extra),
        );
        server.cli_ok(&["domain", "add", op.domain]);
        for (i, local) in bals.iter().enumerate() {
            server.create_bal(&op.user(local), &format!("1000{:07}", i + 1));
        }
        server
    }

    /// [`TrustSpace::prepare_operator`], running.
    pub fn start_operator(
        &self,
        engine: Engine,
        op: &OperatorDef,
        relay_extra: &str,
        bals: &[&str],
    ) -> Server {
        let mut server = self.prepare_operator(engine, op, relay_extra, bals);
        server.spawn();
        server
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` and the servers' logs.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    logs: &[&Server],
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|s| s.log()).collect();
            panic!(
                "timed out waiting for {what}\n--- logs ---\n{}",
                logs.join("\n------\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `tests/clients/trust_client.py` and returns its JSON output.
pub fn trust_client(args: &[&str], message: &[u8]) -> serde_json::Value {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    let out = std::process::Command::new("python3")
        .arg(super::clients_dir().join("trust_client.py"))
        .args(args)
        .arg("--message-file")
        .arg(file.path())
        .output()
        .expect("python3 is required for the end-to-end tests");
    assert!(
        out.status.success(),
        "trust_client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Submits `message` on `server`'s submission port as `from` (STARTTLS + AUTH PLAIN).
pub fn submit(
    server: &Server,
    from: &str,
    to: &[&str],
    message: &[u8],
    mail_opts: &[&str],
    rcpt_opts: &[&str],
) -> serde_json::Value {
    let port = server.ports.submission.to_string();
    let mut args = vec![
        "submit",
        "--port",
        &port,
        "--user",
        from,
        "--password",
        PASSWORD,
        "--from",
        from,
    ];
    for t in to {
        args.extend(["--to", t]);
    }
    for o in mail_opts {
        args.extend(["--mail-opt", o]);
    }
    for o in rcpt_opts {
        args.extend(["--rcpt-opt", o]);
    }
    trust_client(&args, message)
}
