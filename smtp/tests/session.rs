//! SMTP protocol behaviour as dialogues with the real session engine, in process, on SQLite
//! and on PostgreSQL (`C:` the client, `S:` what the server must answer; see
//! `mssante_testkit::transcript`). TLS is a self-signed certificate trusted by the test
//! client; the trust space's client certificates and interoperability with real clients
//! are covered by the binary end-to-end tests in `tests/`.

mod common;

use common::*;
use mssante_smtp::ListenerKind;
use mssante_testkit::engine_tests;
use mssante_testkit::transcript::Transcript;
use tokio::io::DuplexStream;

const GREETING: &str = "S: 220 mx.test.mssante.fr ESMTP mssante ready";

/// The usual envelope: a lab writes to Dr Martin.
const ENVELOPE_TO_DR: &str = "
    C: MAIL FROM:<labo@labo.mssante.fr>
    S: 250 2.1.0 Sender OK
    C: RCPT TO:<dr.martin@test.mssante.fr>
    S: 250 2.1.5 Recipient OK";

const DATA_GO_AHEAD: &str = "
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>";

const QUIT: &str = "
    C: QUIT
    S: 221 2.0.0 mx.test.mssante.fr closing connection";

/// A session on `kind`, past the greeting and EHLO.
async fn after_ehlo(h: &SmtpHarness, kind: ListenerKind) -> Transcript<DuplexStream> {
    let mut t = h.connect(kind);
    t.play(GREETING).await;
    t.play(&ehlo(&["STARTTLS"])).await;
    t
}

engine_tests!(
    ehlo_lists_the_extensions_and_quit_closes,
    |engine| async move {
        let h = SmtpHarness::new(engine).await;
        let mut t = h.connect(ListenerKind::Mx);
        t.play(
            "
        S: 220 mx.test.mssante.fr ESMTP mssante ready
        C: EHLO peer.labo.mssante.fr
        S: 250-mx.test.mssante.fr
        S: 250-PIPELINING
        S: 250-SIZE 10000
        S: 250-8BITMIME
        S: 250-ENHANCEDSTATUSCODES
        S: 250-SMTPUTF8
        S: 250-CHUNKING
        S: 250-DSN
        S: 250 STARTTLS
        # RFC 5321 §4.1.1.1: HELO gets a one-line answer, no extension list.
        C: HELO peer.labo.mssante.fr
        S: 250 mx.test.mssante.fr
        C: NOOP
        S: 250 2.0.0 OK
        C: VRFY dr.martin
        S: 252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery
        C: FROB
        S: 500 5.5.2 Command not recognized
        C: DATA now
        S: 501 5.5.4 Syntax error: this command takes no argument",
        )
        .await;
        t.play(QUIT).await;
        t.expect_closed().await;
    }
);

