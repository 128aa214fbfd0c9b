//! IMAP behaviour as dialogues, on in-process sessions over a real store (SQLite and
//! PostgreSQL). See `harness/mod.rs` for the notation.

mod harness;

use harness::Server;
use mssante_testkit::engine_tests;

const SELECT_EMPTY_INBOX: &str = r#"
    C: s1 SELECT INBOX
    S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
    S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted
    S: * 0 EXISTS
    S: * 0 RECENT
    S: * OK [UIDVALIDITY ...] UIDs valid
    S: * OK [UIDNEXT 1] Predicted next UID
    S: * OK [HIGHESTMODSEQ ...] Highest
    S: * OK [MAILBOXID (...)] Mailbox id
    S: s1 OK [READ-WRITE] SELECT completed
"#;

engine_tests!(states_and_login, |engine| async move {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let mut c = server.connect().await;
    c.dialogue(&format!(
        r#"
        C: a1 SELECT INBOX
        S: a1 BAD Not authenticated
        C: a2 LOGIN {address} "wrong"
        S: a2 NO [AUTHENTICATIONFAILED] ...
        C: a3 LOGIN {address} "{}"
        S: a3 OK [CAPABILITY IMAP4rev2 ...] Logged in
        C: a4 FETCH 1 FLAGS
        S: a4 BAD No mailbox selected
        C: a5 FROB
        S: a5 BAD Syntax error: unknown command FROB
        C: a6 LOGOUT
        S: * BYE Logging out
        S: a6 OK LOGOUT completed
        "#,
        harness::PASSWORD
    ))
    .await;
});

engine_tests!(append_select_fetch, |engine| async move {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let mut c = server.login(&address).await;
    c.dialogue(SELECT_EMPTY_INBOX).await;
    c.dialogue(
        r#"
        C: a1 APPEND INBOX (\Flagged $Urgent) {27+}
        C: Subject: hello
        C:
        C: body text
        S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent)
        S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent \*)] Flags permitted
        S: * 1 EXISTS
        S: * 1 RECENT
        S: a1 OK [APPENDUID ... 1] APPEND completed
        C: a2 FETCH 1 (UID FLAGS RFC822.SIZE)
        S: * 1 FETCH (UID 1 FLAGS (\Recent \Flagged $Urgent) RFC822.SIZE 27)
        S: a2 OK FETCH completed
        C: a3 UID FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]
        S: * 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {18}
        S: Subject: hello
        S:
        S: )
        S: a3 OK FETCH completed
        "#,
    )
    .await;
});

engine_tests!(
    flag_changes_reach_other_sessions_before_their_tag,
    |engine| async move {
        let server = Server::start(engine).await;
        let address = server.bal("accueil").await;
        let mut writer = server.login(&address).await;
        let mut reader = server.login(&address).await;
        writer.dialogue(SELECT_EMPTY_INBOX).await;
        writer
            .dialogue(
                r#"
            C: w1 APPEND INBOX {17+}
            C: Subject: one
            C: 
            C: x
            S: * 1 EXISTS
            S: * 1 RECENT
            S: w1 OK [APPENDUID ... 1] APPEND completed
            "#,
            )
            .await;
        reader
            .dialogue(
                r#"
            C: r1 EXAMINE INBOX
            S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
            S: * OK [PERMANENTFLAGS ()] Flags permitted
            S: * 1 EXISTS
            S: * 0 RECENT
            S: * OK [UNSEEN 1] First unseen
            S: ...
            S: ...
            S: ...
            S: ...
            S: r1 OK [READ-ONLY] EXAMINE completed
            "#,
            )
            .await;
        writer
            .dialogue(
                r#"
            C: w2 STORE 1 +FLAGS (\Seen)
            S: * 1 FETCH (FLAGS (\Recent \Seen))
            S: w2 OK STORE completed
            "#,
            )
            .await;
        reader
            .dialogue(
                r#"
            C: r2 NOOP
            S: * 1 FETCH (UID 1 FLAGS (\Seen))
            S: r2 OK NOOP completed
            "#,
            )
            .await;
    }
);

