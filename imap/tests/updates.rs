//! Untagged updates that other sessions and QRESYNC clients rely on (issue 11): keywords
//! announced before use, the UID in every FETCH once QRESYNC is on, and no NUL in a plain
//! literal. Dialogues as in `transcripts.rs`.

mod harness;

use harness::{Client, Server};
use mssante_testkit::engine_tests;

const SYSTEM: &str = r"\Answered \Flagged \Deleted \Seen \Draft";

async fn append(c: &mut Client, tag: &str, body: &str) {
    c.send(&format!("{tag} APPEND INBOX {{{}+}}\r\n{body}", body.len()))
        .await;
    let lines = c.lines_until(tag).await;
    assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
}

async fn select(c: &mut Client, tag: &str) {
    c.send(&format!("{tag} SELECT INBOX")).await;
    let lines = c.lines_until(tag).await;
    assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
}

engine_tests!(new_keywords_are_announced_before_use, |engine| async move {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let mut a = server.login(&address).await;
    let mut b = server.login(&address).await;
    select(&mut a, "s1").await;
    append(&mut a, "p1", "Subject: one\r\n\r\nx").await;
    select(&mut b, "s2").await;
    // The storing session hears of $hello before its FETCH names it.
    a.dialogue(&format!(
        r#"
        C: k1 STORE 1 +FLAGS ($hello)
        S: * FLAGS ({SYSTEM} $hello)
        S: * OK [PERMANENTFLAGS ({SYSTEM} $hello \*)] Flags permitted
        S: * 1 FETCH (FLAGS (\Recent $hello))
        S: k1 OK STORE completed
        "#
    ))
    .await;
    // So does the other session, at its next command.
    b.dialogue(&format!(
        r#"
        C: n1 NOOP
        S: * FLAGS ({SYSTEM} $hello)
        S: * OK [PERMANENTFLAGS ({SYSTEM} $hello \*)] Flags permitted
        S: * 1 FETCH (UID 1 FLAGS ($hello))
        S: n1 OK NOOP completed
        "#
    ))
    .await;
    // A keyword named NIL is a keyword like any other (an atom, RFC 9051 §9 flag-keyword).
    a.dialogue(&format!(
        r#"
        C: k2 STORE 1 +FLAGS (NIL)
        S: * FLAGS ({SYSTEM} $hello NIL)
        S: * OK [PERMANENTFLAGS ({SYSTEM} $hello NIL \*)] Flags permitted
        S: * 1 FETCH (FLAGS (\Recent $hello NIL))
        S: k2 OK STORE completed
        C: k3 STORE 1 -FLAGS (NIL)
        S: * 1 FETCH (FLAGS (\Recent $hello))
        S: k3 OK STORE completed
        "#
    ))
    .await;
    b.dialogue(
        r#"
        C: n2 NOOP
        S: * 1 FETCH (UID 1 FLAGS ($hello))
        S: n2 OK NOOP completed
        "#,
    )
    .await;
    // NIL came and went before b looked: b never sees it in a FETCH, so it is not announced.
    // A message appended elsewhere with a new keyword is announced with its EXISTS.
    a.send("p2 APPEND INBOX ($new) {4+}\r\nbody").await;
    a.lines_until("p2").await;
    b.dialogue(&format!(
        r#"
        C: n3 NOOP
        S: * FLAGS ({SYSTEM} $hello $new)
        S: * OK [PERMANENTFLAGS ({SYSTEM} $hello $new \*)] Flags permitted
        S: * 2 EXISTS
        S: * 0 RECENT
        S: n3 OK NOOP completed
        "#
    ))
    .await;
});

engine_tests!(qresync_fetch_responses_carry_the_uid, |engine| async move {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let mut a = server.login(&address).await;
    let mut b = server.login(&address).await;
    for c in [&mut a, &mut b] {
        c.dialogue(
            r#"
            C: e1 ENABLE QRESYNC
            S: * ENABLED QRESYNC
            S: e1 OK ENABLE completed
            "#,
        )
        .await;
    }
    select(&mut a, "s1").await;
    append(&mut a, "p1", "Subject: one\r\n\r\nx").await;
    select(&mut b, "s2").await;
    // RFC 7162 §3.2.4: STORE replies, FETCH replies and other sessions' updates.
    a.dialogue(
        r#"
        C: k1 STORE 1 +FLAGS (\Seen)
        S: * 1 FETCH (UID 1 FLAGS (\Recent \Seen) MODSEQ (...))
        S: k1 OK STORE completed
        C: k2 STORE 1 -FLAGS.SILENT (\Seen)
        S: * 1 FETCH (UID 1 MODSEQ (...))
        S: k2 OK STORE completed
        C: f1 FETCH 1 FLAGS
        S: * 1 FETCH (UID 1 FLAGS (\Recent))
        S: f1 OK FETCH completed
        "#,
    )
    .await;
    // The answer, then the other session's change as an update: with CONDSTORE on, an
    // unsolicited FETCH carries MODSEQ (RFC 7162 §3.1.4).
    b.dialogue(
        r#"
        C: f2 FETCH 1 (FLAGS)
        S: * 1 FETCH (UID 1 FLAGS ())
        S: * 1 FETCH (UID 1 FLAGS () MODSEQ (...))
        S: f2 OK FETCH completed
        "#,
    )
    .await;
});

engine_tests!(nul_never_travels_in_a_plain_literal, |engine| async move {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let mut c = server.login(&address).await;
    select(&mut c, "s1").await;
    let message: &[u8] = b"Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\nA\0B\0C\r\n";
    // RFC 3516 §4.4: binary content is appended in a literal8.
    let mut command = format!("p1 APPEND INBOX ~{{{}+}}\r\n", message.len()).into_bytes();
    command.extend_from_slice(message);
    command.extend_from_slice(b"\r\n");
    c.send_bytes(&command).await;
    let appended = c.response_to("p1").await;
    assert!(
        String::from_utf8_lossy(&appended).contains("p1 OK"),
        "{}",
        String::from_utf8_lossy(&appended)
    );
    // BODY[1]: a plain literal of the same size, NUL sent as 0x80 (RFC 9051 §4.3).
    c.send("f1 FETCH 1 BODY.PEEK[1]").await;
    let body = c.response_to("f1").await;
    let expected: &[u8] =
        b"* 1 FETCH (BODY[1] {7}\r\nA\x80B\x80C\r\n)\r\nf1 OK FETCH completed\r\n";
    assert_eq!(body, expected, "got {:?}", String::from_utf8_lossy(&body));
    // The whole message likewise.
    c.send("f2 FETCH 1 BODY.PEEK[]").await;
    let whole = c.response_to("f2").await;
    assert!(!whole.contains(&0), "NUL in {whole:?}");
    // BINARY[1]: the exact octets, in a literal8 (RFC 3516 §4.2).
    c.send("f3 FETCH 1 BINARY.PEEK[1]").await;
    let binary = c.response_to("f3").await;
    let expected: &[u8] = b"* 1 FETCH (BINARY[1] ~{7}\r\nA\0B\0C\r\n)\r\nf3 OK FETCH completed\r\n";
    assert_eq!(
        binary,
        expected,
        "got {:?}",
        String::from_utf8_lossy(&binary)
    );
});
