//! IMAP: commands with their literals, and the message rendering that reads what senders wrote.

use mssante_imap::message::{
    address, binary, bodystructure, decode, envelope, search, section, sort,
};

/// The longest line, as `[imap] max_line` defaults to (a small one reaches the too-long path).
const MAX_LINE: usize = 8192;

/// Commands framed as the session frames them: lines (`mssante_net::take_line`), a line that
/// ends with a literal announcement `{n}` / `{n+}` continues after n bytes (RFC 9051 §4.3,
/// RFC 7888), then the whole command goes to `parse_request`.
pub fn command(data: &[u8]) {
    let mut rbuf = data.to_vec();
    rbuf.push(b'\n');
    let mut dropping = false;
    'commands: loop {
        let mut command = Vec::new();
        loop {
            let line = match mssante_net::take_line(&mut rbuf, MAX_LINE, &mut dropping) {
                mssante_net::Line::Complete(line) => line,
                mssante_net::Line::TooLong => continue 'commands,
                mssante_net::Line::Incomplete => break 'commands,
            };
            command.extend_from_slice(&line);
            let Some((size, _nonsync)) = mssante_imap::trailing_literal(&line) else {
                break;
            };
            let take = usize::try_from(size).unwrap_or(usize::MAX).min(rbuf.len());
            command.extend_from_slice(b"\r\n");
            command.extend(rbuf.drain(..take));
        }
        if let Ok(request) = mssante_imap::parse::parse_request(&command) {
            assert!(!request.tag.is_empty(), "a request without a tag");
        }
    }
}

/// A message as FETCH renders it and SEARCH / SORT / THREAD read it (RFC 9051 §7.5.2,
/// RFC 5256): envelope, body structure, sections, BINARY, dates, subjects, addresses.
pub fn message(raw: &[u8]) {
    let _ = envelope::envelope(raw);
    let _ = bodystructure::body_structure(raw, true);
    let _ = bodystructure::body_structure(raw, false);
    for part in [&[1u32][..], &[1, 1], &[2]] {
        let _ = binary::binary(raw, part);
        let _ = binary::binary_size(raw, part);
    }
    for spec in [
        "HEADER",
        "TEXT",
        "1",
        "1.MIME",
        "2.HEADER",
        "1.2.TEXT",
        "HEADER.FIELDS (FROM TO)",
    ] {
        if let Some(section) = section::parse_section(spec) {
            let _ = section::extract(raw, &section);
        }
    }
    let _ = search::sent_date(raw);
    let _ = search::text_contains(raw, "résumé");
    let _ = search::header_contains(raw, "subject", "x");
    let _ = sort::base_subject(raw);
    let _ = sort::sort_address(raw, "from");
    let _ = sort::thread_ids(raw);
    let _ = address::parse(raw);
    let _ = decode::header_text(raw);
    let _ = decode::quoted_printable(raw);
    let _ = decode::base64(raw);
}

/// What a source IMAP server sends `mssante migrate` (portability::migrate::wire, names):
/// each line as a response, its literal announcement, and folder names in modified UTF-7
/// (RFC 9051 §4.3, RFC 3501 §5.1.3). The source is another operator's server: untrusted input.
pub fn response(data: &[u8]) {
    use mssante_portability::migrate::{names, wire};
    for line in data.split_inclusive(|&b| b == b'\n') {
        if let Some(length) = wire::literal_length(line) {
            // Only a line ending in `{digits}` or `{digits+}` announces a literal.
            let body = line.trim_ascii_end();
            assert!(
                body.ends_with(b"}"),
                "literal length {length} without a closing brace"
            );
        }
        let _ = wire::parse_response(line);
        if let Some(name) = names::decode(line.trim_ascii_end()) {
            let _ = names::translate(&name, Some('.'));
        }
    }
}
