//! A real OpenLDAP `slapd` for one test: an mdb database loaded with `slapadd`, listening on a
#![allow(dead_code)]
//! loopback high port, stopped when the guard is dropped. A missing slapd fails the test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "dc=annuaire,dc=sante,dc=test";
pub const READER_DN: &str = "cn=reader,dc=annuaire,dc=sante,dc=test";
pub const READER_PASSWORD: &str = "reader-secret";
/// The database's root DN, for tests that change the directory.
pub const ADMIN_DN: &str = "cn=admin,dc=annuaire,dc=sante,dc=test";
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// Server-side limit for plain searches: below the 2,284 entries of sample.ldif, so only a
/// paged search (RFC 2696; `size.prtotal=unlimited`) can read the whole directory.
pub const SIZE_LIMIT: usize = 500;

pub struct Slapd {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_tool(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
        let path = format!("{dir}/{name}");
        if Path::new(&path).exists() {
            return path;
        }
    }
    panic!(
        "{name} not found: install Debian's `slapd` package (listed in scripts/apt-packages.txt)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts slapd with `ldif` loaded, plus a reader account for simple binds.
pub fn start(ldif: &Path) -> Slapd {
    start_with(ldif, None)
}

/// Like [`start`], the entries of `ldif` last modified at `modify_timestamp` (GeneralizedTime)
/// instead of now; the reader account is created now.
pub fn start_dated(ldif: &Path, modify_timestamp: &str) -> Slapd {
    start_with(ldif, Some(modify_timestamp))
}

fn start_with(ldif: &Path, modify_timestamp: Option<&str>) -> Slapd {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let conf = dir.path().join("slapd.conf");
    std::fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             pidfile {pid}\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             sizelimit size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} size.prtotal=unlimited\n\
             database mdb\n\
             maxsize 104857600\n\
             suffix \"{BASE}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {db}\n",
            pid = dir.path().join("slapd.pid").display(),
            db = db.display()
        ),
    )
    .unwrap();
    let reader = dir.path().join("reader.ldif");
    std::fs::write(
        &reader,
        format!(
            "dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
             cn: reader\nuserPassword: {READER_PASSWORD}\n"
        ),
    )
    .unwrap();
    let dated = dir.path().join("dated.ldif");
    let ldif = match modify_timestamp {
        None => ldif,
        Some(timestamp) => {
            // slapadd keeps operational attributes it is given (as when restoring slapcat output).
            let text = std::fs::read_to_string(ldif).unwrap();
            let records: Vec<String> = text
                .split("\n\n")
                .filter(|r| !r.trim().is_empty())
                .map(|r| format!("{}\nmodifyTimestamp: {timestamp}\n", r.trim_end()))
                .collect();
            std::fs::write(&dated, records.join("\n")).unwrap();
            dated.as_path()
        }
    };
    for file in [ldif, reader.as_path()] {
        let out = Command::new(find_tool("slapadd"))
            .arg("-q")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd of {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = free_port();
    let url = format!("ldap://127.0.0.1:{port}");
    // `-d 0` keeps slapd in the foreground (a child we can kill) without debug output.
    let child = Command::new(find_tool("slapd"))
        .arg("-f")
        .arg(&conf)
        .arg("-h")
        .arg(format!("{url}/"))
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start slapd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "slapd did not listen on {url} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Slapd {
        url,
        child,
        _dir: dir,
    }
}
