//! Distinguished names of operator certificates (docs/mssante.md §3).
//!
//! The whitelist writes the operator certificate's subject as an RFC 4514 string,
//! `CN=<MTA FQDN>,OU=<SIRET or FINESS>,O=<legal name>,ST=<département>,C=FR`, while the
//! certificate itself carries the RDN sequence in ASN.1 order (`C` … `CN`). A [`Dn`] keeps the
//! attributes in RFC 4514 order (most specific first, RFC 4514 §2.1) so that both sources print
//! the same way, and compares them **as a multiset** of (attribute type, value) so that the
//! order in which a tool wrote them never decides whether a peer is trusted.
//!
//! Comparison rules (deliberately simpler than RFC 4518 string preparation):
//! - attribute types by their canonical short name, case-insensitively (`S` = `ST`,
//!   `E` = `emailAddress`, `2.5.4.3` = `CN`, …);
//! - values with surrounding whitespace trimmed, case-insensitively (Unicode lower-casing,
//!   so `Bouches-du-RHÔNE` equals `Bouches-du-Rhône`).
//!
//! Multi-valued RDNs (`CN=a+OU=b`) are flattened into the same list: the multiset comparison
//! makes the grouping irrelevant for our purpose, and IGC-Santé certificates do not use them.

use std::fmt;
use std::hash::{Hash, Hasher};

use rustls_pki_types::CertificateDer;
use x509_parser::asn1_rs::Tag;

/// An error reading a distinguished name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("empty distinguished name")]
    Empty,
    #[error("distinguished name {0:?}: an attribute has no '='")]
    MissingEquals(String),
    #[error("distinguished name {dn:?}: invalid attribute type {attr:?}")]
    BadAttributeType { dn: String, attr: String },
    #[error("distinguished name {0:?}: unterminated quoted value")]
    UnterminatedQuote(String),
    #[error("distinguished name {0:?}: invalid escape sequence")]
    BadEscape(String),
    #[error("distinguished name {0:?}: escaped bytes are not UTF-8")]
    BadUtf8(String),
    #[error("distinguished name {0:?}: unexpected text after a quoted value")]
    TrailingAfterQuote(String),
    #[error("certificate subject: {0}")]
    Certificate(String),
}

/// A distinguished name: (attribute type, value) pairs in RFC 4514 order (CN first).
#[derive(Debug, Clone)]
pub struct Dn {
    attrs: Vec<(String, String)>,
}

/// (OID, canonical name, extra upper-case aliases accepted when parsing strings).
const ATTRIBUTE_TYPES: &[(&str, &str, &[&str])] = &[
    ("2.5.4.3", "CN", &["COMMONNAME"]),
    ("2.5.4.4", "SN", &["SURNAME"]),
    ("2.5.4.5", "serialNumber", &[]),
    ("2.5.4.6", "C", &["COUNTRYNAME"]),
    ("2.5.4.7", "L", &["LOCALITYNAME"]),
    ("2.5.4.8", "ST", &["S", "STATEORPROVINCENAME"]),
    ("2.5.4.9", "STREET", &["STREETADDRESS"]),
    ("2.5.4.10", "O", &["ORGANIZATIONNAME"]),
    ("2.5.4.11", "OU", &["ORGANIZATIONALUNITNAME"]),
    ("2.5.4.12", "title", &["T"]),
    ("2.5.4.17", "postalCode", &[]),
    ("2.5.4.42", "GN", &["GIVENNAME"]),
    ("2.5.4.43", "initials", &[]),
    ("2.5.4.44", "generationQualifier", &[]),
    ("2.5.4.46", "dnQualifier", &[]),
    ("2.5.4.65", "pseudonym", &[]),
    ("2.5.4.97", "organizationIdentifier", &[]),
    ("0.9.2342.19200300.100.1.1", "UID", &["USERID"]),
    ("0.9.2342.19200300.100.1.25", "DC", &["DOMAINCOMPONENT"]),
    ("1.2.840.113549.1.9.1", "emailAddress", &["E", "EMAIL"]),
];

