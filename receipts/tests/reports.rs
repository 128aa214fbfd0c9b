//! Reading real-world-shaped reports and building DSNs that other parsers accept.

use std::io::Write;
use std::process::{Command, Stdio};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mssante_receipts::{
    Action, DsnRecipient, DsnReport, build_dsn, is_report, parse_dsn, parse_mdn,
};

const POSTFIX_BOUNCE: &[u8] = include_bytes!("fixtures/postfix-bounce.eml");
const THUNDERBIRD_MDN: &[u8] = include_bytes!("fixtures/thunderbird-mdn.eml");
const MDN_ERROR_902: &[u8] = include_bytes!("fixtures/mdn-error-902.eml");

/// A stored original: CRLF, 8-bit UTF-8 body, an MSSanté subject.
const ORIGINAL: &[u8] = b"Return-Path: <dr.martin@mssante.example.fr>\r\n\
Message-ID: <20250114091200.ABC123@mssante.example.fr>\r\n\
Date: Tue, 14 Jan 2025 10:11:58 +0100\r\n\
From: Dr Martin <dr.martin@mssante.example.fr>\r\n\
To: inconnu@hopital-nord.example.fr\r\n\
Subject: XDM/1.0/DDM+Compte rendu DUPONT Jean 19650312\r\n\
X-MSS-NIL: LPS-EXEMPLE-4.2\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Compte rendu de consultation : \xc3\xa9chographie normale.\r\n\
\r\n\
Cordialement.\r\n";

fn lf(raw: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .into_bytes()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn sample_report(original: &[u8], return_full: bool) -> DsnReport<'_> {
    DsnReport {
        reporting_mta: "mx.mssante.example.fr",
        received_from_mta: Some("dns;lps.cabinet.example.fr"),
        envid: Some("MSS 2025+0001=x"),
        arrival_date: 1_736_845_918,
        sender: "dr.martin@mssante.example.fr",
        original,
        return_full,
        recipients: vec![
            DsnRecipient {
                original_recipient: Some("rfc822;Inconnu+Test@hopital-nord.example.fr".into()),
                final_recipient: "inconnu@hopital-nord.example.fr".into(),
                action: Action::Failed,
                status: "5.1.1".into(),
                remote_mta: Some("dns;mbox.hopital-nord.example.fr".into()),
                diagnostic: Some(
                    "550 5.1.1 <inconnu@hopital-nord.example.fr>: Recipient address rejected: \
                     User unknown in virtual mailbox table; please verify the address in the \
                     Annuaire Sante before sending again"
                        .into(),
                ),
                last_attempt: Some(1_736_845_923),
                will_retry_until: None,
            },
            DsnRecipient {
                original_recipient: None,
                final_recipient: "secretariat@chu-sud.example.fr".into(),
                action: Action::Delayed,
                status: "4.4.1".into(),
                remote_mta: Some("mx.chu-sud.example.fr".into()),
                diagnostic: Some("421 4.4.1 Connection timed out".into()),
                last_attempt: Some(1_736_845_920),
                will_retry_until: Some(1_737_277_918),
            },
            DsnRecipient {
                original_recipient: None,
                final_recipient: "cabinet@ville.example.fr".into(),
                action: Action::Relayed,
                status: "2.0.0".into(),
                remote_mta: Some("dns;mx.ville.example.fr".into()),
                diagnostic: None,
                last_attempt: None,
                will_retry_until: None,
            },
        ],
        now: 1_736_845_923,
        message_id: "dsn.20250114091203.1@mx.mssante.example.fr".into(),
    }
}

// ---- reading ----

