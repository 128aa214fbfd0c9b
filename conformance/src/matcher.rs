//! Matching server responses against script expectations, with imaptest's semantics
//! (test-exec.c): `$var` binds on first use and must then match case-sensitively, `$` matches
//! any atom/string or skips a list (never NIL), `$N` is the current sequence of message N as
//! it was when the command group started, `$modseqN` must grow by at least the index gap,
//! `$$` is a literal `$`, `${case:…}` is case-sensitive, `$]` skips to the atom holding `]`,
//! lists obey `$!` directives, and everything else compares ASCII-case-insensitively.

use crate::args::Arg;
use std::collections::HashMap;

/// A full match. Smaller values count how far a mismatching pattern got ("best match").
pub const FULL: usize = usize::MAX;

#[derive(Debug, Default)]
pub struct Vars {
    values: HashMap<String, String>,
    /// Variables bound during the current (tentative) match, undone if it fails.
    added: Vec<String>,
    /// Initial sequence number → current one (0 = expunged), for `$N`.
    pub seqmap: Vec<u32>,
    highest_modseq_idx: u32,
    highest_modseq: u64,
}

impl Vars {
    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    pub fn remove(&mut self, name: &str) {
        self.values.remove(name);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Forget the tentative bindings of a successful match (they are kept).
    pub fn commit(&mut self) {
        self.added.clear();
    }

    /// Undo the bindings of a failed tentative match.
    pub fn rollback(&mut self) {
        for k in self.added.drain(..) {
            self.values.remove(&k);
        }
    }

    /// Reset `$N` to identity over `count` messages (start of a command group).
    pub fn reset_seqmap(&mut self, count: u32) {
        self.seqmap = (1..=count).collect();
    }

    /// An EXPUNGE of current sequence `seq`: later messages move down.
    pub fn expunge(&mut self, seq: u32) {
        if seq == 0 || seq as usize > self.seqmap.len() {
            // Larger than the initial count: a message that arrived after EXISTS.
            return;
        }
        for s in self.seqmap.iter_mut().skip(seq as usize - 1) {
            if *s == seq {
                *s = 0;
            } else if *s > seq {
                *s -= 1;
            }
        }
    }

    fn relative_seq(&self, n: u32) -> String {
        match n {
            0 => "<zero seq>".into(),
            n if n as usize > self.seqmap.len() => "<out of range>".into(),
            n => match self.seqmap[n as usize - 1] {
                0 => "<expunged>".into(),
                s => s.to_string(),
            },
        }
    }

    /// Expand a command line (imaptest's `test_expand_all`). An unknown variable is an error
    /// unless `lenient` (then it shows as `$`, for failure messages).
    pub fn expand_all(&self, line: &str, lenient: bool) -> Result<String, String> {
        let c: Vec<char> = line.chars().collect();
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < c.len() {
            if c[i] != '$' || i + 1 == c.len() {
                out.push(c[i]);
                i += 1;
                continue;
            }
            i += 1;
            if c[i] == '$' {
                out.push('$');
                i += 1;
                continue;
            }
            if c[i] == '!' {
                // A directive: dropped up to the next space.
                while i < c.len() && c[i] != ' ' {
                    i += 1;
                }
                if i < c.len() {
                    i += 1;
                }
                continue;
            }
            let (name, next) = var_name(&c, i).ok_or("missing '}'")?;
            i = next;
            if let Ok(n) = name.parse::<u32>() {
                out.push_str(&self.relative_seq(n));
            } else if let Some(v) = self.values.get(&name) {
                out.push_str(v);
            } else if lenient {
                out.push('$');
            } else {
                return Err(format!("uninitialized variable: {name}"));
            }
        }
        Ok(out)
    }

    /// Expand pattern `pat` against server text `input`, binding unknown variables from the
    /// input (imaptest's `test_expand_input`). Returns the expanded pattern and whether the
    /// final comparison is case-insensitive, or `None` on an early mismatch.
    fn expand_input(&mut self, pat: &[char], input: &[char]) -> Option<(String, bool)> {
        let mut icase = true;
        let mut out = String::new();
        let (mut s, mut inp) = (0usize, 0usize);
        let at = |v: &[char], i: usize| v.get(i).copied().unwrap_or('\0');
        while s < pat.len() {
            if pat[s] != '$' || at(pat, s + 1) == '$' {
                if pat[s] == '$' {
                    s += 1;
                }
                if !pat[s].eq_ignore_ascii_case(&at(input, inp)) {
                    return None;
                }
                out.push(pat[s]);
                inp += 1;
                s += 1;
                continue;
            }
            let (name, next) = match var_name(pat, s + 1) {
                Some(x) => x,
                None => return Some((String::new(), icase)),
            };
            s = next;
            let value: String = if let Ok(n) = name.parse::<u32>() {
                self.relative_seq(n)
            } else if let Some(v) = name.strip_prefix("case:") {
                icase = false;
                v.to_string()
            } else if let Some(v) = (!name.is_empty()).then(|| self.values.get(&name)).flatten() {
                v.clone()
            } else {
                let end = self.bind_extent(&pat[s..], &input[inp.min(input.len())..]) + inp;
                let bound: String = input[inp.min(input.len())..end].iter().collect();
                if name.is_empty() {
                    bound
                } else if let Some(idx) = name.strip_prefix("modseq").and_then(|x| x.parse().ok()) {
                    let v = self.modseq_value(idx, &bound);
                    self.values.insert(name, v.clone());
                    v
                } else {
                    self.values.insert(name.clone(), bound.clone());
                    self.added.push(name);
                    bound
                }
            };
            out.push_str(&value);
            for vc in value.chars() {
                if at(input, inp) != vc {
                    return None;
                }
                inp += 1;
            }
        }
        Some((out, icase))
    }

    /// How much input an unbound variable takes: up to the first input char equal to the
    /// next pattern char (imaptest only looks at that first char, so do we).
    fn bind_extent(&mut self, rest_pat: &[char], input: &[char]) -> usize {
        let (stop, icase) = if rest_pat.first() == Some(&'$') {
            match self.expand_input(rest_pat, input) {
                Some((s, ic)) => (s.chars().next().unwrap_or('\0'), ic),
                None => ('\0', true),
            }
        } else {
            (rest_pat.first().copied().unwrap_or('\0'), true)
        };
        input
            .iter()
            .position(|c| {
                if icase {
                    c.eq_ignore_ascii_case(&stop)
                } else {
                    *c == stop
                }
            })
            .unwrap_or(input.len())
    }

    /// `$modseqN`: each must be at least the previous one plus the index gap. A value too
    /// small becomes a marker that cannot match, so the failure message shows why.
    fn modseq_value(&mut self, idx: u32, bound: &str) -> String {
        let Ok(v) = bound.parse::<u64>() else {
            return "$modseq-not-number".into();
        };
        if self.highest_modseq_idx > idx {
            return "$modseq-order-mismatch".into();
        }
        let at_least = self.highest_modseq + u64::from(idx - self.highest_modseq_idx);
        let (shown, kept) = if v < at_least {
            (format!("$modseq-at-least-{at_least}"), at_least)
        } else {
            (bound.to_string(), v)
        };
        self.highest_modseq_idx = idx;
        self.highest_modseq = kept;
        shown
    }

    /// Match `pat` against `args` (imaptest's `test_imap_match_args`). `prefix`: status
    /// responses, where the last pattern word only needs to prefix the server's word and the
    /// server may say more.
    pub fn match_args(&mut self, pat: &[Arg], args: &[Arg], max: usize, prefix: bool) -> usize {
        let mut ret = 0;
        let mut ai = 0;
        let mut pi = 0;
        while pi < pat.len() && ret < max {
            let m = &pat[pi];
            let a = args.get(ai);
            match m {
                Arg::Nil => {
                    if a != Some(&Arg::Nil) {
                        return ret;
                    }
                }
                Arg::List(ml) => {
                    let Some(Arg::List(al)) = a else { return ret };
                    let sub = self.match_list(ml, al);
                    if sub != FULL {
                        return ret + sub;
                    }
                }
                _ => {
                    let ms = m.astring().unwrap_or("");
                    if ms == "$" && matches!(a, Some(Arg::List(_))) {
                        // "$" skips over a list
                    } else if ms == "$]" {
                        while let Some(s) = args.get(ai).and_then(Arg::atom) {
                            if s.contains(']') {
                                break;
                            }
                            ai += 1;
                        }
                    } else {
                        let last = pi + 1 == pat.len();
                        if !self.match_word(ms, a, prefix && last) {
                            return ret;
                        }
                    }
                }
            }
            ret += 1;
            pi += 1;
            ai += 1;
        }
        if prefix || ai >= args.len() || ret >= max {
            FULL
        } else {
            ret
        }
    }

    fn match_word(&mut self, pat: &str, arg: Option<&Arg>, prefix: bool) -> bool {
        let Some(text) = arg.and_then(Arg::astring) else {
            return false;
        };
        let pc: Vec<char> = pat.chars().collect();
        let tc: Vec<char> = text.chars().collect();
        let Some((expanded, icase)) = self.expand_input(&pc, &tc) else {
            return false;
        };
        let eq = |a: &str, b: &str| {
            if icase {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        if prefix {
            let n = expanded.chars().count();
            let head: String = tc.iter().take(n).collect();
            tc.len() >= n && eq(&head, &expanded)
        } else {
            eq(text, &expanded)
        }
    }

    /// Match a list, honouring `$!` directives (imaptest's `test_imap_match_list`).
    fn match_list(&mut self, pat: &[Arg], args: &[Arg]) -> usize {
        let d = Directives::read(pat);
        let pat = &pat[d.count..];
        if !d.unordered {
            return self.match_args(pat, args, FULL, false);
        }
        let chain = d.chain.max(1);
        if !args.len().is_multiple_of(chain) {
            return 0;
        }
        let mut matched = vec![false; args.len()];
        let mut ret = 0;
        for mchain in pat.chunks(chain) {
            let found = (0..args.len())
                .step_by(chain)
                .find(|&i| self.match_args(mchain, &args[i..], chain, false) == FULL);
            match found {
                Some(i) => matched[i] = true,
                None => return ret,
            }
            ret += 1;
        }
        let unmatched = (0..args.len())
            .step_by(chain)
            .filter(|&i| !matched[i])
            .filter_map(|i| args[i].astring());
        for s in unmatched {
            let listed = |l: &[String]| l.iter().any(|x| x.eq_ignore_ascii_case(s));
            if (d.noextra && !listed(&d.ignores)) || (!d.noextra && listed(&d.bans)) {
                return ret;
            }
        }
        FULL
    }
}

struct Directives {
    count: usize,
    unordered: bool,
    chain: usize,
    noextra: bool,
    ignores: Vec<String>,
    bans: Vec<String>,
}

impl Directives {
    fn read(pat: &[Arg]) -> Self {
        let mut d = Directives {
            count: 0,
            unordered: false,
            chain: 1,
            noextra: true,
            ignores: Vec::new(),
            bans: Vec::new(),
        };
        let mut noextra: Option<bool> = None;
        for a in pat {
            let Some(s) = a.atom().and_then(|s| s.strip_prefix("$!")) else {
                break;
            };
            d.count += 1;
            if let Some(rest) = s.strip_prefix("unordered") {
                d.unordered = true;
                noextra.get_or_insert(false);
                if let Some(n) = rest.strip_prefix('=') {
                    d.chain = n.parse().unwrap_or(1);
                }
            } else if s == "ordered" {
                d.unordered = false;
            } else if s == "extra" {
                noextra = Some(false);
            } else if s == "noextra" {
                noextra = Some(true);
            } else if let Some(x) = s.strip_prefix("ignore=") {
                d.ignores.push(x.to_string());
            } else if let Some(x) = s.strip_prefix("ban=") {
                d.bans.push(x.to_string());
            }
        }
        d.noextra = noextra.unwrap_or(true);
        d
    }
}

/// `name` or `{name}` starting at `i`; returns the name and the index after it.
fn var_name(c: &[char], i: usize) -> Option<(String, usize)> {
    if c.get(i) == Some(&'{') {
        let end = c[i + 1..].iter().position(|&x| x == '}')? + i + 1;
        return Some((c[i + 1..end].iter().collect(), end + 1));
    }
    let end = c[i..]
        .iter()
        .position(|x| !(x.is_ascii_alphanumeric() || *x == '_'))
        .map_or(c.len(), |p| p + i);
    Some((c[i..end].iter().collect(), end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse;
    use crate::script::{self, Existence};
    use std::path::PathBuf;

    /// The first untagged expectation of a one-command script, with default directives.
    fn expectation(line: &str) -> Vec<Arg> {
        let text = format!("\nok x\n{line}\n");
        let s = script::parse("t", PathBuf::new(), &text, &|_| false).unwrap();
        let ut = &s.groups[0].untagged[0];
        assert_eq!(ut.existence, Existence::MustExist);
        ut.args.clone()
    }

    fn matches(vars: &mut Vars, pat: &str, resp: &str) -> bool {
        let ok = vars.match_args(&expectation(pat), &parse(resp).unwrap(), FULL, false) == FULL;
        if ok {
            vars.commit()
        } else {
            vars.rollback()
        }
        ok
    }

    #[test]
    fn variables_bind_then_must_match() {
        let mut v = Vars::default();
        assert!(matches(&mut v, "* 1 fetch (uid $uid1)", "1 FETCH (UID 42)"));
        assert_eq!(v.get("uid1"), Some("42"));
        assert!(!matches(
            &mut v,
            "* 2 fetch (uid $uid1)",
            "2 FETCH (UID 43)"
        ));
        assert!(matches(&mut v, "* 2 fetch (uid $uid2)", "2 FETCH (UID 43)"));
        assert_eq!(
            v.expand_all("uid store $uid1,$uid2 flags $$kw", false)
                .unwrap(),
            "uid store 42,43 flags $kw"
        );
        assert!(v.expand_all("fetch $nope", false).is_err());
    }

    #[test]
    fn failed_match_rolls_back_bindings() {
        let mut v = Vars::default();
        assert!(!matches(
            &mut v,
            "* 1 fetch (uid $u flags (\\seen))",
            "1 FETCH (UID 7 FLAGS ())"
        ));
        assert_eq!(v.get("u"), None);
    }

    #[test]
    fn wildcard_matches_atoms_and_lists_but_not_nil() {
        let mut v = Vars::default();
        assert!(matches(
            &mut v,
            "* 1 fetch (uid $ flags $)",
            "1 FETCH (FLAGS (\\Seen x) UID 3)"
        ));
        assert!(!matches(&mut v, "* list () $ x", "LIST () NIL x"));
        assert!(matches(
            &mut v,
            "* list () $sep x",
            "LIST (\\HasNoChildren) \"/\" x"
        ));
        assert_eq!(v.get("sep"), Some("/"));
        // Embedded in a word: binds up to the next pattern character.
        assert!(matches(
            &mut v,
            "* ok [uidnext $next] $",
            "OK [UIDNEXT 17] Predicted"
        ));
        assert_eq!(v.get("next"), Some("17"));
    }

    #[test]
    fn case_insensitive_except_bound_values_and_case_prefix() {
        let mut v = Vars::default();
        assert!(matches(
            &mut v,
            "* 1 FeTcH (FLAGS (\\SEEN))",
            "1 fetch (flags (\\Seen))"
        ));
        assert!(matches(
            &mut v,
            "* list () $s ${case:INBOX}",
            "LIST () \"/\" INBOX"
        ));
        assert!(!matches(
            &mut v,
            "* list () $s2 ${case:INBOX}",
            "LIST () \"/\" inbox"
        ));
    }

    #[test]
    fn fetch_and_flags_defaults() {
        let mut v = Vars::default();
        // FETCH items in any order, extra items allowed.
        assert!(matches(
            &mut v,
            "* 1 fetch (flags (\\seen) uid 5)",
            "1 FETCH (UID 5 MODSEQ (3) FLAGS (\\Seen \\Recent))"
        ));
        // FLAGS: no extra flags except \Recent.
        assert!(!matches(
            &mut v,
            "* 1 fetch (flags (\\seen))",
            "1 FETCH (FLAGS (\\Seen \\Deleted))"
        ));
        assert!(matches(
            &mut v,
            "* 1 fetch (flags (\\seen))",
            "1 FETCH (FLAGS (\\Recent \\Seen))"
        ));
        // Plain lists are ordered and exact.
        assert!(!matches(&mut v, "* search (a b)", "SEARCH (b a)"));
        assert!(!matches(&mut v, "* search a", "SEARCH a b"));
    }

    #[test]
    fn explicit_directives() {
        let mut v = Vars::default();
        assert!(matches(&mut v, "* x ($!unordered b a)", "X (a c b)"));
        assert!(!matches(
            &mut v,
            "* x ($!unordered $!noextra b a)",
            "X (a c b)"
        ));
        assert!(matches(
            &mut v,
            "* x ($!unordered $!noextra $!ignore=c b a)",
            "X (a c b)"
        ));
        assert!(!matches(
            &mut v,
            "* x ($!unordered $!ban=c b a)",
            "X (a c b)"
        ));
        assert!(matches(
            &mut v,
            "* x ($!unordered=2 k2 v2 k1 v1)",
            "X (k1 v1 k2 v2)"
        ));
    }

    #[test]
    fn literal_matches_quoted_string() {
        let mut v = Vars::default();
        let text = "\nok x\n* 1 fetch (body[] {{{\nab\n}}})\n";
        let s = script::parse("t", PathBuf::new(), text, &|_| false).unwrap();
        let pat = &s.groups[0].untagged[0].args;
        assert_eq!(
            v.match_args(pat, &parse("1 FETCH (BODY[] \"ab\")").unwrap(), FULL, false),
            FULL
        );
        assert_ne!(
            v.match_args(
                pat,
                &parse("1 FETCH (BODY[] \"abc\")").unwrap(),
                FULL,
                false
            ),
            FULL
        );
    }

    #[test]
    fn status_prefix_and_relative_sequences() {
        let mut v = Vars::default();
        let pat = parse("ok [read-write]").unwrap();
        assert_eq!(
            v.match_args(
                &pat,
                &parse("OK [READ-WRITE] Select completed.").unwrap(),
                FULL,
                true
            ),
            FULL
        );
        assert_ne!(
            v.match_args(&pat, &parse("OK [READ-ONLY] done").unwrap(), FULL, true),
            FULL
        );
        assert_eq!(
            v.match_args(
                &parse("").unwrap(),
                &parse("NO whatever").unwrap(),
                FULL,
                true
            ),
            FULL
        );

        v.reset_seqmap(3);
        v.expunge(1);
        assert_eq!(v.expand_all("$1 $2 $3", false).unwrap(), "<expunged> 1 2");
        assert!(matches(&mut v, "* $3 expunge", "2 EXPUNGE"));
    }

    #[test]
    fn modseq_must_grow() {
        let mut v = Vars::default();
        assert!(matches(
            &mut v,
            "* 1 fetch (modseq ($modseq2))",
            "1 FETCH (MODSEQ (10))"
        ));
        assert!(!matches(
            &mut v,
            "* 1 fetch (modseq ($modseq5))",
            "1 FETCH (MODSEQ (12))"
        ));
        let mut v = Vars::default();
        assert!(matches(
            &mut v,
            "* 1 fetch (modseq ($modseq2))",
            "1 FETCH (MODSEQ (10))"
        ));
        assert!(matches(
            &mut v,
            "* 1 fetch (modseq ($modseq5))",
            "1 FETCH (MODSEQ (13))"
        ));
    }
}
