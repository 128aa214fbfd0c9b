//! A throwaway Postfix on loopback: the "real MTA" peer of the interoperability tests.
//!
//! Everything lives under the directory given to [`Postfix::start`]: configuration (`conf/`),
//! queue (`queue/`), data (`data/`), delivered mail (`mail/<localpart>/` Maildirs) and the
//! mail log (`maillog`). Only smtpd listens, on the loopback address of [`PostfixSpec::listen`]
//! (never port 25). Outbound mail goes only through the spec's relay routes (`transport_maps`
//! to `[ip]:port`); DNS is never used, every other destination bounces at once.
//!
//! Must run as root (Postfix's master starts as root and drops privileges to `postfix`).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the test Postfix serves.
#[derive(Clone, Copy, Debug)]
pub struct PostfixSpec<'a> {
    /// smtpd listens here (a loopback address, e.g. 127.0.0.4:<port>); outbound SMTP binds
    /// to the same IP.
    pub listen: SocketAddr,
    /// `myhostname` (EHLO name).
    pub hostname: &'a str,
    /// Mail for this domain is delivered to Maildirs `<dir>/mail/<localpart>/`.
    pub local_domain: &'a str,
    /// Local parts that exist in `local_domain`; others get `550 5.1.1` at RCPT. `postmaster`
    /// always exists (bounce and double-bounce notices land there).
    pub users: &'a [&'a str],
    /// smtpd certificate (leaf or chain file) and key.
    pub server_tls: (&'a Path, &'a Path),
    /// CA file for verifying clients (smtpd) and servers (smtp).
    pub ca_file: &'a Path,
    /// Certificate (leaf or chain) and key the SMTP client presents when relaying out.
    pub client_tls: (&'a Path, &'a Path),
    /// `transport_maps`: mail for these domains goes to `smtp:[ip]:port`. They are also the
    /// `relay_domains` (clients in 127.0.0.0/8 may relay to any domain anyway).
    pub relay_routes: &'a [(&'a str, SocketAddr)],
}

/// A running Postfix; stopped on drop.
pub struct Postfix {
    /// The smtpd address.
    pub listen: SocketAddr,
    dir: PathBuf,
    confdir: PathBuf,
}

fn postfix_bin() -> PathBuf {
    for candidate in ["/usr/sbin/postfix", "/usr/bin/postfix"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "postfix not found: install Debian's `postfix` package (see scripts/apt-packages.txt; \
         scripts/test installs it without starting the system service)"
    );
}

fn postqueue_bin() -> PathBuf {
    for candidate in ["/usr/sbin/postqueue", "/usr/bin/postqueue"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("postqueue not found: install Debian's `postfix` package");
}

/// A free TCP port on a loopback address (e.g. 127.0.0.4), for [`PostfixSpec::listen`].
pub fn free_port_on(ip: IpAddr) -> SocketAddr {
    assert!(ip.is_loopback(), "{ip} is not a loopback address");
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("bind {ip}:0: {e}"))
}

/// `(uid, gid)` of a system user, from `id`.
pub(crate) fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn chown(path: &Path, uid: u32, gid: u32) {
    let (ok, out) = run(Command::new("chown").arg(format!("{uid}:{gid}")).arg(path));
    assert!(ok, "chown {}: {out}", path.display());
}

