//! The submission path, shared by the SMTP session and the HTTP API (api-lps): where a
//! recipient goes (a local INBOX, the queue, or a refusal), whether an account may send as
//! an address, and the [`IncomingMessage`] a submitted message becomes. A message sent over
//! HTTP is therefore accepted exactly as one sent on port 587, with the same checks and the
//! same durability (`Store::deliver`). See docs/adr/0018-http-api.md.

use mail_parser::MimeHeaders;
use mssante_mail::dsn::{Notify, NotifyEvent};
use mssante_store::{
    Address, Bal, IncomingMessage, MessageMeta, RcptDisposition, RcptLookup, RecipientSpec, Ret,
    Source, TrackingKind, TrackingReport, accepts_mail,
};

use crate::reply::{self, Reply};
use crate::trace::{TraceInfo, received_header};
use crate::{SmtpContext, TrustPolicy};

/// Decides where a recipient goes, or why it is refused. `authenticated`: a submission
/// (only those may send outside our domains).
pub async fn route_recipient(
    ctx: &SmtpContext,
    address: &Address,
    authenticated: bool,
) -> Result<RcptDisposition, Reply> {
    let lookup = ctx.store.lookup_recipient(address).await.map_err(|e| {
        tracing::error!("recipient lookup failed: {e}");
        reply::local_error()
    })?;
    match lookup {
        RcptLookup::Local { bal, over_quota } => match accepts_mail(&bal) {
            Ok(()) if over_quota => {
                // RFC 3463 X.2.2: mailbox full. Permanent, as MSSanté peers expect a clear
                // answer rather than days of retries.
                Err(Reply::new(
                    552,
                    "5.2.2",
                    format!("<{address}>: mailbox full"),
                ))
            }
            Ok(()) => Ok(RcptDisposition::Local { bal_id: bal.id }),
            // RFC 3463 X.2.1: mailbox disabled, not accepting messages.
            Err(why) => Err(Reply::new(550, "5.2.1", format!("<{address}>: {why}"))),
        },
        RcptLookup::UnknownLocal => Err(Reply::new(
            550,
            "5.1.1",
            format!("<{address}>: no such mailbox"),
        )),
        // No open relay: only authenticated submission may send outside our domains.
        RcptLookup::NotLocal if authenticated => match relay_refusal(&ctx.trust, address) {
            Some(refusal) => Err(refusal),
            None => Ok(RcptDisposition::Remote),
        },
        RcptLookup::NotLocal => Err(Reply::new(
            550,
            "5.7.1",
            format!("<{address}>: relaying denied"),
        )),
    }
}

/// A submission for another operator's domain: only inside the trust space.
pub fn relay_refusal(trust: &TrustPolicy, address: &Address) -> Option<Reply> {
    if !trust.enforce {
        return None;
    }
    let domain = address.domain();
    let listed = trust.snapshot().is_some_and(|list| list.is_listed(domain));
    // RFC 3463 X.1.2: bad destination system address.
    (!listed).then(|| {
        Reply::new(
            550,
            "5.1.2",
            format!("<{address}>: domain {domain} is not in the MSSanté trust space (whitelist)"),
        )
    })
}

/// Submission: the envelope sender must be a BAL the account may send as.
pub async fn sender_refusal(
    ctx: &SmtpContext,
    auth: &Bal,
    from: Option<&Address>,
) -> Option<Reply> {
    let Some(from) = from else {
        return Some(Reply::new(
            550,
            "5.7.1",
            "Null sender not allowed on submission",
        ));
    };
    match ctx.store.may_send_as(auth.id, from).await {
        Ok(true) => None,
        Ok(false) => Some(Reply::new(
            550,
            "5.7.1",
            format!(
                "{} may not send as <{from}>: neither its BAL nor delegated to it with the \
                 send right (ADR 0016)",
                auth.address
            ),
        )),
        Err(e) => {
            tracing::error!("sender check failed: {e}");
            Some(reply::local_error())
        }
    }
}

/// The envelope of a message, as MAIL FROM and RCPT TO (or an HTTP request) gave it.
pub struct Envelope<'a> {
    pub from: Option<&'a Address>,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub source: Source,
    pub auth_bal_id: Option<i64>,
    pub recipients: Vec<RecipientSpec>,
}

/// What the store is given for a message whose bytes (trace header included) are `raw`:
/// the header facts read once (Message-ID, Subject, X-MSS-NIL, the DSN or MDN it carries)
/// and the legacy `Return-Receipt-To` honoured.
pub fn incoming_message(raw: Vec<u8>, envelope: Envelope<'_>) -> IncomingMessage {
    let mut recipients = envelope.recipients;
    let facts = header_facts(&raw);
    // A report (null sender) never earns a report, whatever it carries.
    if envelope.from.is_some() && facts.return_receipt_to {
        honour_return_receipt_to(&mut recipients);
    }
    IncomingMessage {
        meta: facts.meta,
        raw,
        mail_from: envelope.from.map(|a| a.to_string()).unwrap_or_default(),
        envid: envelope.envid,
        ret: envelope.ret,
        source: envelope.source,
        auth_bal_id: envelope.auth_bal_id,
        recipients,
    }
}

