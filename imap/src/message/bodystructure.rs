//! FETCH BODY and BODYSTRUCTURE (RFC 9051 §7.5.2, `body` grammar in §9).

use super::encode::write_nstring;
use super::envelope::write_envelope;
use super::mime::{self, Entity, Kind, ParamValue};

/// Header fields of an entity that BODYSTRUCTURE reports (first occurrence of each),
/// indexed by the constants below.
const PART_FIELDS: [&str; 7] = [
    "content-id",
    "content-description",
    "content-transfer-encoding",
    "content-md5",
    "content-disposition",
    "content-language",
    "content-location",
];
const ID: usize = 0;
const DESCRIPTION: usize = 1;
const ENCODING: usize = 2;
const MD5: usize = 3;
const DISPOSITION: usize = 4;
const LANGUAGE: usize = 5;
const LOCATION: usize = 6;

type PartFields<'a> = [Option<&'a [u8]>; 7];

fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_nstring(out, Some(k));
        out.push(b' ');
        write_nstring(out, Some(v));
    }
    out.push(b')');
}

fn write_unstructured(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let v = v.map(mime::unfold).filter(|v| !v.is_empty());
    write_nstring(out, v.as_deref());
}

/// body-ext-1part / body-ext-mpart tail shared by both: disposition, language, location
/// (RFC 9051 §9 `body-fld-dsp`, `body-fld-lang`, `body-fld-loc`).
fn write_dsp_lang_loc(out: &mut Vec<u8>, f: &PartFields<'_>) {
    out.push(b' ');
    match f[DISPOSITION]
        .map(mime::parse_param_value)
        .filter(|d| !d.value.is_empty())
    {
        Some(ParamValue { value, params }) => {
            out.push(b'(');
            write_nstring(out, Some(&value));
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let langs: Vec<Vec<u8>> = f[LANGUAGE]
        .map(|l| {
            mime::unfold(l)
                .split(|&b| b == b',')
                .map(|t| mime::trim(t).to_vec())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if langs.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, l) in langs.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_nstring(out, Some(l));
        }
        out.push(b')');
    }
    out.push(b' ');
    write_unstructured(out, f[LOCATION]);
}

fn count_lines(v: &[u8]) -> usize {
    v.iter().filter(|&&b| b == b'\n').count()
}

fn write_entity(out: &mut Vec<u8>, raw: &[u8], e: &Entity, ext: bool) {
    let hdr = e.header(raw);
    let f = mime::first_fields(hdr, PART_FIELDS);
    out.push(b'(');
    if e.kind == Kind::Multipart {
        // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        for child in e.children(raw) {
            write_entity(out, raw, &child, ext);
        }
        out.push(b' ');
        write_nstring(out, Some(&e.ctype.subtype));
        if ext {
            out.push(b' ');
            write_params(out, &e.ctype.params);
            write_dsp_lang_loc(out, &f);
        }
        out.push(b')');
        return;
    }
    let ct = &e.ctype;
    // A multipart without a boundary cannot be shown as one: report it as text/plain.
    let (mtype, subtype): (&[u8], &[u8]) = if ct.is_type("multipart") {
        (b"text", b"plain")
    } else {
        (&ct.mtype, &ct.subtype)
    };
    let text = mtype.eq_ignore_ascii_case(b"text");
    write_nstring(out, Some(mtype));
    out.push(b' ');
    write_nstring(out, Some(subtype));
    out.push(b' ');
    if text && ct.params.is_empty() {
        // RFC 2045 §5.2 default charset, spelled out as Dovecot does.
        out.extend_from_slice(b"(\"charset\" \"us-ascii\")");
    } else {
        write_params(out, &ct.params);
    }
    out.push(b' ');
    write_unstructured(out, f[ID]);
    out.push(b' ');
    write_unstructured(out, f[DESCRIPTION]);
    out.push(b' ');
    let enc = f[ENCODING].map(mime::unfold).filter(|v| !v.is_empty());
    write_nstring(out, Some(enc.as_deref().unwrap_or(b"7bit")));
    let body = e.body(raw);
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    if let Some(inner) = e.inner(raw) {
        // body-type-msg: envelope SP body SP body-fld-lines
        out.push(b' ');
        write_envelope(out, inner.header(raw));
        out.push(b' ');
        write_entity(out, raw, &inner, ext);
        out.push(b' ');
        out.extend_from_slice(count_lines(body).to_string().as_bytes());
    } else if text {
        // body-type-text: ... SP body-fld-lines
        out.push(b' ');
        out.extend_from_slice(count_lines(body).to_string().as_bytes());
    }
    if ext {
        // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.push(b' ');
        write_unstructured(out, f[MD5]);
        write_dsp_lang_loc(out, &f);
    }
    out.push(b')');
}

