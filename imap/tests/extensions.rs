//! Extensions beyond IMAP4rev2 as dialogues on in-process sessions over a real store
//! (SQLite and PostgreSQL): UNAUTHENTICATE (RFC 8437), ESORT, CONTEXT and PARTIAL
//! (RFC 5267, RFC 9394), THREAD=REFERENCES (RFC 5256 §2.2). See `harness/mod.rs` for the
//! notation.

mod harness;

use harness::{Client, Server};
use mssante_testkit::{Engine, engine_tests};

/// A server with one BAL, and a client logged in to it.
async fn logged_in(engine: Engine) -> (Server, String, Client) {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let client = server.login(&address).await;
    (server, address, client)
}

/// Appends `message` (LF line ends become CRLF) to INBOX and reads up to the tagged reply.
async fn append(c: &mut Client, tag: &str, message: &str) {
    let message = message.replace('\n', "\r\n");
    c.send(&format!(
        "{tag} APPEND INBOX {{{}+}}\r\n{message}",
        message.len()
    ))
    .await;
    let lines = c.lines_until(tag).await;
    assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
}

/// Three messages of growing size and dates that run the other way.
async fn three_messages(c: &mut Client) {
    append(
        c,
        "p1",
        "Date: Wed, 3 Jun 2026 10:00:00 +0000\nSubject: a\n\nx\n",
    )
    .await;
    append(
        c,
        "p2",
        "Date: Tue, 2 Jun 2026 10:00:00 +0000\nSubject: b\n\nxxxx\n",
    )
    .await;
    append(
        c,
        "p3",
        "Date: Mon, 1 Jun 2026 10:00:00 +0000\nSubject: c\n\nxxxxxxxx\n",
    )
    .await;
    c.send("s SELECT INBOX").await;
    c.lines_until("s").await;
}

engine_tests!(
    unauthenticate_returns_to_the_greeting_state,
    |engine| async move {
        let (_server, address, mut c) = logged_in(engine).await;
        c.dialogue(
            r#"
        C: a1 CAPABILITY
        S: * CAPABILITY ... UNAUTHENTICATE ...
        S: a1 OK CAPABILITY completed
        C: a2 ENABLE CONDSTORE
        S: * ENABLED CONDSTORE
        S: a2 OK ENABLE completed
        C: a3 EXAMINE INBOX
        S: ...
        S: ...
        S: ...
        S: ...
        S: ...
        S: ...
        S: ...
        S: ...
        S: a3 OK [READ-ONLY] EXAMINE completed
        C: a4 UNAUTHENTICATE
        S: a4 OK UNAUTHENTICATE completed
        C: a5 FETCH 1 FLAGS
        S: a5 BAD Not authenticated
        C: a6 LIST "" INBOX
        S: a6 BAD Not authenticated
        "#,
        )
        .await;
        c.dialogue(&format!(
            r#"
        C: a7 LOGIN {address} "{}"
        S: a7 OK [CAPABILITY IMAP4rev2 ...] Logged in
        C: a8 FETCH 1 FLAGS
        S: a8 BAD No mailbox selected
        "#,
            harness::PASSWORD
        ))
        .await;
    }
);

engine_tests!(esort_and_partial_results, |engine| async move {
    let (_server, _address, mut c) = logged_in(engine).await;
    three_messages(&mut c).await;
    c.dialogue(
        r#"
        C: a1 SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL
        S: * ESEARCH (TAG "a1") MIN 3 MAX 1 COUNT 3 ALL 3,2,1
        S: a1 OK SORT completed
        C: a2 UID SORT RETURN () (REVERSE SIZE) UTF-8 1:2
        S: * ESEARCH (TAG "a2") UID ALL 2,1
        S: a2 OK SORT completed
        C: a3 SORT RETURN (PARTIAL 2:9) (SIZE) UTF-8 ALL
        S: * ESEARCH (TAG "a3") PARTIAL (2:9 2:3)
        S: a3 OK SORT completed
        C: a4 SEARCH RETURN (PARTIAL -1:-2) ALL
        S: * ESEARCH (TAG "a4") PARTIAL (-1:-2 2:3)
        S: a4 OK SEARCH completed
        C: a5 UID SEARCH RETURN (COUNT PARTIAL 4:5) ALL
        S: * ESEARCH (TAG "a5") UID COUNT 3 PARTIAL (4:5 NIL)
        S: a5 OK SEARCH completed
        C: a6 SEARCH RETURN (PARTIAL 1:*) ALL
        S: a6 BAD Syntax error: ...
        C: a7 SEARCH RETURN (ALL PARTIAL 1:2) ALL
        S: a7 BAD Syntax error: ...
        C: a8 SORT (DATE) UTF-8 ALL
        S: * SORT 3 2 1
        S: a8 OK SORT completed
        C: a9 UID FETCH 1:* (UID) (PARTIAL -1:-2)
        S: * 2 FETCH (UID 2)
        S: * 3 FETCH (UID 3)
        S: a9 OK FETCH completed
        C: a10 UID FETCH 2:* (UID) (PARTIAL 2:5)
        S: * 3 FETCH (UID 3)
        S: a10 OK FETCH completed
        C: a11 FETCH 1:* (UID) (PARTIAL 1:2)
        S: a11 BAD PARTIAL needs UID FETCH
        "#,
    )
    .await;
});

