//! The MSSanté whitelist, `listeblanchemssante.xml` (docs/mssante.md §3).
//!
//! ```text
//! ListeBlancheMSSante (xmlns="https://listeblanche.mssante.fr/schema")
//! ├── DateDeGeneration
//! └── ListeDomaines
//!     └── Domaine*  (Nom, Description, DNCertificatOperateur, ResponsableContact,
//!                    SupportContact, DateMAJ)
//! ```
//!
//! One `Domaine` element per (domain, operator certificate DN) pair: a domain served by several
//! MTAs appears several times.
//!
//! # Decision record: what the parser accepts
//!
//! **Context.** The list decides which operators may exchange mail with us, and ANS publishes
//! it daily. The public copy of 2025-03-13 (kept in `tests/fixtures/`) ends right after
//! `</ListeDomaines>` without the closing `</ListeBlancheMSSante>` tag, and its published
//! SHA-256 matches that exact file: the defect is in the source, not a download accident, so
//! a strict XML parser would refuse the only list there is.
//!
//! **Decision.**
//! - Accept a document whose *only* defect is a missing root end tag, provided a complete
//!   `</ListeDomaines>` was read and nothing but whitespace or comments follows it. Every
//!   entry was then read in full: nothing is lost.
//! - Refuse everything else that is malformed, with an error naming the problem and its line:
//!   a document truncated inside `ListeDomaines` or a `Domaine` (a cut download would otherwise
//!   silently drop operators), a missing `ListeDomaines` or `DateDeGeneration`, a `Domaine`
//!   without `Nom` or `DNCertificatOperateur`, an unreadable DN, a duplicated field, another
//!   root element or namespace, mismatched tags, bad entities.
//! - Refuse a list with zero entries: an empty list would make us refuse every peer, and is far
//!   more likely a publishing accident than the truth. Never run with an empty list by accident.
//! - Ignore unknown elements (inside `Domaine`, or under the root), so that ANS can add a field
//!   without stopping every operator's refresh.
//! - Domain names are compared case-insensitively (RFC 4343 §2): they are stored lower-cased,
//!   with a trailing dot removed.
//!
//! **Consequences.** A refused list never replaces the live one (see `sync`): the server keeps
//! the last good copy and the error tells the operator what was wrong.

use std::collections::HashMap;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::dn::{Dn, DnError};

/// The XML namespace of the whitelist.
pub const NAMESPACE: &str = "https://listeblanche.mssante.fr/schema";
const ROOT: &str = "ListeBlancheMSSante";

/// One (domain, operator certificate DN) pair of the whitelist.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The domain, lower-cased.
    pub domain: String,
    pub description: String,
    pub dn: Dn,
    pub responsable_contact: String,
    pub support_contact: String,
    /// `DateMAJ`, as written (ISO 8601).
    pub updated: String,
}

/// Why a whitelist document was refused.
#[derive(Debug, thiserror::Error)]
pub enum WhitelistError {
    #[error("whitelist line {line}: malformed XML: {message}")]
    Xml { line: usize, message: String },
    #[error("whitelist: the root element is <{found}>, expected <{ROOT}> in namespace {NAMESPACE}")]
    WrongRoot { found: String },
    #[error("whitelist: the document ends (line {line}) inside <{open}>: it is truncated")]
    Truncated { line: usize, open: String },
    #[error("whitelist: no <ListeDomaines> element")]
    MissingList,
    #[error("whitelist: no <DateDeGeneration> element")]
    MissingGenerationDate,
    #[error("whitelist line {line}: <Domaine> has no <{field}>")]
    MissingField { line: usize, field: &'static str },
    #[error("whitelist line {line}: <{field}> appears twice in one element")]
    Duplicate { line: usize, field: String },
    #[error("whitelist line {line}: {source}")]
    BadDn { line: usize, source: DnError },
    #[error("whitelist line {line}: unexpected content after </ListeDomaines>: {what}")]
    AfterList { line: usize, what: String },
    #[error("whitelist: the list has no entry (refused: never run with an empty list by accident)")]
    Empty,
}

/// A parsed whitelist: its entries and an index by domain.
#[derive(Debug, Clone)]
pub struct TrustList {
    generated_at: String,
    entries: Vec<Entry>,
    by_domain: HashMap<String, Vec<usize>>,
}

/// Lower-cased domain without trailing dot: DNS names are case-insensitive (RFC 4343 §2) and
/// `example.fr.` is the same name as `example.fr`.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_lowercase()
}

