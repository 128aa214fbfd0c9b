//! Building delivery status notifications: RFC 3464 inside a `multipart/report` (RFC 6522).

use mssante_mail::date::rfc5322;
use mssante_mail::xtext;

use crate::fields::{ascii_line, fold_field, is_type_token, one_line};

pub use mssante_mail::dsn::Action;

/// How bad an action is for the sender; the worst action names the report.
fn severity(action: Action) -> u8 {
    match action {
        Action::Failed => 4,
        Action::Delayed => 3,
        Action::Relayed => 2,
        Action::Expanded => 1,
        Action::Delivered => 0,
    }
}

/// One recipient of the report (RFC 3464 §2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsnRecipient {
    /// ORCPT as "addr-type;address", xtext-decoded; emitted re-encoded (RFC 3461 §4.2).
    pub original_recipient: Option<String>,
    /// Bare address, emitted "rfc822;<address>".
    pub final_recipient: String,
    pub action: Action,
    /// "5.1.1", "2.0.0", "4.4.1"...
    pub status: String,
    /// "dns;mx.b.fr" (a bare host name gets "dns;").
    pub remote_mta: Option<String>,
    /// The peer's reply text, emitted "smtp; 550 5.1.1 ...".
    pub diagnostic: Option<String>,
    /// Unix seconds.
    pub last_attempt: Option<i64>,
    /// Unix seconds; emitted for `Action::Delayed` only (RFC 3464 §2.3.9).
    pub will_retry_until: Option<i64>,
}

/// Everything a DSN says (RFC 3464 §2.2 per-message fields, §2.3 per-recipient fields).
#[derive(Clone, Debug)]
pub struct DsnReport<'a> {
    /// Our host name: "Reporting-MTA: dns;<host>".
    pub reporting_mta: &'a str,
    /// "dns;client.example" (a bare host name gets "dns;").
    pub received_from_mta: Option<&'a str>,
    /// ENVID, decoded; emitted xtext-encoded as Original-Envelope-Id.
    pub envid: Option<&'a str>,
    pub arrival_date: i64,
    /// The original envelope sender, the To: of the report. Callers must not report on a
    /// message with a null reverse path (RFC 5321 §4.5.5); an empty one gives
    /// `To: undisclosed-recipients:;`.
    pub sender: &'a str,
    /// The original message as stored, included byte for byte.
    pub original: &'a [u8],
    /// RET=FULL: message/rfc822 with the whole message; otherwise text/rfc822-headers.
    pub return_full: bool,
    pub recipients: Vec<DsnRecipient>,
    pub now: i64,
    /// Message-ID of the report, without <>.
    pub message_id: String,
}

