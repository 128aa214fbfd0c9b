//! Reading `Extraction_Correspondance_MSSante` (docs/mssante.md §7): a ZIP holding one `|`-separated
//! UTF-8 text file, or that text itself. One header line, then 31 columns per line, no quoting
//! and no escaping (docs/mssante.md §7). Read line by line as bytes, so that one line
//! in another encoding is rejected alone instead of stopping the import.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

use anyhow::{Context, bail};
use mssante_store::{DirectoryRow, RejectedLine};

/// First field of the header line, in both header spellings the README lists.
const HEADER_FIRST_FIELD: &str = "Type de BAL";
/// Local file header signature of a ZIP archive (APPNOTE.TXT §4.3.7).
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// Why a line was not imported; the names match the fixtures' `.rejects.json` kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectKind {
    TooFewColumns,
    TooManyColumns,
    InvalidUtf8,
    EmptyAddress,
    AddressWithoutAt,
    InvalidAddress,
}

impl RejectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::TooFewColumns => "too_few_columns",
            RejectKind::TooManyColumns => "too_many_columns",
            RejectKind::InvalidUtf8 => "invalid_utf8",
            RejectKind::EmptyAddress => "empty_address",
            RejectKind::AddressWithoutAt => "address_without_at",
            RejectKind::InvalidAddress => "invalid_address",
        }
    }
}

/// A line that could not be read as a row, with what to tell the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub kind: RejectKind,
    pub detail: String,
}

impl LineError {
    fn new(kind: RejectKind, detail: impl Into<String>) -> LineError {
        LineError {
            kind,
            detail: detail.into(),
        }
    }

    pub fn at(self, line: i64) -> RejectedLine {
        RejectedLine {
            line,
            kind: self.kind.as_str().to_string(),
            detail: self.detail,
        }
    }
}

/// How lines of this file end: the README leaves open whether real lines carry a trailing
/// `|` (the sibling `PS_LibreAcces` files do); the header tells, and every line follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub trailing_pipe: bool,
}

/// Columns of a line (docs/mssante.md §7 lists them).
pub const COLUMNS: usize = 31;

/// The stored row a line gives: its values in file order, each beside its header.
fn row_from_columns(values: [String; COLUMNS]) -> DirectoryRow {
    let [
        bal_type,                  // Type de BAL
        address,                   // Adresse BAL
        pp_id_type,                // Type Identifiant PP
        pp_id,                     // Identifiant PP
        national_id,               // Identification nationale PP
        structure_id_type,         // Type identifiant structure
        structure_id,              // Identification Structure
        service,                   // Service de rattachement
        civility,                  // Civilité d'exercice
        name,                      // Nom d'exercice
        first_name,                // Prénom d'exercice
        profession_category,       // Catégorie profession
        profession_category_label, // Libellé de catégorie profession
        profession_code,           // Code Profession
        profession_label,          // Libellé Profession
        skill_code,                // Code savoir-faire
        skill_label,               // Libellé savoir-faire
        dematerialisation,         // Dématérialisation
        structure_name,            // Raison Sociale structure BAL
        structure_brand,           // Enseigne commerciale structure BAL
        addr_l2,                   // L2COMPLEMENTLOCALISATION structure BAL
        addr_l3,                   // L3COMPLEMENTDISTRIBUTION structure BAL
        addr_number,               // L4NUMEROVOIE structure BAL
        addr_number_complement,    // L4COMPLEMENTNUMEROVOIE structure BAL
        addr_street_type,          // NL4TYPEVOIE structure BAL
        addr_street,               // L4LIBELLEVOIE structure BAL
        addr_l5,                   // L5LIEUDITMENTION structure BAL
        addr_l6,                   // L6LIGNEACHEMINEMENT structure BAL
        postcode,                  // Code postal structure BAL
        department,                // Département structure BAL
        country,                   // Pays structure BAL
    ] = values;
    DirectoryRow {
        bal_type,
        address,
        pp_id_type,
        pp_id,
        national_id,
        structure_id_type,
        structure_id,
        service,
        civility,
        name,
        first_name,
        profession_category,
        profession_category_label,
        profession_code,
        profession_label,
        skill_code,
        skill_label,
        dematerialisation,
        structure_name,
        structure_brand,
        addr_l2,
        addr_l3,
        addr_number,
        addr_number_complement,
        addr_street_type,
        addr_street,
        addr_l5,
        addr_l6,
        postcode,
        department,
        country,
    }
}

