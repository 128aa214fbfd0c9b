//! Reading the reports that arrive: DSNs (RFC 3464) and MDNs (RFC 8098), both carried in a
//! `multipart/report` (RFC 6522).

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use mssante_mail::xtext;

use crate::fields::{Field, bare_address, get, parse_groups, split_typed, strip_comments};

/// What a DSN says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedDsn {
    /// Original-Envelope-Id, xtext-decoded (RFC 3464 §2.2.1).
    pub envid: Option<String>,
    /// The name of Reporting-MTA, without its type ("mx.example.fr").
    pub reporting_mta: Option<String>,
    /// Message-ID of the returned message/rfc822 or text/rfc822-headers part, without <>.
    pub original_message_id: Option<String>,
    pub recipients: Vec<ParsedDsnRecipient>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedDsnRecipient {
    /// Bare address, domain lower-cased.
    pub final_recipient: String,
    /// "addr-type;address" with the address xtext-decoded, the form of
    /// [`crate::DsnRecipient::original_recipient`] (RFC 3464 §2.3.1, RFC 3461 §4.2).
    pub original_recipient: Option<String>,
    /// Lower-case, without comments ("failed", "delayed", ...).
    pub action: String,
    /// "5.1.1" (comments removed).
    pub status: String,
    /// Diagnostic-Code text without its type ("550 5.1.1 ..." from "smtp; 550 5.1.1 ...").
    pub diagnostic: Option<String>,
}

/// What an MDN says (RFC 8098 §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedMdn {
    /// Original-Message-ID without <>; if absent, the Message-ID of the returned original
    /// (message/rfc822 or text/rfc822-headers part).
    pub original_message_id: Option<String>,
    /// Bare address from "Final-Recipient: rfc822;x@y" (domain lower-cased); when that field is
    /// missing, the Original-Recipient address, else empty.
    pub final_recipient: String,
    /// "addr-type;address" as written (RFC 8098 §3.2.3).
    pub original_recipient: Option<String>,
    /// The whole Disposition value, e.g. "manual-action/MDN-sent-manually; displayed".
    pub disposition: String,
    /// "displayed" | "processed" | "deleted" | "dispatched"..., lower-case (RFC 8098 §3.2.6.2).
    pub disposition_type: String,
    /// The Error field(s) (RFC 8098 §3.2.7), several joined with "; ".
    pub error: Option<String>,
    /// MSSanté application codes 900..=906 found in Error, then in the Disposition modifiers,
    /// each once, in order of appearance.
    pub error_codes: Vec<u16>,
    pub reporting_ua: Option<String>,
}

/// mail-parser 0.11 panics on some malformed nested multiparts ("Invalid part ID, could not
/// find multipart", found by the fuzzer; the input is in `fuzz/corpus/receipts/`): such a message is
/// simply not a report we can read, and must not take the SMTP session down.
fn parse_message(raw: &[u8]) -> Option<Message<'_>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        MessageParser::default().parse(raw)
    }))
    .ok()
    .flatten()
}

/// Parses a DSN. None unless the message is `multipart/report; report-type=delivery-status`
/// (RFC 6522 §3) with a message/delivery-status (RFC 3464 §2.1) or
/// message/global-delivery-status (RFC 6533 §6) part.
pub fn parse_dsn(raw: &[u8]) -> Option<ParsedDsn> {
    if !is_report_of_type(raw, "delivery-status") {
        return None;
    }
    let msg = parse_message(raw)?;
    let parts = report_parts(&msg, "delivery-status")?;
    let status = parts.iter().find(|p| {
        is_type(p, "message", "delivery-status") || is_type(p, "message", "global-delivery-status")
    })?;
    let groups = parse_groups(status.contents());
    let all: Vec<&Field> = groups.iter().flatten().collect();
    let first = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());

    let envid = first("original-envelope-id")
        .map(|v| xtext::decode_lenient(strip_comments(v).trim()))
        .filter(|v| !v.is_empty());
    let reporting_mta = first("reporting-mta")
        .map(|v| split_typed(&strip_comments(v)).1.to_string())
        .filter(|v| !v.is_empty());

    // RFC 3464 §2.1: the groups after the first are per-recipient; a group is a recipient
    // when it names one (Final-Recipient is required, Original-Recipient accepted alone).
    let recipients = groups
        .iter()
        .filter(|g| get(g, "final-recipient").is_some() || get(g, "original-recipient").is_some())
        .map(|g| {
            let original_recipient = get(g, "original-recipient").map(decode_orcpt);
            let final_recipient = match get(g, "final-recipient") {
                Some(v) => typed_address(v),
                None => original_recipient
                    .as_deref()
                    .map(|o| bare_address(o.split_once(';').map_or(o, |(_, a)| a)))
                    .unwrap_or_default(),
            };
            ParsedDsnRecipient {
                final_recipient,
                original_recipient,
                action: get(g, "action")
                    .map(|v| strip_comments(v).to_ascii_lowercase())
                    .unwrap_or_default(),
                status: get(g, "status")
                    .map(|v| {
                        let s = strip_comments(v);
                        s.split_whitespace().next().unwrap_or("").to_string()
                    })
                    .unwrap_or_default(),
                diagnostic: get(g, "diagnostic-code")
                    .map(|v| split_typed(v).1.to_string())
                    .filter(|v| !v.is_empty()),
            }
        })
        .collect();

    Some(ParsedDsn {
        envid,
        reporting_mta,
        original_message_id: returned_message_id(&parts),
        recipients,
    })
}