/// Canonical spelling of an attribute type written in a string (name, alias, `OID.x.y` or
/// `x.y`). Unknown names are refused only if they are not RFC 4512 descriptors.
fn canonical_type(raw: &str) -> Option<String> {
    let t = raw.trim();
    let t = t
        .strip_prefix("OID.")
        .or_else(|| t.strip_prefix("oid."))
        .unwrap_or(t);
    for (oid, name, aliases) in ATTRIBUTE_TYPES {
        if *oid == t
            || name.eq_ignore_ascii_case(t)
            || aliases.iter().any(|a| a.eq_ignore_ascii_case(t))
        {
            return Some((*name).to_string());
        }
    }
    // RFC 4514 §3: attributeType = descr / numericoid.
    let is_descr = t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let is_oid = !t.is_empty()
        && t.split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    (is_descr || is_oid).then(|| t.to_string())
}

/// Canonical name of an attribute type found in a certificate, the dotted OID when unknown.
fn name_for_oid(oid: &str) -> String {
    ATTRIBUTE_TYPES
        .iter()
        .find(|(o, _, _)| *o == oid)
        .map(|(_, name, _)| (*name).to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// Whether `rest` (the text after a `,` or `+`) starts a new `type=` pair. The whitelist is
/// produced by tools that do not always escape commas inside values (`O=Foo, Inc.`); a
/// separator that is not followed by an attribute type is kept as part of the value.
fn starts_attribute(rest: &str) -> bool {
    let rest = rest.trim_start();
    let Some(eq) = rest.find('=') else {
        return false;
    };
    let candidate = &rest[..eq];
    !candidate.contains([',', '+', '"', '\\']) && canonical_type(candidate).is_some()
}

impl Dn {
    /// Builds a DN from (type, value) pairs given in RFC 4514 order (CN first).
    pub fn from_pairs<I, T, V>(pairs: I) -> Dn
    where
        I: IntoIterator<Item = (T, V)>,
        T: AsRef<str>,
        V: Into<String>,
    {
        let attrs = pairs
            .into_iter()
            .map(|(t, v)| {
                let t = t.as_ref();
                (canonical_type(t).unwrap_or_else(|| t.to_string()), v.into())
            })
            .collect();
        Dn { attrs }
    }

    /// Parses an RFC 4514 string such as
    /// `CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR`.
    ///
    /// Handles backslash escapes (`\,`, `\"`, `\C3\A9`, RFC 4514 §2.4), quoted values (RFC 1779
    /// style, still produced by some tools), `;` as a legacy separator (RFC 2253 §4) and values
    /// with spaces, parentheses and accents.
    pub fn parse(s: &str) -> Result<Dn, DnError> {
        let input = s.trim();
        if input.is_empty() {
            return Err(DnError::Empty);
        }
        let mut attrs = Vec::new();
        let mut rest = input;
        loop {
            let eq = rest
                .find('=')
                .ok_or_else(|| DnError::MissingEquals(input.to_string()))?;
            let raw_type = &rest[..eq];
            let attr = canonical_type(raw_type).ok_or_else(|| DnError::BadAttributeType {
                dn: input.to_string(),
                attr: raw_type.trim().to_string(),
            })?;
            let (value, next) = parse_value(&rest[eq + 1..], input)?;
            attrs.push((attr, value));
            match next {
                Some(after) => rest = after,
                None => break,
            }
        }
        Ok(Dn { attrs })
    }

    /// The subject DN of a DER certificate, in RFC 4514 order (the certificate stores
    /// C … CN; RFC 4514 §2.1 prints the last RDN first).
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Result<Dn, DnError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| DnError::Certificate(format!("unreadable certificate: {e}")))?;
        let mut attrs = Vec::new();
        for rdn in parsed.subject().iter_rdn() {
            for atv in rdn.iter() {
                let name = name_for_oid(&atv.attr_type().to_id_string());
                attrs.push((name, attribute_text(atv)));
            }
        }
        attrs.reverse();
        if attrs.is_empty() {
            return Err(DnError::Certificate("the subject is empty".into()));
        }
        Ok(Dn { attrs })
    }

    /// The (type, value) pairs in RFC 4514 order.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attrs
    }

    /// The first value of an attribute type (any accepted spelling: `"CN"`, `"S"`, `"2.5.4.3"`).
    pub fn get(&self, attr: &str) -> Option<&str> {
        let wanted = canonical_type(attr)?.to_ascii_uppercase();
        self.attrs
            .iter()
            .find(|(t, _)| t.to_ascii_uppercase() == wanted)
            .map(|(_, v)| v.as_str())
    }

    /// The common name (the MTA's FQDN for an MSSanté operator certificate).
    pub fn common_name(&self) -> Option<&str> {
        self.get("CN")
    }

    /// The comparison key as one string (`C=fr,CN=lab.example,…`: sorted, lower-cased
    /// values): two DNs equal under [`PartialEq`] have the same one, so a database can look a
    /// certificate's subject up by it.
    pub fn canonical(&self) -> String {
        Dn { attrs: self.key() }.to_string()
    }

    /// The comparison key: sorted (upper-cased type, trimmed lower-cased value) pairs.
    fn key(&self) -> Vec<(String, String)> {
        let mut key: Vec<(String, String)> = self
            .attrs
            .iter()
            .map(|(t, v)| (t.to_ascii_uppercase(), v.trim().to_lowercase()))
            .collect();
        key.sort();
        key
    }
}

