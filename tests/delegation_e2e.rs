//! Delegation of a BAL to the secretariat (issue 14, ADR 0016) through the real binary, on
//! SQLite and PostgreSQL: the doctor (`imapclient`) and the secretary (`imaplib`) at once,
//! the rights matrix of RFC 4314, revocation during IDLE, expiry, and the audit trail.

mod common;

use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::Value;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const SEC: &str = "sec.dupont@ch-test.mssante.fr";

fn start(engine: mssante_testkit::Engine) -> Server {
    let server = Server::start(engine, &[DR, SEC]);
    server.deliver_mx(
        "lab@labo.mssante.fr",
        DR,
        &format!(
            "From: <lab@labo.mssante.fr>\r\nTo: <{DR}>\r\nSubject: resultats\r\nMessage-ID: <res-1@labo>\r\n\r\nGlycemie normale.\r\n"
        ),
    );
    server
}

/// The doctor delegates the BAL to the secretary with `rights` (named rights).
fn grant(server: &Server, rights: &str) {
    server.cli_ok(&["delegation", "grant", DR, "--to", SEC, "--rights", rights]);
}

/// The doctor delegates the BAL to the secretary with the *secretary* rights.
fn grant_secretary(server: &Server) {
    grant(server, "secretary");
}

/// `tests/clients/delegation_flow.py CASE` with the interpreter that has `imapclient`.
fn flow(server: &Server, case: &str, extra: &[&str]) -> Value {
    doctor_secretary_flow(server, "delegation_flow.py", case, (DR, SEC), extra)
}

