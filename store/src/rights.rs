//! RFC 4314 rights as a set, the named rights of a delegation (read, secretary, manager) and
//! who a grant is for. No SQL here: the IMAP ACL commands and the command line share it.

use crate::address::Address;
use crate::error::{Result, StoreError};

/// The rights this server knows, in the order RFC 4314 §2.1 lists them, then ours:
/// `0` is "send on behalf of the BAL" (RFC 4314 §2.1 leaves digits to implementations).
pub const KNOWN_RIGHTS: &str = "lrswipkxtea0";
/// Sending as the BAL (SMTP submission with `From:` the BAL): an implementation-defined right.
pub const SEND_RIGHT: char = '0';

/// A set of rights letters (RFC 4314 §2.1), kept in [`KNOWN_RIGHTS`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights(u16);

impl Rights {
    pub const NONE: Rights = Rights(0);

    fn bit(right: char) -> Option<u16> {
        KNOWN_RIGHTS.find(right).map(|i| 1 << i)
    }

    /// Reads rights letters; RFC 2086's obsolete `c` and `d` stand for `k` and `x t e`
    /// (RFC 4314 §2.1.1). An unknown letter is an error naming it.
    pub fn parse(text: &str) -> Result<Rights> {
        let mut bits = 0;
        for c in text.chars() {
            bits |= match c {
                'c' => Self::bit('k').unwrap_or(0),
                'd' => {
                    Self::bit('x').unwrap_or(0)
                        | Self::bit('t').unwrap_or(0)
                        | Self::bit('e').unwrap_or(0)
                }
                c => Self::bit(c).ok_or_else(|| {
                    StoreError::Invalid(format!("{c:?} is not a right (known: {KNOWN_RIGHTS})"))
                })?,
            };
        }
        Ok(Rights(bits))
    }

    /// Reads rights as stored (written by [`Rights::parse`] before): unknown letters ignored.
    pub fn from_stored(text: &str) -> Rights {
        Rights(text.chars().filter_map(Self::bit).fold(0, |a, b| a | b))
    }

    pub fn has(self, right: char) -> bool {
        Self::bit(right).is_some_and(|b| self.0 & b != 0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// Every right of `other` is in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::fmt::Display for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in KNOWN_RIGHTS.chars().filter(|&c| self.has(c)) {
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The rights a holder gives, named for people (issue 14) and mapped to RFC 4314 letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedRights {
    /// See the folders and read the mail: `l r s` (its own read state, see ADR 0016).
    Read,
    /// Triage, file and answer: read + `w i t e x` + send on behalf.
    Secretary,
    /// Secretary + `a`: may grant and revoke on the BAL.
    Manager,
}

impl NamedRights {
    pub const ALL: [NamedRights; 3] = [
        NamedRights::Read,
        NamedRights::Secretary,
        NamedRights::Manager,
    ];

    pub fn letters(self) -> &'static str {
        match self {
            NamedRights::Read => "lrs",
            NamedRights::Secretary => "lrswixte0",
            NamedRights::Manager => "lrswixtea0",
        }
    }

    pub fn rights(self) -> Rights {
        Rights::from_stored(self.letters())
    }

    pub fn name(self) -> &'static str {
        match self {
            NamedRights::Read => "read",
            NamedRights::Secretary => "secretary",
            NamedRights::Manager => "manager",
        }
    }

    pub fn parse(text: &str) -> Option<NamedRights> {
        Self::ALL
            .into_iter()
            .find(|n| n.name().eq_ignore_ascii_case(text))
    }

    /// The name of exactly these rights, when they have one.
    pub fn of(rights: Rights) -> Option<NamedRights> {
        Self::ALL.into_iter().find(|n| n.rights() == rights)
    }
}

/// Reads `read`, `secretary`, `manager` or RFC 4314 letters.
pub fn parse_rights(text: &str) -> Result<Rights> {
    match NamedRights::parse(text) {
        Some(named) => Ok(named.rights()),
        None => Rights::parse(text),
    }
}

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Grantee {
    /// A Pro Santé Connect identity (opaque: most are `8`+RPPS, not all).
    NationalId(String),
    /// Whoever logs in as this BAL: the account of a PER BAL, the members of an ORG/CAB BAL.
    Bal(String),
}

impl Grantee {
    /// An address is a BAL, anything else an identity (IMAP ACL identifiers, the CLI).
    pub fn parse(text: &str) -> Result<Grantee> {
        let text = text.trim();
        if text.contains('@') {
            let address =
                Address::parse(text).map_err(|e| StoreError::Invalid(format!("{text:?}: {e}")))?;
            return Ok(Grantee::Bal(address.as_str().to_string()));
        }
        if text.is_empty() || text.len() > 256 || text.chars().any(|c| c.is_control() || c == ' ') {
            return Err(StoreError::Invalid(format!(
                "{text:?} is neither a BAL address nor a national identifier"
            )));
        }
        Ok(Grantee::NationalId(text.to_string()))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Grantee::NationalId(_) => "national_id",
            Grantee::Bal(_) => "bal",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Grantee::NationalId(id) | Grantee::Bal(id) => id,
        }
    }

    pub(crate) fn from_columns(kind: &str, id: String) -> Result<Grantee> {
        match kind {
            "national_id" => Ok(Grantee::NationalId(id)),
            "bal" => Ok(Grantee::Bal(id)),
            other => Err(StoreError::Invalid(format!(
                "unknown grantee kind {other:?} in database"
            ))),
        }
    }
}

impl std::fmt::Display for Grantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_round_trip_in_rfc_order() {
        assert_eq!(Rights::parse("tsrl").unwrap().to_string(), "lrst");
        assert_eq!(Rights::parse("").unwrap(), Rights::NONE);
        // RFC 4314 §2.1.1: c → k, d → x t e.
        assert_eq!(Rights::parse("cd").unwrap().to_string(), "kxte");
        let err = Rights::parse("lrz").unwrap_err().to_string();
        assert!(err.contains("'z'"), "{err}");
    }

    #[test]
    fn named_rights_nest() {
        let (read, sec, man) = (
            NamedRights::Read.rights(),
            NamedRights::Secretary.rights(),
            NamedRights::Manager.rights(),
        );
        assert!(sec.contains(read) && man.contains(sec) && !sec.contains(man));
        assert!(sec.has(SEND_RIGHT) && !read.has(SEND_RIGHT) && man.has('a') && !sec.has('a'));
        assert_eq!(sec.to_string(), "lrswixte0");
        assert_eq!(
            NamedRights::of(Rights::parse("srl").unwrap()),
            Some(NamedRights::Read)
        );
        assert_eq!(parse_rights("Manager").unwrap(), man);
        assert_eq!(parse_rights("lr").unwrap().to_string(), "lr");
    }

    #[test]
    fn grantees_by_shape() {
        assert_eq!(
            Grantee::parse("Sec@CH.mssante.fr").unwrap(),
            Grantee::Bal("sec@ch.mssante.fr".into())
        );
        assert_eq!(
            Grantee::parse("810001234567").unwrap(),
            Grantee::NationalId("810001234567".into())
        );
        assert!(Grantee::parse("").is_err() && Grantee::parse("a b").is_err());
    }
}