/// Builds the report: RFC 5322 message, CRLF line ends, `multipart/report;
/// report-type=delivery-status` (RFC 6522 §3) with a human-readable text/plain part
/// (French then English, quoted-printable), the message/delivery-status part (RFC 3464 §2) and
/// the original message or its header section.
pub fn build_dsn(r: &DsnReport) -> Vec<u8> {
    let host = ascii_line(r.reporting_mta);
    let text = qp_encode(&human_text(r, &host));
    let status = delivery_status(r, &host);
    // RFC 6522 §3 / RFC 3464 §2.4: RET=HDRS (or none) returns the header section only.
    // "Undelivered" only when something was not delivered (as Postfix labels them).
    let undelivered = r
        .recipients
        .iter()
        .any(|x| matches!(x.action, Action::Failed | Action::Delayed));
    let (orig_type, orig_desc, orig) = match (r.return_full, undelivered) {
        (true, true) => ("message/rfc822", "Undelivered Message", r.original),
        (true, false) => ("message/rfc822", "Message", r.original),
        (false, true) => (
            "text/rfc822-headers",
            "Undelivered Message Headers",
            header_section(r.original),
        ),
        (false, false) => (
            "text/rfc822-headers",
            "Message Headers",
            header_section(r.original),
        ),
    };
    // RFC 2045 §6.2 / RFC 2046 §5.2.1: message/rfc822 and multipart allow 7bit, 8bit, binary only.
    let eight_bit = !orig.is_ascii();
    let seed = fnv1a(r.message_id.as_bytes()) ^ (r.now as u64).rotate_left(32);
    let boundary = choose_boundary(seed, &[text.as_bytes(), status.as_bytes(), orig]);

    let worst = r
        .recipients
        .iter()
        .map(|x| x.action)
        .max_by_key(|&a| severity(a))
        .unwrap_or(Action::Failed);
    let subject = match worst {
        Action::Failed => "Undelivered Mail Returned to Sender",
        Action::Delayed => "Delayed Mail (still being retried)",
        Action::Relayed => "Relayed Mail Delivery Report",
        Action::Delivered | Action::Expanded => "Successful Mail Delivery Report",
    };
    let sender = one_line(r.sender);
    let sender = sender.trim().trim_start_matches('<').trim_end_matches('>');
    let to = if sender.is_empty() {
        "undisclosed-recipients:;".to_string()
    } else {
        format!("<{sender}>")
    };
    let mid = ascii_line(&r.message_id);
    let mid = mid.trim().trim_start_matches('<').trim_end_matches('>');

    let mut out = Vec::with_capacity(orig.len() + text.len() + status.len() + 2048);
    let mut h = String::new();
    h += &fold_field(
        "From",
        &format!("Mail Delivery System <MAILER-DAEMON@{host}>"),
    );
    h += &fold_field("To", &to);
    h += &fold_field("Subject", subject);
    h += &fold_field("Date", &rfc5322(r.now));
    h += &fold_field("Message-ID", &format!("<{mid}>"));
    // RFC 3834 §5: a report is an automatic response; nothing must answer it.
    h += "Auto-Submitted: auto-replied\r\n";
    h += "MIME-Version: 1.0\r\n";
    // RFC 6522 §3: multipart/report with report-type; RFC 2046 §5.1.1 boundary.
    h += &format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n"
    );
    if eight_bit {
        h += "Content-Transfer-Encoding: 8bit\r\n";
    }
    h += "\r\n";
    // RFC 2046 §5.1.1 preamble, ignored by MIME readers.
    h += "This is a MIME-encapsulated message.\r\n";

    // Part 1: human-readable explanation (RFC 6522 §3, first part).
    h += &format!("\r\n--{boundary}\r\n");
    h += "Content-Description: Notification\r\n";
    h += "Content-Type: text/plain; charset=utf-8\r\n";
    h += "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    h += &text;
    // Part 2: message/delivery-status (RFC 3464 §2.1).
    h += &format!("\r\n--{boundary}\r\n");
    h += "Content-Description: Delivery report\r\n";
    h += "Content-Type: message/delivery-status\r\n\r\n";
    h += &status;
    // Part 3: the original (RFC 3464 §2.4 / RFC 6522 §3).
    h += &format!("\r\n--{boundary}\r\n");
    h += &format!("Content-Description: {orig_desc}\r\n");
    h += &format!("Content-Type: {orig_type}\r\n");
    if eight_bit {
        h += "Content-Transfer-Encoding: 8bit\r\n";
    }
    h += "\r\n";
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(orig);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// The header section of a message: everything up to and including the first empty line, or
/// the whole message when it has no body. The empty line may be CRLF or a bare LF.
pub fn header_section(msg: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < msg.len() {
        let end = msg[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(msg.len(), |p| start + p + 1);
        let line = &msg[start..end];
        if line == b"\r\n" || line == b"\n" {
            return &msg[..end];
        }
        start = end;
    }
    msg
}

/// The message/delivery-status body (RFC 3464 §2.1): per-message fields, then one group per
/// recipient, each group followed by a blank line. US-ASCII only (RFC 3464 §2.1.1).
fn delivery_status(r: &DsnReport, host: &str) -> String {
    let mut s = String::new();
    // RFC 3464 §2.2: the per-message fields, in the order of its ABNF.
    if let Some(envid) = r.envid {
        // RFC 3464 §2.2.1: the ENVID as xtext (RFC 3461 §4.4).
        s += &fold_field("Original-Envelope-Id", &xtext::encode(envid));
    }
    // RFC 3464 §2.2.2.
    s += &fold_field("Reporting-MTA", &format!("dns;{host}"));
    if let Some(from) = r.received_from_mta {
        // RFC 3464 §2.2.4.
        s += &fold_field("Received-From-MTA", &mta_name(from));
    }
    // RFC 3464 §2.2.5.
    s += &fold_field("Arrival-Date", &rfc5322(r.arrival_date));

    for rcpt in &r.recipients {
        s += "\r\n";
        if let Some(orcpt) = &rcpt.original_recipient {
            // RFC 3464 §2.3.1, value of the ORCPT parameter (RFC 3461 §4.2): addr-type ";" xtext.
            s += &fold_field("Original-Recipient", &original_recipient(orcpt));
        }
        // RFC 3464 §2.3.2.
        s += &fold_field("Final-Recipient", &typed_address(&rcpt.final_recipient));
        // RFC 3464 §2.3.3.
        s += &fold_field("Action", rcpt.action.as_str());
        // RFC 3464 §2.3.4.
        s += &fold_field("Status", &status_code(&rcpt.status, rcpt.action));
        if let Some(mta) = &rcpt.remote_mta {
            // RFC 3464 §2.3.5.
            s += &fold_field("Remote-MTA", &mta_name(mta));
        }
        if let Some(diag) = &rcpt.diagnostic {
            // RFC 3464 §2.3.6: diagnostic-type ";" *text; SMTP replies are of type "smtp".
            let diag = ascii_line(diag);
            let diag = diag.trim();
            if !diag.is_empty() {
                let typed = diag
                    .split_once(';')
                    .is_some_and(|(t, _)| is_type_token(t.trim()) && !t.contains(' '));
                let v = if typed {
                    diag.to_string()
                } else {
                    format!("smtp; {diag}")
                };
                s += &fold_field("Diagnostic-Code", &v);
            }
        }
        if let Some(t) = rcpt.last_attempt {
            // RFC 3464 §2.3.7.
            s += &fold_field("Last-Attempt-Date", &rfc5322(t));
        }
        if let (Action::Delayed, Some(t)) = (rcpt.action, rcpt.will_retry_until) {
            // RFC 3464 §2.3.9: only meaningful for "delayed".
            s += &fold_field("Will-Retry-Until", &rfc5322(t));
        }
    }
    s
}

/// "dns;host" — a value that already has a type (RFC 3464 §2.2.2 mta-name-type) is kept.
fn mta_name(v: &str) -> String {
    let v = ascii_line(v);
    let v = v.trim();
    match v.split_once(';') {
        Some((t, name)) if is_type_token(t.trim()) => {
            format!("{};{}", t.trim().to_ascii_lowercase(), name.trim())
        }
        _ => format!("dns;{v}"),
    }
}

/// Final-Recipient value: "rfc822;addr"; a non-ASCII (SMTPUTF8) address is written with the
/// "utf-8" address type of RFC 6533 §3 in utf-8-addr-xtext form, keeping the field US-ASCII.
fn typed_address(addr: &str) -> String {
    let a = one_line(addr);
    let a = a.trim().trim_start_matches('<').trim_end_matches('>');
    if a.is_ascii() {
        format!("rfc822;{a}")
    } else {
        format!("utf-8;{}", xtext::utf8_addr_encode(a))
    }
}

/// Original-Recipient from a decoded ORCPT "addr-type;address": the address re-encoded as
/// xtext (RFC 3461 §4.2); non-ASCII addresses as "utf-8" utf-8-addr-xtext (RFC 6533 §3).
fn original_recipient(orcpt: &str) -> String {
    let o = one_line(orcpt);
    let (t, addr) = match o.split_once(';') {
        Some((t, a)) if is_type_token(t.trim()) => (t.trim().to_ascii_lowercase(), a.trim()),
        _ => ("rfc822".to_string(), o.trim()),
    };
    if !addr.is_ascii() || t == "utf-8" {
        format!("utf-8;{}", xtext::utf8_addr_encode(addr))
    } else {
        format!("{t};{}", xtext::encode(addr))
    }
}

/// RFC 3464 §2.3.4 / RFC 3463 §2: status-code = DIGIT "." 1*3DIGIT "." 1*3DIGIT, class 2, 4
/// or 5. An invalid code is replaced by the generic code of the action's class.
fn status_code(s: &str, action: Action) -> String {
    let s = s.trim();
    let parts: Vec<&str> = s.split('.').collect();
    let valid = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        return s.to_string();
    }
    match action {
        Action::Failed => "5.0.0",
        Action::Delayed => "4.0.0",
        _ => "2.0.0",
    }
    .to_string()
}

