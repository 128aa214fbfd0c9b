//! The proleptic Gregorian calendar (what every date format of mail counts in) and the
//! RFC 5322 §3.3 date-time, always written in UTC.
//!
//! One hand-written routine rather than a date crate: mail needs day numbers, a broken-down
//! UTC time and a few fixed formats, which fit in a few tested lines (ADR 0014).

/// Month abbreviations of RFC 5322 §3.3, IMAP `date-month` (RFC 9051 §9) and the like.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Day abbreviations of RFC 5322 §3.3, Sunday first.
pub const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Days since 1970-01-01 of a date (H. Hinnant's `days_from_civil`); the date is not checked.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number: (year, month 1..=12, day 1..=31), inverse of
/// [`days_from_civil`] for every year an `i32` holds.
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month (1..=12); 0 for a month that does not exist.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Whether the date exists (31 April and 29 February 2023 do not).
pub fn is_valid_date(year: i32, month: u32, day: u32) -> bool {
    day >= 1 && day <= days_in_month(year, month)
}

/// `Jan`..`Dec` (any case) → 1..=12.
pub fn month_from_abbreviation(s: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

/// A Unix time broken down in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcDateTime {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl UtcDateTime {
    pub fn from_unix(unix: i64) -> Self {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// `Jan`..`Dec`.
    pub fn month_abbreviation(&self) -> &'static str {
        MONTHS[self.month as usize - 1]
    }

    /// `hh:mm:ss`, the time of day of RFC 5322 §3.3 and IMAP `date-time`.
    pub fn clock(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` for a Unix time (RFC 5322 §3.3, zone "+0000").
pub fn rfc5322(unix: i64) -> String {
    let t = UtcDateTime::from_unix(unix);
    let weekday = WEEKDAYS[t.weekday as usize];
    let (day, month, year) = (t.day, t.month_abbreviation(), t.year);
    format!("{weekday}, {day:02} {month} {year:04} {} +0000", t.clock())
}

/// `YYYY-MM-DD` of a Unix time, in UTC (command-line output).
pub fn iso_date(unix: i64) -> String {
    let t = UtcDateTime::from_unix(unix);
    format!("{:04}-{:02}-{:02}", t.year, t.month, t.day)
}

/// The Unix time of `YYYY-MM-DD` at 00:00 UTC; `None` for anything else or a date that does
/// not exist.
pub fn parse_iso_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let mut number = |len: usize| {
        let part = parts.next()?;
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    let (y, m, d) = (number(4)? as i32, number(2)?, number(2)?);
    is_valid_date(y, m, d).then(|| days_from_civil(y, m, d) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for z in [-800_000, -719_468, -1, 0, 59, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert!(is_valid_date(y, m, d), "{z}");
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil_from_days(days_from_civil(0, 1, 1)), (0, 1, 1));
    }

    #[test]
    fn calendar_facts() {
        assert!(is_leap_year(2000) && is_leap_year(2024));
        assert!(!is_leap_year(1900) && !is_leap_year(2023));
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2024, 4), 30);
        assert_eq!(days_in_month(2024, 12), 31);
        assert_eq!(days_in_month(2024, 0), 0);
        assert_eq!(days_in_month(2024, 13), 0);
        assert!(is_valid_date(2024, 2, 29));
        assert!(!is_valid_date(2023, 2, 29));
        assert!(!is_valid_date(2024, 4, 31));
        assert!(!is_valid_date(2024, 1, 0));
        assert!(!is_valid_date(2024, 13, 1));
    }

    #[test]
    fn month_names() {
        assert_eq!(month_from_abbreviation("Jan"), Some(1));
        assert_eq!(month_from_abbreviation("dEC"), Some(12));
        assert_eq!(month_from_abbreviation("Janv"), None);
        assert_eq!(month_from_abbreviation(""), None);
        for (i, m) in MONTHS.iter().enumerate() {
            assert_eq!(month_from_abbreviation(m), Some(i as u32 + 1));
        }
    }

    #[test]
    fn broken_down_time() {
        let t = UtcDateTime::from_unix(1_795_322_225);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2026, 11, 22, 4, 37, 5)
        );
        assert_eq!((t.weekday, t.month_abbreviation()), (0, "Nov"));
        assert_eq!(t.clock(), "04:37:05");
        assert_eq!(UtcDateTime::from_unix(0).clock(), "00:00:00");
        let t = UtcDateTime::from_unix(-1);
        assert_eq!(
            (
                t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday
            ),
            (1969, 12, 31, 23, 59, 59, 3)
        );
    }

    #[test]
    fn iso_dates_round_trip() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(parse_iso_date("1970-01-01"), Some(0));
        assert_eq!(parse_iso_date(" 2026-12-31 "), Some(1_798_675_200));
        assert_eq!(iso_date(1_798_675_200 + 86_399), "2026-12-31");
        assert_eq!(
            parse_iso_date("2024-02-29").map(iso_date).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-00-01",
            "2026-01-00",
            "2026-1-01",
            "26-01-01",
            "2026-01-01x",
            "2026-01",
            "",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc5322_dates() {
        assert_eq!(rfc5322(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322(1_736_845_923), "Tue, 14 Jan 2025 09:12:03 +0000");
        assert_eq!(rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 +0000");
        assert_eq!(rfc5322(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
    }
}