#[test]
fn postfix_bounce_is_parsed() {
    let d = parse_dsn(POSTFIX_BOUNCE).expect("a DSN");
    assert_eq!(
        d.reporting_mta.as_deref(),
        Some("mx1.hopital-nord.example.fr")
    );
    assert_eq!(d.envid.as_deref(), Some("MSS-20250114+0001"));
    assert_eq!(
        d.original_message_id.as_deref(),
        Some("20250114091200.ABC123@mssante.example.fr")
    );
    assert_eq!(d.recipients.len(), 2);
    let a = &d.recipients[0];
    assert_eq!(a.final_recipient, "inconnu@hopital-nord.example.fr");
    assert_eq!(
        a.original_recipient.as_deref(),
        Some("rfc822;inconnu@hopital-nord.example.fr")
    );
    assert_eq!(a.action, "failed");
    assert_eq!(a.status, "5.1.1");
    assert_eq!(
        a.diagnostic.as_deref(),
        Some(
            "550 5.1.1 <inconnu@hopital-nord.example.fr>: Recipient    address rejected: User \
             unknown in virtual mailbox table"
        )
    );
    let b = &d.recipients[1];
    // Local part kept, domain lower-cased; ORCPT xtext-decoded.
    assert_eq!(b.final_recipient, "J.Dupont+cardio@hopital-nord.example.fr");
    assert_eq!(
        b.original_recipient.as_deref(),
        Some("rfc822;j.dupont+cardio@hopital-nord.example.fr")
    );
    assert_eq!(b.status, "5.2.2");
    assert_eq!(b.diagnostic.as_deref(), Some("552 5.2.2 Mailbox full"));
    assert!(is_report(POSTFIX_BOUNCE));
    assert!(parse_mdn(POSTFIX_BOUNCE).is_none());
}

#[test]
fn postfix_bounce_with_lf_line_ends_is_parsed() {
    let d = parse_dsn(&lf(POSTFIX_BOUNCE)).expect("a DSN");
    assert_eq!(d.recipients.len(), 2);
    assert_eq!(d.recipients[1].status, "5.2.2");
    assert_eq!(
        d.original_message_id.as_deref(),
        Some("20250114091200.ABC123@mssante.example.fr")
    );
}

#[test]
fn thunderbird_mdn_displayed() {
    let m = parse_mdn(THUNDERBIRD_MDN).expect("an MDN");
    assert_eq!(
        m.original_message_id.as_deref(),
        Some("20250114091200.ABC123@mssante.example.fr")
    );
    assert_eq!(m.final_recipient, "pr.durand@hopital-nord.example.fr");
    assert_eq!(m.original_recipient, None);
    assert_eq!(m.disposition, "manual-action/MDN-sent-manually; displayed");
    assert_eq!(m.disposition_type, "displayed");
    assert_eq!(m.error, None);
    assert!(m.error_codes.is_empty());
    assert_eq!(
        m.reporting_ua.as_deref(),
        Some("hopital-nord.example.fr; Mozilla Thunderbird")
    );
    assert!(is_report(THUNDERBIRD_MDN));
    assert!(parse_dsn(THUNDERBIRD_MDN).is_none());
}

#[test]
fn mdn_original_message_id_falls_back_to_returned_headers() {
    let raw = String::from_utf8(THUNDERBIRD_MDN.to_vec())
        .unwrap()
        .replace(
            "Original-Message-ID: <20250114091200.ABC123@mssante.example.fr>\r\n",
            "",
        );
    let m = parse_mdn(raw.as_bytes()).expect("an MDN");
    // Now taken from the text/rfc822-headers part.
    assert_eq!(
        m.original_message_id.as_deref(),
        Some("20250114091200.ABC123@mssante.example.fr")
    );
}

#[test]
fn mdn_processed_error_902() {
    let m = parse_mdn(MDN_ERROR_902).expect("an MDN");
    assert_eq!(
        m.disposition,
        "automatic-action/MDN-sent-automatically; processed/error"
    );
    assert_eq!(m.disposition_type, "processed");
    assert_eq!(
        m.error.as_deref(),
        Some("902 Format du document non reconnu (IHE_XDM.zip : METADATA.XML invalide)")
    );
    assert_eq!(m.error_codes, vec![902]);
    assert_eq!(m.final_recipient, "DPI@chu-sud.example.fr");
    assert_eq!(
        m.original_recipient.as_deref(),
        Some("rfc822;dpi@chu-sud.example.fr")
    );
    assert_eq!(
        m.reporting_ua.as_deref(),
        Some("dpi.chu-sud.example.fr; DPI-Connect 4.2")
    );
    // No Original-Message-ID field: from the returned message/rfc822.
    assert_eq!(
        m.original_message_id.as_deref(),
        Some("20250114091201.DEF456@mssante.example.fr")
    );
    assert!(is_report(MDN_ERROR_902));
}