/// Reads one value starting right after `=`; returns it and the text after the separator
/// (None at the end of the string).
fn parse_value<'a>(s: &'a str, whole: &str) -> Result<(String, Option<&'a str>), DnError> {
    let s = s.trim_start();
    if let Some(quoted) = s.strip_prefix('"') {
        return parse_quoted(quoted, whole);
    }
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| DnError::BadEscape(whole.to_string()))?;
                if e.is_ascii_hexdigit() {
                    // RFC 4514 §2.4: `\` hexpair encodes one UTF-8 byte.
                    let (_, e2) = chars
                        .next()
                        .filter(|(_, c)| c.is_ascii_hexdigit())
                        .ok_or_else(|| DnError::BadEscape(whole.to_string()))?;
                    let pair: String = [e, e2].iter().collect();
                    bytes.push(
                        u8::from_str_radix(&pair, 16)
                            .map_err(|_| DnError::BadEscape(whole.to_string()))?,
                    );
                } else {
                    push_char(&mut bytes, e);
                }
            }
            ',' | '+' | ';' if starts_attribute(&s[i + 1..]) => {
                return Ok((finish_value(bytes, whole)?, Some(&s[i + 1..])));
            }
            _ => push_char(&mut bytes, c),
        }
    }
    Ok((finish_value(bytes, whole)?, None))
}

fn parse_quoted<'a>(s: &'a str, whole: &str) -> Result<(String, Option<&'a str>), DnError> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| DnError::UnterminatedQuote(whole.to_string()))?;
                value.push(e);
            }
            '"' => {
                let after = s[i + 1..].trim_start();
                if after.is_empty() {
                    return Ok((value, None));
                }
                let mut it = after.chars();
                return match it.next() {
                    Some(',' | '+' | ';') => Ok((value, Some(it.as_str()))),
                    _ => Err(DnError::TrailingAfterQuote(whole.to_string())),
                };
            }
            _ => value.push(c),
        }
    }
    Err(DnError::UnterminatedQuote(whole.to_string()))
}

fn push_char(bytes: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn finish_value(bytes: Vec<u8>, whole: &str) -> Result<String, DnError> {
    let s = String::from_utf8(bytes).map_err(|_| DnError::BadUtf8(whole.to_string()))?;
    Ok(s.trim().to_string())
}

/// The text of a certificate attribute value. Besides the string types x509-parser reads,
/// old CAs use BMPString (UTF-16BE), UniversalString (UCS-4) and TeletexString (read as
/// Latin-1, the usual practice); anything else is shown as `#hex` (RFC 4514 §2.4).
fn attribute_text(atv: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    if let Ok(s) = atv.as_str() {
        return s.to_string();
    }
    let data = atv.attr_value().data;
    match atv.attr_value().tag() {
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        Tag::UniversalString => data
            .chunks_exact(4)
            .filter_map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Tag::TeletexString => data.iter().map(|&b| char::from(b)).collect(),
        _ => format!("#{}", hex::encode(atv.as_slice())),
    }
}

/// RFC 4514 §2.4 escaping of one value.
fn escape_value(v: &str, out: &mut fmt::Formatter<'_>) -> fmt::Result {
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let needs = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if c == '\0' {
            out.write_str("\\00")?;
            continue;
        }
        if needs {
            out.write_str("\\")?;
        }
        write!(out, "{c}")?;
    }
    Ok(())
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (t, v)) in self.attrs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}=")?;
            escape_value(v, f)?;
        }
        Ok(())
    }
}

