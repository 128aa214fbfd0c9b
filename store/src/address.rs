//! E-mail addresses of BALs: syntax check and normalisation.
//!
//! MSSanté addresses are `local@sub.mssante.fr`. We compare them case-insensitively
//! (ASCII and Unicode lower-casing of both parts) — a deliberate departure from RFC 5321
//! §2.4, which lets the local part be case-sensitive: no operator treats it so, and a
//! laboratory typing `Dr.Martin@` must reach `dr.martin@`.

use crate::error::{Result, StoreError};

/// A syntactically valid, normalised address (`local@domain`, lower case).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

impl Address {
    pub fn parse(input: &str) -> Result<Address> {
        let invalid = |why: &str| StoreError::Invalid(format!("invalid address {input:?}: {why}"));
        let (local, domain) = input.rsplit_once('@').ok_or_else(|| invalid("no '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("local part must be 1 to 64 bytes"));
        }
        // RFC 5321 §4.1.2 dot-string, extended to UTF-8 by RFC 6531 §3.3.
        let atom_char = |c: char| {
            c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
        };
        if local
            .split('.')
            .any(|atom| atom.is_empty() || !atom.chars().all(atom_char))
        {
            return Err(invalid("local part is not a dot-atom"));
        }
        let domain = normalise_domain(domain).map_err(|e| invalid(&e))?;
        Ok(Address(format!("{}@{}", local.to_lowercase(), domain)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// True when the address needs SMTPUTF8 (RFC 6531) to be carried.
    pub fn is_utf8(&self) -> bool {
        !self.0.is_ascii()
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-cases and checks a domain name (RFC 5321 §4.1.2 `Domain`, U-labels allowed).
pub fn normalise_domain(input: &str) -> std::result::Result<String, String> {
    let domain = input.trim_end_matches('.').to_lowercase();
    if domain.is_empty() || domain.len() > 253 {
        return Err("domain must be 1 to 253 bytes".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(format!("{input:?} is not a valid domain name"));
    }
    if !domain.contains('.') {
        return Err(format!("{input:?} is not a fully qualified domain name"));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case() {
        let a = Address::parse("Dr.Martin@CH-X.MSSante.fr").unwrap();
        assert_eq!(a.as_str(), "dr.martin@ch-x.mssante.fr");
        assert_eq!(a.local_part(), "dr.martin");
        assert_eq!(a.domain(), "ch-x.mssante.fr");
    }

    #[test]
    fn accepts_utf8_local_parts() {
        let a = Address::parse("élodie.dupré@ch-x.mssante.fr").unwrap();
        assert!(a.is_utf8());
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "nobody",
            "@x.fr",
            "a@",
            "a..b@x.fr",
            ".a@x.fr",
            "a b@x.fr",
            "a@-x.fr",
            "a@x",
            "a@x..fr",
            "a(b)@x.fr",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
