//! PREVIEW (RFC 8970): a short plain-text excerpt of a message for message lists.

use super::mime::{self, Entity, Kind};
use super::search::leaf_text;

/// RFC 8970 §3.1: at most 256 characters.
const MAX_CHARS: usize = 256;

fn is_attachment(raw: &[u8], e: &Entity) -> bool {
    mime::first_field(e.header(raw), "content-disposition").is_some_and(|v| {
        let v = mime::unfold(v);
        v.trim_ascii_start()
            .get(..10)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"attachment"))
    })
}

/// The first inline text leaf of `subtype` (depth first), not looking into attached
/// messages: their text is not this message's.
fn first_text(raw: &[u8], e: &Entity, subtype: &str, found: &mut Option<Entity>) {
    if found.is_some() {
        return;
    }
    match e.kind {
        Kind::Multipart => {
            for c in e.children(raw) {
                first_text(raw, &c, subtype, found);
            }
        }
        Kind::Message => {}
        Kind::Leaf => {
            if e.ctype.is("text", subtype) && !is_attachment(raw, e) {
                *found = Some(e.clone());
            }
        }
    }
}

/// Text of an HTML part, tags and comments dropped, `<style>` and `<script>` content too,
/// the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<style") || rest.starts_with("<script") {
            let close = if rest.starts_with("<style") {
                "</style"
            } else {
                "</script"
            };
            // Up to the end of the closing tag.
            i = rest
                .find(close)
                .and_then(|p| rest[p..].find('>').map(|q| i + p + q + 1))
                .unwrap_or(html.len());
            continue;
        }
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |p| i + p + 3);
            continue;
        }
        if rest.starts_with('<') {
            i = rest.find('>').map_or(html.len(), |p| i + p + 1);
            out.push(' ');
            continue;
        }
        let ch = html[i..].chars().next().expect("in bounds");
        if ch == '&' {
            let entities = [
                ("&nbsp;", ' '),
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
            ];
            if let Some((name, c)) = entities.iter().find(|(n, _)| rest.starts_with(n)) {
                out.push(*c);
                i += name.len();
                continue;
            }
        }
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// RFC 8970 §3.1: the preview of a message: the start of its first text part (text/plain
/// preferred over text/html), whitespace collapsed, at most 256 characters; empty when the
/// message has no text.
pub fn preview(raw: &[u8]) -> String {
    let top = Entity::message(raw);
    let mut found = None;
    first_text(raw, &top, "plain", &mut found);
    let text = match found {
        Some(e) => leaf_text(raw, &e),
        None => {
            first_text(raw, &top, "html", &mut found);
            match found {
                Some(e) => html_to_text(&leaf_text(raw, &e)),
                None => String::new(),
            }
        }
    };
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_collapsed_and_cut() {
        let long = "mot ".repeat(100);
        let raw = format!("Subject: x\r\n\r\nBonjour,\r\n\r\n  Docteur\t{long}\r\n");
        let p = preview(raw.as_bytes());
        assert!(p.starts_with("Bonjour, Docteur mot mot"), "{p}");
        assert_eq!(p.chars().count(), 256);
        assert_eq!(preview(b"Subject: x\r\n\r\n"), "");
    }

    #[test]
    fn decoded_and_plain_preferred() {
        let raw = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/html\r\n\r\n<p>html</p>\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
R=E9sultats pr=EAts\r\n--b--\r\n";
        assert_eq!(preview(raw), "R\u{e9}sultats pr\u{ea}ts");
    }

    #[test]
    fn html_only_and_attachments_skipped() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nsecret\r\n--b\r\n\
Content-Type: text/html\r\n\r\n<html><style>p{}</style><p>Compte&nbsp;rendu &amp; suite</p><!-- x --></html>\r\n--b--\r\n";
        assert_eq!(preview(raw), "Compte rendu & suite");
    }
}
