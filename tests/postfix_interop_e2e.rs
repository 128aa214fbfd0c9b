//! Interoperability with a real MTA (issue #4): Postfix stands in for another MSSanté
//! operator ("P") of the test trust space. Mail and delivery reports cross both ways over
//! mutually authenticated TLS, with the DSN parameters (NOTIFY, RET, ENVID, ORCPT) that
//! each side passes on, and each side's refusals come back to the sender as the other
//! MTA's bounce.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::operators::{A, P, TrustSpace, submit, trust_client};
use common::{Engine, Server};
use mssante_testkit::postfix::{Postfix, PostfixSpec};

const LONG: Duration = Duration::from_secs(60);

/// Our server for A, Postfix for P, in one trust space. Fields drop in order: Postfix and
/// our server stop before the trust space (and its directories) goes away.
struct World {
    pf: Postfix,
    a: Server,
    space: TrustSpace,
}

impl World {
    fn new() -> World {
        let space = TrustSpace::new(&[&A, &P]);
        let a = space.start_operator(Engine::Sqlite, &A, "", &["dr.martin"]);
        let id = space.identity(P.domain);
        let pf = Postfix::start(
            &space.path().join("postfix"),
            &PostfixSpec {
                listen: SocketAddr::new(P.ip.into(), space.port),
                hostname: P.mta,
                local_domain: P.domain,
                users: &["alice"],
                server_tls: (&id.chain_pem, &id.key_pem),
                ca_file: &space.pki.root_pem,
                client_tls: (&id.chain_pem, &id.key_pem),
                relay_routes: &[(A.domain, SocketAddr::new(A.ip.into(), space.port))],
            },
        );
        World { pf, a, space }
    }

    fn logs(&self) -> String {
        format!(
            "--- server log ---\n{}\n--- postfix log ---\n{}",
            self.a.log(),
            self.pf.log()
        )
    }

    /// Polls `f` until it returns `Some`; on timeout panics with both logs.
    fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts with both logs in the message.
    fn check(&self, ok: bool, what: &str) {
        if !ok {
            panic!("{what}\n{}", self.logs());
        }
    }

    /// Waits for a message in the INBOX of `address` on A that contains every needle.
    fn inbox_message(&self, address: &str, needles: &[&str]) -> String {
        self.wait(&format!("a message with {needles:?} for {address}"), || {
            self.a
                .messages(address, "INBOX")
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned())
                .find(|m| needles.iter().all(|n| m.contains(n)))
        })
    }

    /// Waits for a message in Postfix user `user`'s Maildir that contains every needle.
    fn maildir_message(&self, user: &str, needles: &[&str]) -> String {
        self.wait(
            &format!("a message with {needles:?} for {user} on Postfix"),
            || {
                self.pf
                    .maildir_messages(user)
                    .into_iter()
                    .map(|m| String::from_utf8_lossy(&m).into_owned())
                    .find(|m| needles.iter().all(|n| m.contains(n)))
            },
        )
    }

    /// Waits until our queue and Postfix's are both empty.
    fn wait_for_empty_queues(&self) {
        self.wait("empty queues on A and on Postfix", || {
            (self.a.queued().is_empty() && self.pf.queue_is_empty()).then_some(())
        });
    }

    /// The `message status` state of `rcpt` for the message `msgid` sent from A.
    fn status_of(&self, msgid: &str, rcpt: &str) -> Option<String> {
        let status = self.a.cli_ok(&["message", "status", msgid]);
        let line = status.lines().find(|l| l.contains(rcpt))?;
        line.split_whitespace().nth(1).map(str::to_string)
    }

    /// alice's software hands a message to Postfix (its MX, which relays for loopback
    /// clients; Postfix requires STARTTLS and a client certificate of the test CA).
    fn send_via_postfix(
        &self,
        from: &str,
        to: &str,
        msg: &[u8],
        mail_opts: &[&str],
        rcpt_opts: &[&str],
    ) -> serde_json::Value {
        let id = self.space.identity(P.domain);
        let (host, port) = (P.ip.to_string(), self.space.port.to_string());
        let (ca, cert, key) = (
            self.space.pki.root_pem.display().to_string(),
            id.cert_pem.display().to_string(),
            id.key_pem.display().to_string(),
        );
        let mut args = vec![
            "mx",
            "--host",
            &host,
            "--port",
            &port,
            "--helo",
            "lps.postfix-op.test",
            "--starttls",
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--from",
            from,
            "--to",
            to,
        ];
        for o in mail_opts {
            args.extend(["--mail-opt", o]);
        }
        for o in rcpt_opts {
            args.extend(["--rcpt-opt", o]);
        }
        trust_client(&args, msg)
    }
}