engine_tests!(mail_and_rcpt_errors_name_the_problem, |engine| async move {
    let h = SmtpHarness::new(engine).await;
    let mut t = h.connect(ListenerKind::Mx);
    t.play(GREETING).await;
    t.play(
        "
        C: MAIL FROM:<labo@labo.mssante.fr>
        S: 503 5.5.1 Send EHLO first
        C: RCPT TO:<dr.martin@test.mssante.fr>
        S: 503 5.5.1 Send MAIL FROM first",
    )
    .await;
    t.play(&ehlo(&["STARTTLS"])).await;
    t.play(
        "
        C: MAIL FROM:<labo@labo.mssante.fr> XFOO=1
        S: 555 5.5.4 Unsupported parameter XFOO
        C: MAIL FROM:<labo@labo.mssante.fr> SIZE=20000
        S: 552 5.3.4 Message size exceeds fixed limit of 10000 bytes
        C: MAIL FROM:<labo@labo.mssante.fr> RET=SOME
        S: 501 5.5.4 Invalid parameter: RET must be FULL or HDRS
        C: MAIL FROM:<médecin@labo.mssante.fr>
        S: 553 5.6.7 Non-ASCII address <médecin@labo.mssante.fr> requires SMTPUTF8
        C: MAIL FROM:<labo@labo.mssante.fr> SIZE=500
        S: 250 2.1.0 Sender OK
        C: MAIL FROM:<labo@labo.mssante.fr>
        S: 503 5.5.1 Nested MAIL command
        C: DATA
        S: 554 5.5.1 No valid recipients
        C: RCPT TO:<personne@test.mssante.fr>
        S: 550 5.1.1 <personne@test.mssante.fr>: no such mailbox
        C: RCPT TO:<dr.parti@test.mssante.fr>
        S: 550 5.2.1 <dr.parti@test.mssante.fr>: mailbox suspended
        # The MX takes mail for our own domains only.
        C: RCPT TO:<quelquun@ailleurs.mssante.fr>
        S: 550 5.7.1 <quelquun@ailleurs.mssante.fr>: relaying denied
        C: RCPT TO:<dr.martin@test.mssante.fr> NOTIFY=SOMETIMES
        S: 501 5.5.4 Invalid parameter: NOTIFY
        C: RCPT TO:<dr.martin@test.mssante.fr> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dr.martin@test.mssante.fr
        S: 250 2.1.5 Recipient OK
        # Addresses are case-insensitive (ADR 0004): the same BAL twice gets one copy.
        C: RCPT TO:<DR.Martin@test.mssante.fr>
        S: 250 2.1.5 Recipient OK (duplicate)
        C: RSET
        S: 250 2.0.0 Reset state",
    )
    .await;
    t.play(QUIT).await;
    t.expect_closed().await;
    assert_eq!(h.store.message_count().await.unwrap(), 0, "nothing stored");
});

engine_tests!(
    data_removes_dot_stuffing_and_adds_a_trace_header,
    |engine| async move {
        let h = SmtpHarness::new(engine).await;
        let mut t = after_ehlo(&h, ListenerKind::Mx).await;
        t.play(ENVELOPE_TO_DR).await;
        t.play(DATA_GO_AHEAD).await;
        t.play(
            "
        C: From: labo@labo.mssante.fr
        C: To: dr.martin@test.mssante.fr
        C: Subject: Compte rendu
        C:
        C: Bonjour.
        # RFC 5321 §4.5.2: the client doubles a leading dot; the server removes one.
        C: ..signature
        C: ...
        C: .
        S: 250 2.0.0 OK queued as ...
        # The transaction ended with the message.
        C: DATA
        S: 503 5.5.1 Send MAIL FROM first",
        )
        .await;
        t.play(QUIT).await;
        t.expect_closed().await;
        let inbox = h.inbox(DR).await;
        assert_eq!(inbox.len(), 1, "{}", t.log());
        assert!(
            inbox[0].starts_with(
                "Received: from peer.labo.mssante.fr ([192.0.2.25])\r\n\tby mx.test.mssante.fr"
            ),
            "trace header first: {}",
            inbox[0]
        );
        assert!(inbox[0].contains("\r\nSubject: Compte rendu\r\n"));
        assert_eq!(body(&inbox[0]), "Bonjour.\r\n.signature\r\n..\r\n");
    }
);

engine_tests!(
    pipelined_commands_are_answered_in_order,
    |engine| async move {
        let h = SmtpHarness::new(engine).await;
        let mut t = after_ehlo(&h, ListenerKind::Mx).await;
        // RFC 2920 §3.1: the whole envelope in one write, DATA last; replies in command order.
        t.play(
            "
        C: MAIL FROM:<labo@labo.mssante.fr> RET=HDRS ENVID=lot42
        C: RCPT TO:<dr.martin@test.mssante.fr> NOTIFY=SUCCESS
        C: RCPT TO:<personne@test.mssante.fr>
        C: RCPT TO:<secretariat@test.mssante.fr>
        C: DATA
        S: 250 2.1.0 Sender OK
        S: 250 2.1.5 Recipient OK
        S: 550 5.1.1 <personne@test.mssante.fr>: no such mailbox
        S: 250 2.1.5 Recipient OK
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Subject: Resultats du lot 42
        C:
        C: Resultats.
        C: .
        # QUIT may follow the end of data in the same write (RFC 2920 §3.1).
        C: QUIT
        S: 250 2.0.0 OK queued as ...
        S: 221 2.0.0 mx.test.mssante.fr closing connection",
        )
        .await;
        t.expect_closed().await;
        assert_eq!(h.store.message_count().await.unwrap(), 1, "one message");
        for bal in [DR, SEC] {
            let inbox = h.inbox(bal).await;
            assert_eq!(inbox.len(), 1, "{bal}: {}", t.log());
            assert_eq!(body(&inbox[0]), "Resultats.\r\n");
        }
    }
);