impl TrustList {
    /// Parses a whitelist document, with the policy described in the module documentation.
    pub fn parse(xml: &[u8]) -> Result<TrustList, WhitelistError> {
        let (generated_at, entries) = Parser::new(xml).run()?;
        if entries.is_empty() {
            return Err(WhitelistError::Empty);
        }
        let mut by_domain: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_domain.entry(e.domain.clone()).or_default().push(i);
        }
        Ok(TrustList {
            generated_at,
            entries,
            by_domain,
        })
    }

    /// `DateDeGeneration`, as written (ISO 8601).
    pub fn generated_at(&self) -> &str {
        &self.generated_at
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of distinct domains.
    pub fn domain_count(&self) -> usize {
        self.by_domain.len()
    }

    /// Whether the domain appears in the list (case-insensitive).
    pub fn is_listed(&self, domain: &str) -> bool {
        self.by_domain.contains_key(&normalize_domain(domain))
    }

    /// The entries of one domain (one per operator certificate DN), in document order.
    pub fn entries_for(&self, domain: &str) -> Vec<&Entry> {
        self.by_domain
            .get(&normalize_domain(domain))
            .map(|idx| idx.iter().map(|&i| &self.entries[i]).collect())
            .unwrap_or_default()
    }

    /// Whether `dn` is listed for `domain` (docs/mssante.md §3: the sender domain must be whitelisted with
    /// that certificate's DN). DNs compare as described in [`crate::dn`].
    pub fn dn_allowed(&self, domain: &str, dn: &Dn) -> bool {
        self.entries_for(domain).iter().any(|e| &e.dn == dn)
    }
}

/// Fields of one `Domaine` being read.
#[derive(Default)]
struct DomaineFields {
    /// Byte offset of `<Domaine>`; turned into a line number only for errors (counting lines
    /// on every element would make parsing quadratic).
    start: u64,
    fields: HashMap<&'static str, String>,
}

const FIELDS: [&str; 6] = [
    "Nom",
    "Description",
    "DNCertificatOperateur",
    "ResponsableContact",
    "SupportContact",
    "DateMAJ",
];

/// Where we are in the document.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    BeforeRoot,
    InRoot,
    InList,
    InDomaine,
    AfterList,
    Done,
}

struct Parser<'a> {
    xml: &'a [u8],
    reader: NsReader<&'a [u8]>,
    state: State,
    /// Names of the open elements, with the byte offset where each one started.
    stack: Vec<(String, u64)>,
    /// Text collected for the field being read (a simple element under Domaine or the root).
    text: Option<String>,
    generated_at: Option<String>,
    list_seen: bool,
    current: Option<DomaineFields>,
    entries: Vec<Entry>,
}