engine_tests!(thread_by_references, |engine| async move {
    let (_server, _address, mut c) = logged_in(engine).await;
    let msg = |id: &str, refs: &str, date: u32, subject: &str| {
        format!(
            "Message-ID: <{id}@x>\n{refs}Date: Mon, {date} Jun 2026 10:00:00 +0000\nSubject: {subject}\n\nbody\n"
        )
    };
    // 1 starts a thread; 3 answers 1 and 2 answers 3 (References); 4 answers a message
    // the mailbox does not hold; 5 shares 1's subject as a reply without references.
    let messages = [
        msg("one", "", 1, "Consult"),
        msg("two", "References: <one@x> <three@x>\n", 4, "Re: Consult"),
        msg("three", "In-Reply-To: <one@x>\n", 3, "Re: Consult"),
        msg("four", "References: <gone@x>\n", 2, "Other"),
        msg("five", "", 5, "Re: Consult"),
    ];
    for (i, m) in messages.iter().enumerate() {
        append(&mut c, &format!("p{i}"), m).await;
    }
    c.send("s SELECT INBOX").await;
    c.lines_until("s").await;
    c.dialogue(
        r#"
        C: a1 CAPABILITY
        S: * CAPABILITY ... THREAD=REFERENCES ...
        S: a1 OK CAPABILITY completed
        C: a2 THREAD REFERENCES UTF-8 ALL
        S: * THREAD (1 (3 2)(5))(4)
        S: a2 OK THREAD completed
        C: a3 UID THREAD REFERENCES UTF-8 NOT 3
        S: * THREAD (1 (2)(5))(4)
        S: a3 OK THREAD completed
        C: a4 THREAD ORDEREDSUBJECT UTF-8 ALL
        S: * THREAD (1 (3)(2)(5))(4)
        S: a4 OK THREAD completed
        C: a5 THREAD FROB UTF-8 ALL
        S: a5 NO Threading algorithm FROB not supported
        "#,
    )
    .await;
});

engine_tests!(
    search_and_sort_contexts_follow_changes,
    |engine| async move {
        let (server, address, mut c) = logged_in(engine).await;
        three_messages(&mut c).await;
        c.dialogue(
            r#"
        C: a1 SEARCH RETURN (UPDATE) SEEN
        S: * ESEARCH (TAG "a1")
        S: a1 OK SEARCH completed
        C: a2 STORE 1,3 +FLAGS.SILENT (\Seen)
        S: * ESEARCH (TAG "a1") ADDTO (1 1,3)
        S: a2 OK STORE completed
        "#,
        )
        .await;
        // Another session's change reaches the context at the next command.
        let mut d = server.login(&address).await;
        d.send("d0 SELECT INBOX").await;
        d.lines_until("d0").await;
        d.send("d1 UID STORE 3 -FLAGS.SILENT (\\Seen)").await;
        d.lines_until("d1").await;
        c.dialogue(
            r#"
        C: a3 NOOP
        S: * 3 FETCH (UID 3 FLAGS (\Recent))
        S: * ESEARCH (TAG "a1") REMOVEFROM (2 3)
        S: a3 OK NOOP completed
        C: a4 STORE 1 +FLAGS.SILENT (\Deleted)
        S: a4 OK STORE completed
        C: a5 EXPUNGE
        S: * ESEARCH (TAG "a1") REMOVEFROM (1 1)
        S: * 1 EXPUNGE
        S: a5 OK EXPUNGE completed
        C: a6 CANCELUPDATE "a1"
        S: a6 OK CANCELUPDATE completed
        C: a7 STORE 1 +FLAGS.SILENT (\Seen)
        S: a7 OK STORE completed
        C: a8 CANCELUPDATE "a1"
        S: a8 NO Unknown search context
        C: b1 UID SORT RETURN (UPDATE) (SIZE) UTF-8 SEEN
        S: * ESEARCH (TAG "b1") UID ALL 2
        S: b1 OK SORT completed
        C: b2 STORE 2 +FLAGS.SILENT (\Seen)
        S: * ESEARCH (TAG "b1") UID ADDTO (2 3)
        S: b2 OK STORE completed
        C: b3 UNSELECT
        S: b3 OK UNSELECT completed
        C: b4 CANCELUPDATE "b1"
        S: b4 BAD No mailbox selected
        "#,
        )
        .await;
    }
);

