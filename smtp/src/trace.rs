//! The Received trace header (RFC 5321 §4.4) and RFC 5322 dates.

use std::net::IpAddr;

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
        rfc5322_date(t.now)
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

/// `Sun, 22 Nov 2026 04:37:05 +0000` (RFC 5322 §3.3), from Unix seconds, in UTC.
pub fn rfc5322_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_321_025),
            "Sun, 22 Nov 2026 04:17:05 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

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