impl<'a> Parser<'a> {
    fn new(xml: &'a [u8]) -> Parser<'a> {
        let mut reader = NsReader::from_reader(xml);
        // Mismatched end tags are errors; we trim text ourselves.
        reader.config_mut().check_end_names = true;
        Parser {
            xml,
            reader,
            state: State::BeforeRoot,
            stack: Vec::new(),
            text: None,
            generated_at: None,
            list_seen: false,
            current: None,
            entries: Vec::new(),
        }
    }

    fn line_at(&self, pos: u64) -> usize {
        let end = (pos as usize).min(self.xml.len());
        1 + self.xml[..end].iter().filter(|&&b| b == b'\n').count()
    }

    fn line(&self) -> usize {
        self.line_at(self.reader.buffer_position())
    }

    fn xml_error(&self, message: impl std::fmt::Display) -> WhitelistError {
        WhitelistError::Xml {
            line: self.line_at(self.reader.error_position()),
            message: message.to_string(),
        }
    }

    fn run(mut self) -> Result<(String, Vec<Entry>), WhitelistError> {
        loop {
            let (ns, event) = match self.reader.read_resolved_event() {
                Ok(x) => x,
                Err(e) => return Err(self.xml_error(e)),
            };
            let in_ns = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NAMESPACE.as_bytes());
            match event {
                Event::Start(e) => self.start(&e, in_ns, false)?,
                Event::Empty(e) => self.start(&e, in_ns, true)?,
                Event::End(_) => self.end()?,
                Event::Text(t) => {
                    let s = t.xml_content().map_err(|e| self.xml_error(e))?;
                    self.text_content(&s)?;
                }
                Event::CData(t) => {
                    let s = t.decode().map_err(|e| self.xml_error(e))?;
                    self.text_content(&s)?;
                }
                Event::GeneralRef(r) => {
                    let s = self.resolve_reference(&r)?;
                    self.text_content(&s)?;
                }
                Event::Eof => return self.finish(),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }

    /// `&amp;`, `&#233;` …: only the predefined entities and character references exist in a
    /// document without DTD (XML 1.0 §4.6, §4.1).
    fn resolve_reference(
        &self,
        r: &quick_xml::events::BytesRef<'_>,
    ) -> Result<String, WhitelistError> {
        if let Some(c) = r.resolve_char_ref().map_err(|e| self.xml_error(e))? {
            return Ok(c.to_string());
        }
        let name = r.decode().map_err(|e| self.xml_error(e))?;
        quick_xml::escape::resolve_predefined_entity(&name)
            .map(str::to_string)
            .ok_or_else(|| self.xml_error(format!("unknown entity &{name};")))
    }

    fn start(
        &mut self,
        e: &BytesStart<'_>,
        in_ns: bool,
        empty: bool,
    ) -> Result<(), WhitelistError> {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let pos = self.reader.buffer_position();
        match self.state {
            State::BeforeRoot => {
                if name != ROOT || !in_ns {
                    return Err(WhitelistError::WrongRoot {
                        found: qualified(e, in_ns),
                    });
                }
                self.state = if empty { State::Done } else { State::InRoot };
            }
            State::InRoot if self.stack.len() == 1 && name == "ListeDomaines" => {
                if self.list_seen {
                    return Err(WhitelistError::Duplicate {
                        line: self.line_at(pos),
                        field: name,
                    });
                }
                self.list_seen = true;
                self.state = if empty {
                    State::AfterList
                } else {
                    State::InList
                };
            }
            State::InRoot if self.stack.len() == 1 && name == "DateDeGeneration" => {
                self.text = Some(String::new())
            }
            State::InList if self.stack.len() == 2 && name == "Domaine" => {
                self.current = Some(DomaineFields {
                    start: pos,
                    ..Default::default()
                });
                self.state = State::InDomaine;
                if empty {
                    self.end_domaine()?;
                }
            }
            State::InDomaine if self.stack.len() == 3 && FIELDS.contains(&name.as_str()) => {
                self.text = Some(String::new());
            }
            State::Done => {
                return Err(WhitelistError::Xml {
                    line: self.line_at(pos),
                    message: format!("<{name}> after the end of the root element"),
                });
            }
            State::AfterList => {
                return Err(WhitelistError::AfterList {
                    line: self.line_at(pos),
                    what: format!("<{name}>"),
                });
            }
            // Unknown elements are ignored (forward compatibility), their text too.
            _ => self.text = None,
        }
        if !empty {
            self.stack.push((name, pos));
        } else if self.text.is_some() {
            // `<Description/>`: an empty field.
            self.store_field(&name, String::new())?;
        }
        Ok(())
    }

    fn text_content(&mut self, s: &str) -> Result<(), WhitelistError> {
        if let Some(text) = self.text.as_mut() {
            text.push_str(s);
        } else if self.state == State::AfterList && !s.trim().is_empty() {
            return Err(WhitelistError::AfterList {
                line: self.line(),
                what: format!("text {:?}", s.trim()),
            });
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), WhitelistError> {
        let Some((name, _)) = self.stack.pop() else {
            return Err(self.xml_error("end tag without start tag"));
        };
        if let Some(text) = self.text.take() {
            self.store_field(&name, text)?;
        }
        match (self.state, self.stack.len(), name.as_str()) {
            (State::InDomaine, 2, "Domaine") => self.end_domaine()?,
            (State::InList, 1, "ListeDomaines") => self.state = State::AfterList,
            (State::InRoot | State::AfterList, 0, _) => self.state = State::Done,
            _ => {}
        }
        Ok(())
    }

    fn store_field(&mut self, name: &str, text: String) -> Result<(), WhitelistError> {
        let value = text.trim().to_string();
        if self.state == State::InRoot && name == "DateDeGeneration" {
            if self.generated_at.replace(value).is_some() {
                return Err(WhitelistError::Duplicate {
                    line: self.line(),
                    field: name.into(),
                });
            }
            return Ok(());
        }
        let Some(field) = FIELDS.iter().copied().find(|f| *f == name) else {
            return Ok(());
        };
        if let Some(current) = self.current.as_mut()
            && current.fields.insert(field, value).is_some()
        {
            return Err(WhitelistError::Duplicate {
                line: self.line(),
                field: name.into(),
            });
        }
        Ok(())
    }

    fn end_domaine(&mut self) -> Result<(), WhitelistError> {
        self.state = State::InList;
        let Some(mut d) = self.current.take() else {
            return Ok(());
        };
        let line = || self.line_at(d.start);
        let domain = normalize_domain(&d.fields.remove("Nom").unwrap_or_default());
        let dn_text = d.fields.remove("DNCertificatOperateur").unwrap_or_default();
        if domain.is_empty() {
            return Err(WhitelistError::MissingField {
                line: line(),
                field: "Nom",
            });
        }
        if dn_text.is_empty() {
            return Err(WhitelistError::MissingField {
                line: line(),
                field: "DNCertificatOperateur",
            });
        }
        let dn = Dn::parse(&dn_text).map_err(|source| WhitelistError::BadDn {
            line: line(),
            source,
        })?;
        let mut take = |f: &'static str| d.fields.remove(f).unwrap_or_default();
        self.entries.push(Entry {
            domain,
            description: take("Description"),
            dn,
            responsable_contact: take("ResponsableContact"),
            support_contact: take("SupportContact"),
            updated: take("DateMAJ"),
        });
        Ok(())
    }

    /// End of input: the one tolerated defect is an unclosed root after a complete list.
    fn finish(self) -> Result<(String, Vec<Entry>), WhitelistError> {
        let line = self.line();
        match self.state {
            State::BeforeRoot => {
                return Err(WhitelistError::Xml {
                    line,
                    message: "no root element".into(),
                });
            }
            State::InList | State::InDomaine => {
                let (open, start) = self.stack.last().cloned().unwrap_or_default();
                return Err(WhitelistError::Truncated {
                    line,
                    open: format!(
                        "{open}> opened on line {}, inside <ListeDomaines",
                        self.line_at(start)
                    ),
                });
            }
            State::InRoot if self.stack.len() > 1 => {
                let (open, _) = self.stack.last().cloned().unwrap_or_default();
                return Err(WhitelistError::Truncated { line, open });
            }
            // Root closed, or only the root left open after the list (tolerated, see above),
            // or a root without a list (reported just below).
            State::InRoot | State::AfterList | State::Done => {}
        }
        if !self.list_seen {
            return Err(WhitelistError::MissingList);
        }
        let generated_at = self
            .generated_at
            .ok_or(WhitelistError::MissingGenerationDate)?;
        if self.state == State::AfterList {
            tracing::debug!("whitelist: missing </{ROOT}> after a complete list, accepted");
        }
        Ok((generated_at, self.entries))
    }
}

fn qualified(e: &BytesStart<'_>, in_ns: bool) -> String {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    if in_ns {
        name
    } else {
        format!("{name} (outside namespace {NAMESPACE})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="{NAMESPACE}"><DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>{body}"#
        )
    }

    const ONE: &str = "<ListeDomaines><Domaine><Nom>A.Example.FR</Nom><Description>x &amp; y</Description>\
        <DNCertificatOperateur>CN=mss.example.fr,OU=1,O=Ex,ST=Paris (75),C=FR</DNCertificatOperateur>\
        <ResponsableContact>r</ResponsableContact><SupportContact>s</SupportContact>\
        <DateMAJ>2025-01-01T00:00:00Z</DateMAJ><Futur>ignored</Futur></Domaine></ListeDomaines>";

    #[test]
    fn parses_a_well_formed_document() {
        let list =
            TrustList::parse(doc(&format!("{ONE}</ListeBlancheMSSante>")).as_bytes()).unwrap();
        assert_eq!(list.generated_at(), "2025-03-13T14:54:10Z");
        let e = &list.entries()[0];
        assert_eq!(e.domain, "a.example.fr");
        assert_eq!(e.description, "x & y");
        assert_eq!(e.support_contact, "s");
        assert_eq!(e.updated, "2025-01-01T00:00:00Z");
        assert!(list.is_listed("a.example.fr."));
    }

    #[test]
    fn tolerates_only_the_missing_root_end_tag() {
        let list = TrustList::parse(doc(ONE).as_bytes()).unwrap();
        assert_eq!(list.entries().len(), 1);
        let err = TrustList::parse(doc(&format!("{ONE}<Extra/>")).as_bytes()).unwrap_err();
        assert!(matches!(err, WhitelistError::AfterList { .. }), "{err}");
        let err = TrustList::parse(doc(&format!("{ONE}garbage")).as_bytes()).unwrap_err();
        assert!(matches!(err, WhitelistError::AfterList { .. }), "{err}");
    }

    #[test]
    fn refuses_a_domaine_without_nom_or_dn() {
        let no_nom = doc(
            "<ListeDomaines><Domaine><DNCertificatOperateur>CN=a</DNCertificatOperateur></Domaine></ListeDomaines>",
        );
        let err = TrustList::parse(no_nom.as_bytes()).unwrap_err();
        assert!(
            matches!(err, WhitelistError::MissingField { field: "Nom", .. }),
            "{err}"
        );
        let no_dn = doc("<ListeDomaines><Domaine><Nom>a.fr</Nom></Domaine></ListeDomaines>");
        let err = TrustList::parse(no_dn.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("DNCertificatOperateur"), "{err}");
    }

    #[test]
    fn refuses_missing_list_and_wrong_namespace_and_duplicates() {
        let err = TrustList::parse(doc("</ListeBlancheMSSante>").as_bytes()).unwrap_err();
        assert!(matches!(err, WhitelistError::MissingList), "{err}");
        let other_ns = r#"<ListeBlancheMSSante xmlns="urn:other"><DateDeGeneration>x</DateDeGeneration></ListeBlancheMSSante>"#;
        let err = TrustList::parse(other_ns.as_bytes()).unwrap_err();
        assert!(matches!(err, WhitelistError::WrongRoot { .. }), "{err}");
        let twice =
            doc("<ListeDomaines><Domaine><Nom>a.fr</Nom><Nom>b.fr</Nom></Domaine></ListeDomaines>");
        let err = TrustList::parse(twice.as_bytes()).unwrap_err();
        assert!(matches!(err, WhitelistError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn refuses_mismatched_tags_with_a_line() {
        let bad = doc("<ListeDomaines>\n<Domaine>\n<Nom>a.fr</Description>");
        let err = TrustList::parse(bad.as_bytes()).unwrap_err();
        match err {
            WhitelistError::Xml { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn refuses_a_bad_dn_with_its_line() {
        let bad = doc(
            "<ListeDomaines>\n<Domaine><Nom>a.fr</Nom><DNCertificatOperateur>C N=x</DNCertificatOperateur></Domaine></ListeDomaines>",
        );
        let err = TrustList::parse(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(err, WhitelistError::BadDn { line: 2, .. }),
            "{err}"
        );
    }
}