engine_tests!(
    catenate_builds_messages_from_urls_and_text,
    |engine| async move {
        let (_server, _address, mut c) = logged_in(engine).await;
        append(&mut c, "p1", "From: a@x\nSubject: one\n\nhello\n").await;
        c.dialogue(
            r#"
        C: a1 APPEND INBOX (\Seen) CATENATE (URL "/INBOX/;uid=1/;section=HEADER" TEXT {7+}
        C: body2
        C: )
        S: a1 OK [APPENDUID ... 2] APPEND completed
        C: a2 APPEND INBOX CATENATE (TEXT {4+}
        C: X:
        C:  URL "imap://h/INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=1.3") CATENATE (URL "/INBOX/;uid=1")
        S: a2 OK [APPENDUID ... 3:4] APPEND completed
        C: a3 APPEND INBOX CATENATE (URL "/INBOX;UIDVALIDITY=4294967295/;uid=1")
        S: a3 NO [BADURL /INBOX;UIDVALIDITY=4294967295/;uid=1] CATENATE URL refused
        C: a4 APPEND INBOX CATENATE (URL "/INBOX/;uid=9")
        S: a4 NO [BADURL /INBOX/;uid=9] CATENATE URL refused
        C: a5 APPEND Nowhere CATENATE (URL "/INBOX/;uid=1")
        S: a5 NO [TRYCREATE] No such mailbox
        "#,
        )
        .await;
        c.send("s EXAMINE INBOX").await;
        c.lines_until("s").await;
        c.send("f FETCH 2:4 BODY.PEEK[]").await;
        let fetched = String::from_utf8_lossy(&c.response_to("f").await).into_owned();
        for expected in [
            "* 2 FETCH (BODY[] {34}\r\nFrom: a@x\r\nSubject: one\r\n\r\nbody2\r\n)",
            "* 3 FETCH (BODY[] {7}\r\nX:\r\nell)",
            "* 4 FETCH (BODY[] {34}\r\nFrom: a@x\r\nSubject: one\r\n\r\nhello\r\n)",
        ] {
            assert!(
                fetched.contains(expected),
                "{expected:?} not in {fetched:?}"
            );
        }
    }
);

engine_tests!(preview_gives_the_start_of_the_text, |engine| async move {
    let (_server, _address, mut c) = logged_in(engine).await;
    append(
        &mut c,
        "p1",
        "Subject: cr\nContent-Type: text/plain; charset=utf-8\n\nCompte   rendu\n\nde consultation\n",
    )
    .await;
    append(&mut c, "p2", "Subject: vide\n\n").await;
    c.send("s EXAMINE INBOX").await;
    c.lines_until("s").await;
    c.dialogue(
        r#"
        C: a1 CAPABILITY
        S: * CAPABILITY ... PREVIEW ...
        S: a1 OK CAPABILITY completed
        C: a2 FETCH 1:2 (PREVIEW)
        S: * 1 FETCH (PREVIEW "Compte rendu de consultation")
        S: * 2 FETCH (PREVIEW "")
        S: a2 OK FETCH completed
        C: a3 UID FETCH 1 (PREVIEW (LAZY) FLAGS)
        S: * 1 FETCH (UID 1 PREVIEW "Compte rendu de consultation" FLAGS (...))
        S: a3 OK FETCH completed
        "#,
    )
    .await;
});