impl PartialEq for Dn {
    fn eq(&self, other: &Dn) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Dn {}

impl Hash for Dn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl std::str::FromStr for Dn {
    type Err = DnError;
    fn from_str(s: &str) -> Result<Dn, DnError> {
        Dn::parse(s)
    }
}

/// The validity period of a DER certificate, in seconds since the epoch: (not before,
/// not after). For `doctor`'s expiry warning; verification proper is `verify`'s.
pub fn certificate_validity(cert: &CertificateDer<'_>) -> Result<(i64, i64), DnError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| DnError::Certificate(format!("unreadable certificate: {e}")))?;
    let validity = parsed.validity();
    Ok((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIPIH: &str =
        "CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR";

    #[test]
    fn parses_whitelist_dn_in_order() {
        let dn = Dn::parse(MIPIH).unwrap();
        let types: Vec<&str> = dn.attributes().iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["CN", "OU", "O", "ST", "C"]);
        assert_eq!(dn.common_name(), Some("medimail-asip.mipih.fr"));
        assert_eq!(dn.get("S"), Some("Haute-Garonne (31)"));
        assert_eq!(dn.get("2.5.4.10"), Some("GIP MIPIH"));
        assert_eq!(dn.to_string(), MIPIH);
    }

    #[test]
    fn comparison_ignores_order_case_and_surrounding_spaces() {
        let a = Dn::parse(MIPIH).unwrap();
        let b = Dn::parse(
            "c=fr, st=HAUTE-GARONNE (31) , o=gip mipih,ou=318310021300028,cn=MEDIMAIL-ASIP.MIPIH.FR",
        )
        .unwrap();
        assert_eq!(a, b);
        let accents_a = Dn::parse("CN=x,ST=Bouches-du-Rhône (13),C=FR").unwrap();
        let accents_b = Dn::parse("CN=x,ST=BOUCHES-DU-RHÔNE (13),C=FR").unwrap();
        assert_eq!(accents_a, accents_b);
    }

    #[test]
    fn a_different_value_or_missing_attribute_differs() {
        let a = Dn::parse(MIPIH).unwrap();
        let other_cn = Dn::parse(
            "CN=other.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR",
        )
        .unwrap();
        let fewer =
            Dn::parse("CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,C=FR").unwrap();
        assert_ne!(a, other_cn);
        assert_ne!(a, fewer);
    }

    #[test]
    fn escapes_and_quotes() {
        let dn = Dn::parse(r#"CN=a\,b,O="Foo, Inc.",OU=caf\C3\A9,L=x\+y"#).unwrap();
        assert_eq!(dn.get("CN"), Some("a,b"));
        assert_eq!(dn.get("O"), Some("Foo, Inc."));
        assert_eq!(dn.get("OU"), Some("café"));
        assert_eq!(dn.get("L"), Some("x+y"));
        // Display re-escapes and the result parses back to the same DN.
        let printed = dn.to_string();
        assert_eq!(printed, r"CN=a\,b,O=Foo\, Inc.,OU=café,L=x\+y");
        assert_eq!(Dn::parse(&printed).unwrap(), dn);
    }

    #[test]
    fn unescaped_comma_not_followed_by_attribute_stays_in_value() {
        let dn = Dn::parse("CN=mss.example.fr,O=Foo, Inc.,C=FR").unwrap();
        assert_eq!(dn.get("O"), Some("Foo, Inc."));
        assert_eq!(dn.get("C"), Some("FR"));
    }

    #[test]
    fn aliases_and_oids() {
        let dn = Dn::parse("E=a@b.fr,OID.2.5.4.3=host,2.5.4.6=FR,1.2.3.4=x").unwrap();
        assert_eq!(dn.to_string(), "emailAddress=a@b.fr,CN=host,C=FR,1.2.3.4=x");
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(Dn::parse("  "), Err(DnError::Empty));
        assert!(matches!(Dn::parse("CN"), Err(DnError::MissingEquals(_))));
        assert!(matches!(
            Dn::parse("C N=x"),
            Err(DnError::BadAttributeType { .. })
        ));
        assert!(matches!(
            Dn::parse(r#"CN="open"#),
            Err(DnError::UnterminatedQuote(_))
        ));
        assert!(matches!(Dn::parse(r"CN=a\"), Err(DnError::BadEscape(_))));
        assert!(matches!(Dn::parse(r"CN=\FF"), Err(DnError::BadUtf8(_))));
    }

    #[test]
    fn hash_agrees_with_eq() {
        use std::collections::HashSet;
        let mut set = HashSet::new();
        set.insert(Dn::parse(MIPIH).unwrap());
        assert!(set.contains(
            &Dn::parse(
                "C=FR,ST=Haute-Garonne (31),O=GIP MIPIH,OU=318310021300028,CN=medimail-asip.mipih.fr"
            )
            .unwrap()
        ));
    }
}