engine_tests!(
    expunges_are_held_back_during_fetch_by_number,
    |engine| async move {
        let server = Server::start(engine).await;
        let address = server.bal("accueil").await;
        let mut a = server.login(&address).await;
        let mut b = server.login(&address).await;
        a.dialogue(SELECT_EMPTY_INBOX).await;
        for tag in ["p1", "p2"] {
            a.send(&format!("{tag} APPEND INBOX {{7+}}\r\nbody {tag}"))
                .await;
            a.lines_until(tag).await;
        }
        b.send("b0 SELECT INBOX").await;
        b.lines_until("b0").await;
        a.dialogue(
            r#"
        C: a1 STORE 1 +FLAGS.SILENT (\Deleted)
        S: a1 OK STORE completed
        C: a2 EXPUNGE
        S: * 1 EXPUNGE
        S: a2 OK EXPUNGE completed
        "#,
        )
        .await;
        // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH by number; NOOP then reports it.
        b.dialogue(
            r#"
        C: b1 FETCH 2 UID
        S: * 2 FETCH (UID 2)
        S: b1 OK FETCH completed
        C: b2 NOOP
        S: * 1 EXPUNGE
        S: b2 OK NOOP completed
        C: b3 FETCH 1 UID
        S: * 1 FETCH (UID 2)
        S: b3 OK FETCH completed
        "#,
        )
        .await;
    }
);

engine_tests!(idle_reports_new_mail, |engine| async move {
    let server = Server::start(engine).await;
    let address = server.bal("accueil").await;
    let mut idler = server.login(&address).await;
    let mut writer = server.login(&address).await;
    idler.dialogue(SELECT_EMPTY_INBOX).await;
    idler
        .dialogue(
            r#"
            C: i1 IDLE
            S: + idling
            "#,
        )
        .await;
    writer.send("w1 APPEND INBOX {4+}\r\nbody").await;
    writer.lines_until("w1").await;
    idler
        .dialogue(
            r#"
            S: * 1 EXISTS
            S: * 1 RECENT
            C: DONE
            S: i1 OK IDLE terminated
            "#,
        )
        .await;
});

// RFC 3501 §2.3.2: a new message is \Recent for one session only. A session's own APPEND or
// COPY into the mailbox it has selected claims with its write (ADR 0050), the message
// delivered before it that no session had seen yet included; the other session that has
// the mailbox selected then finds nothing recent.
engine_tests!(
    recent_goes_to_the_session_that_appends_or_copies,
    |engine| async move {
        let server = Server::start(engine).await;
        let address = server.bal("accueil").await;
        let mut writer = server.login(&address).await;
        let mut watcher = server.login(&address).await;
        writer.dialogue(SELECT_EMPTY_INBOX).await;
        watcher.dialogue(SELECT_EMPTY_INBOX).await;
        let bal = server.store.find_bal(&address).await.unwrap().unwrap();
        let inbox = server.store.folder(bal.id, "INBOX").await.unwrap().unwrap();
        let delivered = b"Subject: delivered\r\n\r\nbody\r\n".to_vec();
        let meta = mssante_store::MessageMeta::default();
        server
            .store
            .append(inbox.id, delivered, &[], 0, meta)
            .await
            .unwrap();
        writer
            .dialogue(
                r#"
            C: w1 APPEND INBOX {4+}
            C: body
            S: * 2 EXISTS
            S: * 2 RECENT
            S: w1 OK [APPENDUID ... 2] APPEND completed
            C: w2 COPY 1 INBOX
            S: * 3 EXISTS
            S: * 3 RECENT
            S: w2 OK [COPYUID ... 1 3] COPY completed
            C: w3 FETCH 1:3 (UID FLAGS)
            S: * 1 FETCH (UID 1 FLAGS (\Recent))
            S: * 2 FETCH (UID 2 FLAGS (\Recent))
            S: * 3 FETCH (UID 3 FLAGS (\Recent))
            S: w3 OK FETCH completed
            "#,
            )
            .await;
        watcher
            .dialogue(
                r#"
            C: n1 NOOP
            S: * 3 EXISTS
            S: * 0 RECENT
            S: n1 OK NOOP completed
            "#,
            )
            .await;
    }
);