/// Postfix daemons and the virtual delivery agent run unprivileged: every ancestor of `dir`
/// must be searchable by others (temp dirs are 0700).
pub(crate) fn make_traversable(dir: &Path) {
    for ancestor in dir.ancestors() {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o011))
                .unwrap_or_else(|e| panic!("chmod o+x {}: {e}", ancestor.display()));
        }
    }
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl Postfix {
    /// Writes the configuration and starts Postfix; returns once smtpd answers with a 220
    /// banner. Panics with the mail log when it does not come up.
    pub fn start(dir: &Path, spec: &PostfixSpec) -> Postfix {
        let postfix = postfix_bin();
        assert!(
            crate::is_root(),
            "the Postfix tests must run as root (Postfix's master starts as root)"
        );
        assert!(
            spec.listen.ip().is_loopback() && spec.listen.port() != 25 && spec.listen.port() != 0,
            "Postfix must listen on a loopback address and a fixed port other than 25, not {}",
            spec.listen
        );
        for (domain, to) in spec.relay_routes {
            assert!(
                to.ip().is_loopback() && to.port() != 25,
                "relay route {domain} -> {to}: loopback only, never port 25"
            );
        }
        let IpAddr::V4(ip) = spec.listen.ip() else {
            panic!("Postfix test instances are IPv4 only: {}", spec.listen);
        };

        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let dir = std::fs::canonicalize(dir).expect("canonicalize postfix dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod postfix dir");
        make_traversable(&dir);
        let confdir = dir.join("conf");
        let queue = dir.join("queue");
        let data = dir.join("data");
        let mail = dir.join("mail");
        for d in [&confdir, &queue, &data, &mail] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        let (pf_uid, pf_gid) = user_ids("postfix")
            .expect("no `postfix` system user: install Debian's `postfix` package");
        chown(&data, pf_uid, pf_gid);
        // Mail is delivered as user `mail` (or nobody), never as root.
        let (mail_uid, mail_gid) = user_ids("mail")
            .or_else(|| user_ids("nobody"))
            .expect("no `mail` or `nobody` user to deliver mail as");
        chown(&mail, mail_uid, mail_gid);

        let domain = spec.local_domain;
        let mut vmailbox = String::new();
        let postmaster = (!spec.users.contains(&"postmaster")).then_some(&"postmaster");
        for user in spec.users.iter().chain(postmaster) {
            vmailbox.push_str(&format!("{user}@{domain} {user}/\n"));
        }
        write(&confdir.join("vmailbox"), &vmailbox);
        let mut transport = String::new();
        for (route_domain, to) in spec.relay_routes {
            transport.push_str(&format!(
                "{route_domain} smtp:[{}]:{}\n",
                to.ip(),
                to.port()
            ));
        }
        write(&confdir.join("transport"), &transport);
        let relay_domains = spec
            .relay_routes
            .iter()
            .map(|(d, _)| *d)
            .collect::<Vec<_>>()
            .join(", ");

        let main_cf = format!(
            "# Throwaway test Postfix (mssante-testkit). Loopback only, no DNS, never port 25.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
# inet_interfaces must be an interface address (127.0.0.4 is not one); smtpd's own address
# is in master.cf, and the SMTP client binds to it.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_bind_address = {ip}
myhostname = {hostname}
mydomain = {domain}
myorigin = {domain}
mydestination =
mynetworks = 127.0.0.0/8
local_recipient_maps =
local_transport = error:5.1.1 no local delivery in the test Postfix
alias_maps =
alias_database =
virtual_alias_maps =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:{mail_uid}
virtual_gid_maps = static:{mail_gid}
virtual_minimum_uid = 1
relay_domains = {relay_domains}
relay_recipient_maps =
transport_maps = texthash:{conf}/transport
# Nothing leaves except through transport_maps: no DNS, no default route.
default_transport = error:5.4.4 no route in the test Postfix
relay_transport = error:5.4.4 no route in the test Postfix
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
notify_classes =
bounce_notice_recipient = postmaster@{domain}
2bounce_notice_recipient = postmaster@{domain}
delay_notice_recipient = postmaster@{domain}
error_notice_recipient = postmaster@{domain}
biff = no
in_flow_delay = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 10s
smtp_connect_timeout = 5s
# TLS: mandatory both ways, TLS 1.2 minimum, client certificates required and verified.
smtpd_tls_cert_file = {server_cert}
smtpd_tls_key_file = {server_key}
smtpd_tls_CAfile = {ca}
smtpd_tls_security_level = encrypt
smtpd_tls_ask_ccert = yes
smtpd_tls_req_ccert = yes
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtp_tls_cert_file = {client_cert}
smtp_tls_key_file = {client_key}
smtp_tls_CAfile = {ca}
smtp_tls_security_level = encrypt
smtp_tls_protocols = >=TLSv1.2
smtp_tls_mandatory_protocols = >=TLSv1.2
smtp_tls_loglevel = 1
",
            queue = queue.display(),
            data = data.display(),
            dir = dir.display(),
            hostname = spec.hostname,
            mail = mail.display(),
            conf = confdir.display(),
            server_cert = spec.server_tls.0.display(),
            server_key = spec.server_tls.1.display(),
            ca = spec.ca_file.display(),
            client_cert = spec.client_tls.0.display(),
            client_key = spec.client_tls.1.display(),
        );
        write(&confdir.join("main.cf"), &main_cf);
        // chroot off everywhere (the queue is a temp dir); only smtpd on the network, no :25.
        let master_cf = format!(
            "{listen} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
",
            listen = spec.listen
        );
        write(&confdir.join("master.cf"), &master_cf);

        let server = Postfix {
            listen: spec.listen,
            dir: dir.clone(),
            confdir: confdir.clone(),
        };
        // `check` creates the queue directories with their owners and modes.
        let (_, check_out) = run(Command::new(&postfix).arg("-c").arg(&confdir).arg("check"));
        for sub in ["maildrop", "public"] {
            let _ = Command::new("chgrp")
                .arg("postdrop")
                .arg(queue.join(sub))
                .status();
        }
        let (ok, start_out) = run(Command::new(&postfix).arg("-c").arg(&confdir).arg("start"));
        if !ok {
            panic!(
                "postfix did not start:\ncheck: {check_out}\nstart: {start_out}\n{}\nmaillog:\n{}",
                diagnose(&postfix, &confdir),
                server.log()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if smtp_banner(spec.listen).is_some_and(|b| b.starts_with("220")) {
                return server;
            }
            if Instant::now() > deadline {
                panic!(
                    "postfix smtpd did not answer on {} within 15 s\nstart: {start_out}\nmaillog:\n{}",
                    spec.listen,
                    server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The instance directory (`conf/`, `queue/`, `mail/`, `maillog`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Maildir of a local user: `<dir>/mail/<user>/`.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user)
    }

    /// The messages delivered to `user` (files of `new/` and `cur/`, oldest first).
    pub fn maildir_messages(&self, user: &str) -> Vec<Vec<u8>> {
        let maildir = self.maildir(user);
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        // Maildir names start with the delivery time in seconds, then a sequence.
        files.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let secs: u64 = name
                .split('.')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (secs, name)
        });
        files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    /// Waits until `user` has at least `n` messages; panics with the mail log on timeout.
    pub fn wait_for_messages(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.maildir_messages(user);
            if messages.len() >= n {
                return messages;
            }
            if Instant::now() > deadline {
                panic!(
                    "{user} has {} message(s) after {timeout:?}, expected {n}\nmaillog (tail):\n{}",
                    messages.len(),
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the mail log contains `needle`; returns the log, panics with it on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if Instant::now() > deadline {
                panic!(
                    "{needle:?} not in the Postfix log after {timeout:?}:\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// True when no message is waiting in the queue (maildrop, incoming, active, deferred,
    /// hold).
    pub fn queue_is_empty(&self) -> bool {
        fn count(dir: &Path) -> usize {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| {
                            let p = e.path();
                            if p.is_dir() { count(&p) } else { 1 }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        let queue = self.dir.join("queue");
        ["maildrop", "incoming", "active", "deferred", "hold"]
            .iter()
            .map(|q| count(&queue.join(q)))
            .sum::<usize>()
            == 0
    }

    /// `postqueue -p`: the queue listing.
    pub fn queue_listing(&self) -> String {
        run(Command::new(postqueue_bin())
            .arg("-c")
            .arg(&self.confdir)
            .arg("-p"))
        .1
    }

    /// `postqueue -f`: retries deferred mail now.
    pub fn flush(&self) {
        let (ok, out) = run(Command::new(postqueue_bin())
            .arg("-c")
            .arg(&self.confdir)
            .arg("-f"));
        assert!(ok, "postqueue -f: {out}");
    }

    /// Changes one `main.cf` setting (`name = value`, as `postconf -e` takes it) and reloads
    /// Postfix, e.g. to play a peer without DSN: `smtpd_discard_ehlo_keywords = dsn`.
    pub fn set(&self, setting: &str) {
        let postconf = postfix_bin().with_file_name("postconf");
        let (ok, out) = run(Command::new(postconf)
            .arg("-c")
            .arg(&self.confdir)
            .arg("-e")
            .arg(setting));
        assert!(ok, "postconf -e {setting}: {out}");
        let (ok, out) = run(Command::new(postfix_bin())
            .arg("-c")
            .arg(&self.confdir)
            .arg("reload"));
        assert!(ok, "postfix reload: {out}");
        // smtpd processes started before the reload finish their session with the old
        // settings; new connections get the new ones.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    /// The whole mail log (`<dir>/maillog`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("queue/pid/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
}

/// Postfix commands print their fatal errors only to a terminal (or syslog, or the mail log
/// once it is configured): rerun `postfix check` under `script` to see them.
fn diagnose(postfix: &Path, confdir: &Path) -> String {
    let cmd = format!("{} -c {} check", postfix.display(), confdir.display());
    match Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => format!(
            "postfix check (on a terminal): {}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) => format!("(script(1) not available to show postfix's errors: {e})"),
    }
}

/// Reads the greeting of an SMTP server, if it answers within a second.
fn smtp_banner(addr: SocketAddr) -> Option<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).ok()?;
    let _ = std::io::Write::write_all(&mut &stream, b"QUIT\r\n");
    Some(line)
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let pid = self.master_pid();
        let _ = Command::new(postfix_bin())
            .arg("-c")
            .arg(&self.confdir)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(pid) = pid {
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                // The master leads its own process group: take its children down with it.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

#[cfg(test)]
mod tests;