/// The audit trail of the doctor's BAL as (author, action, folder) triples, once it holds
/// `at_least` entries (polled for at most ten seconds): a read's trace commits just after
/// its reply (ADR 0035).
fn trail(server: &Server, at_least: usize) -> Vec<(String, String, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let trail: Vec<_> = server
            .cli_ok(&["audit", DR, "--json"])
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                (s("author"), s("action"), s("folder"))
            })
            .collect();
        if trail.len() >= at_least || std::time::Instant::now() > deadline {
            return trail;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

engine_tests_sync!(
    the_secretary_files_and_answers_and_the_doctor_sees_it,
    |engine| {
        let server = start(engine);
        grant_secretary(&server);
        let v = flow(&server, "acceptance", &[]);
        let ns = v["namespace"].to_string();
        assert!(ns.contains("Other Users/"), "{v}");
        let list = v["list"].to_string();
        for f in ["INBOX", "Sent", "Archives"] {
            assert!(list.contains(&format!("Other Users/{DR}/{f}")), "{f}: {v}");
        }
        assert_eq!(
            v["myrights"][2][0],
            format!("\"Other Users/{DR}/INBOX\" lrswixte0"),
            "{v}"
        );
        assert_eq!(v["select"], "OK");
        assert!(
            v["fetched"].as_str().unwrap().contains("Glycemie normale."),
            "{v}"
        );
        // The secretary reading marks it read for her only (ADR 0034): the doctor finds the
        // message she filed unread.
        assert!(
            v["flags_after_read"].to_string().contains("\\\\Seen"),
            "{v}"
        );
        let archived = v["doctor_archives_flags"].to_string();
        assert!(!archived.contains("Seen"), "{v}");
        assert_eq!(v["move"][0], "OK", "{v}");
        assert_eq!(v["append"], "OK", "{v}");
        assert_eq!(v["doctor_archives"], 1, "{v}");
        assert_eq!(v["doctor_inbox"], 0, "{v}");
        assert_eq!(v["doctor_sent"], 1, "{v}");
        let acl = v["doctor_acl"].to_string();
        assert!(acl.contains(&format!("[\"{SEC}\",\"lrswixte0\"]")), "{acl}");

        let got = trail(&server, 5);
        let want: Vec<(String, String, String)> = [
            ("operator", "grant", ""),
            (SEC, "select", "INBOX"),
            (SEC, "fetch-body", "INBOX"),
            (SEC, "move", "INBOX"),
            (SEC, "append", "Sent"),
        ]
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
        assert_eq!(got, want);
        let json = server.cli_ok(&["audit", DR, "--json", "--author", SEC]);
        let moved: Value = serde_json::from_str(json.lines().nth(2).unwrap()).unwrap();
        assert_eq!(moved["message_ids"], serde_json::json!(["uid:1"]));
        assert!(moved["client"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
    }
);

engine_tests_sync!(
    a_delegates_copies_into_and_out_of_the_bal_are_in_its_trail,
    |engine| {
        let server = start(engine);
        for n in 1..=2 {
            server.deliver_mx(
                "lab@labo.mssante.fr",
                SEC,
                &format!(
                    "From: <lab@labo.mssante.fr>\r\nSubject: pour classer {n}\r\n\r\nA classer.\r\n"
                ),
            );
        }
        grant_secretary(&server);
        let v = flow(&server, "cross_bal", &[]);
        for step in ["copy_in", "move_in", "copy_out", "move_out"] {
            assert_eq!(v[step][0], "OK", "{step}: {v}");
        }
        assert_eq!(v["doctor_archives"], 2, "{v}");
        assert_eq!(v["doctor_inbox"], 0, "{v}");
        // (action, folder, message ids, detail) of the secretary's entries in his trail.
        let entries: Vec<(String, String, Value, String)> = server
            .cli_ok(&["audit", DR, "--json", "--author", SEC])
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                assert!(
                    v["client"].as_str().unwrap().starts_with("127.0.0.1:"),
                    "{v}"
                );
                assert_eq!(v["result"], "ok", "{v}");
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                (
                    s("action"),
                    s("folder"),
                    v["message_ids"].clone(),
                    s("detail"),
                )
            })
            .filter(|(action, ..)| action != "select")
            .collect();
        let from_her_inbox = format!("from {SEC}/INBOX");
        let want = [
            // Hers filed into his Archives: the new UIDs there.
            (
                "copy-in",
                "Archives",
                serde_json::json!(["uid:1"]),
                from_her_inbox.as_str(),
            ),
            (
                "move-in",
                "Archives",
                serde_json::json!(["uid:2"]),
                &from_her_inbox,
            ),
            // His taken into hers: a read of his message, then for MOVE its expunge.
            ("copy", "INBOX", serde_json::json!(["uid:1"]), "to INBOX"),
            ("move", "INBOX", serde_json::json!(["uid:1"]), "to INBOX"),
        ]
        .map(|(a, f, ids, d)| (a.to_string(), f.to_string(), ids, d.to_string()));
        assert_eq!(entries, want);
        // Her own BAL's trail: her own actions there are not delegated ones.
        assert_eq!(server.cli_ok(&["audit", SEC, "--json"]).trim(), "");
        assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
    }
);

engine_tests_sync!(
    each_delegate_has_their_own_seen_and_the_doctor_keeps_his,
    |engine| {
        let server = start(engine);
        server.deliver_mx(
            "lab@labo.mssante.fr",
            DR,
            "From: <lab@labo.mssante.fr>\r\nSubject: second\r\n\r\nDeux.\r\n",
        );
        grant_secretary(&server);
        let v = flow(&server, "seen_per_user", &[]);
        let has_seen = |k: &str| v[k].to_string().contains("\\\\Seen");
        assert_eq!(v["read"], "OK", "{v}");
        // The secretary read 1: seen for her, not for the doctor.
        assert!(has_seen("sec_flags_1"), "{v}");
        assert_eq!(v["doctor_flags_1"], serde_json::json!([]), "{v}");
        // The doctor read 2: seen for him, not for her; hers on 1 unchanged.
        assert!(has_seen("doctor_flags_2"), "{v}");
        assert!(!has_seen("sec_flags_2"), "{v}");
        assert!(has_seen("sec_flags_1_again"), "{v}");
        // \Flagged is shared.
        assert_eq!(
            v["doctor_flags_1_flagged"],
            serde_json::json!(["\\Flagged"]),
            "{v}"
        );
        // SEARCH UNSEEN and STATUS UNSEEN per user.
        assert_eq!(v["doctor_search_unseen"], serde_json::json!([1]), "{v}");
        assert_eq!(v["sec_search_unseen"], serde_json::json!(["2"]), "{v}");
        assert_eq!(v["doctor_status"]["UNSEEN"], 1, "{v}");
        let sec_status = v["sec_status"][0].as_str().unwrap();
        assert!(sec_status.ends_with("(UNSEEN 1)"), "{v}");
        // Logged in as the doctor's BAL, she is the same reader.
        assert!(has_seen("as_bal_flags_1"), "{v}");
        assert!(
            v["as_bal_status"][0]
                .as_str()
                .unwrap()
                .ends_with("(UNSEEN 1)"),
            "{v}"
        );
        // Clearing it there is told to her other session, and stays hers.
        let told = v["sec_told"].to_string();
        assert!(told.contains("UID 1") && told.contains("FLAGS"), "{v}");
        assert!(!has_seen("sec_flags_1_cleared"), "{v}");
        assert_eq!(
            v["doctor_flags_1_end"],
            serde_json::json!(["\\Flagged"]),
            "{v}"
        );
        assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
    }
);

engine_tests_sync!(
    a_delegates_append_with_seen_is_read_for_her_only,
    |engine| {
        let server = start(engine);
        grant_secretary(&server);
        let v = flow(&server, "append_seen", &[]);
        let seen = |x: &Value| x.to_string().contains("\\\\Seen");
        assert_eq!(v["append"], "OK", "{v}");
        assert_eq!(v["append_seen"], "OK", "{v}");
        assert_eq!(v["as_bal_append"], "OK", "{v}");
        // Hers: the message she appended with \Seen is read, the other not.
        assert!(!seen(&v["sec_flags"][0]), "{v}");
        assert!(seen(&v["sec_flags"][1]), "{v}");
        assert!(v["sec_flags"][1].to_string().contains("Flagged"), "{v}");
        assert_eq!(v["sec_search_unseen"], serde_json::json!(["1"]), "{v}");
        // Logged in as the BAL she is the same reader.
        assert!(seen(&v["as_bal_flags_3"]), "{v}");
        // The doctor's: all three unread; \Flagged shared.
        assert_eq!(
            v["doctor_flags"],
            serde_json::json!([[], ["\\Flagged"], []]),
            "ADR 0034: {v}"
        );
        assert_eq!(
            v["doctor_search_unseen"],
            serde_json::json!([1, 2, 3]),
            "{v}"
        );
        assert_eq!(v["doctor_status"]["UNSEEN"], 3, "{v}");
        // The doctor's own \Seen stays shared, and is not hers.
        assert_eq!(v["doctor_own_flags"], serde_json::json!(["\\Seen"]), "{v}");
        assert!(!seen(&v["sec_flags_4"]), "{v}");
        let appends = trail(&server, 1)
            .into_iter()
            .filter(|(author, action, _)| author == SEC && action == "append")
            .count();
        assert_eq!(appends, 3);
        assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
    }
);

/// Makes the database refuse the trail's entries of `actions` from now on, as a trail that
/// cannot be written would (a full disk, a broken table).
fn refuse_audit_entries(server: &Server, actions: &[&str]) {
    let list = actions
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match server.db.url.starts_with("sqlite:") {
        true => format!(
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log WHEN NEW.action IN ({list}) \
             BEGIN SELECT RAISE(ABORT, 'audit trail down'); END"
        ),
        false => format!(
            "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit trail down'; END $$; \
             CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW \
             WHEN (NEW.action IN ({list})) EXECUTE FUNCTION audit_down()"
        ),
    };
    block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&server.db.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

engine_tests_sync!(
    a_delegated_action_the_trail_cannot_record_does_not_go_on,
    |engine| {
        let server = start(engine);
        grant_secretary(&server);
        refuse_audit_entries(&server, &["fetch-body", "flags"]);
        let v = flow(&server, "audit_down", &[]);
        assert_eq!(v["select"], "OK", "{v}");
        // ADR 0035: a read's trace follows its reply; once it has failed, the session ends.
        assert_eq!(v["read"], "OK", "{v}");
        assert_eq!(v["after_read"][0], "BYE", "{v}");
        assert!(v["after_read"].to_string().contains("audit trail"), "{v}");
        // A write and its entry are one transaction: refused together, nothing changed.
        assert_eq!(v["store"][0], "NO", "{v}");
        assert_eq!(v["doctor_sees"], serde_json::json!([]), "{v}");
        let got = trail(&server, 2);
        assert!(
            got.iter()
                .all(|(_, action, _)| action != "flags" && action != "fetch-body"),
            "{got:?}"
        );
        assert!(server.log().contains("audit trail write failed"));
        assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
    }
);

engine_tests_sync!(status_of_a_delegated_mailbox_names_it_as_asked, |engine| {
    let server = start(engine);
    grant_secretary(&server);
    let v = flow(&server, "status_name", &[]);
    assert_eq!(v["status"], "OK", "{v}");
    assert_eq!(
        v["data"][0],
        format!("\"Other Users/{DR}/INBOX\" (MESSAGES 1)"),
        "RFC 9051 §7.5.1: {v}"
    );
});

engine_tests_sync!(a_manager_sets_acls_only_within_its_own_rights, |engine| {
    let server = start(engine);
    server.cli_ok(&[
        "delegation",
        "grant",
        DR,
        "--to",
        SEC,
        "--rights",
        "manager",
    ]);
    let v = flow(&server, "manager_limits", &[]);
    assert_eq!(v["within"][0], "OK", "{v}");
    // `k` is not the manager's to give (the HTTP API's rule, `delegation_limits`).
    assert_eq!(v["beyond"][0], "NO", "{v}");
    assert!(v["beyond"].to_string().contains("NOPERM"), "{v}");
    // A delegation the doctor gave with `k` is beyond her: neither changed nor removed.
    assert_eq!(v["stronger_changed"][0], "NO", "{v}");
    assert_eq!(v["stronger_removed"][0], "NO", "{v}");
    assert_eq!(v["taken_away"][0], "OK", "{v}");
    let acl = v["doctor_acl"].to_string();
    assert!(acl.contains(r#"["810001112223","lr"]"#), "{acl}");
    assert!(acl.contains(r#"["810001112224","lrsk"]"#), "{acl}");
});

engine_tests_sync!(rights_matrix_read_secretary_manager, |engine| {
    let server = start(engine);
    // (rights, STATUS/SELECT/FETCH/\Seen, \Flagged, \Deleted, EXPUNGE, APPEND, COPY, ACL admin)
    for (rights, write, delete, insert, admin) in [
        ("read", "NO", "NO", "NO", "NO"),
        ("secretary", "OK", "OK", "OK", "NO"),
        ("manager", "OK", "OK", "OK", "OK"),
    ] {
        grant(&server, rights);
        let v = flow(&server, "matrix", &[]);
        for read in ["status", "select", "fetch", "store_seen"] {
            assert_eq!(v[read], "OK", "{rights} {read}: {v}");
        }
        assert_eq!(v["store_flagged"], write, "{rights}: {v}");
        assert_eq!(v["store_deleted"], delete, "{rights}: {v}");
        assert_eq!(v["expunge"], delete, "{rights}: {v}");
        assert_eq!(v["append"], insert, "{rights}: {v}");
        assert_eq!(v["copy"], insert, "{rights}: {v}");
        assert_eq!(v["getacl"], admin, "{rights}: {v}");
        assert_eq!(v["setacl"], admin, "{rights}: {v}");
        // Folders of a delegated BAL are not created through the other-users namespace.
        assert_eq!(v["create"], "NO", "{rights}: {v}");
    }
    // Refusals are in the trail, with the right that was missing.
    let refused = server.cli_ok(&["audit", DR, "--author", SEC]);
    assert!(refused.contains("refused: right 'w' needed"), "{refused}");
    assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
});

engine_tests_sync!(revocation_ends_an_idle_session_at_once, |engine| {
    let server = start(engine);
    server.cli_ok(&["delegation", "grant", DR, "--to", SEC]);
    let revoke = serde_json::to_string(&[
        binary(),
        "--config",
        server.config_path.to_str().unwrap(),
        "delegation",
        "revoke",
        DR,
        "--to",
        SEC,
    ])
    .unwrap();
    let v = flow(&server, "idle_revoke", &["--revoke-cmd", &revoke]);
    assert!(v["idle"].as_str().unwrap().starts_with('+'), "{v}");
    let lines = v["after_revoke"].to_string();
    assert!(lines.contains("* BYE [NOPERM]"), "{v}");
    // The command line is another process: the server hears of it within its poll.
    assert!(v["seconds_to_bye"].as_f64().unwrap() < 5.0, "{v}");
    let got = trail(&server, 1);
    assert_eq!(got.last().unwrap().1, "revoke", "{got:?}");
});

engine_tests_sync!(an_expired_delegation_refuses_the_next_command, |engine| {
    let server = start(engine);
    let end = mssante_store::now() + 10;
    block_on(async {
        let store = mssante_store::Store::open(&server.db.url, server.db.data_path())
            .await
            .unwrap();
        let sec = mssante_store::Grantee::parse(SEC).unwrap();
        store
            .grant_delegation(&mssante_store::NewDelegation {
                bal: DR,
                grantee: &sec,
                rights: mssante_store::NamedRights::Secretary.rights(),
                folders: &[],
                not_after: Some(end),
                author: "operator",
                client: "",
            })
            .await
            .unwrap();
        store.close().await;
    });
    let v = flow(&server, "expiry", &["--until", &(end + 1).to_string()]);
    assert_eq!(v["before"], "OK", "{v}");
    assert_eq!(
        v["as_bal_select"], "OK",
        "PLAIN with an authorization id: {v}"
    );
    assert_eq!(v["after"][0], "NO", "{v}");
    assert!(v["after"].to_string().contains("revoked"), "{v}");
    assert_eq!(v["as_bal_after"][0], "BYE", "{v}");
    assert!(
        v["relogin_as_bal"]
            .to_string()
            .contains("AUTHORIZATIONFAILED"),
        "{v}"
    );
    let got = trail(&server, 1);
    assert!(
        got.iter().any(|(a, b, _)| a == SEC && b == "login"),
        "{got:?}"
    );
});

engine_tests_sync!(
    a_delegate_sends_on_behalf_only_with_the_send_right,
    |engine| {
        let server = start(engine);
        let submit = |server: &Server| {
            py(
                "submit",
                server,
                &["--login", SEC, "--sender", DR, "--rcpt", SEC],
            )
        };
        // Read rights: no sending as the doctor, and the refusal names the rule.
        server.cli_ok(&["delegation", "grant", DR, "--to", SEC, "--rights", "read"]);
        let refused = submit(&server);
        assert_eq!(refused["mail"][0], 550, "{refused}");
        let text = refused["mail"][1].to_string();
        assert!(
            text.contains("5.7.1") && text.contains("send right"),
            "{text}"
        );

        grant_secretary(&server);
        let sent = submit(&server);
        assert_eq!(sent["data"][0], 250, "{sent}");
        let stored = server.messages(SEC, "INBOX");
        let last = String::from_utf8_lossy(stored.last().unwrap()).to_string();
        assert!(last.contains(&format!("From: <{DR}>")), "{last}");
        assert!(
            last.contains(&format!("Sender: <{SEC}>")),
            "Sender added: {last}"
        );
        let got = trail(&server, 1);
        assert_eq!(got.last().unwrap().1, "send", "{got:?}");
        assert_eq!(got.last().unwrap().0, SEC, "{got:?}");
    }
);

engine_tests_sync!(
    a_delegates_write_refused_for_the_quota_is_in_the_trail,
    |engine| {
        let server = start(engine);
        grant_secretary(&server);
        // 1.2 MB in the doctor's INBOX, then a 1 MB quota: any copy or new message is over.
        let big = "x".repeat(76);
        let body = vec![big.as_str(); 16_000].join("\r\n");
        server.deliver_mx(
            "lab@labo.mssante.fr",
            DR,
            &format!(
                "From: <lab@labo.mssante.fr>\r\nTo: <{DR}>\r\nSubject: imagerie\r\n\r\n{body}\r\n"
            ),
        );
        server.cli_ok(&["bal", "quota", DR, "--megabytes", "1"]);
        let v = flow(&server, "over_quota", &[]);
        assert_eq!(v["select"], "OK", "{v}");
        for refused in ["copy", "append"] {
            assert_eq!(v[refused][0], "NO", "{refused}: {v}");
            assert!(v[refused][1].to_string().contains("OVERQUOTA"), "{v}");
        }
        // Nothing was written, and each refused write is in the doctor's trail with its
        // result: the COPY naming the message it could not copy.
        assert_eq!(server.messages(DR, "INBOX").len(), 2);
        assert!(server.messages(DR, "Sent").is_empty());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let entries = loop {
            let entries: Vec<Value> = server
                .cli_ok(&["audit", DR, "--author", SEC, "--json"])
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .filter(|e: &Value| e["action"] == "copy" || e["action"] == "append")
                .collect();
            if entries.len() >= 2 || std::time::Instant::now() > deadline {
                break entries;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0]["action"], "copy", "{entries:?}");
        assert_eq!(entries[0]["result"], "failed: OVERQUOTA", "{entries:?}");
        assert_eq!(entries[0]["message_ids"], serde_json::json!(["uid:1"]));
        assert_eq!(entries[1]["action"], "append", "{entries:?}");
        assert_eq!(entries[1]["folder"], "Sent", "{entries:?}");
        assert_eq!(entries[1]["result"], "failed: OVERQUOTA", "{entries:?}");
        assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
    }
);