/// Strips the line terminator (LF, or CRLF on some lines).
fn strip_eol(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_suffix(b"\n") {
        line = rest;
    }
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Checks the header line and learns the layout from it.
pub fn parse_header(line: &[u8]) -> anyhow::Result<Layout> {
    let text = std::str::from_utf8(strip_eol(line)).context("the header line is not UTF-8")?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trailing_pipe = text.ends_with('|');
    let text = if trailing_pipe {
        &text[..text.len() - 1]
    } else {
        text
    };
    let columns: Vec<&str> = text.split('|').collect();
    if columns[0].trim() != HEADER_FIRST_FIELD {
        bail!(
            "not an Extraction_Correspondance_MSSante file: the header starts with {:?}, expected {HEADER_FIRST_FIELD:?}",
            columns[0].chars().take(40).collect::<String>()
        );
    }
    if columns.len() != COLUMNS {
        bail!(
            "the header has {} columns, expected {}",
            columns.len(),
            COLUMNS
        );
    }
    Ok(Layout { trailing_pipe })
}

/// Parses one data line into a row (values trimmed), or says why it is rejected.
pub fn parse_line(line: &[u8], layout: Layout) -> Result<DirectoryRow, LineError> {
    let line = strip_eol(line);
    let text = std::str::from_utf8(line).map_err(|e| {
        LineError::new(
            RejectKind::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
        )
    })?;
    let text = match (layout.trailing_pipe, text.strip_suffix('|')) {
        (true, Some(rest)) => rest,
        _ => text,
    };
    let mut fields: [String; COLUMNS] = Default::default();
    let mut count = 0;
    for value in text.split('|') {
        if count < COLUMNS {
            fields[count] = value.trim().to_string();
        }
        count += 1;
    }
    match count.cmp(&COLUMNS) {
        std::cmp::Ordering::Less => {
            return Err(LineError::new(
                RejectKind::TooFewColumns,
                format!("{count} columns, expected {COLUMNS}"),
            ));
        }
        std::cmp::Ordering::Greater => {
            return Err(LineError::new(
                RejectKind::TooManyColumns,
                format!("{count} columns, expected {COLUMNS}"),
            ));
        }
        std::cmp::Ordering::Equal => {}
    }
    check_address(&fields[1])?;
    Ok(row_from_columns(fields))
}

/// The address is the key of the directory: it must be there and look like `local@domain`.
pub fn check_address(address: &str) -> Result<(), LineError> {
    if address.is_empty() {
        return Err(LineError::new(RejectKind::EmptyAddress, "empty address"));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(LineError::new(
            RejectKind::AddressWithoutAt,
            format!("address without @: {address:?}"),
        ));
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '@';
    if local.is_empty()
        || domain.is_empty()
        || !domain.contains('.')
        || address.chars().filter(|c| *c == '@').count() > 1
        || local.chars().any(bad_char)
        || domain.chars().any(bad_char)
    {
        return Err(LineError::new(
            RejectKind::InvalidAddress,
            format!("invalid address {address:?}"),
        ));
    }
    Ok(())
}

/// What reading a whole file gave, besides the rows handed to the sink.
#[derive(Debug, Default)]
pub struct ReadSummary {
    /// Physical lines read, header included.
    pub lines: i64,
    pub rows: i64,
    /// Rejected lines, the first [`MAX_KEPT_REJECTS`] of them.
    pub rejects: Vec<RejectedLine>,
    pub rejected_total: i64,
}

/// Rejected lines kept for the report: enough for any real file, bounded for a garbage one.
pub const MAX_KEPT_REJECTS: usize = 10_000;

/// Reads an extraction (text or ZIP, detected by its first bytes) line by line and hands each
/// valid row with its line number to `sink`. Memory stays bounded by one line.
pub fn read_extraction(
    path: &Path,
    mut sink: impl FnMut(i64, DirectoryRow) -> anyhow::Result<()>,
) -> anyhow::Result<ReadSummary> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    let is_zip = file.read(&mut magic)? == 4 && &magic == ZIP_MAGIC;
    file.rewind()?;
    if !is_zip {
        return read_lines(BufReader::with_capacity(1 << 20, file), &mut sink);
    }
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("cannot read the ZIP {}", path.display()))?;
    let index = text_member(&mut archive)?;
    let member = archive.by_index(index)?;
    tracing::info!(member = %names_or_empty(member.name()), size = member.size(), "reading the extraction from the ZIP");
    read_lines(BufReader::with_capacity(1 << 20, member), &mut sink)
}

