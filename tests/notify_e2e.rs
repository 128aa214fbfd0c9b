//! NOTIFY (RFC 5465) through the real binary, on SQLite and PostgreSQL: a secretary's
//! connection (Python imaplib) watches its own INBOX (selected), one of its mailboxes and the
//! doctor's INBOX delegated to it, while other connections APPEND, STORE, EXPUNGE, RENAME and
//! SUBSCRIBE; what it is told arrives between its commands, without IDLE.

mod common;

use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::Value;

const DR: &str = "dr.martin@ch-test.mssante.fr";
const SEC: &str = "sec.dupont@ch-test.mssante.fr";

fn flow(server: &Server, case: &str) -> Value {
    doctor_secretary_flow(server, "notify_flow.py", case, (DR, SEC), &[])
}

/// The lines of `v[key]` (a list of strings) joined, for `contains` checks.
fn joined(v: &Value, key: &str) -> String {
    lines(&v[key])
}

fn lines(v: &Value) -> String {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

engine_tests_sync!(
    a_secretary_hears_of_changes_in_her_mailboxes_and_the_doctors,
    |engine| {
        let server = Server::start(engine, &[DR, SEC]);
        // Not delegated yet: nothing of the doctor's BAL is told.
        let v = flow(&server, "no_rights");
        assert_eq!(v["set"][0], "OK", "{v}");
        assert_eq!(v["set"][2]["STATUS"], serde_json::json!([]), "{v}");
        assert!(!joined(&v, "after_append").contains("STATUS"), "{v}");

        let grant = format!("delegation grant {DR} --to {SEC} --rights secretary");
        server.cli_ok(&grant.split(' ').collect::<Vec<_>>());
        let v = flow(&server, "watch");
        let dr_inbox = format!("\"Other Users/{DR}/INBOX\"");
        // NOTIFY SET STATUS: the watched mailboxes that are not selected, with counts.
        assert_eq!(v["set"][0], "OK", "{v}");
        let initial = lines(&v["set"][2]["STATUS"]);
        // One message from the no_rights case already.
        assert!(
            initial.contains(&format!("{dr_inbox} (MESSAGES 1 UIDNEXT 2")),
            "{v}"
        );
        assert!(initial.contains("\"Projets\" (MESSAGES 1 UIDNEXT 2"), "{v}");
        assert!(
            initial.contains("HIGHESTMODSEQ"),
            "FlagChange asks for it: {v}"
        );
        assert!(
            !initial.contains("INBOX (MESSAGES"),
            "the selected INBOX is not a STATUS: {v}"
        );
        // The doctor's new message and flag, told as STATUS without a command.
        let append = joined(&v, "doctor_append");
        assert!(
            append.contains(&format!("* STATUS {dr_inbox} (MESSAGES 2 UIDNEXT 3")),
            "{v}"
        );
        let flag = joined(&v, "doctor_flag");
        assert!(
            flag.contains(&format!("* STATUS {dr_inbox} (MESSAGES 2 UIDNEXT 3")),
            "{v}"
        );
        assert!(flag.contains("HIGHESTMODSEQ"), "{v}");
        // The selected INBOX: EXISTS, then the MessageNew FETCH items (UID FLAGS).
        let append = joined(&v, "append");
        assert!(append.contains("* 2 EXISTS"), "{v}");
        assert!(append.contains("* 2 FETCH (UID 2 FLAGS ("), "{v}");
        let store = joined(&v, "store");
        assert!(
            store.contains("* 1 FETCH (UID 1 FLAGS (") && store.contains("\\Deleted"),
            "{v}"
        );
        assert!(joined(&v, "expunge").contains("* 1 EXPUNGE"), "{v}");
        // MailboxName and SubscriptionChange as LIST.
        assert!(
            joined(&v, "rename")
                .contains("* LIST () \"/\" \"Projets-2026\" (\"OLDNAME\" (\"Projets\"))"),
            "{v}"
        );
        assert!(
            joined(&v, "subscribe").contains("* LIST (\\Subscribed) \"/\" \"Projets-2026\""),
            "{v}"
        );
        // Renamed, the mailbox is no longer the one MAILBOXES names, and PERSONAL watches
        // names only: no STATUS for its new message.
        assert!(!joined(&v, "renamed_append").contains("STATUS"), "{v}");
        // NOTIFY NONE: nothing more, neither unsolicited nor with the next command.
        assert_eq!(v["none"][0], "OK", "{v}");
        assert!(!joined(&v, "after_none").contains("STATUS"), "{v}");
        assert_eq!(v["noop_after_none"][0], "OK", "{v}");
        // Events without support here: NO [BADEVENT].
        assert_eq!(v["unsupported"][0], "NO", "{v}");
        assert!(v["unsupported"][1].to_string().contains("BADEVENT"), "{v}");
        assert_eq!(v["metadata"][0], "NO", "{v}");
    }
);