/// Parses an MDN. None unless the message is `multipart/report;
/// report-type=disposition-notification` (RFC 8098 §3) with a message/disposition-notification
/// or message/global-disposition-notification (RFC 6533 §6) part.
pub fn parse_mdn(raw: &[u8]) -> Option<ParsedMdn> {
    if !is_report_of_type(raw, "disposition-notification") {
        return None;
    }
    let msg = parse_message(raw)?;
    let parts = report_parts(&msg, "disposition-notification")?;
    let notification = parts.iter().find(|p| {
        is_type(p, "message", "disposition-notification")
            || is_type(p, "message", "global-disposition-notification")
    })?;
    let groups = parse_groups(notification.contents());
    let fields: Vec<&Field> = groups.iter().flatten().collect();
    let first = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
    };

    let original_recipient = first("original-recipient").map(|v| {
        let (t, a) = split_typed(&v);
        format!("{};{a}", t.unwrap_or_else(|| "rfc822".into()))
    });
    let final_recipient = first("final-recipient")
        .map(|v| typed_address(&v))
        .or_else(|| {
            original_recipient
                .as_deref()
                .map(|o| bare_address(o.split_once(';').map_or(o, |(_, a)| a)))
        })
        .unwrap_or_default();

    // RFC 8098 §3.2.6: disposition-action-mode ";" disposition-type ["/" modifier *("," modifier)]
    let disposition = first("disposition").unwrap_or_default();
    let (disposition_type, modifiers) = {
        let d = strip_comments(&disposition);
        let after = d
            .split_once(';')
            .map_or(d.as_str(), |(_, t)| t)
            .trim()
            .to_string();
        match after.split_once('/') {
            Some((t, m)) => (t.trim().to_ascii_lowercase(), m.trim().to_string()),
            None => (after.to_ascii_lowercase(), String::new()),
        }
    };

    let errors: Vec<&str> = fields
        .iter()
        .filter(|(n, _)| n == "error")
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    let mut error_codes = Vec::new();
    for text in errors.iter().copied().chain([modifiers.as_str()]) {
        for code in mssante_codes(text) {
            if !error_codes.contains(&code) {
                error_codes.push(code);
            }
        }
    }

    let original_message_id = first("original-message-id")
        .map(|v| strip_angles(&strip_comments(&v)))
        .filter(|v| !v.is_empty())
        .or_else(|| returned_message_id(&parts));

    Some(ParsedMdn {
        original_message_id,
        final_recipient,
        original_recipient,
        disposition,
        disposition_type,
        error,
        error_codes,
        reporting_ua: first("reporting-ua").filter(|v| !v.is_empty()),
    })
}

/// Whether a message is an automatic report — any `multipart/report` (RFC 6522: DSN, MDN,
/// ...) or a message with `Auto-Submitted` other than "no" (RFC 3834 §5) — so that no DSN is
/// ever generated about it (RFC 3461 §6.2; RFC 3834 §2).
pub fn is_report(raw: &[u8]) -> bool {
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return false;
    };
    if msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") && sub_is(ct.subtype(), "report")
    }) {
        return true;
    }
    msg.headers().iter().any(|h| {
        h.name.as_str().eq_ignore_ascii_case("auto-submitted")
            && raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .is_some_and(|v| {
                    // auto-submitted-field = "Auto-Submitted:" [CFWS] auto-submitted *(...params)
                    let v = strip_comments(&String::from_utf8_lossy(v));
                    let kw = v.split(';').next().unwrap_or("").trim();
                    !kw.is_empty() && !kw.eq_ignore_ascii_case("no")
                })
    })
}

/// Whether the top-level Content-Type is `multipart/report; report-type=<report_type>`,
/// from the header section alone: every accepted message is asked, and decoding the
/// attachments of ordinary mail (base64 PDFs and ZIPs) just to say no cost more CPU than the
/// rest of the delivery (callgrind, BENCHMARKS.md).
fn is_report_of_type(raw: &[u8], report_type: &str) -> bool {
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return false;
    };
    msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && sub_is(ct.subtype(), "report")
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(report_type))
    })
}

