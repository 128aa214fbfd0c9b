//! What an LPS needs to file a report without downloading it, read from the `IHE_XDM.zip`
//! attachment MSSanté messages carry (docs/mssante.md §5; IHE ITI TF-1 §16 XDM, ebRIM 3.0
//! metadata of ITI TF-3 §4.2): the patient's id (`XDSDocumentEntry.patientId`, the INS in
//! France) and each document's class, type and format codes. No I/O: bytes in, facts out.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;
use utoipa::ToSchema;

/// ITI TF-3 Table 4.2.5-1 identification and classification schemes.
const DOCUMENT_ENTRY: &str = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1";
const ENTRY_PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
const SET_PATIENT_ID: &str = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446";
const CLASS_CODE: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
const TYPE_CODE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
const FORMAT_CODE: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
/// INS assigning authorities (CI-SIS): NIR, NIA, and the test and demonstration NIRs.
const INS_OIDS: &[&str] = &[
    "1.2.250.1.213.1.4.8",
    "1.2.250.1.213.1.4.9",
    "1.2.250.1.213.1.4.10",
    "1.2.250.1.213.1.4.11",
];
/// The metadata file's name inside a submission set folder (ITI TF-1 §16.1.2.1).
const METADATA_FILE: &str = "METADATA.XML";
/// A zip whose METADATA.XML inflates past this is refused (zip bombs).
const MAX_METADATA: u64 = 8 * 1024 * 1024;

/// A coded value (`code`, its scheme, its display name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Code {
    pub code: String,
    pub scheme: Option<String>,
    pub display: Option<String>,
}

