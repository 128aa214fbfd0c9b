//! A realistic MSSanté message mix, built once before timing.
//!
//! Each kind has one pre-built template (headers after the unique ones + MIME body). At send
//! time a few unique header lines (Message-ID, X-Bench-Seq) are put in front, so every message
//! is distinct (a content-addressed store cannot de-duplicate them) without copying megabytes.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Result, bail};
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

/// Kinds of MSSanté message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Compte rendu de biologie: text + PDF + IHE_XDM.zip, ~40 KB.
    Bio,
    /// Lettre de liaison de sortie: text + PDF + IHE_XDM.zip, ~150 KB.
    Discharge,
    /// Compte rendu d'imagerie with key images: ~2 MB.
    Imaging,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bio => "bio",
            Kind::Discharge => "discharge",
            Kind::Imaging => "imaging",
        }
    }

    fn parse(s: &str) -> Result<Kind> {
        Ok(match s {
            "bio" => Kind::Bio,
            "discharge" | "letter" => Kind::Discharge,
            "imaging" => Kind::Imaging,
            _ => bail!("unknown message kind {s:?} (bio, discharge, imaging)"),
        })
    }
}

/// Weights of each kind in the mix, e.g. "bio" or "bio=80,discharge=15,imaging=5".
#[derive(Debug, Clone, PartialEq)]
pub struct Mix(pub Vec<(Kind, u32)>);

impl Mix {
    pub fn parse(spec: &str) -> Result<Mix> {
        let spec = if spec == "realistic" {
            "bio=80,discharge=17,imaging=3"
        } else {
            spec
        };
        let mut out = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, w) = item.split_once('=').unwrap_or((item, "1"));
            out.push((Kind::parse(name.trim())?, w.trim().parse()?));
        }
        if out.iter().map(|(_, w)| w).sum::<u32>() == 0 {
            bail!("empty message mix {spec:?}");
        }
        Ok(Mix(out))
    }

    /// The kind of message number `i`: a deterministic spread following the weights.
    pub fn kind_of(&self, i: usize) -> Kind {
        let total: u32 = self.0.iter().map(|(_, w)| w).sum();
        // Spread with a multiplicative hash so kinds interleave rather than come in blocks.
        let slot = ((i as u64).wrapping_mul(2_654_435_761) % u64::from(total)) as u32;
        let mut acc = 0;
        for &(k, w) in &self.0 {
            acc += w;
            if slot < acc {
                return k;
            }
        }
        self.0[0].0
    }
}

/// Small deterministic generator (xorshift64*) for filler content.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .take(n)
            .collect()
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[(self.next() % words.len() as u64) as usize]
    }
}

const ANALYTES: &[&str] = &[
    "Hémoglobine",
    "Hématocrite",
    "Leucocytes",
    "Plaquettes",
    "Sodium",
    "Potassium",
    "Créatinine",
    "Glycémie à jeun",
    "HbA1c",
    "CRP",
    "Ferritine",
    "TSH",
    "Cholestérol total",
    "Triglycérides",
    "ASAT",
    "ALAT",
];

/// Report lines, roughly `approx` bytes of French lab/clinical text.
fn report_text(rng: &mut Rng, title: &str, approx: usize) -> String {
    let mut s = format!(
        "Bonjour,\r\n\r\nVeuillez trouver ci-joint {title} de votre patient DUPONT Jean, \
         né le 01/01/1970 (INS 170017512345678).\r\n\r\n"
    );
    while s.len() < approx {
        let a = rng.pick(ANALYTES);
        let v = rng.next() % 1000;
        s.push_str(&format!(
            "{a:<20} {}.{} (valeurs de référence : {}-{})\r\n",
            v / 10,
            v % 10,
            v / 20,
            v / 5 + 1
        ));
    }
    s.push_str("\r\nBien confraternellement,\r\nLaboratoire de biologie médicale\r\n");
    s
}

/// A minimal valid PDF 1.4 of about `approx` bytes (uncompressed text content).
fn pdf(rng: &mut Rng, approx: usize) -> Vec<u8> {
    let mut content = String::from("BT /F1 9 Tf 40 800 Td 11 TL\n");
    while content.len() < approx.saturating_sub(700) {
        let a = rng.pick(ANALYTES);
        content.push_str(&format!("({a} {}) '\n", rng.next() % 100_000));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        write!(out, "{} 0 obj\n{o}\nendobj\n", i + 1).expect("vec write");
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).expect("vec write");
    for off in offsets {
        writeln!(out, "{off:010} 00000 n ").expect("vec write");
    }
    write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    )
    .expect("vec write");
    out
}