/// The direct sub-parts of a `multipart/report` root whose report-type is `report_type`.
fn report_parts<'m>(msg: &'m Message<'m>, report_type: &str) -> Option<Vec<&'m MessagePart<'m>>> {
    let root = msg.root_part();
    let ct = root.content_type()?;
    if !ct.ctype().eq_ignore_ascii_case("multipart") || !sub_is(ct.subtype(), "report") {
        return None;
    }
    if !ct
        .attribute("report-type")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(report_type))
    {
        return None;
    }
    let ids = root.sub_parts()?;
    Some(ids.iter().filter_map(|&id| msg.part(id)).collect())
}

fn sub_is(sub: Option<&str>, want: &str) -> bool {
    sub.is_some_and(|s| s.eq_ignore_ascii_case(want))
}

fn is_type(part: &MessagePart, ctype: &str, subtype: &str) -> bool {
    part.content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case(ctype) && sub_is(ct.subtype(), subtype))
}

/// Message-ID of the returned original: a message/rfc822 or message/global part (RFC 6522 §3,
/// RFC 6533 §6), or a text/rfc822-headers or message/global-headers part.
fn returned_message_id(parts: &[&MessagePart]) -> Option<String> {
    for p in parts {
        let whole = is_type(p, "message", "rfc822") || is_type(p, "message", "global");
        let headers = is_type(p, "text", "rfc822-headers")
            || is_type(p, "message", "global-headers")
            || is_type(p, "message", "rfc822-headers");
        if !whole && !headers {
            continue;
        }
        let id = match &p.body {
            PartType::Message(m) => m.message_id().map(str::to_string),
            _ => MessageParser::default()
                .parse_headers(p.contents())
                .and_then(|m| m.message_id().map(str::to_string)),
        };
        if let Some(id) = id.map(|i| strip_angles(&i)).filter(|i| !i.is_empty()) {
            return Some(id);
        }
    }
    None
}

fn strip_angles(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix('<').unwrap_or(s);
    s.strip_suffix('>').unwrap_or(s).trim().to_string()
}

/// A Final-Recipient value ("rfc822; <a@B.fr>") as a bare address; "utf-8" addresses are
/// decoded from utf-8-addr-xtext (RFC 6533 §3).
fn typed_address(v: &str) -> String {
    let v = strip_comments(v);
    let (t, a) = split_typed(&v);
    if t.as_deref() == Some("utf-8") {
        bare_address(&xtext::utf8_addr_decode(a))
    } else {
        bare_address(a)
    }
}

/// An Original-Recipient value as "addr-type;address", the address decoded: xtext for
/// "rfc822" and other types (RFC 3461 §4.2), utf-8-addr-xtext for "utf-8" (RFC 6533 §3).
fn decode_orcpt(v: &str) -> String {
    let v = strip_comments(v);
    let (t, a) = split_typed(&v);
    let t = t.unwrap_or_else(|| "rfc822".into());
    let a = if t == "utf-8" {
        xtext::utf8_addr_decode(a)
    } else {
        xtext::decode_lenient(a)
    };
    format!("{t};{a}")
}

/// Three-digit numbers 900..=906 standing alone (not part of a longer number).
fn mssante_codes(text: &str) -> Vec<u16> {
    let b = text.as_bytes();
    let mut codes = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 3
                && let Ok(n) = text[start..i].parse::<u16>()
                && (900..=906).contains(&n)
            {
                codes.push(n);
            }
        } else {
            i += 1;
        }
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_alone_only() {
        assert_eq!(mssante_codes("902 format; voir aussi 906."), vec![902, 906]);
        assert_eq!(mssante_codes("code=903,904"), vec![903, 904]);
        assert!(mssante_codes("19025 9020 907 899 550").is_empty());
    }

    #[test]
    fn orcpt_decoding() {
        assert_eq!(decode_orcpt("rfc822;a+2Bb@c.fr"), "rfc822;a+b@c.fr");
        assert_eq!(decode_orcpt("RFC822; x@y.fr (comment)"), "rfc822;x@y.fr");
        assert_eq!(decode_orcpt("utf-8;\\x{E9}lise@c.fr"), "utf-8;élise@c.fr");
    }

    #[test]
    fn is_report_cases() {
        assert!(is_report(
            b"Auto-Submitted: auto-replied\r\nSubject: x\r\n\r\nbody"
        ));
        assert!(is_report(
            b"auto-submitted: auto-generated (vacation)\r\n\r\nbody"
        ));
        assert!(!is_report(b"Auto-Submitted: no\r\nSubject: x\r\n\r\nbody"));
        assert!(!is_report(b"Auto-Submitted: No (comment)\r\n\r\nbody"));
        assert!(is_report(
            b"Content-Type: multipart/report; report-type=disposition-notification;\r\n boundary=\"b\"\r\n\r\n--b--\r\n"
        ));
        assert!(!is_report(
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\nSubject: x\r\n\r\n--b--\r\n"
        ));
        assert!(!is_report(b"Subject: hello\r\n\r\nbody"));
        assert!(!is_report(b""));
    }
}