// RFC 9208 (OVERQUOTA): a MOVE into a folder of another BAL, reached through a delegation
// (RFC 2342 §5), adds to that BAL's usage and is refused when it does not fit, nothing
// moved; with room it goes through (ADR 0050).
engine_tests!(
    a_move_into_a_delegated_bal_is_checked_against_its_quota,
    |engine| async move {
        use mssante_store::{Grantee, MessageMeta, NamedRights, NewDelegation};
        let server = Server::start(engine).await;
        let holder = server.bal("holder").await;
        let delegate = server.bal("delegate").await;
        let grantee = Grantee::parse(&delegate).unwrap();
        server
            .store
            .grant_delegation(&NewDelegation {
                bal: &holder,
                grantee: &grantee,
                rights: NamedRights::Secretary.rights(),
                folders: &[],
                not_after: None,
                author: "operator",
                client: "",
            })
            .await
            .unwrap();
        server.store.set_bal_quota(&holder, Some(10)).await.unwrap();
        let own = server.store.find_bal(&delegate).await.unwrap().unwrap();
        let inbox = server.store.folder(own.id, "INBOX").await.unwrap().unwrap();
        let raw = b"Subject: big\r\n\r\nmore than ten bytes\r\n".to_vec();
        server
            .store
            .append(inbox.id, raw, &[], 0, MessageMeta::default())
            .await
            .unwrap();
        let mut c = server.login(&delegate).await;
        c.send("m1 SELECT INBOX").await;
        c.lines_until("m1").await;
        c.dialogue(&format!(
            "C: m2 MOVE 1 \"Other Users/{holder}/INBOX\"\n\
             S: m2 NO [OVERQUOTA] Quota exceeded"
        ))
        .await;
        let held = server.store.find_bal(&holder).await.unwrap().unwrap();
        assert_eq!(server.store.bal_usage(held.id).await.unwrap().0, 0);
        assert_eq!(
            server.store.folder_status(inbox.id).await.unwrap().messages,
            1
        );
        server.store.set_bal_quota(&holder, None).await.unwrap();
        c.dialogue(&format!(
            "C: m3 MOVE 1 \"Other Users/{holder}/INBOX\"\n\
             S: * OK [COPYUID ... 1 1] Moved\n\
             S: * 1 EXPUNGE\n\
             S: m3 OK MOVE completed"
        ))
        .await;
        assert!(server.store.bal_usage(held.id).await.unwrap().0 > 10);
    }
);

engine_tests!(
    a_delegates_replace_needs_the_expunge_rights_and_is_in_the_trail,
    |engine| async move {
        use mssante_store::{AuditQuery, Grantee, MessageMeta, NewDelegation, Rights};
        let server = Server::start(engine).await;
        let holder = server.bal("holder").await;
        let delegate = server.bal("delegate").await;
        let grantee = Grantee::parse(&delegate).unwrap();
        let grant = |rights: &str| NewDelegation {
            bal: &holder,
            grantee: &grantee,
            rights: Rights::parse(rights).unwrap(),
            folders: &[],
            not_after: None,
            author: "operator",
            client: "",
        };
        let held = server.store.find_bal(&holder).await.unwrap().unwrap();
        let inbox = server
            .store
            .folder(held.id, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let draft = b"Subject: draft\r\n\r\nv1\r\n".to_vec();
        let (_, draft_uid) = server
            .store
            .append(inbox.id, draft, &[], 0, MessageMeta::default())
            .await
            .unwrap();
        // Read, write and insert, but neither `t` nor `e`: she may add, not take away.
        server
            .store
            .grant_delegation(&grant("lrswi"))
            .await
            .unwrap();
        let mut c = server.login(&delegate).await;
        c.send(&format!("r1 SELECT \"Other Users/{holder}/INBOX\""))
            .await;
        c.lines_until("r1").await;
        let replace = format!(
            "r2 UID REPLACE {draft_uid} \"Other Users/{holder}/INBOX\" {{22+}}\r\nSubject: draft\r\n\r\nv2\r\n"
        );
        c.send(&replace).await;
        let refused = c.lines_until("r2").await;
        assert!(
            refused.last().unwrap().starts_with("r2 NO [NOPERM]"),
            "REPLACE without t and e: {refused:?}"
        );
        assert_eq!(
            server.store.folder_status(inbox.id).await.unwrap().messages,
            1,
            "nothing appended, nothing expunged"
        );

        server
            .store
            .grant_delegation(&grant("lrswite"))
            .await
            .unwrap();
        c.send(&replace.replace("r2 ", "r3 ")).await;
        let done = c.lines_until("r3").await;
        assert_eq!(done.last().unwrap(), "r3 OK REPLACE completed", "{done:?}");
        let trail = server
            .store
            .audit_entries(&holder, &AuditQuery::default())
            .await
            .unwrap();
        let actions: Vec<_> = trail
            .iter()
            .filter(|e| e.author == delegate && e.action != "select" && e.action != "login")
            .map(|e| (e.action.as_str(), e.folder.as_str()))
            .collect();
        // The refusal, then the replacement: its APPEND and the expunge of the old draft.
        assert_eq!(
            actions,
            [
                ("refused", "INBOX"),
                ("append", "INBOX"),
                ("expunge", "INBOX")
            ],
            "{trail:?}"
        );
        let expunged = trail.iter().find(|e| e.action == "expunge").unwrap();
        assert_eq!(expunged.message_ids, format!("uid:{draft_uid}"));
        let v = server.store.verify_audit(Some(&holder)).await.unwrap();
        assert_eq!(v.first_bad, None);
    }
);