/// IHE XDM metadata (an ebXML SubmitObjectsRequest), padded to about `approx` bytes.
fn metadata_xml(rng: &mut Rng, approx: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" \
         xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\">\n<rim:RegistryObjectList>\n\
         <rim:ExtrinsicObject id=\"Document01\" mimeType=\"text/xml\" \
         objectType=\"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1\">\n\
         <rim:Slot name=\"sourcePatientId\"><rim:ValueList>\
         <rim:Value>170017512345678^^^&amp;1.2.250.1.213.1.4.8&amp;ISO^NH</rim:Value>\
         </rim:ValueList></rim:Slot>\n",
    );
    while s.len() < approx {
        s.push_str(&format!(
            "<rim:Slot name=\"x-{}\"><rim:ValueList><rim:Value>{}</rim:Value>\
             </rim:ValueList></rim:Slot>\n",
            rng.next() % 1000,
            rng.pick(ANALYTES)
        ));
    }
    s.push_str(
        "<rim:ExternalIdentifier identificationScheme=\
         \"urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427\" \
         value=\"170017512345678^^^&amp;1.2.250.1.213.1.4.8&amp;ISO\"/>\n\
         </rim:ExtrinsicObject>\n</rim:RegistryObjectList>\n</lcm:SubmitObjectsRequest>\n",
    );
    s
}

/// `IHE_XDM.zip`: IHE_XDM/SUBSET01/METADATA.XML, the CDA document and INDEX.HTM (deflate).
fn xdm_zip(rng: &mut Rng, cda_bytes: usize) -> Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut cda = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n",
    );
    while cda.len() < cda_bytes {
        // Random hex keeps the CDA from compressing to nothing, as real documents don't.
        let id: String = rng.bytes(12).iter().map(|b| format!("{b:02x}")).collect();
        cda.push_str(&format!(
            "<observation classCode=\"OBS\"><id root=\"{id}\"/><value value=\"{}\"/>\
             <text>{}</text></observation>\n",
            rng.next() % 10_000,
            rng.pick(ANALYTES)
        ));
    }
    cda.push_str("</ClinicalDocument>\n");
    let files: [(&str, Vec<u8>); 3] = [
        ("INDEX.HTM", b"<html><body>IHE XDM</body></html>\n".to_vec()),
        (
            "IHE_XDM/SUBSET01/METADATA.XML",
            metadata_xml(rng, 3000).into_bytes(),
        ),
        ("IHE_XDM/SUBSET01/DOC0001.XML", cda.into_bytes()),
    ];
    for (name, data) in files {
        w.start_file(name, opts)?;
        w.write_all(&data)?;
    }
    Ok(w.finish()?.into_inner())
}

/// Sizes (bytes) of the parts of each kind: text, PDF, CDA inside the zip, extra image.
fn part_sizes(kind: Kind) -> (usize, usize, usize, usize) {
    match kind {
        Kind::Bio => (1_500, 24_000, 14_000, 0),
        Kind::Discharge => (4_000, 95_000, 60_000, 0),
        Kind::Imaging => (3_000, 60_000, 30_000, 1_400_000),
    }
}

fn title(kind: Kind) -> &'static str {
    match kind {
        Kind::Bio => "le compte rendu de biologie",
        Kind::Discharge => "la lettre de liaison de sortie",
        Kind::Imaging => "le compte rendu d'imagerie",
    }
}

fn subject(kind: Kind) -> &'static str {
    match kind {
        Kind::Bio => "XDM/1.0/DDM+Compte rendu de biologie DUPONT Jean 19700101",
        Kind::Discharge => "XDM/1.0/DDM+Lettre de liaison de sortie DUPONT Jean 19700101",
        Kind::Imaging => "XDM/1.0/DDM+Compte rendu d'imagerie DUPONT Jean 19700101",
    }
}

