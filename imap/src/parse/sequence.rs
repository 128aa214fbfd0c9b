//! Sequence sets (RFC 9051 §9 `sequence-set`): `1:4,7,9:*`.

use super::cursor::{Cursor, PResult, bad};

/// One end of a range: a number or `*` (the largest in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqNum {
    Num(u32),
    Star,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<(SeqNum, SeqNum)>);

impl SequenceSet {
    pub fn parse(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
        let mut ranges = Vec::new();
        loop {
            let start = seq_num(c)?;
            let end = if c.eat(b':') { seq_num(c)? } else { start };
            ranges.push((start, end));
            if !c.eat(b',') {
                return Ok(SequenceSet(ranges));
            }
        }
    }

    /// Whether `n` is in the set, `*` standing for `largest` (RFC 9051 §6.4.8 for UIDs:
    /// `n:*` always includes the largest, and a range may be given in either order).
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let resolve = |s: SeqNum| match s {
            SeqNum::Num(v) => v,
            SeqNum::Star => largest,
        };
        self.0.iter().any(|&(a, b)| {
            let (lo, hi) = (resolve(a).min(resolve(b)), resolve(a).max(resolve(b)));
            (lo..=hi).contains(&n)
        })
    }

    /// The ranges resolved against `largest`, each as (low, high).
    pub fn ranges(&self, largest: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().map(move |&(a, b)| {
            let r = |s: SeqNum| match s {
                SeqNum::Num(v) => v,
                SeqNum::Star => largest,
            };
            (r(a).min(r(b)), r(a).max(r(b)))
        })
    }

    pub fn has_star(&self) -> bool {
        self.0
            .iter()
            .any(|&(a, b)| a == SeqNum::Star || b == SeqNum::Star)
    }
}

fn seq_num(c: &mut Cursor<'_>) -> PResult<SeqNum> {
    if c.eat(b'*') {
        return Ok(SeqNum::Star);
    }
    match c.number() {
        Ok(0) => bad("0 is not a valid sequence number"),
        Ok(n) => Ok(SeqNum::Num(n)),
        Err(_) => bad("invalid sequence set"),
    }
}

/// Formats sorted numbers compactly: `1:3,5,7:9` (UIDPLUS, ESEARCH, VANISHED).
pub fn compact(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::parse(&mut Cursor::new(s.as_bytes())).unwrap()
    }

    #[test]
    fn parses_and_resolves() {
        let s = set("1:3,7,9:*");
        assert!(s.contains(2, 20) && s.contains(7, 20) && s.contains(20, 20) && !s.contains(8, 20));
        assert!(set("5:2").contains(3, 10), "reversed ranges");
        assert!(set("*:4").contains(10, 10));
        assert!(set("*").contains(10, 10) && !set("*").contains(9, 10));
    }

    #[test]
    fn rejects_invalid_sets() {
        for bad in ["0", "1:0", "a", ":3", "1,,2", ""] {
            let mut c = Cursor::new(bad.as_bytes());
            let r = SequenceSet::parse(&mut c);
            assert!(r.is_err() || !c.at_end(), "{bad:?} accepted");
        }
    }

    #[test]
    fn compacts() {
        assert_eq!(compact(&[1, 2, 3, 5, 7, 8, 9]), "1:3,5,7:9");
        assert_eq!(compact(&[4]), "4");
        assert_eq!(compact(&[]), "");
    }
}