/// The real download holds one `Extraction_Correspondance_MSSante_AAAAMMJJhhmm.txt`.
fn text_member(archive: &mut zip::ZipArchive<File>) -> anyhow::Result<usize> {
    let names: Vec<String> = (0..archive.len())
        .map(|i| {
            archive
                .name_for_index(i)
                .map(names_or_empty)
                .unwrap_or_default()
        })
        .collect();
    let mut texts = (0..names.len()).filter(|&i| names[i].to_ascii_lowercase().ends_with(".txt"));
    match (texts.next(), texts.next()) {
        (Some(index), None) => Ok(index),
        (None, _) => bail!("the ZIP holds no .txt member (members: {names:?})"),
        (Some(_), Some(_)) => bail!("the ZIP holds several .txt members: {names:?}"),
    }
}

/// A member name, or empty when the archive stores it in an undecodable form.
fn names_or_empty<E>(name: Result<std::borrow::Cow<'_, str>, E>) -> String {
    name.map(|n| n.into_owned()).unwrap_or_default()
}

fn read_lines(
    mut reader: impl BufRead,
    sink: &mut impl FnMut(i64, DirectoryRow) -> anyhow::Result<()>,
) -> anyhow::Result<ReadSummary> {
    let mut summary = ReadSummary::default();
    let mut line = Vec::with_capacity(512);
    if reader.read_until(b'\n', &mut line)? == 0 {
        bail!("the extraction is empty");
    }
    let layout = parse_header(&line)?;
    summary.lines = 1;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(summary);
        }
        summary.lines += 1;
        match parse_line(&line, layout) {
            Ok(row) => {
                summary.rows += 1;
                sink(summary.lines, row)?;
            }
            Err(_) if strip_eol(&line).is_empty() => {} // a blank line (often the last) carries nothing
            Err(error) => {
                summary.rejected_total += 1;
                if summary.rejects.len() < MAX_KEPT_REJECTS {
                    summary.rejects.push(error.at(summary.lines));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        trailing_pipe: false,
    };

    fn line(address: &str, extra_columns: usize) -> Vec<u8> {
        let mut fields = vec!["PER", address];
        fields.extend(std::iter::repeat_n("", 29 + extra_columns));
        fields[9] = " MÉNARD ";
        fields.join("|").into_bytes()
    }

    #[test]
    fn a_valid_line_gives_trimmed_fields() {
        let row = parse_line(
            &[line("a.b@medecin.mssante.fr", 0), b"\r\n".to_vec()].concat(),
            LAYOUT,
        )
        .unwrap();
        assert_eq!(row.address, "a.b@medecin.mssante.fr");
        assert_eq!(row.name, "MÉNARD");
        assert_eq!(row.country, "");
    }

    #[test]
    fn each_malformation_has_its_kind() {
        let kind = |l: &[u8]| parse_line(l, LAYOUT).unwrap_err().kind;
        assert_eq!(
            kind(&line("a@b.fr", 0)[..line("a@b.fr", 0).len() - 1]),
            RejectKind::TooFewColumns
        );
        assert_eq!(kind(&line("a@b.fr", 1)), RejectKind::TooManyColumns);
        assert_eq!(kind(&line("", 0)), RejectKind::EmptyAddress);
        assert_eq!(kind(&line("ab.fr", 0)), RejectKind::AddressWithoutAt);
        assert_eq!(kind(&line("a b@c.fr", 0)), RejectKind::InvalidAddress);
        let latin1 = [
            b"PER|a@b.fr|||||||".to_vec(),
            vec![0xc9],
            line("x@y.fr", 0)[8..].to_vec(),
        ]
        .concat();
        assert_eq!(kind(&latin1), RejectKind::InvalidUtf8);
    }

    #[test]
    fn the_header_decides_the_trailing_pipe() {
        let header = "Type de BAL|Adresse BAL".to_string() + &"|x".repeat(29);
        assert!(!parse_header(header.as_bytes()).unwrap().trailing_pipe);
        let piped = parse_header(format!("{header}|\n").as_bytes()).unwrap();
        assert!(piped.trailing_pipe);
        let row = parse_line(&[line("a@b.fr", 0), b"|".to_vec()].concat(), piped).unwrap();
        assert_eq!(row.address, "a@b.fr");
        assert!(parse_header(b"<html><body>503</body></html>").is_err());
    }
}
