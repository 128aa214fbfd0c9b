//! Protocol sessions written as dialogues: what the client sends, what the server must answer.
//!
//! A script is plain text, one line per protocol line, indentation ignored:
//!
//! ```text
//! C: EHLO peer.example          the client sends this line (CRLF added)
//! S: 250-mx.example             the server must answer exactly this line
//! S: 250 2.0.0 OK queued as ... `...` matches any text (here the rest of the line)
//! # a comment; blank lines are skipped too
//! ```
//!
//! Consecutive `C:` lines go out in one write before the next `S:` line is read, so a
//! group of them is a pipelined batch (RFC 2920, RFC 9051 §5.5). The session under test
//! runs on the other end of an in-memory stream (`tokio::io::duplex`), in the same process.
//! A mismatch panics with the dialogue so far, so a failing test reads like a log.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long the server gets for each expected line before the test fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// In an expected line, matches any text (`* OK [UIDVALIDITY ...] UIDs valid`).
const ANY_REST: &str = "...";

/// One step of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A line the client sends (without CRLF).
    Send(String),
    /// A line the server must send (without CRLF); see [`ANY_REST`].
    Expect(String),
}

/// Reads a script; a line that is neither `C:`, `S:`, a comment nor blank is a mistake in
/// the test and panics naming it.
pub fn parse_script(script: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for (n, raw) in script.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (who, text) = (line.get(..2).unwrap_or(line), line.get(2..).unwrap_or(""));
        let text = text.strip_prefix(' ').unwrap_or(text).to_string();
        steps.push(match who {
            "C:" => Step::Send(text),
            "S:" => Step::Expect(text),
            _ => panic!(
                "transcript line {}: expected `C:` or `S:`, got {raw:?}",
                n + 1
            ),
        });
    }
    steps
}

/// Whether a received line is the expected one.
pub fn line_matches(expected: &str, got: &str) -> bool {
    let parts: Vec<&str> = expected.split(ANY_REST).collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return got == expected;
    }
    if got.len() < first.len() + last.len() || !got.starts_with(first) || !got.ends_with(last) {
        return false;
    }
    let mut rest = &got[first.len()..got.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The client end of a session under test, with the dialogue so far.
pub struct Transcript<S> {
    stream: S,
    rbuf: Vec<u8>,
    log: Vec<String>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transcript<S> {
    pub fn new(stream: S) -> Transcript<S> {
        Transcript {
            stream,
            rbuf: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Plays a script (see the module documentation).
    pub async fn play(&mut self, script: &str) {
        let mut batch = Vec::new();
        for step in parse_script(script) {
            match step {
                Step::Send(line) => {
                    batch.extend_from_slice(line.as_bytes());
                    batch.extend_from_slice(b"\r\n");
                    self.log.push(format!("C: {line}"));
                }
                Step::Expect(expected) => {
                    self.send_raw(&std::mem::take(&mut batch)).await;
                    self.expect_line(&expected).await;
                }
            }
        }
        self.send_raw(&batch).await;
    }

    /// Sends bytes as they are (a bare LF, a line without its end, a BDAT chunk).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Err(e) = self.stream.write_all(bytes).await {
            self.fail(&format!("sending failed: {e}"));
        }
    }

    /// Reads one line and compares it with `expected`.
    pub async fn expect_line(&mut self, expected: &str) {
        let got = match self.read_line().await {
            Some(line) => line,
            None => self.fail(&format!(
                "expected S: {expected}\n  got      the end of the connection"
            )),
        };
        if !line_matches(expected, &got) {
            self.fail(&format!("expected S: {expected}\n  got      S: {got}"));
        }
        self.log.push(format!("S: {got}"));
    }

    /// The server closed the connection and sent nothing more than what was expected.
    pub async fn expect_closed(&mut self) {
        if let Some(extra) = self.read_line().await {
            self.fail(&format!(
                "expected the end of the connection\n  got      S: {extra}"
            ));
        }
    }

    /// Continues the dialogue over a new transport made from this one (the client side of
    /// a TLS handshake after STARTTLS). Anything the server sent that was not read yet
    /// fails the test: a server must say nothing more in clear.
    pub async fn upgrade<T, F, Fut>(self, handshake: F) -> Transcript<T>
    where
        F: FnOnce(S) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<T>>,
    {
        if !self.rbuf.is_empty() {
            let extra = String::from_utf8_lossy(&self.rbuf).into_owned();
            self.fail(&format!(
                "expected nothing before the handshake\n  got      {extra:?}"
            ));
        }
        let mut log = self.log;
        let stream = match handshake(self.stream).await {
            Ok(stream) => stream,
            Err(e) => panic!("handshake failed after:\n{}\n  {e}", log.join("\n")),
        };
        log.push("-- TLS --".into());
        Transcript {
            stream,
            rbuf: Vec::new(),
            log,
        }
    }

    /// The dialogue so far, one line per protocol line.
    pub fn log(&self) -> String {
        self.log.join("\n")
    }

    /// The next line without its CRLF; `None` at the end of the stream.
    async fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.rbuf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.rbuf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => self.fail(&format!("the server said nothing for {REPLY_TIMEOUT:?}")),
                Ok(Err(_)) | Ok(Ok(0)) if self.rbuf.is_empty() => return None,
                Ok(Err(_)) | Ok(Ok(0)) => {
                    let partial =
                        String::from_utf8_lossy(&std::mem::take(&mut self.rbuf)).into_owned();
                    self.fail(&format!("the stream ended inside a line: {partial:?}"))
                }
                Ok(Ok(n)) => self.rbuf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "transcript mismatch after:\n{}\n  {what}",
            self.log
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_read_as_dialogues() {
        let steps = parse_script(
            "
            # greeting
            S: 220 ready
            C: NOOP
            C:
            S: 250 ok ...",
        );
        assert_eq!(
            steps,
            vec![
                Step::Expect("220 ready".into()),
                Step::Send("NOOP".into()),
                Step::Send(String::new()),
                Step::Expect("250 ok ...".into()),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "expected `C:` or `S:`")]
    fn a_line_without_speaker_is_a_test_mistake() {
        parse_script("EHLO x");
    }

    #[test]
    fn trailing_dots_match_any_rest() {
        assert!(line_matches(
            "250 OK queued as ...",
            "250 OK queued as 1f2e"
        ));
        assert!(!line_matches("250 OK queued as ...", "451 4.3.0 error"));
        assert!(line_matches("250 Sender OK", "250 Sender OK"));
        assert!(line_matches(
            "a1 OK [CAPABILITY ...] Logged in",
            "a1 OK [CAPABILITY IMAP4rev2 X] Logged in"
        ));
        assert!(!line_matches("* ... EXISTS", "* 3 RECENT"));
        assert!(!line_matches("a...a", "a"));
        assert!(!line_matches("250 Sender OK", "250 Sender OK "));
    }

    #[tokio::test]
    async fn a_wrong_reply_fails_with_the_dialogue() {
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let _ = server.read(&mut buf).await;
            server.write_all(b"500 what?\r\n").await.unwrap();
        });
        let mut t = Transcript::new(client);
        let outcome = tokio::spawn(async move { t.play("C: HELLO\nS: 250 hi").await }).await;
        let panic = outcome.expect_err("a mismatch panics").into_panic();
        let message = panic.downcast_ref::<String>().expect("a message");
        assert!(message.contains("C: HELLO"), "{message}");
        assert!(message.contains("got      S: 500 what?"), "{message}");
    }
}
