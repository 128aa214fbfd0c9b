//! Two operators of a test trust space (issue #4): each relays to the other over mutually
//! authenticated TLS, refuses whoever is outside the trust space, and tells senders what
//! became of their messages (DSN, MDN tracking). Real binaries, a real dnsmasq for MX
//! records, Python's smtplib as the practitioners' software and as a foreign MTA.

mod common;

use std::time::Duration;

use common::operators::{A, B, TrustSpace, submit, trust_client, wait_for};
use common::{Engine, Server};
use mssante_testkit::engine_tests_sync;

const LONG: Duration = Duration::from_secs(60);

fn report(from: &str, to: &str, msgid: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         X-MSS-NIL: LPS-TEST/1.0\r\nX-MSS-INS: O\r\nDisposition-Notification-To: <{from}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu de biologie.\r\n"
    )
    .into_bytes()
}

/// An RFC 8098 MDN as a mail client writes it.
fn mdn(from: &str, to: &str, original_msgid: &str, disposition: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: Read: CR\r\nMessage-ID: <mdn-{original_msgid}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe message was displayed.\r\n\
         --b1\r\nContent-Type: message/disposition-notification\r\n\r\n\
         Reporting-UA: client.test; LPS\r\nFinal-Recipient: rfc822;{from}\r\n\
         Original-Message-ID: <{original_msgid}>\r\nDisposition: {disposition}\r\n\r\n\
         --b1--\r\n"
    )
    .into_bytes()
}

