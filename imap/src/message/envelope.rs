//! FETCH ENVELOPE (RFC 9051 §7.5.2).

use super::address::{self, Address};
use super::encode::write_nstring;
use super::mime;

/// Dovecot's placeholders for an address without a domain or local part, so that such an
/// address is not mistaken for a group marker (which has a NIL host, RFC 9051 §7.5.2).
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";
const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";

fn write_text(out: &mut Vec<u8>, v: Option<&[u8]>) {
    // Unstructured values go out unfolded and trimmed, encoded words kept (RFC 9051
    // §7.5.2 leaves them to the client; Dovecot sends them raw).
    let v = v.map(mime::unfold);
    write_nstring(out, v.as_deref());
}

fn write_addresses(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        if a.group_start {
            // RFC 9051 §7.5.2: group start is (NIL NIL "group name" NIL).
            out.extend_from_slice(b"NIL NIL ");
            write_nstring(out, a.mailbox.as_deref());
            out.extend_from_slice(b" NIL");
        } else if a.is_group_end() {
            out.extend_from_slice(b"NIL NIL NIL NIL");
        } else {
            // An empty display name (`"" <a@b>`) is no name.
            write_nstring(
                out,
                a.name.as_deref().map(mime::trim).filter(|n| !n.is_empty()),
            );
            out.push(b' ');
            write_nstring(out, a.adl.as_deref());
            out.push(b' ');
            let mailbox = a
                .mailbox
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or(MISSING_MAILBOX);
            write_nstring(out, Some(mailbox));
            out.push(b' ');
            let host = a
                .host
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or(MISSING_DOMAIN);
            write_nstring(out, Some(host));
        }
        out.push(b')');
    }
    out.push(b')');
}

/// Appends the ENVELOPE of the message whose header block is `hdr` (used for
/// message/rfc822 parts in BODYSTRUCTURE too).
pub fn write_envelope(out: &mut Vec<u8>, hdr: &[u8]) {
    let [
        date,
        subject,
        from,
        sender,
        reply_to,
        to,
        cc,
        bcc,
        in_reply_to,
        message_id,
    ] = mime::first_fields(
        hdr,
        [
            "date",
            "subject",
            "from",
            "sender",
            "reply-to",
            "to",
            "cc",
            "bcc",
            "in-reply-to",
            "message-id",
        ],
    );
    let parse = |v: Option<&[u8]>| v.map(address::parse).unwrap_or_default();
    let from = parse(from);
    let mut sender = parse(sender);
    let mut reply_to = parse(reply_to);
    // RFC 9051 §7.5.2: absent (or empty) Sender and Reply-To default to From.
    if sender.is_empty() {
        sender = from.clone();
    }
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    out.push(b'(');
    write_text(out, date);
    out.push(b' ');
    write_text(out, subject);
    for list in [
        &from,
        &sender,
        &reply_to,
        &parse(to),
        &parse(cc),
        &parse(bcc),
    ] {
        out.push(b' ');
        write_addresses(out, list);
    }
    out.push(b' ');
    write_text(out, in_reply_to);
    out.push(b' ');
    write_text(out, message_id);
    out.push(b')');
}

/// The parenthesised ENVELOPE of a raw message (RFC 9051 §7.5.2): date, subject, from,
/// sender, reply-to, to, cc, bcc, in-reply-to, message-id. Only the header is read.
pub fn envelope(raw: &[u8]) -> Vec<u8> {
    let hdr = &raw[..mime::body_start(raw, 0, raw.len())];
    let mut out = Vec::with_capacity(256);
    write_envelope(&mut out, hdr);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(raw: &str) -> String {
        String::from_utf8(envelope(raw.as_bytes())).unwrap()
    }

    #[test]
    fn full_envelope() {
        let m = "Message-ID: <m@id>\r\nIn-Reply-To: <r@id>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n\
                 Subject: hi there\r\nFrom: Ann Example <ann@ex.org>\r\nTo: bob@ex.org, \"Carl, Jr\" <carl@ex.org>\r\n\
                 Cc: Dee <dee@ex.org>\r\nBcc: eve@ex.org\r\nSender: Sec <sec@ex.org>\r\nReply-To: R <r@ex.org>\r\n\r\nbody\r\n";
        assert_eq!(
            env(m),
            "(\"Mon, 1 Jan 2024 10:00:00 +0100\" \"hi there\" ((\"Ann Example\" NIL \"ann\" \"ex.org\")) \
             ((\"Sec\" NIL \"sec\" \"ex.org\")) ((\"R\" NIL \"r\" \"ex.org\")) \
             ((NIL NIL \"bob\" \"ex.org\")(\"Carl, Jr\" NIL \"carl\" \"ex.org\")) ((\"Dee\" NIL \"dee\" \"ex.org\")) \
             ((NIL NIL \"eve\" \"ex.org\")) \"<r@id>\" \"<m@id>\")"
        );
    }

    #[test]
    fn defaults_and_missing() {
        assert_eq!(
            env("From: a@b\r\nSender: \r\n\r\nx"),
            "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)"
        );
        assert_eq!(env("\r\nbody"), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
        assert_eq!(env(""), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    }

    #[test]
    fn comments_groups_routes() {
        assert_eq!(
            env(
                "From: user@domain (Real Name)\r\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nCc: group:;, group2: (foo) ;\r\n\r\n"
            ),
            "(NIL NIL ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) \
             ((\"Real Name\" NIL \"user\" \"domain\")) ((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")\
             (NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")\
             (NIL NIL NIL NIL)) ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) \
             NIL NIL NIL)"
        );
        assert!(
            env("From: <@route,@r2:user@domain>\r\n\r\n")
                .starts_with("(NIL NIL ((NIL \"@route,@r2\" \"user\" \"domain\"))")
        );
        assert!(
            env("From: d\r\n\r\n").starts_with("(NIL NIL ((NIL NIL \"d\" \"MISSING_DOMAIN\"))")
        );
        assert!(
            env("From: <user (c)@ (c) dom.org>\r\n\r\n")
                .starts_with("(NIL NIL ((NIL NIL \"user\" \"dom.org\"))")
        );
    }

    #[test]
    fn raw_encoded_words_folding_and_literals() {
        let e = env(
            "Subject: =?utf-8?q?caf=C3=A9?=\r\n\tsuite\r\nFrom: =?utf-8?q?Ren=C3=A9?= <r@x>\r\n\r\n",
        );
        assert!(e.starts_with("(NIL \"=?utf-8?q?caf=C3=A9?=\tsuite\" ((\"=?utf-8?q?Ren=C3=A9?=\" NIL \"r\" \"x\"))"), "{e}");
        let e = envelope("Subject: caf\u{e9}\r\n\r\n".as_bytes());
        assert!(e.starts_with(b"(NIL {5}\r\ncaf\xc3\xa9 NIL"));
        let e = env("Subject: a \"quoted\\\" word\r\n\r\n");
        assert!(e.starts_with("(NIL \"a \\\"quoted\\\\\\\" word\""), "{e}");
    }

    #[test]
    fn empty_display_name_is_nil() {
        assert!(env("From: \"\" <a@b>\r\n\r\n").starts_with("(NIL NIL ((NIL NIL \"a\" \"b\"))"));
        assert!(
            env("From: <>\r\n\r\n")
                .starts_with("(NIL NIL ((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))")
        );
    }

    #[test]
    fn first_occurrence_wins() {
        assert!(env("Subject: one\r\nSubject: two\r\n\r\n").starts_with("(NIL \"one\""));
    }
}