/// The words of the human-readable part in one language.
struct Wording {
    intro: &'static str,
    failed: &'static str,
    delayed: &'static str,
    relayed: &'static str,
    delivered: &'static str,
    /// Per-recipient labels: failed, delayed, delayed with a date, delivered, relayed, expanded.
    labels: [&'static str; 6],
    /// Between the address and its label (French puts a space before the colon).
    colon: &'static str,
    remote: &'static str,
    reply: &'static str,
    original_full: &'static str,
    original_headers: &'static str,
}

const FRENCH: Wording = Wording {
    intro: "Ceci est le système de messagerie du serveur",
    failed: "Votre message n'a pas pu être remis à un ou plusieurs destinataires.\n\
             Il n'y aura pas de nouvelle tentative pour ces destinataires.\n",
    delayed: "La remise de votre message est retardée pour un ou plusieurs destinataires.\n\
              Aucune action n'est nécessaire : de nouvelles tentatives auront lieu.\n",
    relayed: "Votre message a été transmis à un serveur qui ne renvoie pas d'avis de remise :\n\
              aucun autre avis ne suivra pour ces destinataires.\n",
    delivered: "Votre message a été remis aux destinataires ci-dessous.\n",
    labels: [
        "échec définitif",
        "remise retardée",
        "remise retardée, nouvelles tentatives jusqu'au",
        "remis",
        "relayé sans avis de remise",
        "remis à une liste de diffusion",
    ],
    colon: " : ",
    remote: "Serveur distant : ",
    reply: "Réponse : ",
    original_full: "Le message d'origine est joint.\n",
    original_headers: "Les en-têtes du message d'origine sont joints.\n",
};

const ENGLISH: Wording = Wording {
    intro: "This is the mail system at host",
    failed: "Your message could not be delivered to one or more recipients.\n\
             It will not be retried for them.\n",
    delayed: "Delivery of your message to one or more recipients is delayed.\n\
              No action is required: delivery will be retried.\n",
    relayed: "Your message was relayed to a server that does not return delivery\n\
              notifications: no further notification will follow for these recipients.\n",
    delivered: "Your message was delivered to the recipients below.\n",
    labels: [
        "permanent failure",
        "delayed",
        "delayed, will retry until",
        "delivered",
        "relayed, no delivery notification",
        "delivered to a mailing list",
    ],
    colon: ": ",
    remote: "Remote server: ",
    reply: "Reply: ",
    original_full: "The original message is attached.\n",
    original_headers: "The header section of the original message is attached.\n",
};

/// The human-readable part, French then English, one paragraph per recipient.
fn human_text(r: &DsnReport, host: &str) -> String {
    let worst = r
        .recipients
        .iter()
        .map(|x| x.action)
        .max_by_key(|&a| severity(a))
        .unwrap_or(Action::Failed);
    let mut t = human_section(r, host, worst, &FRENCH);
    t += "\n----------------------------------------------------------------------\n\n";
    t += &human_section(r, host, worst, &ENGLISH);
    t
}

fn human_section(r: &DsnReport, host: &str, worst: Action, w: &Wording) -> String {
    let mut t = format!("{} {host}.\n\n", w.intro);
    t += match worst {
        Action::Failed => w.failed,
        Action::Delayed => w.delayed,
        Action::Relayed => w.relayed,
        Action::Delivered | Action::Expanded => w.delivered,
    };
    t += "\n";
    for x in &r.recipients {
        let what = match (x.action, x.will_retry_until) {
            (Action::Failed, _) => w.labels[0].to_string(),
            (Action::Delayed, None) => w.labels[1].to_string(),
            (Action::Delayed, Some(u)) => format!("{} {}", w.labels[2], rfc5322(u)),
            (Action::Delivered, _) => w.labels[3].to_string(),
            (Action::Relayed, _) => w.labels[4].to_string(),
            (Action::Expanded, _) => w.labels[5].to_string(),
        };
        t += &format!(
            "<{}>{}{} ({})\n",
            one_line(&x.final_recipient),
            w.colon,
            what,
            x.status.trim()
        );
        if let Some(m) = &x.remote_mta {
            t += &format!("    {}{}\n", w.remote, mta_host(m));
        }
        if let Some(d) = &x.diagnostic {
            t += &format!("    {}{}\n", w.reply, one_line(d));
        }
        t += "\n";
    }
    t += if r.return_full {
        w.original_full
    } else {
        w.original_headers
    };
    t
}

fn mta_host(m: &str) -> String {
    let m = one_line(m);
    match m.split_once(';') {
        Some((t, h)) if is_type_token(t.trim()) => h.trim().to_string(),
        _ => m.trim().to_string(),
    }
}

/// Quoted-printable (RFC 2045 §6.7): lines end in CRLF, encoded lines are at most 76
/// characters (soft breaks "=" CRLF), "=" and non-printable or non-ASCII octets as =HH,
/// whitespace at the end of a line encoded. The output never contains "=_", which is why the
/// boundaries start with it.
pub(crate) fn qp_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 11 / 10);
    let text = text.trim_end_matches(['\n', '\r']);
    for line in text.split('\n') {
        let b = line.strip_suffix('\r').unwrap_or(line).as_bytes();
        let mut len = 0;
        for (i, &c) in b.iter().enumerate() {
            let literal = ((33..=126).contains(&c) && c != b'=')
                || ((c == b' ' || c == b'\t') && i + 1 != b.len());
            let enc = if literal {
                (c as char).to_string()
            } else {
                format!("={c:02X}")
            };
            // RFC 2045 §6.7 rule 5: at most 76 characters including the soft break's "=".
            if len + enc.len() > 75 {
                out.push_str("=\r\n");
                len = 0;
            }
            len += enc.len();
            out.push_str(&enc);
        }
        out.push_str("\r\n");
    }
    out
}

