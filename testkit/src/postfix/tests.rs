//! Postfix started for real: delivery, rejection, deferral, TLS client certificates.

use super::*;
use crate::pki::{OperatorSpec, TestPki};
use std::net::Ipv4Addr;

/// Sends one message with Python's smtplib: STARTTLS with a client certificate, then
/// MAIL/RCPT/DATA. Returns the RCPT replies and the DATA reply code (0 when no RCPT passed).
fn smtplib_send(
    to: SocketAddr,
    ca: &Path,
    cert: &Path,
    key: &Path,
    from: &str,
    rcpts: &[&str],
    body: &str,
) -> (Vec<(u16, String)>, u16) {
    let script = r#"
import smtplib, ssl, sys
host, port, ca, cert, key, sender = sys.argv[1:7]
rcpts = sys.argv[7:]
body = sys.stdin.read()
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
ctx.load_cert_chain(cert, key)
s = smtplib.SMTP(host, int(port), local_hostname="client.test", timeout=20)
s.starttls(context=ctx)
s.ehlo("client.test")
code, msg = s.mail(sender)
assert code == 250, (code, msg)
ok = 0
for r in rcpts:
    code, msg = s.rcpt(r)
    print("RCPT", code, msg.decode().replace("\n", " "))
    ok += code == 250
if ok:
    code, msg = s.data(body.encode())
    print("DATA", code)
else:
    print("DATA", 0)
s.quit()
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(to.ip().to_string())
        .arg(to.port().to_string())
        .arg(ca)
        .arg(cert)
        .arg(key)
        .arg(from)
        .args(rcpts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (install Debian's `python3` package)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "smtplib failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rcpt = vec![];
    let mut data = 0;
    for line in stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next()) {
            (Some("RCPT"), Some(code)) => rcpt.push((
                code.parse().unwrap(),
                parts.next().unwrap_or("").to_string(),
            )),
            (Some("DATA"), Some(code)) => data = code.parse().unwrap(),
            _ => {}
        }
    }
    (rcpt, data)
}

#[test]
fn delivers_rejects_unknown_users_and_defers_to_a_closed_route() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&tmp.path().join("pki"));
    let peer = pki.operator(
        "peer",
        &OperatorSpec {
            mta: "mx.peer.test",
            siret: "11111111100011",
            org: "Peer",
            departement: "Nord (59)",
        },
    );
    let client = pki.operator(
        "client",
        &OperatorSpec {
            mta: "mta.client.test",
            siret: "22222222200022",
            org: "Client",
            departement: "Gironde (33)",
        },
    );
    // A route to a port where nothing listens.
    let closed = free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let listen = free_port_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
    let pf = Postfix::start(
        &tmp.path().join("postfix"),
        &PostfixSpec {
            listen,
            hostname: "mx.peer.test",
            local_domain: "peer.test",
            users: &["alice", "bob"],
            server_tls: (&peer.chain_pem, &peer.key_pem),
            ca_file: &pki.root_pem,
            client_tls: (&peer.chain_pem, &peer.key_pem),
            relay_routes: &[("nowhere.test", closed)],
        },
    );
    assert!(pf.queue_is_empty());

    let body = "From: x@client.test\r\nTo: alice@peer.test\r\nSubject: hello\r\n\r\nHi Alice.\r\n";
    let (rcpt, data) = smtplib_send(
        listen,
        &pki.root_pem,
        &client.cert_pem,
        &client.key_pem,
        "x@client.test",
        &["alice@peer.test", "nobody@peer.test"],
        body,
    );
    assert_eq!(rcpt[0].0, 250, "{rcpt:?}");
    assert_eq!(rcpt[1].0, 550, "{rcpt:?}");
    assert!(rcpt[1].1.contains("5.1.1"), "{rcpt:?}");
    assert_eq!(data, 250);
    let messages = pf.wait_for_messages("alice", 1, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&messages[0]).to_string();
    assert!(text.contains("Subject: hello"), "{text}");
    assert!(text.contains("Hi Alice."), "{text}");
    // The TLS session and the verified client certificate are in the Received header.
    assert!(text.contains("(using TLS"), "{text}");
    assert!(
        text.contains("Client CN \"mta.client.test\"") && text.contains("(verified OK)"),
        "{text}"
    );
    let log = pf.log();
    assert!(
        log.contains("Trusted TLS connection established from"),
        "{log}"
    );
    assert!(pf.maildir_messages("bob").is_empty());

    // Relayed mail to a closed route stays deferred in the queue.
    let (rcpt, data) = smtplib_send(
        listen,
        &pki.root_pem,
        &client.cert_pem,
        &client.key_pem,
        "x@client.test",
        &["someone@nowhere.test"],
        "Subject: out\r\n\r\nrelay me\r\n",
    );
    assert_eq!((rcpt[0].0, data), (250, 250), "{rcpt:?}");
    pf.wait_for_log("status=deferred", Duration::from_secs(20));
    pf.flush();
    assert!(!pf.queue_is_empty());
    assert!(
        pf.queue_listing().contains("someone@nowhere.test"),
        "{}",
        pf.queue_listing()
    );
    let dir = pf.dir().to_path_buf();
    drop(pf);
    assert!(
        smtp_banner(listen).is_none(),
        "smtpd still answers after drop"
    );
    assert!(
        std::fs::read_to_string(dir.join("queue/pid/master.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_none_or(|p| !alive(p))
    );
}

#[test]
fn a_client_without_a_trusted_certificate_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&tmp.path().join("pki"));
    let spec = OperatorSpec {
        mta: "mx.peer.test",
        siret: "11111111100011",
        org: "Peer",
        departement: "Nord (59)",
    };
    let peer = pki.operator("peer", &spec);
    let foreign = pki.foreign_operator("foreign", &spec);
    let listen = free_port_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)));
    let pf = Postfix::start(
        &tmp.path().join("postfix"),
        &PostfixSpec {
            listen,
            hostname: "mx.peer.test",
            local_domain: "peer.test",
            users: &["alice"],
            server_tls: (&peer.chain_pem, &peer.key_pem),
            ca_file: &pki.root_pem,
            client_tls: (&peer.chain_pem, &peer.key_pem),
            relay_routes: &[],
        },
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
ctx.check_hostname = False
ctx.load_cert_chain(sys.argv[4], sys.argv[5])
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=20)
s.starttls(context=ctx)
try:
    s.ehlo("client.test")
    print("MAIL", s.mail("x@client.test")[0])