#[test]
fn mdn_error_codes_in_order_without_duplicates() {
    let raw = String::from_utf8(MDN_ERROR_902.to_vec()).unwrap().replace(
        "Error: 902 Format du document non reconnu\r\n",
        "Error: 905 patient inconnu, 902 format\r\nError: 902 again, 1904 not a code\r\n",
    );
    let m = parse_mdn(raw.as_bytes()).expect("an MDN");
    assert_eq!(m.error_codes, vec![905, 902]);
    assert!(
        m.error
            .as_deref()
            .unwrap()
            .starts_with("905 patient inconnu, 902 format; 902 again")
    );
}

#[test]
fn non_reports_are_refused() {
    assert!(parse_dsn(ORIGINAL).is_none());
    assert!(parse_mdn(ORIGINAL).is_none());
    assert!(!is_report(ORIGINAL));
    // multipart/report of the right type but without the machine-readable part.
    let no_status =
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
    assert!(parse_dsn(no_status).is_none());
    // message/global-delivery-status (RFC 6533) is accepted.
    let global = b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: message/global-delivery-status\r\n\r\nReporting-MTA: dns; mx.b.fr\r\n\r\n\
Final-Recipient: utf-8; \\x{E9}lise@B.fr\r\nAction: Delivered (ok)\r\nStatus: 2.0.0\r\n\r\n--b--\r\n";
    let d = parse_dsn(global).expect("global DSN");
    assert_eq!(d.recipients[0].final_recipient, "élise@b.fr");
    assert_eq!(d.recipients[0].action, "delivered");
}

// ---- building ----

#[test]
fn built_dsn_round_trips_through_parse_dsn() {
    let r = sample_report(ORIGINAL, true);
    let dsn = build_dsn(&r);
    assert!(is_report(&dsn));
    let d = parse_dsn(&dsn).expect("our DSN parses");
    assert_eq!(d.reporting_mta.as_deref(), Some("mx.mssante.example.fr"));
    assert_eq!(d.envid.as_deref(), Some("MSS 2025+0001=x"));
    assert_eq!(
        d.original_message_id.as_deref(),
        Some("20250114091200.ABC123@mssante.example.fr")
    );
    assert_eq!(d.recipients.len(), 3);
    for (got, want) in d.recipients.iter().zip(&r.recipients) {
        assert_eq!(got.final_recipient, want.final_recipient);
        assert_eq!(got.original_recipient, want.original_recipient);
        assert_eq!(got.action, want.action.as_str());
        assert_eq!(got.status, want.status);
        assert_eq!(got.diagnostic, want.diagnostic);
    }
    // The same with RET=HDRS.
    let d = parse_dsn(&build_dsn(&sample_report(ORIGINAL, false))).unwrap();
    assert_eq!(
        d.original_message_id.as_deref(),
        Some("20250114091200.ABC123@mssante.example.fr")
    );
}

