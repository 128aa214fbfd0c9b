//! The DATA body decoder (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing, end-of-data
//! detection, bare CR / bare LF detection and the size limit — free of I/O.
//!
//! SMTP smuggling (RFC 5321 §2.3.8, "SMTP smuggling" 2023): the only end of data we
//! recognise is `CRLF . CRLF`. A bare LF or bare CR anywhere in the body makes the whole
//! message refused once its real end is reached (docs/adr/0003-bare-lf-rejected.md), so a
//! `LF . LF` or `LF . CRLF` sequence can neither end the message nor smuggle a second one.
//! Lines are not buffered: a line of any length costs nothing beyond the size limit.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line (also at the start of the body).
    LineStart,
    /// Saw `.` at the start of a line.
    Dot,
    /// Saw `.` then CR at the start of a line.
    DotCr,
    /// Inside a line.
    InLine,
    /// Saw CR inside a line.
    Cr,
}

/// Outcome of a finished body.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    /// The message bytes, CRLF line ends, dots unstuffed.
    Complete(Vec<u8>),
    /// Over the size limit: the bytes were read and dropped.
    TooBig,
    /// Contained a bare CR or LF: refused.
    BareNewline,
}

pub struct DataDecoder {
    state: State,
    out: Vec<u8>,
    limit: usize,
    too_big: bool,
    bare_newline: bool,
}

impl DataDecoder {
    /// `limit`: the largest body kept; `initial` bytes (a trace header) are counted in it.
    pub fn new(limit: usize, initial: Vec<u8>) -> DataDecoder {
        DataDecoder {
            state: State::LineStart,
            too_big: initial.len() > limit,
            out: initial,
            limit,
            bare_newline: false,
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        if self.too_big {
            return;
        }
        if self.out.len() + bytes.len() > self.limit {
            self.too_big = true;
            self.out = Vec::new();
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    /// Feeds bytes from the wire. Returns `Some(n)` when the end of data was found after
    /// `n` bytes of `input` (the rest belongs to the next commands), `None` if more is needed.
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            // Fast path: copy a run of ordinary bytes inside a line at once.
            if self.state == State::InLine {
                // memchr2: SIMD search; this loop sees every byte of every message.
                let run = memchr::memchr2(b'\r', b'\n', &input[i..]).unwrap_or(input.len() - i);
                if run > 0 {
                    self.emit(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::LineStart, b'.') => State::Dot,
                (State::Dot, b'\r') => State::DotCr,
                (State::DotCr, b'\n') => return Some(i),
                (State::DotCr, _) => {
                    // `.` CR x: the CR was bare.
                    self.bare_newline = true;
                    self.in_line(b)
                }
                // RFC 5321 §4.5.2: a leading dot is removed (dot-unstuffing).
                (State::Dot, _) | (State::LineStart, _) | (State::InLine, _) => self.in_line(b),
                (State::Cr, b'\n') => {
                    self.emit(b"\r\n");
                    State::LineStart
                }
                (State::Cr, _) => {
                    self.bare_newline = true;
                    self.emit(b"\r");
                    self.in_line(b)
                }
            };
        }
        None
    }

    fn in_line(&mut self, b: u8) -> State {
        match b {
            b'\r' => State::Cr,
            b'\n' => {
                // A bare LF does not start a line: `LF . CRLF` must not end the data.
                self.bare_newline = true;
                self.emit(b"\n");
                State::InLine
            }
            _ => {
                self.emit(&[b]);
                State::InLine
            }
        }
    }

    /// Bytes kept so far (for progress and size checks).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    pub fn finish(self) -> Body {
        if self.bare_newline {
            Body::BareNewline
        } else if self.too_big {
            Body::TooBig
        } else {
            Body::Complete(self.out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> (Option<usize>, Body) {
        let mut d = DataDecoder::new(1 << 20, Vec::new());
        let end = d.feed(input);
        (end, d.finish())
    }

    #[test]
    fn unstuffs_dots_and_finds_the_end() {
        let (end, body) = decode(b"Subject: x\r\n\r\n..leading dot\r\n..\r\n.\r\nQUIT\r\n");
        assert_eq!(end, Some(36));
        assert_eq!(
            body,
            Body::Complete(b"Subject: x\r\n\r\n.leading dot\r\n.\r\n".to_vec())
        );
    }

    #[test]
    fn empty_body() {
        assert_eq!(decode(b".\r\n"), (Some(3), Body::Complete(Vec::new())));
    }

    #[test]
    fn works_across_chunk_boundaries_byte_by_byte() {
        let input = b"a\r\n..b\r\nc\r\n.\r\nNEXT";
        let mut d = DataDecoder::new(1 << 20, Vec::new());
        let mut end = None;
        for (i, b) in input.iter().enumerate() {
            if let Some(n) = d.feed(std::slice::from_ref(b)) {
                end = Some(i + n);
                break;
            }
        }
        assert_eq!(end, Some(input.len() - 4));
        assert_eq!(d.finish(), Body::Complete(b"a\r\n.b\r\nc\r\n".to_vec()));
    }

    #[test]
    fn bare_lf_never_ends_data_and_refuses_the_message() {
        // The classic smuggling payloads: LF.LF, LF.CRLF, CR.CR.
        for payload in [
            &b"hi\n.\nMAIL FROM:<evil@x.fr>\r\n"[..],
            b"hi\n.\r\nMAIL FROM:<evil@x.fr>\r\n",
            b"hi\r\n.\nMAIL FROM:<evil@x.fr>\r\n",
            b"hi\r.\rMAIL FROM:<evil@x.fr>\r\n",
        ] {
            let mut input = payload.to_vec();
            input.extend_from_slice(b".\r\n");
            let (end, body) = decode(&input);
            assert_eq!(end, Some(input.len()), "ended early on {payload:?}");
            assert_eq!(body, Body::BareNewline, "{payload:?}");
        }
    }

    #[test]
    fn oversize_is_reported_after_reading_to_the_end() {
        let mut d = DataDecoder::new(10, b"Recv: x\r\n".to_vec());
        assert_eq!(d.feed(b"0123456789\r\n"), None);
        assert_eq!(d.feed(b".\r\n"), Some(3));
        assert_eq!(d.finish(), Body::TooBig);
    }

    #[test]
    fn long_lines_are_kept_whole() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\r\n.\r\n");
        let (_, body) = decode(&input);
        match body {
            Body::Complete(b) => assert_eq!(b.len(), 100_002),
            other => panic!("{other:?}"),
        }
    }
}