engine_tests!(replace_swaps_a_draft_in_one_command, |engine| async move {
    let (_server, _address, mut c) = logged_in(engine).await;
    append(&mut c, "p1", "Subject: draft\n\nv1\n").await;
    c.send("s SELECT INBOX").await;
    c.lines_until("s").await;
    c.send("a1 UID REPLACE 1 INBOX (\\Draft) {22+}\r\nSubject: draft\r\n\r\nv2\r\n")
        .await;
    let lines = c.lines_until("a1").await;
    assert_eq!(
        lines,
        [
            "* OK [APPENDUID ".to_string() + &lines[0][16..],
            "* 1 EXPUNGE".into(),
            "* 1 EXISTS".into(),
            "* 1 RECENT".into(),
            "a1 OK REPLACE completed".into(),
        ]
    );
    assert!(lines[0].ends_with(" 2] Replacement stored"), "{lines:?}");
    c.dialogue(
        r#"
        C: a2 FETCH 1 (UID FLAGS RFC822.SIZE)
        S: * 1 FETCH (UID 2 FLAGS (\Recent \Draft) RFC822.SIZE 22)
        S: a2 OK FETCH completed
        C: a3 REPLACE 2 INBOX {1+}
        C: x
        S: a3 BAD Invalid message sequence number
        C: a4 UID REPLACE 1 INBOX {1+}
        C: x
        S: a4 NO [NONEXISTENT] No such message
        C: a5 REPLACE 1 Nowhere {1+}
        C: x
        S: a5 NO [TRYCREATE] No such mailbox
        C: a6 FETCH 1 UID
        S: * 1 FETCH (UID 2)
        S: a6 OK FETCH completed
        "#,
    )
    .await;
});

/// The text between `open` and the next `close` in `line`.
fn between<'a>(line: &'a str, open: &str, close: &str) -> &'a str {
    let start = line.find(open).map(|i| i + open.len()).expect(open);
    let len = line[start..].find(close).expect(close);
    &line[start..start + len]
}

engine_tests!(object_ids_and_save_dates, |engine| async move {
    let (_server, _address, mut c) = logged_in(engine).await;
    append(&mut c, "p1", "Subject: one\n\nbody\n").await;
    c.send("a1 CREATE Projets").await;
    let created = c.lines_until("a1").await;
    let mailbox_id = between(&created[0], "[MAILBOXID (", ")]").to_string();
    c.send("a2 RENAME Projets Archives").await;
    c.lines_until("a2").await;
    // RFC 8474 §4.1: the id stays with the mailbox across RENAME.
    c.dialogue(&format!(
        r#"
        C: a3 STATUS Archives (MESSAGES MAILBOXID)
        S: * STATUS "Archives" (MESSAGES 0 MAILBOXID ({mailbox_id}))
        S: a3 OK STATUS completed
        C: a4 STATUS INBOX (MAILBOXID)
        S: * STATUS "INBOX" (MAILBOXID (F...))
        S: a4 OK STATUS completed
        "#
    ))
    .await;
    c.send("s SELECT INBOX").await;
    let selected = c.lines_until("s").await;
    assert!(
        selected.iter().any(|l| l.starts_with("* OK [MAILBOXID (F")),
        "{selected:?}"
    );
    c.send("a5 FETCH 1 (EMAILID THREADID SAVEDATE)").await;
    let fetched = c.lines_until("a5").await;
    let email_id = between(&fetched[0], "EMAILID (", ")").to_string();
    assert!(
        fetched[0].contains(" THREADID NIL SAVEDATE \""),
        "{fetched:?}"
    );
    c.dialogue(&format!(
        r#"
        C: a6 COPY 1 Archives
        S: a6 OK [COPYUID ...] COPY completed
        C: a7 SEARCH EMAILID {email_id} SAVEDATESUPPORTED SAVEDSINCE 1-Jan-2020
        S: * SEARCH 1
        S: a7 OK SEARCH completed
        C: a8 SEARCH OR SAVEDBEFORE 1-Jan-2020 THREADID T1
        S: * SEARCH
        S: a8 OK SEARCH completed
        "#
    ))
    .await;
    c.send("a9 EXAMINE Archives").await;
    let examined = c.lines_until("a9").await;
    let expected = format!("* OK [MAILBOXID ({mailbox_id})] Mailbox id");
    assert!(examined.contains(&expected), "{examined:?}");
    // RFC 8474 §5.1: a copy keeps the EMAILID.
    c.dialogue(&format!(
        r#"
        C: b1 FETCH 1 EMAILID
        S: * 1 FETCH (EMAILID ({email_id}))
        S: b1 OK FETCH completed
        "#
    ))
    .await;
});

