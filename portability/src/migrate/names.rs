//! Folder names from the source to ours: decoded from modified UTF-7 (RFC 3501 §5.1.3;
//! UTF-8 as is from a server that sends it, RFC 6855 §3), the source's hierarchy delimiter
//! (RFC 9051 §6.3.9) turned into ours (`/`), and folders with a special use (RFC 6154 §2)
//! put into ours of the same use.

use mssante_imap::message::utf7::decode_mutf7;
use mssante_store::SPECIAL_USES;

/// Our hierarchy delimiter (the one our IMAP server announces).
pub const DELIMITER: char = '/';
/// What stands in for our delimiter inside a component of a source name whose delimiter is
/// another character (`a/b` under `.` is one level, not two).
pub const DELIMITER_STAND_IN: char = '_';

/// The source's name, as UTF-8.
pub fn decode(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    if text.is_ascii() {
        // A name that is not canonical modified UTF-7 is kept as sent.
        return Some(decode_mutf7(text).unwrap_or_else(|| text.to_string()));
    }
    Some(text.to_string())
}

/// Our name for a source folder named `name` (UTF-8) under `delimiter`.
pub fn translate(name: &str, delimiter: Option<char>) -> String {
    let components: Vec<String> = match delimiter {
        Some(d) if d != DELIMITER => name
            .split(d)
            .map(|c| c.replace(DELIMITER, &DELIMITER_STAND_IN.to_string()))
            .collect(),
        Some(_) => name.split(DELIMITER).map(str::to_string).collect(),
        None => vec![name.replace(DELIMITER, &DELIMITER_STAND_IN.to_string())],
    };
    let mut out = components
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(&DELIMITER.to_string());
    // RFC 9051 §5.1: INBOX is case-insensitive, and so is the INBOX at the head of a path.
    if out.eq_ignore_ascii_case("INBOX") {
        out = "INBOX".into();
    } else if let Some(rest) = strip_prefix_ignore_ascii_case(&out, "INBOX/") {
        out = format!("INBOX/{rest}");
    }
    out
}

/// `text` without `prefix` (ASCII, any case), if it starts with it. Byte slicing is safe
/// only on a character boundary: a source server may send any UTF-8 (fuzz target
/// `imap_response` found `out[..6]` panicking on a name with a multi-byte character there).
fn strip_prefix_ignore_ascii_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    let rest = &text[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix) && !rest.is_empty()).then_some(rest)
}

/// The special use a LIST entry's attributes give it, spelt as RFC 6154 does.
pub fn special_use(attributes: &[String]) -> Option<&'static str> {
    SPECIAL_USES
        .iter()
        .find(|u| attributes.iter().any(|a| a.eq_ignore_ascii_case(u)))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_modified_utf7_and_utf8() {
        assert_eq!(
            decode(b"Compte-rendus &AOk-t&AOk-").unwrap(),
            "Compte-rendus été"
        );
        assert_eq!(decode("Réunions".as_bytes()).unwrap(), "Réunions");
        assert_eq!(decode(b"A&-B").unwrap(), "A&B");
        assert_eq!(decode(b"\xff"), None);
    }

    #[test]
    fn translates_the_delimiter() {
        assert_eq!(
            translate("Archives.2024.Mars", Some('.')),
            "Archives/2024/Mars"
        );
        assert_eq!(translate("a/b.c", Some('.')), "a_b/c");
        assert_eq!(translate("Archives/2024", Some('/')), "Archives/2024");
        assert_eq!(translate("inbox", Some('.')), "INBOX");
        assert_eq!(translate("Inbox.Sous", Some('.')), "INBOX/Sous");
        assert_eq!(translate("x/y", None), "x_y");
        // A multi-byte character across byte 6 (found by the fuzzer): no panic, kept as is.
        assert_eq!(translate("Inbox\u{e9}", Some('.')), "Inbox\u{e9}");
        assert_eq!(
            translate("inbox.\u{e9}t\u{e9}", Some('.')),
            "INBOX/\u{e9}t\u{e9}"
        );
    }

    #[test]
    fn special_uses() {
        let attrs = vec!["\\HasNoChildren".to_string(), "\\sent".to_string()];
        assert_eq!(special_use(&attrs), Some("\\Sent"));
        assert_eq!(special_use(&["\\Noselect".to_string()]), None);
    }
}
