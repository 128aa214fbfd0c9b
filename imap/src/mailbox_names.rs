//! Mailbox names: the client's form (modified UTF-7 or UTF-8, RFC 9051 §5.1, RFC 6855 §3)
//! and ours, validity, wildcards (RFC 9051 §6.3.9), and the lookup every mailbox command starts with.

use mssante_store::Folder;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::encode::write_string;
use crate::message::utf7::{decode_mutf7, encode_mutf7};
use crate::session::Session;

pub(crate) const DELIMITER: char = '/';

/// Checks a mailbox name as stored (UTF-8, `/` hierarchy).
pub(crate) fn valid_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("Mailbox name must be 1 to 255 bytes");
    }
    if name.starts_with(DELIMITER) || name.ends_with(DELIMITER) || name.contains("//") {
        return Err("Invalid hierarchy in mailbox name");
    }
    if name.chars().any(|c| c == '%' || c == '*' || c.is_control()) {
        return Err("Mailbox name contains invalid characters");
    }
    Ok(())
}

/// IMAP wildcard match (RFC 9051 §6.3.9): `*` matches anything, `%` anything but `/`.
pub(crate) fn wildcard_match(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|i| wildcard_match(rest, &name[i..])),
        Some(('%', rest)) => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != DELIMITER)
            .any(|i| wildcard_match(rest, &name[i..])),
        Some((c, rest)) => name.first() == Some(c) && wildcard_match(rest, &name[1..]),
    }
}

pub(crate) fn normalise_inbox(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else if name.len() > 6 && name[..6].eq_ignore_ascii_case("INBOX/") {
        format!("INBOX/{}", &name[6..])
    } else {
        name.to_string()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Client form → stored form: modified UTF-7 unless UTF8=ACCEPT is on (RFC 6855 §3),
    /// and INBOX in any case is INBOX (RFC 9051 §5.1).
    pub(crate) fn mailbox_name(&self, raw: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(raw).ok()?;
        let decoded = if self.enabled.utf8 {
            text.to_string()
        } else {
            decode_mutf7(text)?
        };
        Some(normalise_inbox(&decoded))
    }

    /// Stored form → the IMAP string the client sees.
    pub(crate) fn wire_name(&self, name: &str) -> Vec<u8> {
        let shown = if self.enabled.utf8 {
            name.to_string()
        } else {
            encode_mutf7(name)
        };
        let mut out = Vec::new();
        write_string(&mut out, shown.as_bytes());
        out
    }

    pub(crate) fn bal_id(&self) -> i64 {
        self.bal.as_ref().expect("authenticated").id
    }

    /// The folder a stored-form name designates: one of the own BAL, or under
    /// `Other Users/<address>/` one of a delegated BAL. `None` too for a folder the session
    /// may neither list nor read: its existence is not revealed (RFC 4314 §4).
    pub(crate) async fn find_folder(&self, name: &str) -> mssante_store::Result<Option<Folder>> {
        let (bal_id, folder) = match self.access.resolve(name) {
            None => (self.bal_id(), name),
            Some(Some(found)) => found,
            Some(None) => return Ok(None),
        };
        let found = self.ctx.store.folder(bal_id, folder).await?;
        Ok(found.filter(|f| {
            let rights = self.rights_on(f);
            rights.has('l') || rights.has('r')
        }))
    }

    /// Resolves a mailbox argument to an existing folder, or answers NO.
    pub(crate) async fn existing_folder(&mut self, tag: &str, raw: &[u8]) -> Option<Folder> {
        let Some(name) = self.mailbox_name(raw) else {
            self.tagged(tag, "NO", "Invalid mailbox name encoding");
            return None;
        };
        match self.find_folder(&name).await {
            Ok(Some(f)) => Some(f),
            Ok(None) => {
                self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
                None
            }
            Err(e) => {
                self.store_failed(tag, e);
                None
            }
        }
    }

    pub(crate) fn decode_client_name(&self, raw: &str) -> Option<String> {
        if self.enabled.utf8 {
            Some(raw.to_string())
        } else {
            decode_mutf7(raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        wildcard_match(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn wildcards() {
        assert!(m("*", "a/b/c"));
        assert!(m("%", "a") && !m("%", "a/b"));
        assert!(m("a/%", "a/b") && !m("a/%", "a/b/c"));
        assert!(m("a*c", "a/b/c"));
        assert!(m("INBOX", "INBOX") && !m("INBOX", "INBOXX"));
    }

    #[test]
    fn names() {
        assert!(valid_name("Archive/2026").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a*", "a%b", "a\u{1}"] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalise_inbox("inbox"), "INBOX");
        assert_eq!(normalise_inbox("Inbox/x"), "INBOX/x");
    }
}