engine_tests!(rset_forgets_the_transaction, |engine| async move {
    let h = SmtpHarness::new(engine).await;
    let mut t = after_ehlo(&h, ListenerKind::Mx).await;
    t.play(ENVELOPE_TO_DR).await;
    t.play(
        "
        C: RSET
        S: 250 2.0.0 Reset state
        C: DATA
        S: 503 5.5.1 Send MAIL FROM first
        C: RCPT TO:<dr.martin@test.mssante.fr>
        S: 503 5.5.1 Send MAIL FROM first
        # Not nested: RSET closed the first transaction.
        C: MAIL FROM:<labo@labo.mssante.fr>
        S: 250 2.1.0 Sender OK
        C: RCPT TO:<secretariat@test.mssante.fr>
        S: 250 2.1.5 Recipient OK",
    )
    .await;
    t.play(DATA_GO_AHEAD).await;
    t.play(
        "
        C: Subject: apres RSET
        C:
        C: Pour le secretariat seulement.
        C: .
        S: 250 2.0.0 OK queued as ...",
    )
    .await;
    t.play(QUIT).await;
    t.expect_closed().await;
    assert!(
        h.inbox(DR).await.is_empty(),
        "the reset recipient got nothing"
    );
    assert_eq!(h.inbox(SEC).await.len(), 1);
});

engine_tests!(bdat_chunks_are_taken_as_they_are, |engine| async move {
    let h = SmtpHarness::new(engine).await;
    let mut t = after_ehlo(&h, ListenerKind::Mx).await;
    t.play(ENVELOPE_TO_DR).await;
    t.play("C: BDAT 22").await;
    // RFC 3030 §2: no dot-stuffing in BDAT; the chunk is exactly 22 octets.
    t.send_raw(b"Subject: morceaux\r\n\r\n.").await;
    t.play("S: 250 2.0.0 22 octets received\nC: BDAT 7 LAST")
        .await;
    t.send_raw(b"..fin\r\n").await;
    t.play("S: 250 2.0.0 OK queued as ...").await;
    t.play(QUIT).await;
    t.expect_closed().await;
    let inbox = h.inbox(DR).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(body(&inbox[0]), "...fin\r\n");
});

engine_tests!(bare_lf_in_data_refuses_the_message, |engine| async move {
    let h = SmtpHarness::new(engine).await;
    let mut t = after_ehlo(&h, ListenerKind::Mx).await;
    t.play(ENVELOPE_TO_DR).await;
    t.play(DATA_GO_AHEAD).await;
    // docs/adr/0003-bare-lf-rejected.md: `LF . LF` neither ends the message nor smuggles
    // a second one; the whole message is refused at its real end.
    t.send_raw(b"Subject: x\r\n\r\nun\n.\nMAIL FROM:<pirate@x.fr>\r\n.\r\n")
        .await;
    t.play("S: 550 5.6.0 Message refused: bare CR or LF in message body (RFC 5321 §2.3.8)")
        .await;
    t.play(QUIT).await;
    t.expect_closed().await;
    assert_eq!(h.store.message_count().await.unwrap(), 0);
});