fn report(from: &str, to: &str, msgid: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         X-MSS-NIL: LPS-TEST/1.0\r\nX-MSS-INS: O\r\n\
         X-MSS-ID-PATIENT: 1234567890123456789012^1.2.250.1.213.1.4.8^ISO\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu de biologie.\r\n"
    )
    .into_bytes()
}

/// Header and report fields unfolded so that they can be matched whole: CRLF (ours) or LF
/// (Postfix's Maildir) line ends, and a line break followed by whitespace (a continuation
/// line; Postfix indents its wrapped report lines with four spaces) read as one space.
fn unfold(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' && chars.peek().is_some_and(|n| *n == ' ' || *n == '\t') {
            while chars.peek().is_some_and(|n| *n == ' ' || *n == '\t') {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

fn all_accepted(out: &serde_json::Value) -> bool {
    out["mail"][0] == 250
        && out["rcpt"]
            .as_object()
            .is_some_and(|r| r.values().all(|v| v[0] == 250))
        && out["data"][0] == 250
}

/// The X-MSS-* header lines of a message, as written.
fn x_mss_lines(text: &str) -> Vec<&str> {
    let headers = text.split("\n\n").next().unwrap_or(text);
    let headers = headers.split("\r\n\r\n").next().unwrap_or(headers);
    headers
        .split('\n')
        .filter(|l| l.starts_with("X-MSS-"))
        .collect()
}

#[test]
fn postfix_to_us_with_a_delivered_report_back_to_postfix() {
    let w = World::new();
    let (alice, martin) = (P.user("alice"), A.user("dr.martin"));
    let msg = report(
        &alice,
        &martin,
        "pf-1@lps.postfix-op.test",
        "CR via Postfix",
    );
    let out = w.send_via_postfix(
        &alice,
        &martin,
        &msg,
        &["RET=HDRS", "ENVID=env-pf-1"],
        &["NOTIFY=SUCCESS"],
    );
    w.check(all_accepted(&out), &format!("Postfix refused: {out}"));

    // The message lands in dr.martin's INBOX, after our trace header and Postfix's, byte for
    // byte (X-MSS-* headers included).
    let got = w.inbox_message(&martin, &["Subject: CR via Postfix"]);
    let start = got.find("From: <").unwrap();
    w.check(
        got.as_bytes()[start..] == msg[..],
        &format!("the message changed on its way:\n{got}"),
    );
    let trace = &got[..start];
    w.check(
        trace.contains(&format!("by {}", A.mta))
            && trace.contains(&format!("by {} (Postfix)", P.mta)),
        &format!("both hops in the trace: {trace}"),
    );
    w.check(
        x_mss_lines(&got)
            == [
                "X-MSS-NIL: LPS-TEST/1.0\r",
                "X-MSS-INS: O\r",
                "X-MSS-ID-PATIENT: 1234567890123456789012^1.2.250.1.213.1.4.8^ISO\r",
            ],
        &format!("X-MSS headers: {:?}", x_mss_lines(&got)),
    );
    // Postfix relayed it to us over TLS, having verified our certificate (its log line may
    // come a moment after we stored the message).
    let relay_line = format!(
        "to=<{martin}>, relay={ip}[{ip}]:{}",
        w.space.port,
        ip = A.ip
    );
    w.wait("Postfix's log line for the relay to A", || {
        w.pf.log()
            .lines()
            .any(|l| l.contains(&relay_line) && l.contains("dsn=2.0.0, status=sent"))
            .then_some(())
    });
    w.check(
        w.pf.log().contains(&format!(
            "Trusted TLS connection established to {ip}[{ip}]:{}",
            w.space.port,
            ip = A.ip
        )),
        "Postfix verified our certificate",
    );

    // We delivered it with NOTIFY=SUCCESS: our `delivered` report goes to alice through
    // Postfix, into her Maildir, from the null sender.
    let raw = w.maildir_message("alice", &["Action: delivered"]);
    let dsn = unfold(&raw);
    for needle in [
        "Return-Path: <>".to_string(),
        "multipart/report; report-type=delivery-status".to_string(),
        format!("Reporting-MTA: dns;{}", A.mta),
        "Original-Envelope-Id: env-pf-1".to_string(),
        // Postfix passed ORCPT on; we return it.
        format!("Original-Recipient: rfc822;{martin}"),
        format!("Final-Recipient: rfc822;{martin}"),
        "Action: delivered".to_string(),
        "Status: 2.0.0".to_string(),
        // RET=HDRS: the headers come back, the body does not.
        "Content-Type: text/rfc822-headers".to_string(),
        "Message-ID: <pf-1@lps.postfix-op.test>".to_string(),
    ] {
        w.check(
            dsn.contains(&needle),
            &format!("{needle:?} not in the report:\n{raw}"),
        );
    }
    w.check(
        !dsn.contains("Compte rendu de biologie."),
        &format!("RET=HDRS, yet the body came back:\n{raw}"),
    );
    w.wait_for_empty_queues();
    // Postfix gave us the message with NOTIFY and passed the report duty on: it sends alice
    // no `relayed` notice of its own; ours is her only message.
    let all = w.pf.maildir_messages("alice");
    w.check(all.len() == 1, &format!("alice has {} messages", all.len()));
}

#[test]
fn us_to_postfix_with_postfix_delivered_report_back() {
    let w = World::new();
    let (alice, martin) = (P.user("alice"), A.user("dr.martin"));
    let msg = report(&martin, &alice, "a-2@lps.test", "CR vers Postfix");
    let out = submit(
        &w.a,
        &martin,
        &[&alice],
        &msg,
        &["RET=HDRS", "ENVID=env-a-2"],
        &["NOTIFY=SUCCESS"],
    );
    w.check(all_accepted(&out), &format!("submission refused: {out}"));

    // In alice's Maildir, after Postfix's trace headers: our message byte for byte (Postfix
    // writes LF line ends).
    let raw = w.maildir_message("alice", &["Subject: CR vers Postfix"]);
    let start = raw.find("From: <").unwrap();
    let expected = String::from_utf8(msg.clone())
        .unwrap()
        .replace("\r\n", "\n");
    w.check(
        raw[start..] == expected,
        &format!("the message changed on its way:\n{raw}"),
    );
    w.check(
        x_mss_lines(&raw)
            == [
                "X-MSS-NIL: LPS-TEST/1.0",
                "X-MSS-INS: O",
                "X-MSS-ID-PATIENT: 1234567890123456789012^1.2.250.1.213.1.4.8^ISO",
            ],
        &format!("X-MSS headers: {:?}", x_mss_lines(&raw)),
    );
    let trace = unfold(&raw[..start]);
    w.check(
        trace.contains(&format!("Return-Path: <{martin}>"))
            && trace.contains(&format!("by {} (Postfix) with ESMTPS", P.mta))
            && trace.contains(&format!("Client CN \"{}\"", A.mta))
            && trace.contains("(verified OK)"),
        &format!("Postfix's trace: our relay used TLS with A's certificate:\n{trace}"),
    );

    // Postfix speaks DSN: it owes the success report and sends it back to dr.martin.
    let dsn = w.inbox_message(
        &martin,
        &["report-type=delivery-status", "Action: delivered"],
    );
    let text = unfold(&dsn);
    for needle in [
        format!("Reporting-MTA: dns; {}", P.mta),
        "Original-Envelope-Id: env-a-2".to_string(),
        format!("Final-Recipient: rfc822; {alice}"),
        "Status: 2.0.0".to_string(),
        "Message-ID: <a-2@lps.test>".to_string(),
    ] {
        w.check(
            text.contains(&needle),
            &format!("{needle:?} not in Postfix's report:\n{dsn}"),
        );
    }
    // `message status`: relayed by us, upgraded to delivered by Postfix's report.
    let state = w.wait("alice delivered in `message status`", || {
        w.status_of("<a-2@lps.test>", &alice)
            .filter(|s| s == "delivered")
    });
    assert_eq!(state, "delivered");
    w.wait_for_empty_queues();
    // One report: Postfix's. We relayed to a DSN-capable peer and owe none ourselves.
    let reports =
        w.a.messages(&martin, "INBOX")
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains("delivery-status"))
            .count();
    w.check(reports == 1, &format!("{reports} reports for dr.martin"));
}

#[test]
fn unknown_user_on_postfix_gives_our_failed_report_quoting_postfix() {
    let w = World::new();
    let (nobody, martin) = (P.user("nobody"), A.user("dr.martin"));
    let msg = report(&martin, &nobody, "a-3@lps.test", "CR perdu");
    let out = submit(&w.a, &martin, &[&nobody], &msg, &["ENVID=env-a-3"], &[]);
    w.check(all_accepted(&out), &format!("submission refused: {out}"));

    let raw = w.inbox_message(&martin, &["Action: failed"]);
    let dsn = unfold(&raw);
    for needle in [
        format!("Reporting-MTA: dns;{}", A.mta),
        "Original-Envelope-Id: env-a-3".to_string(),
        format!("Final-Recipient: rfc822;{nobody}"),
        "Status: 5.1.1".to_string(),
        format!("Remote-MTA: dns;{}", P.mta),
        // Postfix's RCPT reply, quoted.
        format!(
            "Diagnostic-Code: smtp; 550 5.1.1 <{nobody}>: Recipient address rejected: \
             User unknown in virtual mailbox table"
        ),
        "Message-ID: <a-3@lps.test>".to_string(),
    ] {
        w.check(
            dsn.contains(&needle),
            &format!("{needle:?} not in our report:\n{raw}"),
        );
    }
    let state = w.status_of("<a-3@lps.test>", &nobody);
    w.check(
        state.as_deref() == Some("failed"),
        &format!("message status: {state:?}"),
    );
    w.wait("Postfix's log line for the refusal", || {
        w.pf.log()
            .lines()
            .any(|l| {
                l.contains("NOQUEUE: reject: RCPT from") && l.contains(&format!("to=<{nobody}>"))
            })
            .then_some(())
    });
    w.check(
        w.pf.maildir_messages("alice").is_empty() && w.pf.maildir_messages("postmaster").is_empty(),
        "nothing delivered on Postfix",
    );
    w.wait_for_empty_queues();
}

#[test]
fn unknown_bal_on_our_side_gives_a_postfix_bounce() {
    let w = World::new();
    let (alice, nobody) = (P.user("alice"), A.user("nobody"));
    let msg = report(&alice, &nobody, "pf-4@lps.postfix-op.test", "CR egare");
    let out = w.send_via_postfix(&alice, &nobody, &msg, &["ENVID=env-pf-4"], &[]);
    // Postfix relays for A's domain without knowing its users: it accepts, then bounces.
    w.check(all_accepted(&out), &format!("Postfix refused: {out}"));

    let raw = w.maildir_message("alice", &["Action: failed"]);
    let bounce = unfold(&raw);
    for needle in [
        "Return-Path: <>".to_string(),
        format!("From: Mail Delivery System <MAILER-DAEMON@{}>", P.domain),
        "multipart/report; report-type=delivery-status".to_string(),
        format!("Reporting-MTA: dns; {}", P.mta),
        "Original-Envelope-Id: env-pf-4".to_string(),
        format!("Final-Recipient: rfc822; {nobody}"),
        "Status: 5.1.1".to_string(),
        // Our RCPT reply, quoted by Postfix.
        format!("Diagnostic-Code: smtp; 550 5.1.1 <{nobody}>: no such mailbox"),
        format!("Remote-MTA: dns; {}", A.ip),
        format!(
            "host {ip}[{ip}] said: 550 5.1.1 <{nobody}>: no such mailbox (in reply to RCPT TO command)",
            ip = A.ip
        ),
        "Message-ID: <pf-4@lps.postfix-op.test>".to_string(),
    ] {
        w.check(
            bounce.contains(&needle),
            &format!("{needle:?} not in Postfix's bounce:\n{raw}"),
        );
    }
    w.check(w.a.message_count() == 0, "nothing stored on A");
    w.wait_for_empty_queues();
}

#[test]
fn a_peer_without_dsn_earns_a_relayed_report() {
    let w = World::new();
    // Postfix playing an operator whose MTA offers neither DSN nor PIPELINING: our client
    // sends one command at a time and keeps the DSN parameters to itself (RFC 3461 §4).
    w.pf.set("smtpd_discard_ehlo_keywords = dsn, pipelining");
    let (alice, martin) = (P.user("alice"), A.user("dr.martin"));
    let msg = report(&martin, &alice, "a-5@lps.test", "CR vers un MTA sans DSN");
    let out = submit(
        &w.a,
        &martin,
        &[&alice],
        &msg,
        &["ENVID=env-a-5"],
        &["NOTIFY=SUCCESS"],
    );
    w.check(all_accepted(&out), &format!("submission refused: {out}"));
    w.maildir_message("alice", &["Subject: CR vers un MTA sans DSN"]);
    // RFC 3461 §5.2.2: we could not pass the request on, so we report `relayed` ourselves.
    let dsn = unfold(&w.inbox_message(&martin, &["report-type=delivery-status"]));
    w.check(
        dsn.contains("Action: relayed"),
        &format!("not a relayed report:\n{dsn}"),
    );
    w.check(
        dsn.contains(&format!("Final-Recipient: rfc822;{alice}"))
            && dsn.contains("Original-Envelope-Id: env-a-5")
            && dsn.contains(&format!("Remote-MTA: dns;{}", P.mta)),
        &format!("report fields:\n{dsn}"),
    );
    w.check(
        w.status_of("a-5@lps.test", &alice).as_deref() == Some("relayed"),
        "message status shows relayed",
    );
    // Postfix did not see NOTIFY, so no second report arrives from it.
    std::thread::sleep(Duration::from_secs(2));
    let reports =
        w.a.messages(&martin, "INBOX")
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains("delivery-status"))
            .count();
    w.check(reports == 1, &format!("{reports} reports"));
    w.wait_for_empty_queues();
}