fn inbox(server: &Server, address: &str) -> Vec<String> {
    server
        .messages(address, "INBOX")
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

/// Waits for a message in `address`'s INBOX that contains every needle.
fn wait_for_message(server: &Server, address: &str, needles: &[&str], logs: &[&Server]) -> String {
    wait_for(
        &format!("a message with {needles:?} for {address}"),
        LONG,
        logs,
        || {
            inbox(server, address)
                .into_iter()
                .find(|m| needles.iter().all(|n| m.contains(n)))
        },
    )
}

fn assert_accepted(out: &serde_json::Value) {
    assert_eq!(out["data"][0], 250, "{out}");
}

engine_tests_sync!(
    a_to_b_and_back_with_delivery_reports_and_read_receipt,
    |engine: Engine| {
        let space = TrustSpace::new(&[&A, &B]);
        let a = space.start_operator(engine, &A, "", &["dr.martin"]);
        let b = space.start_operator(engine, &B, "", &["dr.durand"]);
        let (martin, durand) = (A.user("dr.martin"), B.user("dr.durand"));

        // A → B with a success report asked for.
        let msg = report(&martin, &durand, "cr-1@lps.test", "CR biologie");
        let out = submit(
            &a,
            &martin,
            &[&durand],
            &msg,
            &["RET=HDRS", "ENVID=env-cr-1"],
            &["NOTIFY=SUCCESS,FAILURE"],
        );
        assert_accepted(&out);
        let delivered = wait_for_message(&b, &durand, &["CR biologie"], &[&a, &b]);
        // docs/mssante.md §5: the message arrives byte for byte (after the trace headers).
        let body_start = delivered.find("From: <").unwrap();
        assert_eq!(&delivered.as_bytes()[body_start..], &msg[..]);
        assert!(delivered.contains(&format!("by {}", B.mta)), "{delivered}");

        // B delivered it and owes A's sender a `delivered` DSN, which travels back B → A.
        let dsn = wait_for_message(
            &a,
            &martin,
            &["report-type=delivery-status", "Action: delivered"],
            &[&a, &b],
        );
        assert!(
            dsn.contains(&format!("Final-Recipient: rfc822;{durand}")),
            "{dsn}"
        );
        assert!(dsn.contains("Original-Envelope-Id: env-cr-1"), "{dsn}");
        assert!(
            dsn.contains("Content-Description: Message Headers"),
            "RET=HDRS, delivered: {dsn}"
        );
        assert!(
            dsn.contains("Message-ID: <cr-1@lps.test>"),
            "the returned headers: {dsn}"
        );

        // The recipient's software sends a read receipt; A records it against the original.
        let out = submit(
            &b,
            &durand,
            &[&martin],
            &mdn(
                &durand,
                &martin,
                "cr-1@lps.test",
                "manual-action/MDN-sent-manually; displayed",
            ),
            &[],
            &[],
        );
        assert_accepted(&out);
        let mdn_in_inbox = wait_for_message(&a, &martin, &["disposition-notification"], &[&a, &b]);
        assert!(
            mdn_in_inbox.contains("Disposition: manual-action/MDN-sent-manually; displayed"),
            "the MDN passes untouched"
        );
        let status = a.cli_ok(&["message", "status", "cr-1@lps.test"]);
        let line = status
            .lines()
            .find(|l| l.contains(&durand))
            .unwrap_or_else(|| panic!("{status}"));
        assert!(
            line.contains("delivered") && line.contains("displayed"),
            "{status}"
        );

        // And back: B → A.
        let back = report(&durand, &martin, "reply-1@lps.test", "Re: CR biologie");
        assert_accepted(&submit(&b, &durand, &[&martin], &back, &[], &[]));
        wait_for_message(
            &a,
            &martin,
            &["Re: CR biologie", "Message-ID: <reply-1@lps.test>"],
            &[&a, &b],
        );
        wait_for("empty queues", LONG, &[&a, &b], || {
            (a.queued().is_empty() && b.queued().is_empty()).then_some(())
        });
    }
);

#[test]
fn unknown_bal_on_b_gives_a_failed_dsn_with_b_reply() {
    let space = TrustSpace::new(&[&A, &B]);
    let a = space.start_operator(Engine::Sqlite, &A, "", &["dr.martin"]);
    let b = space.start_operator(Engine::Sqlite, &B, "", &["dr.durand"]);
    let martin = A.user("dr.martin");
    let nobody = B.user("nobody");
    let out = submit(
        &a,
        &martin,
        &[&nobody],
        &report(&martin, &nobody, "lost-1@lps.test", "CR perdu"),
        &[],
        &[],
    );
    assert_accepted(&out);
    let dsn = wait_for_message(&a, &martin, &["Action: failed"], &[&a, &b]).replace("\r\n ", " ");
    assert!(
        dsn.contains(&format!("Final-Recipient: rfc822;{nobody}")),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains(&format!(
            "Diagnostic-Code: smtp; 550 5.1.1 <{nobody}>: no such mailbox"
        )),
        "B's reply is quoted: {dsn}"
    );
    assert!(dsn.contains(&format!("Remote-MTA: dns;{}", B.mta)), "{dsn}");
    let status = a.cli_ok(&["message", "status", "<lost-1@lps.test>"]);
    assert!(status.contains("failed"), "{status}");
    assert!(a.queued().is_empty());
}

#[test]
fn b_down_then_back_delayed_dsn_then_delivery() {
    let space = TrustSpace::new(&[&A, &B]);
    let a = space.start_operator(
        Engine::Sqlite,
        &A,
        "delay_notify_after_secs = 2",
        &["dr.martin"],
    );
    let mut b = space.prepare_operator(Engine::Sqlite, &B, "", &["dr.durand"]);
    let (martin, durand) = (A.user("dr.martin"), B.user("dr.durand"));
    let out = submit(
        &a,
        &martin,
        &[&durand],
        &report(&martin, &durand, "late-1@lps.test", "CR en attente"),
        &[],
        &["NOTIFY=DELAY,FAILURE"],
    );
    assert_accepted(&out);
    let delayed = wait_for_message(&a, &martin, &["Action: delayed"], &[&a]);
    assert!(delayed.contains("Will-Retry-Until:"), "{delayed}");
    assert_eq!(a.queued().len(), 1, "still queued while B is down");
    // The administrator sees it waiting, with the reason, and can make it due now.
    let list = a.cli_ok(&["queue", "list"]);
    assert!(
        list.contains(&durand) && list.contains("1 recipient(s) queued"),
        "{list}"
    );
    let id = a.queued()[0].id.to_string();
    let show = a.cli_ok(&["queue", "show", &id]);
    assert!(
        show.contains(&durand) && show.contains("Connection refused"),
        "{show}"
    );
    b.spawn();
    assert!(a.cli_ok(&["queue", "retry", "--all"]).contains("due now"));
    wait_for_message(&b, &durand, &["CR en attente"], &[&a, &b]);
    wait_for("A's queue to empty", LONG, &[&a, &b], || {
        a.queued().is_empty().then_some(())
    });
    let dsns = inbox(&a, &martin)
        .iter()
        .filter(|m| m.contains("delivery-status"))
        .count();
    assert_eq!(
        dsns, 1,
        "one delayed report, no other (NOTIFY without SUCCESS)"
    );
}

engine_tests_sync!(sigkill_with_a_full_queue_loses_nothing, |engine: Engine| {
    let space = TrustSpace::new(&[&A, &B]);
    let mut a = space.start_operator(engine, &A, "", &["dr.martin"]);
    let mut b = space.prepare_operator(engine, &B, "", &["dr.durand"]);
    let (martin, durand) = (A.user("dr.martin"), B.user("dr.durand"));
    for i in 0..5 {
        let msg = report(
            &martin,
            &durand,
            &format!("crash-{i}@lps.test"),
            &format!("CR numero {i}"),
        );
        assert_accepted(&submit(&a, &martin, &[&durand], &msg, &[], &[]));
    }
    wait_for("attempts against the stopped B", LONG, &[&a], || {
        a.queued().iter().all(|q| q.attempts >= 1).then_some(())
    });
    a.kill();
    b.spawn();
    a.spawn();
    wait_for("all five on B", LONG, &[&a, &b], || {
        let got = inbox(&b, &durand);
        (0..5)
            .all(|i| got.iter().any(|m| m.contains(&format!("CR numero {i}"))))
            .then_some(())
    });
    wait_for("A's queue to empty", LONG, &[&a, &b], || {
        a.queued().is_empty().then_some(())
    });
});

#[test]
fn the_trust_space_refuses_outsiders() {
    let space = TrustSpace::new(&[&A, &B]);
    let a = space.start_operator(Engine::Sqlite, &A, "", &["dr.martin"]);
    let martin = A.user("dr.martin");
    let from_b = B.user("dr.durand");
    let msg = report(&from_b, &martin, "in-1@lps.test", "Entrant");
    let port = space.port.to_string();
    let host = A.ip.to_string();
    let pki = &space.pki;
    let valid_b = space.identity(B.domain);
    let expired = pki.expired_operator("expired", &B.spec());
    let foreign = pki.foreign_operator("foreign", &B.spec());
    let ca = pki.root_pem.display().to_string();
    let mx = |cert: Option<&mssante_testkit::pki::Identity>, starttls: bool, from: &str| {
        let mut args = vec![
            "mx", "--host", &host, "--port", &port, "--from", from, "--to", &martin, "--ca", &ca,
        ];
        let (c, k);
        if starttls {
            args.push("--starttls");
        }
        if let Some(id) = cert {
            c = id.cert_pem.display().to_string();
            k = id.key_pem.display().to_string();
            args.extend(["--cert", &c, "--key", &k]);
        }
        trust_client(&args, &msg)
    };
    let refusal = |out: &serde_json::Value| {
        (
            out["mail"][0].as_i64().unwrap_or(0),
            out["mail"][1].as_str().unwrap_or("").to_string(),
        )
    };

    let (code, text) = refusal(&mx(None, false, &from_b));
    assert_eq!(code, 530, "no STARTTLS: {text}");
    let (code, text) = refusal(&mx(None, true, &from_b));
    assert!(
        code == 550 && text.contains("no client certificate"),
        "no certificate: {code} {text}"
    );
    let (code, text) = refusal(&mx(Some(&expired), true, &from_b));
    assert!(
        code == 550 && text.contains("expired"),
        "expired: {code} {text}"
    );
    let out = mx(Some(&foreign), true, &from_b);
    let (code, text) = refusal(&out);
    assert!(code == 550 && text.contains("trusted"), "foreign CA: {out}");
    // B's valid certificate, but a sender domain the whitelist lists with A's DN.
    let (code, text) = refusal(&mx(Some(valid_b), true, &A.user("x")));
    assert!(
        code == 550 && text.contains("not listed for sender domain"),
        "DN: {code} {text}"
    );
    // And B's valid certificate for B's own domain goes through: the checks are not blanket.
    let ok = mx(Some(valid_b), true, &from_b);
    assert_eq!(ok["data"][0], 250, "{ok}");
    wait_for_message(&a, &martin, &["Entrant"], &[&a]);

    // A refuses to queue mail for a domain outside the whitelist.
    let out = submit(&a, &martin, &["dr@pas-dans-la-liste.fr"], &msg, &[], &[]);
    let rcpt = &out["rcpt"]["dr@pas-dans-la-liste.fr"];
    assert_eq!(rcpt[0], 550, "{out}");
    assert!(rcpt[1].as_str().unwrap().starts_with("5.1.2"), "{out}");
    assert!(a.queued().is_empty());
}

#[test]
fn a_corrupt_whitelist_download_keeps_the_previous_list() {
    let space = TrustSpace::new(&[&A, &B]);
    let a = space.prepare_operator(Engine::Sqlite, &A, "", &[]);
    a.cli_ok(&["trust", "sync"]);
    let corrupt = space.path().join("corrupt.xml");
    let good = std::fs::read_to_string(&space.whitelist).unwrap();
    std::fs::write(&corrupt, &good[..good.len() / 2]).unwrap();
    let out = a.cli(&["trust", "sync", "--source", corrupt.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kept") || err.contains("previous"), "{err}");
    let check = a.cli_ok(&[
        "trust",
        "check",
        B.domain,
        "--dn",
        &space.identity(B.domain).dn,
    ]);
    assert!(check.contains(B.domain), "{check}");
}

#[test]
fn return_receipt_to_asks_for_a_delivered_report_and_nil_is_counted() {
    let space = TrustSpace::new(&[&A]);
    let mut a = space.prepare_operator(Engine::Sqlite, &A, "", &["dr.martin", "secretariat"]);
    a.cli_ok(&["domain", "add", "pas-listee.mssante.fr"]);
    a.spawn();
    let log = a.log();
    assert!(
        log.contains("local domain pas-listee.mssante.fr is not in the MSSanté whitelist")
            && !log.contains(&format!("local domain {} is not", A.domain)),
        "{log}"
    );
    let (martin, secretariat) = (A.user("dr.martin"), A.user("secretariat"));
    let mut msg = report(&martin, &secretariat, "rrt-1@lps.test", "Avec accuse");
    msg.splice(
        0..0,
        format!("Return-Receipt-To: <{martin}>\r\n").into_bytes(),
    );
    assert_accepted(&submit(&a, &martin, &[&secretariat], &msg, &[], &[]));
    let dsn = wait_for_message(&a, &martin, &["Action: delivered"], &[&a]);
    assert!(
        dsn.contains(&format!("Final-Recipient: rfc822;{secretariat}")),
        "{dsn}"
    );
    // A report is never reported on: exactly one message in the sender's INBOX.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inbox(&a, &martin).len(), 1);
    let stats = a.cli_ok(&["message", "nil-stats"]);
    assert!(
        stats.lines().any(|l| l.trim() == "1  LPS-TEST/1.0"),
        "{stats}"
    );
}

#[test]
fn administrators_delete_queued_mail() {
    let space = TrustSpace::new(&[&A, &B]);
    let a = space.start_operator(Engine::Sqlite, &A, "", &["dr.martin"]);
    let (martin, durand) = (A.user("dr.martin"), B.user("dr.durand"));
    let msg = report(&martin, &durand, "del-1@lps.test", "A supprimer");
    assert_accepted(&submit(&a, &martin, &[&durand], &msg, &[], &[]));
    let id = wait_for("a queued entry", LONG, &[&a], || {
        a.queued().first().map(|q| q.id)
    });
    let out = a.cli(&["queue", "delete", "999999"]);
    assert!(!out.status.success(), "an unknown id is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("999999"));
    a.cli_ok(&["queue", "delete", &id.to_string()]);
    assert!(a.queued().is_empty());
    let status = a.cli_ok(&["message", "status", "del-1@lps.test"]);
    assert!(
        status.contains("failed") && status.contains("administrator"),
        "{status}"
    );
}

#[test]
fn a_reused_connection_is_checked_against_each_domain() {
    // B's MX also serves another domain, which the whitelist lists with someone else's DN.
    let other = "autre-b.mssante.fr";
    let stranger = "CN=mx.ailleurs.fr,OU=99999999900099,O=AILLEURS,ST=Gironde (33),C=FR";
    let space = TrustSpace::with_extra_domains(&[&A, &B], &[(other, &B, stranger)]);
    let a = space.start_operator(Engine::Sqlite, &A, "", &["dr.martin"]);
    let mut b = space.prepare_operator(Engine::Sqlite, &B, "", &["dr.durand"]);
    b.cli_ok(&["domain", "add", other]);
    b.create_bal(&format!("sec@{other}"), "10000000099");
    b.spawn();
    let (martin, durand) = (A.user("dr.martin"), B.user("dr.durand"));
    let first = report(&martin, &durand, "pool-1@lps.test", "Premier");
    assert_accepted(&submit(&a, &martin, &[&durand], &first, &[], &[]));
    wait_for_message(&b, &durand, &["Premier"], &[&a, &b]);
    // Same MX, same (pooled) connection, but a domain B's certificate is not listed for.
    let sec = format!("sec@{other}");
    let second = report(&martin, &sec, "pool-2@lps.test", "Second");
    assert_accepted(&submit(&a, &martin, &[&sec], &second, &[], &[]));
    let err = wait_for("the refusal to be recorded", LONG, &[&a, &b], || {
        a.queued()
            .into_iter()
            .find(|q| q.attempts >= 1)
            .and_then(|q| q.last_error)
    });
    assert!(
        err.contains("does not list for autre-b.mssante.fr"),
        "{err}"
    );
    assert!(inbox(&b, &sec).is_empty(), "nothing left the trust space");
}