engine_tests!(
    submission_wants_tls_before_auth_and_auth_before_mail,
    |engine| async move {
        let h = SmtpHarness::new(engine).await;
        // No AUTH offered before TLS (RFC 4954 §4 and our policy).
        let mut t = after_ehlo(&h, ListenerKind::Submission).await;
        t.play(
            "
        C: AUTH PLAIN AGRyLm1hcnRpbkB0ZXN0Lm1zc2FudGUuZnIAc2VjcmV0
        S: 538 5.7.11 Encryption required for requested authentication mechanism
        C: MAIL FROM:<dr.martin@test.mssante.fr>
        S: 530 5.7.0 Authentication required",
        )
        .await;
        t.play(QUIT).await;
        t.expect_closed().await;
    }
);

engine_tests!(
    mx_in_the_trust_space_wants_starttls_first,
    |engine| async move {
        let h = SmtpHarness::with_trust(engine, true).await;
        let mut t = after_ehlo(&h, ListenerKind::Mx).await;
        // docs/adr/0007-trust-space-checks.md: operators talk over TLS with client certificates.
        t.play(
        "
        C: MAIL FROM:<labo@labo.mssante.fr>
        S: 530 5.7.0 Must issue a STARTTLS command first: TLS is mandatory between MSSanté operators",
    )
    .await;
        t.play(QUIT).await;
        t.expect_closed().await;
    }
);

engine_tests!(
    submission_over_starttls_authenticates_and_sends_as_its_own_bal,
    |engine| async move {
        let h = SmtpHarness::new(engine).await;
        let t = after_ehlo(&h, ListenerKind::Submission).await;
        let mut t = h.starttls(t).await;
        // RFC 3207 §4.2: the client starts again with EHLO; AUTH is offered now, STARTTLS not.
        t.play(&ehlo(&["AUTH PLAIN LOGIN"])).await;
        t.play(
            "
            # \\0dr.martin@test.mssante.fr\\0mauvais
            C: AUTH PLAIN AGRyLm1hcnRpbkB0ZXN0Lm1zc2FudGUuZnIAbWF1dmFpcw==
            S: 535 5.7.8 Authentication credentials invalid
            # \\0dr.martin@test.mssante.fr\\0une longue phrase secrète
            C: AUTH PLAIN AGRyLm1hcnRpbkB0ZXN0Lm1zc2FudGUuZnIAdW5lIGxvbmd1ZSBwaHJhc2Ugc2VjcsOodGU=
            S: 235 2.7.0 Authentication successful
            C: MAIL FROM:<secretariat@test.mssante.fr>
            S: 550 5.7.1 dr.martin@test.mssante.fr may not send as <secretariat@test.mssante.fr>: neither its BAL nor delegated to it with the send right (ADR 0016)
            C: MAIL FROM:<dr.martin@test.mssante.fr>
            S: 250 2.1.0 Sender OK
            C: RCPT TO:<secretariat@test.mssante.fr>
            S: 250 2.1.5 Recipient OK
            C: DATA
            S: 354 End data with <CR><LF>.<CR><LF>
            C: Subject: depuis le LPS
            C:
            C: Bonjour.
            C: .
            S: 250 2.0.0 OK queued as ...",
        )
        .await;
        t.play(QUIT).await;
        t.expect_closed().await;
        let inbox = h.inbox(SEC).await;
        assert_eq!(inbox.len(), 1);
        assert!(
            inbox[0].contains("with ESMTPSA"),
            "the trace header says TLS and authentication: {}",
            inbox[0]
        );
    }
);

engine_tests!(
    plaintext_pipelined_after_starttls_is_never_executed,
    |engine| async move {
        let h = SmtpHarness::new(engine).await;
        let mut t = after_ehlo(&h, ListenerKind::Submission).await;
        // CVE-2011-0411: a command injected in clear behind STARTTLS must be dropped, not
        // answered inside TLS. `RSET` would otherwise get a `250 2.0.0 Reset state` there.
        t.send_raw(b"STARTTLS\r\nRSET\r\n").await;
        t.expect_line("220 2.0.0 Ready to start TLS").await;
        let mut t = h.handshake(t).await;
        t.play(&ehlo(&["AUTH PLAIN LOGIN"])).await;
        t.play(QUIT).await;
        t.expect_closed().await;
    }
);