#[test]
fn built_dsn_has_the_required_headers_and_fields() {
    let dsn = build_dsn(&sample_report(ORIGINAL, true));
    let text = String::from_utf8_lossy(&dsn);
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    for h in [
        "From: Mail Delivery System <MAILER-DAEMON@mx.mssante.example.fr>",
        "To: <dr.martin@mssante.example.fr>",
        "Subject: Undelivered Mail Returned to Sender",
        "Date: Tue, 14 Jan 2025 09:12:03 +0000",
        "Message-ID: <dsn.20250114091203.1@mx.mssante.example.fr>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Content-Transfer-Encoding: 8bit",
    ] {
        assert!(head.contains(h), "missing {h:?} in\n{head}");
    }
    for f in [
        "Original-Envelope-Id: MSS+202025+2B0001+3Dx\r\n",
        "Reporting-MTA: dns;mx.mssante.example.fr\r\n",
        "Received-From-MTA: dns;lps.cabinet.example.fr\r\n",
        "Arrival-Date: Tue, 14 Jan 2025 09:11:58 +0000\r\n",
        "\r\n\r\nOriginal-Recipient: rfc822;Inconnu+2BTest@hopital-nord.example.fr\r\n\
         Final-Recipient: rfc822;inconnu@hopital-nord.example.fr\r\nAction: failed\r\n\
         Status: 5.1.1\r\nRemote-MTA: dns;mbox.hopital-nord.example.fr\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <inconnu@hopital-nord.example.fr>:",
        "Last-Attempt-Date: Tue, 14 Jan 2025 09:12:03 +0000\r\n",
        "Remote-MTA: dns;mx.chu-sud.example.fr\r\n",
        &format!(
            "Will-Retry-Until: {}\r\n",
            mssante_mail::date::rfc5322(1_737_277_918)
        ),
        "Action: relayed\r\nStatus: 2.0.0\r\n",
    ] {
        assert!(text.contains(f), "missing {f:?}");
    }
    // Every line outside the original ends in CRLF and is at most 78 (folding) characters.
    let orig_at = find(&dsn, ORIGINAL).expect("original included byte for byte");
    let outside = [&dsn[..orig_at], &dsn[orig_at + ORIGINAL.len()..]].concat();
    let s = String::from_utf8(outside).unwrap();
    assert!(s.is_ascii(), "everything but the original is 7-bit");
    for l in s.split("\r\n") {
        assert!(
            !l.contains('\n') && !l.contains('\r'),
            "bare CR/LF in {l:?}"
        );
        assert!(l.len() <= 78, "long line {l:?}");
    }
    assert!(dsn.ends_with(b"--\r\n"));
}

#[test]
fn built_dsn_structure_per_mail_parser() {
    for full in [true, false] {
        let dsn = build_dsn(&sample_report(ORIGINAL, full));
        let msg = MessageParser::default().parse(&dsn).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        let ids = msg.root_part().sub_parts().unwrap();
        assert_eq!(ids.len(), 3);
        let parts: Vec<_> = ids.iter().map(|&i| msg.part(i).unwrap()).collect();
        let types: Vec<_> = parts
            .iter()
            .map(|p| {
                let c = p.content_type().unwrap();
                format!("{}/{}", c.ctype(), c.subtype().unwrap())
            })
            .collect();
        let third = if full {
            "message/rfc822"
        } else {
            "text/rfc822-headers"
        };
        assert_eq!(types, ["text/plain", "message/delivery-status", third]);

        let human = parts[0].text_contents().unwrap();
        assert!(
            human.contains("Votre message n'a pas pu être remis"),
            "{human}"
        );
        assert!(human.contains("Your message could not be delivered"));
        assert!(human.contains("<inconnu@hopital-nord.example.fr> : échec définitif (5.1.1)"));
        assert!(human.find("Ceci est").unwrap() < human.find("This is").unwrap());

        let status = String::from_utf8_lossy(parts[1].contents());
        assert!(status.starts_with("Original-Envelope-Id: "), "{status}");
        assert_eq!(status.matches("Final-Recipient: ").count(), 3);

        if full {
            let PartType::Message(inner) = &parts[2].body else {
                panic!("message/rfc822 not parsed as a message");
            };
            assert_eq!(
                inner.message_id(),
                Some("20250114091200.ABC123@mssante.example.fr")
            );
            assert!(inner.body_text(0).unwrap().contains("échographie normale"));
            assert!(find(&dsn, ORIGINAL).is_some());
        } else {
            let hs = parts[2].contents();
            let header_end = find(ORIGINAL, b"\r\n\r\n").unwrap() + 4;
            assert_eq!(hs, &ORIGINAL[..header_end]);
            assert!(
                find(&dsn, b"chographie").is_none(),
                "the body must not be returned"
            );
        }
    }
}