/// The patient a document is about, as `patientId` gives it (`id^^^&OID&ISO`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct PatientId {
    pub id: String,
    /// The assigning authority's OID.
    pub authority: Option<String>,
    /// The authority is one of the INS's (NIR, NIA, test, demonstration).
    pub is_ins: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct XdmDocument {
    pub title: Option<String>,
    pub mime_type: Option<String>,
    /// The file in the archive (the `URI` slot).
    pub uri: Option<String>,
    pub patient: Option<PatientId>,
    pub class_code: Option<Code>,
    pub type_code: Option<Code>,
    pub format_code: Option<Code>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct XdmSummary {
    /// The submission set's patient (the documents' when the set names none).
    pub patient: Option<PatientId>,
    pub documents: Vec<XdmDocument>,
}

fn patient_id(value: &str) -> PatientId {
    // CX: id^^^&OID&ISO (HL7 v2.5 §2.A.14, as XDS uses it).
    let mut parts = value.split("^^^");
    let id = parts.next().unwrap_or("").trim().to_string();
    let authority = parts
        .next()
        .and_then(|a| a.split('&').nth(1))
        .map(str::to_string)
        .filter(|a| !a.is_empty());
    let is_ins = authority.as_deref().is_some_and(|a| INS_OIDS.contains(&a));
    PatientId {
        id,
        authority,
        is_ins,
    }
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Where the reader is, as far as the facts we keep are concerned.
#[derive(Default)]
struct Walk {
    summary: XdmSummary,
    document: Option<XdmDocument>,
    /// The classification being read: its scheme and what it holds so far.
    classification: Option<(String, Code)>,
    /// The name of the slot being read (`codingScheme`, `URI`).
    slot: Option<String>,
    in_value: bool,
    /// Inside a `Name` element (of the object, a classification or an identifier).
    in_name: bool,
    /// Inside an `ExternalIdentifier`, whose `Name` names the identifier, not the document.
    in_identifier: bool,
}

impl Walk {
    fn start(&mut self, e: &BytesStart<'_>) {
        match e.local_name().as_ref() {
            b"ExtrinsicObject" if attr(e, b"objectType").as_deref() == Some(DOCUMENT_ENTRY) => {
                self.document = Some(XdmDocument {
                    mime_type: attr(e, b"mimeType"),
                    ..XdmDocument::default()
                });
            }
            b"Classification" => {
                let scheme = attr(e, b"classificationScheme").unwrap_or_default();
                let code = Code {
                    code: attr(e, b"nodeRepresentation").unwrap_or_default(),
                    ..Code::default()
                };
                self.classification = Some((scheme, code));
            }
            b"ExternalIdentifier" => {
                self.in_identifier = true;
                self.identifier(e);
            }
            b"Slot" => self.slot = attr(e, b"name"),
            b"Value" => self.in_value = true,
            b"Name" => self.in_name = true,
            b"LocalizedString" if self.in_name && !self.in_identifier => {
                let value = attr(e, b"value");
                match (&mut self.classification, &mut self.document) {
                    (Some((_, code)), _) => code.display = value,
                    (None, Some(doc)) => doc.title = value,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn identifier(&mut self, e: &BytesStart<'_>) {
        let scheme = attr(e, b"identificationScheme").unwrap_or_default();
        let Some(value) = attr(e, b"value") else {
            return;
        };
        match (scheme.as_str(), &mut self.document) {
            (ENTRY_PATIENT_ID, Some(doc)) => doc.patient = Some(patient_id(&value)),
            (SET_PATIENT_ID, _) => self.summary.patient = Some(patient_id(&value)),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if !self.in_value {
            return;
        }
        match (
            self.slot.as_deref(),
            &mut self.classification,
            &mut self.document,
        ) {
            (Some("codingScheme"), Some((_, code)), _) => code.scheme = Some(text.to_string()),
            (Some("URI"), None, Some(doc)) => doc.uri = Some(text.to_string()),
            _ => {}
        }
    }

    fn end(&mut self, local: &[u8]) {
        match local {
            b"ExtrinsicObject" => {
                if let Some(doc) = self.document.take() {
                    self.summary.documents.push(doc);
                }
            }
            b"Classification" => {
                let Some((scheme, code)) = self.classification.take() else {
                    return;
                };
                let Some(doc) = self.document.as_mut() else {
                    return;
                };
                match scheme.as_str() {
                    CLASS_CODE => doc.class_code = Some(code),
                    TYPE_CODE => doc.type_code = Some(code),
                    FORMAT_CODE => doc.format_code = Some(code),
                    _ => {}
                }
            }
            b"ExternalIdentifier" => self.in_identifier = false,
            b"Slot" => self.slot = None,
            b"Value" => self.in_value = false,
            b"Name" => self.in_name = false,
            _ => {}
        }
    }
}

/// The facts of one `METADATA.XML`.
pub fn read_metadata(xml: &[u8]) -> Result<XdmSummary, String> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut walk = Walk::default();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => walk.start(&e),
            Ok(Event::Empty(e)) => {
                walk.start(&e);
                walk.end(e.local_name().as_ref());
            }
            Ok(Event::End(e)) => walk.end(e.local_name().as_ref()),
            Ok(Event::Text(t)) => {
                if let Ok(text) = t.decode() {
                    walk.text(text.trim());
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "METADATA.XML at byte {}: {e}",
                    reader.error_position()
                ));
            }
        }
        buf.clear();
    }
    let mut summary = walk.summary;
    if summary.patient.is_none() {
        summary.patient = summary.documents.iter().find_map(|d| d.patient.clone());
    }
    Ok(summary)
}

/// The facts of an `IHE_XDM.zip`: every `…/METADATA.XML` of its submission sets.
pub fn read_xdm_zip(bytes: &[u8]) -> Result<XdmSummary, String> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("IHE_XDM.zip: {e}"))?;
    let mut summary = XdmSummary::default();
    let mut found = false;
    for index in 0..archive.len() {
        let file = archive
            .by_index(index)
            .map_err(|e| format!("IHE_XDM.zip: member {index}: {e}"))?;
        let name = file.name().map(|n| n.into_owned()).unwrap_or_default();
        let base = name.rsplit('/').next().unwrap_or(&name);
        if !base.eq_ignore_ascii_case(METADATA_FILE) {
            continue;
        }
        let mut xml = Vec::new();
        file.take(MAX_METADATA + 1)
            .read_to_end(&mut xml)
            .map_err(|e| format!("IHE_XDM.zip: {name}: {e}"))?;
        if xml.len() as u64 > MAX_METADATA {
            return Err(format!(
                "IHE_XDM.zip: {name} is larger than {MAX_METADATA} bytes"
            ));
        }
        let set = read_metadata(&xml)?;
        summary.patient = summary.patient.or(set.patient);
        summary.documents.extend(set.documents);
        found = true;
    }
    match found {
        true => Ok(summary),
        false => Err("IHE_XDM.zip: no METADATA.XML".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const METADATA: &str = include_str!("../../tests/fixtures/METADATA.XML");

    #[test]
    fn the_fixture_gives_the_ins_and_the_document_codes() {
        let summary = read_metadata(METADATA.as_bytes()).unwrap();
        let patient = summary.patient.unwrap();
        assert_eq!(patient.id, "279035121518989");
        assert_eq!(patient.authority.as_deref(), Some("1.2.250.1.213.1.4.8"));
        assert!(patient.is_ins);
        assert_eq!(summary.documents.len(), 1);
        let doc = &summary.documents[0];
        assert_eq!(
            doc.title.as_deref(),
            Some("Compte rendu d'examens biologiques")
        );
        assert_eq!(doc.mime_type.as_deref(), Some("text/xml"));
        assert_eq!(doc.uri.as_deref(), Some("DOC0001.XML"));
        let class = doc.class_code.as_ref().unwrap();
        assert_eq!(
            (class.code.as_str(), class.scheme.as_deref()),
            ("10", Some("1.2.250.1.213.1.1.4.1"))
        );
        let kind = doc.type_code.as_ref().unwrap();
        assert_eq!(
            (kind.code.as_str(), kind.scheme.as_deref()),
            ("11502-2", Some("2.16.840.1.113883.6.1"))
        );
        assert_eq!(kind.display.as_deref(), Some("CR d'examens biologiques"));
        let format = doc.format_code.as_ref().unwrap();
        assert_eq!(format.code, "urn:ihe:lab:xd-lab:2008");
    }

    #[test]
    fn patient_ids_outside_the_ins_are_told_apart() {
        let local = patient_id("12345^^^&1.2.250.1.71.4.2.7&ISO");
        assert_eq!(local.id, "12345");
        assert!(!local.is_ins);
        assert_eq!(patient_id("999").authority, None);
    }

    #[test]
    fn broken_metadata_and_archives_are_errors() {
        assert!(read_metadata(b"<a><b></a>").is_err());
        assert!(read_xdm_zip(b"not a zip").is_err());
    }
}
