//! A throwaway Debian Dovecot on loopback: the "other operator's IMAP server" that
//! `mssante migrate` copies from, and a reader of exported Maildirs.
//!
//! Everything lives under the directory given to [`Dovecot::start`]: configuration,
//! runtime and state dirs, the log (`dovecot.log`) and the Maildirs (`mail/<login>/`).
//! Listeners: IMAP with STARTTLS and IMAPS, both on 127.0.0.1 with free ports; plaintext
//! logins are refused before TLS. Users are a passwd-file ({PLAIN} passwords). Mail is
//! stored as user `mail` in Maildir++ (hierarchy delimiter `.`), with the special-use
//! folders of [`DovecotSpec::special_use`].
//!
//! Must run as root (Dovecot's master starts as root and drops privileges).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::postfix::{make_traversable, user_ids};

/// What the test Dovecot serves.
#[derive(Clone, Copy, Debug)]
pub struct DovecotSpec<'a> {
    /// (login, password) pairs; logins are full addresses.
    pub users: &'a [(&'a str, &'a str)],
    /// Server certificate (PEM, leaf or chain) and key.
    pub tls: (&'a Path, &'a Path),
    /// (folder, special-use attribute) pairs, e.g. ("Sent Items", "\\Sent").
    pub special_use: &'a [(&'a str, &'a str)],
    /// Where the Maildirs are, `%u` standing for the login; `None`: `<dir>/mail/%u`.
    pub mail_location: Option<&'a Path>,
}

/// A running Dovecot; stopped on drop.
pub struct Dovecot {
    pub imap_port: u16,
    pub imaps_port: u16,
    dir: PathBuf,
    pid: u32,
}

fn dovecot_bin() -> &'static str {
    let bin = "/usr/sbin/dovecot";
    assert!(
        Path::new(bin).exists(),
        "dovecot not found: install Debian's `dovecot-imapd` package (scripts/apt-packages.txt)"
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Dovecot {
    /// Writes the configuration and starts Dovecot; returns once IMAPS accepts connections.
    pub fn start(dir: &Path, spec: &DovecotSpec) -> Dovecot {
        let bin = dovecot_bin();
        assert!(crate::is_root(), "the Dovecot tests must run as root");
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let dir = std::fs::canonicalize(dir).expect("canonicalize dovecot dir");
        make_traversable(&dir);
        let (run, state, mail) = (dir.join("run"), dir.join("state"), dir.join("mail"));
        for d in [&run, &state, &mail] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        let (mail_uid, mail_gid) = user_ids("mail").expect("no `mail` system user");
        let chown = |p: &Path| {
            let ok = Command::new("chown")
                .arg(format!("{mail_uid}:{mail_gid}"))
                .arg(p)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {}", p.display());
        };
        chown(&mail);
        let passwd: String = spec
            .users
            .iter()
            .map(|(login, password)| format!("{login}:{{PLAIN}}{password}::::::\n"))
            .collect();
        std::fs::write(dir.join("passwd"), passwd).expect("write passwd");
        let mailboxes: String = spec
            .special_use
            .iter()
            .map(|(name, usage)| {
                format!("  mailbox \"{name}\" {{\n    special_use = {usage}\n  }}\n")
            })
            .collect();
        let location = spec
            .mail_location
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("{}/%u", mail.display()));
        let (imap_port, imaps_port) = (free_port(), free_port());
        let config = format!(
            "# Throwaway test Dovecot (mssante-testkit). Loopback only.
instance_name = dovecot-mssante-test-{pid}
base_dir = {run}
state_dir = {state}
log_path = {dir}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 1
mail_uid = mail
mail_gid = mail
mail_location = maildir:{location}
namespace inbox {{
  inbox = yes
  separator = .
{mailboxes}}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
",
            pid = std::process::id(),
            run = run.display(),
            state = state.display(),
            dir = dir.display(),
            mail = mail.display(),
            cert = spec.tls.0.display(),
            key = spec.tls.1.display(),
        );
        let conf = dir.join("dovecot.conf");
        std::fs::write(&conf, config).expect("write dovecot.conf");
        // The master daemonizes and its children keep the standard streams: a file, not a
        // pipe this process would wait on for ever.
        let startup_log = dir.join("startup.log");
        let stream = || std::fs::File::create(&startup_log).expect("create startup.log");
        let status = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(stream())
            .stderr(stream())
            .status()
            .expect("run dovecot");
        assert!(
            status.success(),
            "dovecot did not start: {}{}",
            std::fs::read_to_string(&startup_log).unwrap_or_default(),
            std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
        );
        let pid_file = run.join("master.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                && std::net::TcpStream::connect(("127.0.0.1", imaps_port)).is_ok()
            {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not listen: {}",
                std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Dovecot {
            imap_port,
            imaps_port,
            dir,
            pid,
        }
    }

    /// Dovecot's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // The master stops its children on SIGTERM.
        terminate(self.pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn terminate(pid: u32) {
    let _ = Command::new("kill").arg(pid.to_string()).status();
}