/// The parts of a report of a kind: subject, text, attachments (file name, media type,
/// bytes) and its `X-MSS-*` header fields. SMTP sends them as MIME, the HTTP API as JSON.
pub struct ReportParts {
    pub subject: &'static str,
    pub text: String,
    pub attachments: Vec<(&'static str, &'static str, Vec<u8>)>,
    pub headers: [(&'static str, &'static str); 3],
}

pub fn report_parts(kind: Kind, seed: u64) -> Result<ReportParts> {
    let mut rng = Rng(seed | 1);
    let (text_len, pdf_len, cda_len, image_len) = part_sizes(kind);
    let text = report_text(&mut rng, title(kind), text_len);
    let mut attachments = vec![
        ("CR.pdf", "application/pdf", pdf(&mut rng, pdf_len)),
        (
            "IHE_XDM.zip",
            "application/zip",
            xdm_zip(&mut rng, cda_len)?,
        ),
    ];
    if image_len > 0 {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
        jpeg.extend(rng.bytes(image_len));
        jpeg.extend([0xFF, 0xD9]);
        attachments.push(("image1.jpg", "image/jpeg", jpeg));
    }
    Ok(ReportParts {
        subject: subject(kind),
        text,
        attachments,
        headers: [
            ("X-MSS-NIL", "mssante-bench/0.1"),
            ("X-MSS-INS", "O"),
            ("X-MSS-CODECDA", "11502-2^LOINC"),
        ],
    })
}

/// Builds the MIME message of a kind (headers From/To/Subject/X-MSS-* and body).
pub fn build(kind: Kind, from: &str, to: &str, seed: u64) -> Result<Vec<u8>> {
    let report = report_parts(kind, seed)?;
    let mut parts = vec![MimePart::new("text/plain", report.text)];
    for (name, media, bytes) in report.attachments {
        parts.push(MimePart::new(media, bytes).attachment(name));
    }
    let mut msg = MessageBuilder::new()
        .from(from)
        .to(to)
        .subject(report.subject);
    for (name, value) in report.headers {
        msg = msg.header(name, Raw::new(value));
    }
    let msg = msg.body(MimePart::new("multipart/mixed", parts));
    Ok(msg.write_to_vec()?)
}

/// A message ready to send: the unique prefix is made per message, the rest is shared.
#[derive(Clone)]
pub struct Template {
    pub kind: Kind,
    /// Raw RFC 5322 bytes (CRLF), for BDAT.
    pub raw: Arc<Vec<u8>>,
    /// The same, dot-stuffed and terminated by CRLF.CRLF, for DATA.
    pub stuffed: Arc<Vec<u8>>,
}

impl Template {
    pub fn new(kind: Kind, from: &str, to: &str) -> Result<Template> {
        let built = to_crlf(&build(kind, from, to, 0x5EED ^ kind as u64)?);
        // The unique prefix carries the Message-ID: drop the builder's own.
        let raw = strip_header(&built, "Message-ID");
        let stuffed = mssante_mail::dot::stuff(&raw);
        Ok(Template {
            kind,
            raw: Arc::new(raw),
            stuffed: Arc::new(stuffed),
        })
    }

    /// Header lines that make message `seq` unique (no dot-stuffing needed).
    pub fn unique_prefix(seq: usize, run: u64) -> Vec<u8> {
        format!("Message-ID: <bench.{run:x}.{seq}@mssante-bench.invalid>\r\nX-Bench-Seq: {seq}\r\n")
            .into_bytes()
    }
}

/// Writes one message of `kind` (with a unique prefix) to stdout.
pub fn write_sample(kind: &str) -> Result<()> {
    let t = Template::new(Kind::parse(kind)?, "lab@bench.test", "user1@bench.test")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&Template::unique_prefix(1, 0))?;
    out.write_all(&t.raw)?;
    Ok(())
}

/// Removes every (unfolded) header line named `name` from the header section.
pub fn strip_header(msg: &[u8], name: &str) -> Vec<u8> {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 2);
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut out = Vec::with_capacity(msg.len());
    for line in msg[..end].split_inclusive(|&b| b == b'\n') {
        if !line.to_ascii_lowercase().starts_with(prefix.as_bytes()) {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&msg[end..]);
    out
}