/// Reads from `io` until `plain` (inflated by `inflate`) holds a line starting with `tag `;
/// gives the response up to that line, which ends it.
async fn inflate_until(
    io: &mut tokio::io::DuplexStream,
    inflate: &mut flate2::Decompress,
    plain: &mut Vec<u8>,
    tag: &str,
) -> String {
    use tokio::io::AsyncReadExt;
    loop {
        // The tagged line, and what came before it, leave the buffer; what follows stays.
        let text = String::from_utf8_lossy(plain).into_owned();
        let start = format!("{tag} ");
        let mut at = 0;
        for line in text.split_inclusive("\r\n") {
            at += line.len();
            if line.starts_with(&start) && line.ends_with("\r\n") {
                plain.drain(..at);
                return text[..at].trim_end().to_string();
            }
        }
        let mut chunk = vec![0; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), io.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer to {tag}; got {:?}",
                    String::from_utf8_lossy(plain)
                )
            })
            .expect("read");
        assert!(n > 0, "connection closed");
        plain.reserve(64 * 1024);
        inflate
            .decompress_vec(&chunk[..n], plain, flate2::FlushDecompress::None)
            .expect("valid DEFLATE from the server");
    }
}

fn deflated(compress: &mut flate2::Compress, plain: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + 64);
    compress
        .compress_vec(plain.as_bytes(), &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    out
}

engine_tests!(compress_deflate_carries_the_session, |engine| async move {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let (mut io, server_side) = tokio::io::duplex(256 * 1024);
    tokio::spawn(mssante_imap::run_in_memory_session(
        server_side,
        server.ctx.clone(),
    ));
    // Plain until the OK of COMPRESS: greeting, login, the command itself.
    let login = format!("l LOGIN {address} \"{}\"\r\n", harness::PASSWORD);
    io.write_all(login.as_bytes()).await.unwrap();
    io.write_all(b"c COMPRESS DEFLATE\r\n").await.unwrap();
    let mut reader = BufReader::new(&mut io);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("c ")) {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        lines.push(line);
    }
    assert!(lines[0].contains("COMPRESS=DEFLATE"), "{lines:?}");
    assert_eq!(lines.last().unwrap(), "c OK DEFLATE active\r\n");
    assert!(reader.buffer().is_empty());
    drop(reader);
    let mut compress = flate2::Compress::new(flate2::Compression::default(), false);
    let mut inflate = flate2::Decompress::new(false);
    let mut plain = Vec::new();
    let body = "Subject: z\r\n\r\n".to_string() + &"compressible ".repeat(2000) + "\r\n";
    let commands = format!(
        "a APPEND INBOX {{{}+}}\r\n{body}\r\ns SELECT INBOX\r\nf FETCH 1 BODY.PEEK[TEXT]\r\n",
        body.len()
    );
    io.write_all(&deflated(&mut compress, &commands))
        .await
        .unwrap();
    assert!(
        inflate_until(&mut io, &mut inflate, &mut plain, "a")
            .await
            .contains("OK [APPENDUID")
    );
    assert!(
        inflate_until(&mut io, &mut inflate, &mut plain, "s")
            .await
            .ends_with("OK [READ-WRITE] SELECT completed")
    );
    // The 26 KB body comes back whole through the compressed stream.
    let fetched = inflate_until(&mut io, &mut inflate, &mut plain, "f").await;
    let text = body.split_once("\r\n\r\n").unwrap().1;
    let expected = format!(
        "* 1 FETCH (BODY[TEXT] {{{}}}\r\n{text})\r\nf OK FETCH completed",
        text.len()
    );
    assert!(
        fetched.ends_with(&expected),
        "{}",
        &fetched[..200.min(fetched.len())]
    );
    io.write_all(&deflated(&mut compress, "c2 COMPRESS DEFLATE\r\n"))
        .await
        .unwrap();
    let again = inflate_until(&mut io, &mut inflate, &mut plain, "c2").await;
    assert!(again.ends_with("c2 NO [COMPRESSIONACTIVE] DEFLATE is already active"));
});
