//! SMTP: command lines, the DATA decoder, and the replies the relay reads from peers.

use mssante_smtp::body::{Body, DataDecoder};

/// Command lines as the session hands them to `parse_command` (RFC 5321 §4.1).
pub fn command(data: &[u8]) {
    for line in super::lines(data) {
        let _ = mssante_smtp::command::parse_command(line);
    }
}

/// A small limit so that fuzzed inputs also reach the over-size path.
const DATA_LIMIT: usize = 2048;

/// The DATA decoder (RFC 5321 §4.5.2): the first byte sets the size of the chunks the bytes
/// arrive in. The end found and the body must not depend on how the bytes were split.
pub fn data(data: &[u8]) {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let (whole_end, whole_body) = decode(input, input.len().max(1));
    let (split_end, split_body) = decode(input, chunk);
    assert_eq!(whole_end, split_end, "end of data depends on chunking");
    assert_eq!(whole_body, split_body, "body depends on chunking");
    if let Some(end) = whole_end {
        // Data ends only at CRLF . CRLF, or at `.` CRLF first thing (an empty body).
        let at_start = end == 3 && input.starts_with(b".\r\n");
        assert!(
            at_start || input[..end].ends_with(b"\r\n.\r\n"),
            "end at {end}"
        );
    }
    if let Body::Complete(body) = &whole_body {
        assert!(body.len() <= DATA_LIMIT);
    }
}

/// Feeds `input` in pieces of `chunk` bytes; the end is an offset into the whole input.
fn decode(input: &[u8], chunk: usize) -> (Option<usize>, Body) {
    let mut decoder = DataDecoder::new(DATA_LIMIT, Vec::new());
    let mut offset = 0;
    for piece in input.chunks(chunk) {
        if let Some(end) = decoder.feed(piece) {
            return (Some(offset + end), decoder.finish());
        }
        offset += piece.len();
    }
    (None, decoder.finish())
}

/// Reply lines from another operator's server, read by the relay client (RFC 5321 §4.2).
pub fn reply(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut reader = mssante_mail::reply::ReplyReader::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match reader.push(line) {
            Ok(Some(_)) => reader = mssante_mail::reply::ReplyReader::new(),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}
