//! Maildir naming, as Dovecot reads it: Maildir++ folders (`.Parent.Child`, names in
//! modified UTF-7), the `:2,` info suffix with the standard flag letters, keywords as
//! lowercase letters listed in `dovecot-keywords`, and `dovecot-uidlist` to keep UIDs and
//! UIDVALIDITY. No I/O here.

use mssante_imap::message::utf7::encode_mutf7;

/// The Maildir letters of the IMAP system flags, in the ASCII order the info suffix wants
/// (D, F, R, S, T). `\Recent` is a session state, never stored.
const SYSTEM_FLAGS: [(&str, char); 5] = [
    ("\\Draft", 'D'),
    ("\\Flagged", 'F'),
    ("\\Answered", 'R'),
    ("\\Seen", 'S'),
    ("\\Deleted", 'T'),
];

/// Maildir holds 26 keywords per folder (`a` to `z`); more stay in the manifest only.
pub const MAX_KEYWORDS: usize = 26;

/// The Maildir++ directory of a folder, relative to the Maildir root: `""` for INBOX, else
/// `.` and the name with `/` (our hierarchy delimiter) as `.`, in modified UTF-7 (Dovecot's
/// default for Maildir++).
pub fn folder_dir(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        return String::new();
    }
    let parts: Vec<String> = name.split('/').map(encode_mutf7).collect();
    format!(".{}", parts.join("."))
}

/// The keywords of one folder, numbered in the order they are first seen.
#[derive(Clone, Debug, Default)]
pub struct Keywords {
    names: Vec<String>,
}

impl Keywords {
    /// The letter of a keyword, numbering it when new; `None` past [`MAX_KEYWORDS`].
    pub fn letter(&mut self, keyword: &str) -> Option<char> {
        let index = match self.names.iter().position(|k| k == keyword) {
            Some(i) => i,
            None if self.names.len() < MAX_KEYWORDS => {
                self.names.push(keyword.to_string());
                self.names.len() - 1
            }
            None => return None,
        };
        Some((b'a' + index as u8) as char)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The `dovecot-keywords` file: `N keyword` per line.
    pub fn file(&self) -> String {
        self.names
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{i} {k}\n"))
            .collect()
    }
}

/// The info suffix of a message: `2,` then its flag letters, system flags (uppercase) first,
/// keywords (lowercase) after, each group sorted as Maildir requires.
pub fn info_suffix(flags: &[String], keywords: &mut Keywords) -> String {
    let mut letters = String::from("2,");
    for (flag, letter) in SYSTEM_FLAGS {
        if flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            letters.push(letter);
        }
    }
    let mut lower: Vec<char> = flags
        .iter()
        .filter(|f| !f.starts_with('\\'))
        .filter_map(|k| keywords.letter(k))
        .collect();
    lower.sort_unstable();
    lower.dedup();
    letters.extend(lower);
    letters
}

/// The base name of a message file (before `:2,`): unique within the folder, sortable by
/// date, with the size Dovecot reads without opening the file (`S=`).
pub fn base_name(internaldate: i64, uid: i64, sha256: &str, size: u64) -> String {
    format!(
        "{internaldate}.M{uid}P{}.mssante,S={size}",
        &sha256[..12.min(sha256.len())]
    )
}

/// The first line of `dovecot-uidlist` (version 3): UIDVALIDITY and UIDNEXT.
pub fn uidlist_header(uidvalidity: i64, uidnext: i64) -> String {
    format!("3 V{uidvalidity} N{uidnext}\n")
}

/// One line of `dovecot-uidlist`: the UID of a message file.
pub fn uidlist_line(uid: i64, base_name: &str) -> String {
    format!("{uid} :{base_name}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn system_flags_get_their_letters_in_ascii_order() {
        let mut kw = Keywords::default();
        let all = flags(&["\\Seen", "\\Deleted", "\\Answered", "\\Flagged", "\\Draft"]);
        assert_eq!(info_suffix(&all, &mut kw), "2,DFRST");
        assert_eq!(info_suffix(&flags(&["\\seen"]), &mut kw), "2,S");
        assert_eq!(info_suffix(&[], &mut kw), "2,");
    }

    #[test]
    fn keywords_are_numbered_per_folder_and_listed() {
        let mut kw = Keywords::default();
        assert_eq!(
            info_suffix(&flags(&["$Urgent", "\\Seen", "Projet"]), &mut kw),
            "2,Sab"
        );
        assert_eq!(info_suffix(&flags(&["Projet"]), &mut kw), "2,b");
        assert_eq!(kw.file(), "0 $Urgent\n1 Projet\n");
        for i in 2..MAX_KEYWORDS {
            assert!(kw.letter(&format!("k{i}")).is_some());
        }
        assert_eq!(kw.letter("one too many"), None);
    }

    #[test]
    fn folders_are_maildir_plus_plus_in_modified_utf7() {
        assert_eq!(folder_dir("INBOX"), "");
        assert_eq!(folder_dir("Sent"), ".Sent");
        assert_eq!(folder_dir("Patients/Dossiers"), ".Patients.Dossiers");
        assert_eq!(
            folder_dir("Comptes rendus/Échographie"),
            ".Comptes rendus.&AMk-chographie"
        );
    }

    #[test]
    fn uidlist_keeps_uidvalidity_uidnext_and_uids() {
        assert_eq!(uidlist_header(1700000000, 42), "3 V1700000000 N42\n");
        let base = base_name(1700000000, 7, "abcdef0123456789", 1234);
        assert_eq!(base, "1700000000.M7Pabcdef012345.mssante,S=1234");
        assert_eq!(uidlist_line(7, &base), format!("7 :{base}\n"));
    }
}
