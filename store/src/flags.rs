//! How a message's flags are kept: one text column of flags separated by spaces, system
//! flags in their canonical spelling, and what a STORE does to them. No SQL; read by the
//! folder and migration areas alike.

/// The flags of a stored `flags` column.
pub(crate) fn flags_from_text(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Canonical spelling of system flags (flags compare case-insensitively, RFC 9051 §2.3.2).
pub(crate) fn canonical_flag(flag: &str) -> String {
    const SYSTEM: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
    SYSTEM
        .iter()
        .find(|s| s.eq_ignore_ascii_case(flag))
        .map(|s| s.to_string())
        .unwrap_or_else(|| flag.to_string())
}

/// How a STORE changes a message's flags (RFC 9051 §6.4.6): `FLAGS`, `+FLAGS`, `-FLAGS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// The flags `current` has after `op` with `flags`, system flags in their canonical spelling.
pub(crate) fn apply_flags(current: &[String], op: FlagOp, flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = match op {
        FlagOp::Replace => Vec::new(),
        _ => current.to_vec(),
    };
    match op {
        FlagOp::Replace | FlagOp::Add => {
            for f in flags {
                if !has_flag(&out, f) {
                    out.push(canonical_flag(f));
                }
            }
        }
        FlagOp::Remove => out.retain(|f| !has_flag(flags, f)),
    }
    out
}

/// The same flags, in any order (flags compare case-insensitively).
pub(crate) fn same_flags(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|f| has_flag(b, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_operations() {
        let cur = vec!["\\Seen".to_string(), "$Label".to_string()];
        assert_eq!(
            apply_flags(&cur, FlagOp::Add, &["\\seen".into(), "\\flagged".into()]),
            vec!["\\Seen", "$Label", "\\Flagged"]
        );
        assert_eq!(
            apply_flags(&cur, FlagOp::Remove, &["$label".into()]),
            vec!["\\Seen"]
        );
        assert_eq!(
            apply_flags(&cur, FlagOp::Replace, &["\\Draft".into()]),
            vec!["\\Draft"]
        );
    }
}