/// BODYSTRUCTURE (`extensible = true`) or BODY (`false`) of a raw message
/// (RFC 9051 §7.5.2).
pub fn body_structure(raw: &[u8], extensible: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_entity(&mut out, raw, &Entity::message(raw), extensible);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(raw: &str, ext: bool) -> String {
        String::from_utf8(body_structure(raw.as_bytes(), ext)).unwrap()
    }

    #[test]
    fn plain_defaults() {
        let m = "Subject: x\r\n\r\nline1\r\nline2\r\n";
        assert_eq!(
            bs(m, false),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2)"
        );
        assert_eq!(
            bs(m, true),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2 NIL NIL NIL NIL)"
        );
        // No body at all.
        assert_eq!(
            bs("Subject: x\r\n", false),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
        );
    }

    #[test]
    fn single_part_fields() {
        let m = "Content-Type: application/pdf; name=\"a b.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-ID: <id@x>\r\nContent-Description: the doc\r\nContent-MD5: abc=\r\n\
                 Content-Disposition: attachment;\r\n filename=\"a b.pdf\"\r\nContent-Language: fr, en\r\n\
                 Content-Location: http://x/y\r\n\r\nAAAA\r\n";
        assert_eq!(
            bs(m, true),
            "(\"application\" \"pdf\" (\"name\" \"a b.pdf\") \"<id@x>\" \"the doc\" \"base64\" 6 \"abc=\" \
             (\"attachment\" (\"filename\" \"a b.pdf\")) (\"fr\" \"en\") \"http://x/y\")"
        );
        assert_eq!(
            bs(m, false),
            "(\"application\" \"pdf\" (\"name\" \"a b.pdf\") \"<id@x>\" \"the doc\" \"base64\" 6)"
        );
    }

    #[test]
    fn text_with_params_but_no_charset() {
        let m = "Content-Type: text/html; format=flowed\r\n\r\n<p>\r\n";
        assert_eq!(
            bs(m, false),
            "(\"text\" \"html\" (\"format\" \"flowed\") NIL NIL \"7bit\" 5 1)"
        );
    }

    #[test]
    fn multipart_folded_boundary() {
        let m = "Content-Type: multipart/mixed; boundary=\"foo\r\n bar\"\r\n\r\n--foo bar\r\n\
                 Content-Type: text/x-myown; charset=us-ascii\r\n\r\nhello\r\n\r\n--foo bar--\r\n";
        assert_eq!(
            bs(m, false),
            "((\"text\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1) \"mixed\")"
        );
        assert_eq!(
            bs(m, true),
            "((\"text\" \"x-myown\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1 NIL NIL NIL NIL) \"mixed\" \
             (\"boundary\" \"foo bar\") NIL NIL NIL)"
        );
    }

    #[test]
    fn nested_message_rfc822() {
        let m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst\r\n--b\r\n\
                 Content-Type: message/rfc822\r\n\r\nFrom: s@d\r\nSubject: in\r\n\
                 Content-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n\r\n--b--\r\n";
        let inner_env = "(NIL \"in\" ((NIL NIL \"s\" \"d\")) ((NIL NIL \"s\" \"d\")) ((NIL NIL \"s\" \"d\")) NIL NIL NIL NIL NIL)";
        let want = format!(
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0)\
             (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 92 {inner_env} \
             ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) \"alternative\") 8) \"mixed\")"
        );
        assert_eq!(bs(m, false), want);
    }

    #[test]
    fn multipart_without_boundary_and_empty_multipart() {
        assert_eq!(
            bs("Content-Type: multipart/mixed\r\n\r\nx\r\n", false),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)"
        );
        assert_eq!(
            bs(
                "Content-Type: multipart/mixed; boundary=q\r\n\r\nno parts\r\n",
                false
            ),
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")"
        );
    }

    #[test]
    fn eight_bit_params_become_literals() {
        let m = "Content-Type: text/plain; name=\"caf\u{e9}\"\r\n\r\n";
        assert_eq!(
            body_structure(m.as_bytes(), false),
            b"(\"text\" \"plain\" (\"name\" {5}\r\ncaf\xc3\xa9) NIL NIL \"7bit\" 0 0)"
        );
    }
}
