//! `RETURN (...)` options of SEARCH and SORT: ESEARCH (RFC 4731 §3.1), ESORT and CONTEXT
//! (RFC 5267 §3.2, §4.1), PARTIAL (RFC 5267 §4.4, negative ranges RFC 9394 §3.1).

use super::cursor::{Cursor, PResult, bad};

/// The result options a client asked for; `RETURN ()` means ALL (RFC 4731 §3.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    /// SEARCHRES `SAVE` (RFC 5182): accepted, the result is not kept.
    pub save: bool,
    /// RFC 5267 §4.2: keep the search and report ADDTO / REMOVEFROM as the mailbox changes.
    pub update: bool,
    /// RFC 5267 §4.1: a hint that the client will ask for updates; nothing to do.
    pub context: bool,
    pub partial: Option<PartialRange>,
}

/// A window on the result list, 1-based positions from the start (`1:100`) or, with
/// RFC 9394 §3.1, from the end (`-1:-100`, -1 being the last result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialRange {
    /// Both ends as given, normalised so that `first` is nearer the end it counts from.
    pub first: i64,
    pub last: i64,
}

impl PartialRange {
    /// The slice of `results` the range selects (empty when it lies beyond them).
    pub fn select<'a, T>(&self, results: &'a [T]) -> &'a [T] {
        let len = results.len() as i64;
        let (lo, hi) = if self.first > 0 {
            (self.first - 1, self.last.min(len))
        } else {
            // -1 is the last result: -a:-b covers len-b .. len-a.
            ((len + self.last).max(0), len + self.first + 1)
        };
        if lo >= hi {
            return &[];
        }
        &results[lo as usize..hi as usize]
    }
}

impl std::fmt::Display for PartialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.first, self.last)
    }
}

/// `nz-number ":" nz-number` or `"-" nz-number ":" "-" nz-number` (RFC 9394 §5); `*` is
/// not allowed (RFC 5267 §4.4).
pub(super) fn partial_range(c: &mut Cursor<'_>) -> PResult<PartialRange> {
    let negative = c.eat(b'-');
    let a = i64::from(c.nz_number()?);
    c.expect(b':')?;
    if negative != c.eat(b'-') {
        return bad("both ends of a PARTIAL range must have the same sign");
    }
    let b = i64::from(c.nz_number()?);
    let (lo, hi) = (a.min(b), a.max(b));
    Ok(match negative {
        false => PartialRange {
            first: lo,
            last: hi,
        },
        true => PartialRange {
            first: -lo,
            last: -hi,
        },
    })
}

/// After `RETURN `: the parenthesised options.
pub(super) fn parse_search_return(c: &mut Cursor<'_>) -> PResult<SearchReturn> {
    let mut r = SearchReturn::default();
    c.expect(b'(')?;
    let mut first = true;
    while !c.eat(b')') {
        if !first {
            c.sp()?;
        }
        first = false;
        match c.atom()?.to_ascii_uppercase().as_str() {
            "MIN" => r.min = true,
            "MAX" => r.max = true,
            "ALL" => r.all = true,
            "COUNT" => r.count = true,
            "SAVE" => r.save = true,
            "UPDATE" => r.update = true,
            "CONTEXT" => r.context = true,
            "PARTIAL" => {
                c.sp()?;
                if r.partial.replace(partial_range(c)?).is_some() {
                    return bad("PARTIAL given twice");
                }
            }
            other => return bad(format!("unknown RETURN option {other}")),
        }
    }
    // RFC 5267 §4.4: PARTIAL and ALL are mutually exclusive.
    if r.all && r.partial.is_some() {
        return bad("RETURN (ALL PARTIAL) is not allowed");
    }
    let asks_for_results = r.min || r.max || r.all || r.count || r.partial.is_some();
    // RFC 4731 §3.1: no result option (or only SAVE / UPDATE) is the same as ALL.
    if !asks_for_results && !r.save {
        r.all = true;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PResult<SearchReturn> {
        parse_search_return(&mut Cursor::new(s.as_bytes()))
    }

    #[test]
    fn options_and_defaults() {
        let r = parse("(MIN count)").unwrap();
        assert!(r.min && r.count && !r.all);
        assert!(parse("()").unwrap().all);
        assert!(parse("(UPDATE)").unwrap().all);
        assert!(!parse("(SAVE)").unwrap().all);
        assert!(parse("(FOO)").is_err());
        assert!(parse("(ALL PARTIAL 1:2)").is_err());
    }

    #[test]
    fn partial_ranges() {
        let p = |s: &str| parse(s).map(|r| r.partial.unwrap());
        assert_eq!(p("(PARTIAL 4:2)").unwrap().to_string(), "2:4");
        assert_eq!(p("(PARTIAL -1:-10)").unwrap().to_string(), "-1:-10");
        assert_eq!(p("(PARTIAL -10:-1)").unwrap().to_string(), "-1:-10");
        for broken in [
            "(PARTIAL 1)",
            "(PARTIAL 1:*)",
            "(PARTIAL *:1)",
            "(PARTIAL 0:3)",
            "(PARTIAL -1:3)",
        ] {
            assert!(parse(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn selecting_a_window() {
        let results = [10, 20, 30, 40, 50];
        let range = |first, last| PartialRange { first, last };
        assert_eq!(range(2, 4).select(&results), &[20, 30, 40]);
        assert_eq!(range(1, 6).select(&results), &results);
        assert!(range(6, 6).select(&results).is_empty());
        assert_eq!(range(-1, -2).select(&results), &[40, 50]);
        assert_eq!(range(-4, -9).select(&results), &[10, 20]);
        assert!(range(-6, -9).select(&results).is_empty());
    }
}
