//! How a message's flags are kept: one text column of flags separated by spaces, system
//! flags in their canonical spelling. No SQL; read by the folder and migration areas alike.

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