/// A message sent on behalf of a BAL names who sent it (RFC 5322 §3.6.2: `Sender:` when the
/// author in `From:` is not the one who sent): `Sender: <delegate>` is added at the end of
/// the header section when the message has none (ADR 0016).
pub fn with_sender(raw: Vec<u8>, delegate: &str) -> Vec<u8> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return raw;
    };
    let has_sender = raw[..end]
        .split(|&b| b == b'\n')
        .any(|line| line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"sender:"));
    if has_sender {
        return raw;
    }
    let field = format!("\r\nSender: <{delegate}>");
    let mut out = Vec::with_capacity(raw.len() + field.len());
    out.extend_from_slice(&raw[..end]);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&raw[end..]);
    out
}

/// The `Received:` header of a message submitted over HTTP (RFC 5321 §4.4): `client` names
/// the API client (a key id, never a secret).
pub fn http_received_header(
    hostname: &str,
    client: &str,
    id: &str,
    for_rcpt: Option<&str>,
) -> Vec<u8> {
    received_header(&TraceInfo {
        helo: client,
        peer: std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        hostname,
        protocol: "HTTPA".into(),
        id,
        for_rcpt,
        now: mssante_store::now(),
    })
}

pub use crate::trace::trace_id;

/// What the edge reads of a message's header section, parsed once per message.
pub(crate) struct HeaderFacts {
    pub(crate) meta: MessageMeta,
    /// The legacy `Return-Receipt-To` header is present.
    pub(crate) return_receipt_to: bool,
}

/// Header fields recorded with the message, and what it reports when it is a DSN or an MDN
/// about a message we sent (docs/mssante.md §6). Only a `multipart/report` is parsed past its
/// header section: decoding the attachments of every message costs more than the rest of
/// the delivery.
pub(crate) fn header_facts(raw: &[u8]) -> HeaderFacts {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return HeaderFacts {
            meta: MessageMeta::default(),
            return_receipt_to: false,
        };
    };
    let text = |name: &str| msg.header_raw(name).map(|v| v.trim().to_string());
    let is_report = msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    HeaderFacts {
        meta: MessageMeta {
            message_id: msg.message_id().map(str::to_string),
            subject: msg.subject().map(str::to_string),
            x_mss_nil: text("X-MSS-NIL"),
            tracking: match is_report {
                true => tracking_reports(raw),
                false => Vec::new(),
            },
        },
        return_receipt_to: msg.header_raw("Return-Receipt-To").is_some(),
    }
}

/// The per-recipient lines of a DSN (RFC 3464) or an MDN (RFC 8098); empty otherwise.
fn tracking_reports(raw: &[u8]) -> Vec<TrackingReport> {
    if let Some(mdn) = mssante_receipts::parse_mdn(raw) {
        let detail = match &mdn.error {
            Some(error) => format!("{}; error: {error}", mdn.disposition),
            None => mdn.disposition.clone(),
        };
        return vec![TrackingReport {
            kind: TrackingKind::Mdn,
            original_msgid: mdn.original_message_id,
            envid: None,
            recipient: mdn.final_recipient,
            state: mdn.disposition_type,
            detail: Some(detail),
            error_codes: mdn.error_codes,
        }];
    }
    let Some(dsn) = mssante_receipts::parse_dsn(raw) else {
        return Vec::new();
    };
    dsn.recipients
        .into_iter()
        .map(|r| TrackingReport {
            kind: TrackingKind::Dsn,
            original_msgid: dsn.original_message_id.clone(),
            envid: dsn.envid.clone(),
            recipient: r.final_recipient,
            state: r.action,
            detail: Some(match r.diagnostic {
                Some(d) => format!("{} {d}", r.status),
                None => r.status,
            }),
            error_codes: Vec::new(),
        })
        .collect()
}

/// docs/mssante.md §6 (our choice): the legacy `Return-Receipt-To` header asks for a success
/// report; recipients without an explicit NOTIFY get `SUCCESS,FAILURE`.
pub(crate) fn honour_return_receipt_to(rcpts: &mut [RecipientSpec]) {
    for rcpt in rcpts.iter_mut().filter(|r| r.notify.is_none()) {
        rcpt.notify = Some(Notify::of(&[NotifyEvent::Success, NotifyEvent::Failure]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_is_added_once_at_the_end_of_the_header() {
        let sec = "sec@x.fr";
        let raw = b"From: <dr@x.fr>\r\nSubject: a\r\n\r\nbody\r\n".to_vec();
        let sent = with_sender(raw, sec);
        assert_eq!(
            sent,
            b"From: <dr@x.fr>\r\nSubject: a\r\nSender: <sec@x.fr>\r\n\r\nbody\r\n"
        );
        assert_eq!(with_sender(sent.clone(), sec), sent);
    }
}