except Exception as e:
    print("REFUSED", type(e).__name__, e)
"#,
        )
        .arg(listen.ip().to_string())
        .arg(listen.port().to_string())
        .arg(&pki.root_pem)
        .arg(&foreign.cert_pem)
        .arg(&foreign.key_pem)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("MAIL 250"),
        "a foreign certificate was accepted: {stdout}{stderr}"
    );
    assert!(pf.maildir_messages("alice").is_empty());
}

#[test]
fn relays_over_tls_with_its_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&tmp.path().join("pki"));
    let a = pki.operator(
        "a",
        &OperatorSpec {
            mta: "mx.a.test",
            siret: "11111111100011",
            org: "A",
            departement: "Nord (59)",
        },
    );
    let b = pki.operator(
        "b",
        &OperatorSpec {
            mta: "mx.b.test",
            siret: "22222222200022",
            org: "B",
            departement: "Gironde (33)",
        },
    );
    let listen_a = free_port_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6)));
    let listen_b = free_port_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)));
    let pf_b = Postfix::start(
        &tmp.path().join("b"),
        &PostfixSpec {
            listen: listen_b,
            hostname: "mx.b.test",
            local_domain: "b.test",
            users: &["bob"],
            server_tls: (&b.chain_pem, &b.key_pem),
            ca_file: &pki.root_pem,
            client_tls: (&b.chain_pem, &b.key_pem),
            relay_routes: &[("a.test", listen_a)],
        },
    );
    let pf_a = Postfix::start(
        &tmp.path().join("a"),
        &PostfixSpec {
            listen: listen_a,
            hostname: "mx.a.test",
            local_domain: "a.test",
            users: &["alice"],
            server_tls: (&a.chain_pem, &a.key_pem),
            ca_file: &pki.root_pem,
            client_tls: (&a.chain_pem, &a.key_pem),
            relay_routes: &[("b.test", listen_b)],
        },
    );
    // alice@a.test -> A -> B: bob gets it; ghost is unknown at B, so A bounces to alice.
    let (rcpt, data) = smtplib_send(
        listen_a,
        &pki.root_pem,
        &a.cert_pem,
        &a.key_pem,
        "alice@a.test",
        &["bob@b.test", "ghost@b.test"],
        "Subject: relayed\r\n\r\nvia A\r\n",
    );
    // A accepts both (it relays for b.test without knowing B's users).
    assert_eq!(rcpt.iter().map(|r| r.0).collect::<Vec<_>>(), [250, 250]);
    assert_eq!(data, 250);
    let messages = pf_b.wait_for_messages("bob", 1, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&messages[0]).to_string();
    assert!(text.contains("via A"), "{text}");
    assert!(
        text.contains("Client CN \"mx.a.test\"") && text.contains("(verified OK)"),
        "{text}"
    );
    // A's client bound to A's address, and used TLS verified against the test root.
    let log_b = pf_b.log();
    assert!(log_b.contains("connect from unknown[127.0.0.6]"), "{log_b}");
    let log_a = pf_a.wait_for_log("status=sent", Duration::from_secs(20));
    assert!(
        log_a.contains("Trusted TLS connection established to 127.0.0.7"),
        "{log_a}"
    );
    // B refused ghost@b.test at RCPT: A bounces to alice (a DSN, in her Maildir).
    let bounces = pf_a.wait_for_messages("alice", 1, Duration::from_secs(20));
    let dsn = String::from_utf8_lossy(&bounces[0]).to_string();
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(dsn.contains("ghost@b.test"), "{dsn}");
    assert!(dsn.contains("5.1.1"), "{dsn}");
    let t0 = Instant::now();
    while !(pf_a.queue_is_empty() && pf_b.queue_is_empty()) {
        assert!(t0.elapsed() < Duration::from_secs(10), "queues not empty");
        std::thread::sleep(Duration::from_millis(100));
    }
}
