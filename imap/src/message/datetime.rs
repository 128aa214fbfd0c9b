//! Dates: INTERNALDATE and APPEND `date-time` (RFC 9051 §9), SEARCH `date` (RFC 9051 §6.4.4),
//! and RFC 5322 §3.3 `Date:` header values.

use mssante_mail::date::{UtcDateTime, is_valid_date, month_from_abbreviation};
pub use mssante_mail::date::{civil_from_days, days_from_civil};

/// INTERNALDATE text (RFC 9051 §9 `date-time` without the quotes), in UTC:
/// `22-Nov-2026 04:37:05 +0000`.
pub fn format_internaldate(unix: i64) -> String {
    let t = UtcDateTime::from_unix(unix);
    let (day, month, year) = (t.day, t.month_abbreviation(), t.year);
    format!("{day:02}-{month}-{year:04} {} +0000", t.clock())
}

fn strip_quotes(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn number<T: std::str::FromStr>(s: &str, min_len: usize, max_len: usize) -> Option<T> {
    (s.len() >= min_len && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())?
}

/// Parses an APPEND `date-time` (RFC 9051 §9: `"dd-Mon-yyyy hh:mm:ss +zzzz"`, the day may be
/// space-padded) into Unix seconds. Quotes are optional.
pub fn parse_date_time(s: &str) -> Option<i64> {
    let s = strip_quotes(s);
    let s = s.strip_prefix(' ').unwrap_or(s);
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let (y, m, d) = parse_search_date(date)?;
    let mut t = time.split(':');
    let hh: i64 = number(t.next()?, 2, 2)?;
    let mm: i64 = number(t.next()?, 2, 2)?;
    let ss: i64 = number(t.next()?, 2, 2)?;
    if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let offset = parse_numeric_zone(zone)?;
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

/// `+hhmm` / `-hhmm` → seconds east of UTC.
fn parse_numeric_zone(z: &str) -> Option<i64> {
    let (sign, digits) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let n: i64 = number(digits, 4, 4)?;
    if n % 100 > 59 {
        return None;
    }
    Some(sign * (n / 100 * 3600 + n % 100 * 60))
}

/// Parses a SEARCH `date` (RFC 9051 §9: `1*2DIGIT "-" date-month "-" 4DIGIT`, e.g.
/// `1-Feb-1994`, optionally quoted) into (year, month, day).
pub fn parse_search_date(s: &str) -> Option<(i32, u32, u32)> {
    let s = strip_quotes(s);
    let mut it = s.split('-');
    let d: u32 = number(it.next()?, 1, 2)?;
    let m = month_from_abbreviation(it.next()?)?;
    let y: i32 = number(it.next()?, 4, 4)?;
    (it.next().is_none() && is_valid_date(y, m, d)).then_some((y, m, d))
}

/// A parsed RFC 5322 `Date:` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageDate {
    /// The wall-clock time written in the header, as seconds since the epoch as if it were UTC
    /// (`div_euclid(86_400)` is the day in the header's own timezone).
    pub local: i64,
    /// The zone offset in seconds east of UTC.
    pub offset: i64,
}

impl MessageDate {
    /// The instant in Unix seconds (UTC).
    pub fn utc(&self) -> i64 {
        self.local - self.offset
    }

    /// (year, month, day) in the header's own timezone.
    pub fn day(&self) -> (i32, u32, u32) {
        civil_from_days(self.local.div_euclid(86_400))
    }
}

/// Obsolete zone names (RFC 5322 §4.3); unknown names and military letters count as +0000.
fn named_zone(z: &str) -> i64 {
    let h = match z.to_ascii_uppercase().as_str() {
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => 0,
    };
    h * 3600
}

/// Parses an RFC 5322 §3.3 date-time (`[day-of-week ","] day month year hour ":" minute
/// [":" second] zone`), accepting the obsolete forms of §4.3 (2- and 3-digit years, named
/// zones, comments) and a missing zone.
pub fn parse_rfc5322_date(v: &[u8]) -> Option<MessageDate> {
    // Drop comments, then split on whitespace and commas.
    let mut text = String::with_capacity(v.len());
    let mut depth = 0usize;
    for &b in v {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            b',' => text.push(' '),
            _ if b.is_ascii() => text.push(b as char),
            _ => text.push('?'),
        }
    }
    let mut words: Vec<&str> = text.split_ascii_whitespace().collect();
    if words
        .first()
        .is_some_and(|w| w.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
    {
        words.remove(0); // day-of-week
    }
    let mut w = words.into_iter();
    let d: u32 = number(w.next()?, 1, 2)?;
    let m = month_from_abbreviation(w.next()?)?;
    let ys = w.next()?;
    let mut y: i32 = number(ys, 2, 4)?;
    if ys.len() == 2 {
        y += if y < 50 { 2000 } else { 1900 };
    } else if ys.len() == 3 {
        y += 1900;
    }
    if !is_valid_date(y, m, d) {
        return None;
    }
    let time = w.next()?;
    let mut t = time.split(':');
    let hh: i64 = number(t.next()?, 1, 2)?;
    let mm: i64 = number(t.next()?, 1, 2)?;
    let ss: i64 = match t.next() {
        Some(s) => number(s, 1, 2)?,
        None => 0,
    };
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let offset = match w.next() {
        Some(z) if z.starts_with(['+', '-']) => parse_numeric_zone(z).unwrap_or(0),
        Some(z) => named_zone(z),
        None => 0,
    };
    Some(MessageDate {
        local: days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internaldate_format() {
        assert_eq!(format_internaldate(0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(
            format_internaldate(1_795_322_225),
            "22-Nov-2026 04:37:05 +0000"
        );
        assert_eq!(format_internaldate(-1), "31-Dec-1969 23:59:59 +0000");
    }

    #[test]
    fn append_date_time() {
        assert_eq!(
            parse_date_time("22-Nov-2026 04:37:05 +0000"),
            Some(1_795_322_225)
        );
        assert_eq!(
            parse_date_time("\"22-Nov-2026 06:37:05 +0200\""),
            Some(1_795_322_225)
        );
        assert_eq!(parse_date_time(" 1-Jan-1970 00:00:00 -0100"), Some(3600));
        assert_eq!(parse_date_time("01-jan-1970 00:00:00 +0000"), Some(0));
        for bad in [
            "31-Feb-2020 00:00:00 +0000",
            "1-Jan-1970 24:00:00 +0000",
            "1-Jan-1970 00:00 +0000",
            "1-Jan-1970 00:00:00 0000",
            "1-Jan-1970 00:00:00 +0060",
            "1-Foo-1970 00:00:00 +0000",
            "",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn search_dates() {
        assert_eq!(parse_search_date("1-Feb-1994"), Some((1994, 2, 1)));
        assert_eq!(parse_search_date("\"24-mar-2007\""), Some((2007, 3, 24)));
        assert_eq!(parse_search_date("29-Feb-2023"), None);
        assert_eq!(parse_search_date("29-Feb-2024"), Some((2024, 2, 29)));
        assert_eq!(parse_search_date("1-Feb-94"), None);
        assert_eq!(parse_search_date("001-Feb-1994"), None);
    }

    #[test]
    fn header_dates() {
        let d = parse_rfc5322_date(b"Sun, 25 Mar 2007 00:00:00 +0200").unwrap();
        assert_eq!(d.day(), (2007, 3, 25));
        assert_eq!(d.utc(), 1_174_773_600);
        let d = parse_rfc5322_date(b"Sun, 25 Mar 2007 23:00:00 +0300").unwrap();
        assert_eq!(d.day(), (2007, 3, 25));
        let d = parse_rfc5322_date(b" 1 jan 99 10:20 EST (comment)").unwrap();
        assert_eq!(d.day(), (1999, 1, 1));
        assert_eq!(d.offset, -5 * 3600);
        let d = parse_rfc5322_date(b"Fri,\r\n 22 Feb 2008 02:00:00 GMT").unwrap();
        assert_eq!(d.utc(), d.local);
        assert_eq!(
            parse_rfc5322_date(b"5 May 49 00:00:00 +0000")
                .unwrap()
                .day(),
            (2049, 5, 5)
        );
        assert_eq!(
            parse_rfc5322_date(b"5 May 103 00:00:00 +0000")
                .unwrap()
                .day(),
            (2003, 5, 5)
        );
        assert_eq!(parse_rfc5322_date(b"garbage"), None);
        assert_eq!(parse_rfc5322_date(b"32 Jan 2020 00:00:00 +0000"), None);
    }
}
