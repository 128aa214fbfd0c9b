//! The Received trace header (RFC 5321 §4.4).

use std::net::IpAddr;

use mssante_mail::date::rfc5322;

/// RFC 3848 / RFC 6531 §4.3 `with` protocol names.
pub fn with_protocol(ehlo: bool, tls: bool, auth: bool, utf8: bool) -> String {
    let base = match (ehlo, utf8) {
        (false, _) => return "SMTP".into(),
        (true, true) => "UTF8SMTP",
        (true, false) => "ESMTP",
    };
    format!(
        "{base}{}{}",
        if tls { "S" } else { "" },
        if auth { "A" } else { "" }
    )
}

pub struct TraceInfo<'a> {
    pub helo: &'a str,
    pub peer: IpAddr,
    pub hostname: &'a str,
    pub protocol: String,
    pub id: &'a str,
    /// Set when the message has exactly one recipient (RFC 5321 §4.4 `for` clause).
    pub for_rcpt: Option<&'a str>,
    pub now: i64,
}

pub fn received_header(t: &TraceInfo<'_>) -> Vec<u8> {
    let for_clause = t
        .for_rcpt
        .map(|r| format!("\r\n\tfor <{r}>"))
        .unwrap_or_default();
    format!(
        "Received: from {} ([{}])\r\n\tby {} (mssante) with {} id {}{};\r\n\t{}\r\n",
        sanitize(t.helo),
        t.peer,
        t.hostname,
        t.protocol,
        t.id,
        for_clause,
        rfc5322(t.now)
    )
    .into_bytes()
}

/// The client's HELO name goes into a header: keep it printable and unfoldable.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .take(255)
        .collect()
}

/// A short unique id for the trace header and the 250 reply (like a Postfix queue id), for SMTP and the HTTP API.
pub fn trace_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{:x}{:04x}",
        nanos >> 10,
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!(with_protocol(true, true, true, false), "ESMTPSA");
        assert_eq!(with_protocol(true, false, false, false), "ESMTP");
        assert_eq!(with_protocol(true, true, false, true), "UTF8SMTPS");
        assert_eq!(with_protocol(false, true, true, false), "SMTP");
    }

    #[test]
    fn received_header_is_folded_and_sanitized() {
        let h = received_header(&TraceInfo {
            helo: "evil\r\nX-Injected: 1",
            peer: "127.0.0.1".parse().unwrap(),
            hostname: "mx.example.fr",
            protocol: "ESMTPS".into(),
            id: "abc",
            for_rcpt: Some("a@b.fr"),
            now: 0,
        });
        let s = String::from_utf8(h).unwrap();
        assert!(
            s.starts_with("Received: from evil??X-Injected:?1 ([127.0.0.1])\r\n\tby mx.example.fr")
        );
        assert!(s.contains("\r\n\tfor <a@b.fr>;\r\n\tThu, 01 Jan 1970 00:00:00 +0000\r\n"));
        assert!(s.ends_with("\r\n"));
    }
}