/// A boundary (RFC 2046 §5.1.1) that occurs in none of the parts: candidates are derived from
/// `seed` and an attempt counter, checked against every body, regenerated on collision.
fn choose_boundary(seed: u64, bodies: &[&[u8]]) -> String {
    let mut attempt = 0u32;
    loop {
        let b = boundary_candidate(seed, attempt);
        if !bodies.iter().any(|body| contains(body, b.as_bytes())) {
            return b;
        }
        attempt += 1;
    }
}

fn boundary_candidate(seed: u64, attempt: u32) -> String {
    let h = fnv1a(&[seed.to_le_bytes().as_slice(), &attempt.to_le_bytes()].concat());
    format!("=_dsn_{h:016x}_{attempt}")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(addr: &str, action: Action, status: &str) -> DsnRecipient {
        DsnRecipient {
            original_recipient: None,
            final_recipient: addr.into(),
            action,
            status: status.into(),
            remote_mta: None,
            diagnostic: None,
            last_attempt: None,
            will_retry_until: None,
        }
    }

    fn report<'a>(original: &'a [u8], recipients: Vec<DsnRecipient>) -> DsnReport<'a> {
        DsnReport {
            reporting_mta: "mx.mssante.example.fr",
            received_from_mta: None,
            envid: None,
            arrival_date: 1_736_845_900,
            sender: "dr.martin@mssante.example.fr",
            original,
            return_full: true,
            recipients,
            now: 1_736_845_923,
            message_id: "dsn.1@mx.mssante.example.fr".into(),
        }
    }

    fn boundary_of(dsn: &[u8]) -> String {
        let s = String::from_utf8_lossy(dsn);
        let i = s.find("boundary=\"").unwrap() + 10;
        s[i..i + s[i..].find('"').unwrap()].to_string()
    }

    #[test]
    fn boundary_collision_is_regenerated() {
        let r0 = report(
            b"Subject: x\r\n\r\nbody\r\n",
            vec![rcpt("a@b.fr", Action::Failed, "5.1.1")],
        );
        let seed = fnv1a(r0.message_id.as_bytes()) ^ (r0.now as u64).rotate_left(32);
        let first = boundary_candidate(seed, 0);
        assert_eq!(boundary_of(&build_dsn(&r0)), first);

        // An original that contains the first (and second) candidate forces a third one.
        let second = boundary_candidate(seed, 1);
        let original = format!("Subject: x\r\n\r\n--{first}\r\n{second}\r\n");
        let r1 = report(original.as_bytes(), r0.recipients.clone());
        let dsn = build_dsn(&r1);
        let b = boundary_of(&dsn);
        assert_eq!(b, boundary_candidate(seed, 2));
        assert!(!contains(original.as_bytes(), b.as_bytes()));
        // The original is still there byte for byte.
        assert!(contains(&dsn, original.as_bytes()));
    }

    #[test]
    fn header_section_variants() {
        assert_eq!(
            header_section(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore"),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(header_section(b"A: 1\r\nB: 2\r\n"), b"A: 1\r\nB: 2\r\n");
        assert_eq!(header_section(b"A: 1\nB: 2\n\nbody\n"), b"A: 1\nB: 2\n\n");
        assert_eq!(header_section(b"\r\nbody"), b"\r\n");
        assert_eq!(header_section(b""), b"");
    }

    #[test]
    fn qp_lines_are_short_and_decodable() {
        let text = format!("Réponse : {}=fin \nligne 2\t\n", "é".repeat(60));
        let qp = qp_encode(&text);
        assert!(qp.is_ascii());
        assert!(!qp.contains("=_"));
        for l in qp.split("\r\n") {
            assert!(l.len() <= 76, "{l:?}");
            assert!(!l.ends_with(' ') && !l.ends_with('\t'));
        }
        // Decode it back.
        let mut bytes = Vec::new();
        let joined = qp.replace("=\r\n", "");
        let jb = joined.as_bytes();
        let mut i = 0;
        while i < jb.len() {
            if jb[i] == b'=' {
                bytes.push(
                    u8::from_str_radix(std::str::from_utf8(&jb[i + 1..i + 3]).unwrap(), 16)
                        .unwrap(),
                );
                i += 3;
            } else {
                bytes.push(jb[i]);
                i += 1;
            }
        }
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            text.trim_end_matches('\n').replace('\n', "\r\n") + "\r\n"
        );
    }

    #[test]
    fn status_codes_are_validated() {
        assert_eq!(status_code("5.1.1", Action::Failed), "5.1.1");
        assert_eq!(status_code(" 4.4.7 ", Action::Delayed), "4.4.7");
        assert_eq!(status_code("550", Action::Failed), "5.0.0");
        assert_eq!(status_code("9.1.1", Action::Delivered), "2.0.0");
        assert_eq!(status_code("5.1111.1", Action::Failed), "5.0.0");
    }

    #[test]
    fn typed_values() {
        assert_eq!(mta_name("mx.b.fr"), "dns;mx.b.fr");
        assert_eq!(mta_name("DNS; mx.b.fr"), "dns;mx.b.fr");
        assert_eq!(original_recipient("rfc822;a+b@c.fr"), "rfc822;a+2Bb@c.fr");
        assert_eq!(original_recipient("a b@c.fr"), "rfc822;a+20b@c.fr");
        assert_eq!(
            original_recipient("rfc822;élise@c.fr"),
            "utf-8;\\x{E9}lise@c.fr"
        );
        assert_eq!(typed_address("<a@b.fr>"), "rfc822;a@b.fr");
        assert_eq!(typed_address("zoé@b.fr"), "utf-8;zo\\x{E9}@b.fr");
    }

    #[test]
    fn subject_follows_worst_action() {
        let subj = |acts: &[Action]| {
            let rs = acts.iter().map(|&a| rcpt("a@b.fr", a, "2.0.0")).collect();
            let d = build_dsn(&report(b"A: b\r\n\r\n", rs));
            let s = String::from_utf8(d).unwrap();
            s.lines().find(|l| l.starts_with("Subject: ")).unwrap()[9..].to_string()
        };
        assert_eq!(
            subj(&[Action::Delivered, Action::Failed]),
            "Undelivered Mail Returned to Sender"
        );
        assert_eq!(
            subj(&[Action::Delayed, Action::Delivered]),
            "Delayed Mail (still being retried)"
        );
        assert_eq!(
            subj(&[Action::Delivered, Action::Relayed]),
            "Relayed Mail Delivery Report"
        );
        assert_eq!(
            subj(&[Action::Delivered, Action::Expanded]),
            "Successful Mail Delivery Report"
        );
    }

    #[test]
    fn will_retry_until_only_for_delayed() {
        let mut a = rcpt("a@b.fr", Action::Delayed, "4.4.1");
        a.will_retry_until = Some(1_737_000_000);
        let mut b = rcpt("c@d.fr", Action::Failed, "5.4.1");
        b.will_retry_until = Some(1_737_000_000);
        let s = String::from_utf8(build_dsn(&report(b"A: b\r\n\r\n", vec![a, b]))).unwrap();
        assert_eq!(s.matches("Will-Retry-Until: ").count(), 1);
    }
}