/// Normalises bare LF to CRLF.
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 50);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;
    use std::io::Read;

    fn zip_entry(data: &[u8], name: &str) -> String {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(data)).unwrap();
        let mut s = String::new();
        z.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn bio_is_about_40kb_with_xdm_metadata() {
        let t = Template::new(Kind::Bio, "lab@a.test", "dr@b.test").unwrap();
        let len = t.raw.len();
        assert!((36_000..=44_000).contains(&len), "bio is {len} bytes");
        let mut full = Template::unique_prefix(3, 9);
        full.extend_from_slice(&t.raw);
        let msg = mail_parser::MessageParser::default().parse(&full).unwrap();
        assert!(
            msg.subject()
                .unwrap()
                .starts_with("XDM/1.0/DDM+Compte rendu de biologie")
        );
        assert_eq!(msg.message_id(), Some("bench.9.3@mssante-bench.invalid"));
        assert_eq!(
            msg.header_raw("X-MSS-NIL").map(str::trim),
            Some("mssante-bench/0.1")
        );
        assert!(
            msg.body_text(0)
                .unwrap()
                .contains("compte rendu de biologie")
        );
        let names: Vec<_> = msg
            .attachments()
            .filter_map(|a| a.attachment_name())
            .collect();
        assert_eq!(names, ["CR.pdf", "IHE_XDM.zip"]);
        let zip = msg.attachments().nth(1).unwrap().contents();
        let meta = zip_entry(zip, "IHE_XDM/SUBSET01/METADATA.XML");
        assert!(meta.contains("SubmitObjectsRequest") && meta.contains("170017512345678"));
        let pdf = msg.attachments().next().unwrap().contents();
        assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"));
    }

    #[test]
    fn discharge_and_imaging_sizes() {
        let d = Template::new(Kind::Discharge, "a@a.test", "b@b.test").unwrap();
        assert!(
            (130_000..=170_000).contains(&d.raw.len()),
            "{}",
            d.raw.len()
        );
        let i = Template::new(Kind::Imaging, "a@a.test", "b@b.test").unwrap();
        assert!(
            (1_800_000..=2_200_000).contains(&i.raw.len()),
            "{}",
            i.raw.len()
        );
    }

    #[test]
    fn message_lines_are_crlf_and_short() {
        let t = Template::new(Kind::Bio, "lab@a.test", "dr@b.test").unwrap();
        for line in t.raw.split(|&b| b == b'\n') {
            assert!(line.len() <= 998, "line of {} bytes", line.len());
        }
        assert_eq!(
            t.raw.windows(2).filter(|w| w[1] == b'\n').count(),
            t.raw.windows(2).filter(|w| w == b"\r\n").count()
        );
        assert!(t.stuffed.ends_with(b"\r\n.\r\n"));
    }

    #[test]
    fn pdf_xref_points_at_objects() {
        let p = pdf(&mut Rng(7), 5000);
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).rposition(|w| w == needle);
        let sx = find(&p, b"startxref\n").unwrap() + 10;
        let tail = std::str::from_utf8(&p[sx..]).unwrap();
        let xref: usize = tail.lines().next().unwrap().parse().unwrap();
        assert!(p[xref..].starts_with(b"xref"));
        let table = std::str::from_utf8(&p[xref..]).unwrap();
        let off: usize = table.lines().nth(3).unwrap()[..10].parse().unwrap();
        assert!(p[off..].starts_with(b"1 0 obj"));
    }

    #[test]
    fn template_has_no_message_id_of_its_own() {
        let t = Template::new(Kind::Bio, "lab@a.test", "dr@b.test").unwrap();
        let head_end = t.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&t.raw[..head_end]).to_ascii_lowercase();
        assert!(!head.contains("message-id:"));
        assert!(head.contains("date:") && head.contains("subject:"));
        assert_eq!(
            strip_header(b"A: 1\r\nB: 2\r\n\r\nA: body", "a"),
            b"B: 2\r\n\r\nA: body"
        );
    }

    #[test]
    fn mix_weights() {
        let m = Mix::parse("bio=3,imaging=1").unwrap();
        let bio = (0..4000).filter(|&i| m.kind_of(i) == Kind::Bio).count();
        assert!((2900..=3100).contains(&bio), "{bio}");
        assert_eq!(Mix::parse("bio").unwrap().kind_of(5), Kind::Bio);
        assert!(Mix::parse("video").is_err());
        assert!(Mix::parse("bio=0").is_err());
        assert_eq!(Mix::parse("realistic").unwrap().0.len(), 3);
    }
}