#[test]
fn original_with_bare_lf_and_no_body_is_kept_as_is() {
    let odd = b"Subject: bare\nMessage-ID: <odd@x.fr>\nX-A: 1\r\n";
    for full in [true, false] {
        let dsn = build_dsn(&sample_report(odd, full));
        assert!(
            find(&dsn, odd).is_some(),
            "kept byte for byte (full={full})"
        );
        assert!(!String::from_utf8_lossy(&dsn).contains("Content-Transfer-Encoding: 8bit"));
        let d = parse_dsn(&dsn).unwrap();
        assert_eq!(d.recipients.len(), 3);
    }
}

const PYTHON_CHECK: &str = r#"
import sys, email
raw = sys.stdin.buffer.read()
full = sys.argv[1] == "full"
m = email.message_from_bytes(raw)
def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)
check(m.get_content_type() == "multipart/report", "top type " + m.get_content_type())
check(m.get_param("report-type") == "delivery-status", "report-type")
check(m["Auto-Submitted"] == "auto-replied", "Auto-Submitted")
check(m["To"] == "<dr.martin@mssante.example.fr>", "To")
check(not m.defects, "defects: %r" % m.defects)
parts = m.get_payload()
types = [p.get_content_type() for p in parts]
want = ["text/plain", "message/delivery-status", "message/rfc822" if full else "text/rfc822-headers"]
check(types == want, "parts %r" % types)
for p in m.walk():
    check(not p.defects, "part defects %r" % p.defects)
text = parts[0].get_payload(decode=True).decode(parts[0].get_content_charset())
check("Votre message n'a pas pu être remis" in text, "French text")
check("Your message could not be delivered" in text, "English text")
groups = parts[1].get_payload()
check(len(groups) == 4, "groups %d" % len(groups))
check(groups[0]["Reporting-MTA"] == "dns;mx.mssante.example.fr", "Reporting-MTA")
check(groups[0]["Original-Envelope-Id"] == "MSS+202025+2B0001+3Dx", "ENVID")
check(groups[0]["Arrival-Date"] == "Tue, 14 Jan 2025 09:11:58 +0000", "Arrival-Date")
g = groups[1]
check(g["Final-Recipient"] == "rfc822;inconnu@hopital-nord.example.fr", "Final-Recipient")
check(g["Original-Recipient"] == "rfc822;Inconnu+2BTest@hopital-nord.example.fr", "ORCPT")
check(g["Action"] == "failed" and g["Status"] == "5.1.1", "action/status")
diag = " ".join(g["Diagnostic-Code"].split())
check(diag.startswith("smtp; 550 5.1.1 <inconnu@hopital-nord.example.fr>: Recipient address rejected"), "diag " + diag)
check(diag.endswith("before sending again"), "diag end " + diag)
check(groups[2]["Action"] == "delayed" and groups[2]["Status"] == "4.4.1", "delayed")
check(groups[2]["Will-Retry-Until"] is not None, "Will-Retry-Until")
check(groups[3]["Action"] == "relayed", "relayed")
if full:
    inner = parts[2].get_payload(0)
    check(inner["Message-ID"] == "<20250114091200.ABC123@mssante.example.fr>", "inner Message-ID")
    check("échographie" in inner.get_payload(decode=True).decode("utf-8"), "inner body")
else:
    check("Message-ID: <20250114091200.ABC123@mssante.example.fr>" in parts[2].get_payload(), "headers part")
print("OK")
"#;

#[test]
fn built_dsn_is_read_by_python_email() {
    for full in [true, false] {
        let dsn = build_dsn(&sample_report(ORIGINAL, full));
        let mut child = Command::new("python3")
            .args(["-c", PYTHON_CHECK, if full { "full" } else { "hdrs" }])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is installed");
        child.stdin.take().unwrap().write_all(&dsn).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout == b"OK\n",
            "python email rejected the DSN (full={full}): {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&dsn)
        );
    }
}
