//! Retention on both engines: `mssante retention run` deletes exactly the traces older than
//! `traces_days` (never a queued recipient), in batches, and takes an inactive BAL from a
//! warning in its INBOX to suspension after the notice, saying each step.

mod common;

use common::*;

const DAY: i64 = 86_400;
const ACTIVE: &str = "dr.active@ch-test.mssante.fr";
const NEVER: &str = "dr.never@ch-test.mssante.fr";
const GONE: &str = "dr.gone@ch-test.mssante.fr";

const POLICY: &str = "[retention]\ntraces_days = 183\nbatch = 2\ninactive_days = 365\n\
                      inactive_action = \"suspend\"\nnotice_days = 30\n";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One message from ACTIVE (a password login) to `to`, through submission.
fn send(server: &Server, to: &str) {
    let port = server.ports.submission.to_string();
    let (status, transcript) = swaks(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        ACTIVE,
        "--auth-password",
        PASSWORD,
        "--from",
        ACTIVE,
        "--to",
        to,
    ]);
    assert_eq!(status, 0, "{transcript}");
}

/// The ids a query returns, one a line.
fn ids(server: &Server, query: &str) -> Vec<i64> {
    server
        .sql(query)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn retention_run(server: &Server) -> String {
    server.cli_ok(&["retention", "run"])
}

fn traces_older_than_the_limit_are_deleted_exactly(engine: Engine) {
    let server = Server::start_with(engine, POLICY, &[ACTIVE, NEVER, GONE]);
    send(&server, &format!("{NEVER},{GONE}"));
    send(&server, &format!("{NEVER},{GONE},{ACTIVE}"));
    send(&server, "someone@other-operator.mssante.fr"); // queued: the relay is off
    let delivered = ids(
        &server,
        "SELECT id FROM recipients WHERE status = 'delivered' ORDER BY id",
    );
    let queued = ids(&server, "SELECT id FROM recipients WHERE status = 'queued'");
    assert_eq!((delivered.len(), queued.len()), (5, 1), "{}", server.log());

    // Three delivery records past the limit, one a day short of it, the queued one far past.
    let t = now();
    let list = |v: &[i64]| {
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (old, young) = (&delivered[..3], delivered[3]);
    server.sql(&format!(
        "UPDATE recipients SET updated_at = {} WHERE id IN ({})",
        t - 200 * DAY,
        list(old)
    ));
    server.sql(&format!(
        "UPDATE recipients SET updated_at = {} WHERE id = {young}",
        t - 182 * DAY
    ));
    server.sql(&format!(
        "UPDATE recipients SET updated_at = {} WHERE id = {}",
        t - 400 * DAY,
        queued[0]
    ));
    for (n, age) in [(1, 184), (2, 300), (3, 10), (4, 182)] {
        server.sql(&format!(
            "INSERT INTO tracking_events (id, recipient, kind, state, received_at) \
             VALUES ({n}, 'x{n}@other-operator.mssante.fr', 'dsn', 'delivered', {})",
            t - age * DAY
        ));
    }

    let out = retention_run(&server);
    assert!(
        out.contains(
            "traces: deleted 3 delivery records and 2 tracking events older than 183 days"
        ),
        "{out}"
    );
    // Batches of 2: recipients 2 + 1, tracking events 2 + 0.
    assert!(out.contains("in 4 batches"), "{out}");
    // Audit trails have their own period (store/tests/audit_retention.rs checks the anchor).
    assert!(
        out.contains("audit: removed 0 entries older than 365 days"),
        "{out}"
    );
    let mut kept: Vec<i64> = delivered[3..].to_vec();
    kept.extend(&queued);
    kept.sort();
    assert_eq!(ids(&server, "SELECT id FROM recipients ORDER BY id"), kept);
    assert_eq!(
        ids(&server, "SELECT id FROM tracking_events ORDER BY id"),
        vec![3, 4]
    );
    // The messages stay in their folders: only the trace expires.
    assert_eq!(server.messages(GONE, "INBOX").len(), 2);

    let again = retention_run(&server);
    assert!(
        again.contains("deleted 0 delivery records and 0 tracking events"),
        "{again}"
    );
}

fn inactive_bals_are_warned_then_suspended(engine: Engine) {
    let server = Server::start_with(engine, POLICY, &[ACTIVE, NEVER, GONE]);
    send(&server, ACTIVE); // a login: ACTIVE's last login is now
    let t = now();
    server.sql(&format!("UPDATE bals SET created_at = {}", t - 400 * DAY));
    server.sql(&format!(
        "UPDATE bals SET last_login_at = {} WHERE address = '{GONE}'",
        t - 366 * DAY
    ));
    let recorded = server.sql(&format!(
        "SELECT last_login_at FROM bals WHERE address = '{ACTIVE}'"
    ));
    let recorded: i64 = recorded.trim().parse().unwrap();
    assert!(
        (t - recorded).abs() < 120,
        "login recorded at {recorded}, now {t}"
    );

    let first = retention_run(&server);
    let gone_line = first.lines().find(|l| l.contains(GONE)).unwrap_or_default();
    let never_line = first
        .lines()
        .find(|l| l.contains(NEVER))
        .unwrap_or_default();
    assert!(
        gone_line.contains("last login")
            && gone_line.contains("holder warned, suspended on or after"),
        "{first}"
    );
    assert!(
        never_line.contains("never logged in") && never_line.contains("holder warned"),
        "{first}"
    );
    assert!(!first.contains(ACTIVE), "{first}");
    for bal in [GONE, NEVER] {
        let inbox = server.messages(bal, "INBOX");
        assert_eq!(inbox.len(), 1, "{bal}");
        let text = String::from_utf8_lossy(&inbox[0]).to_string();
        assert!(
            text.contains("Subject: Your MSSante mailbox is inactive"),
            "{text}"
        );
        assert!(text.contains("it will be suspended"), "{text}");
    }

    // Within the notice nothing more happens (and no second warning).
    let second = retention_run(&server);
    assert!(!second.contains("holder warned"), "{second}");
    assert!(!second.contains(": suspended"), "{second}");
    assert_eq!(server.messages(GONE, "INBOX").len(), 1);

    // The notice has run out for GONE only.
    server.sql(&format!(
        "UPDATE bals SET inactivity_warned_at = {} WHERE address = '{GONE}'",
        t - 31 * DAY
    ));
    let third = retention_run(&server);
    let gone_line = third.lines().find(|l| l.contains(GONE)).unwrap_or_default();
    assert!(gone_line.ends_with("): suspended"), "{third}");
    assert!(server.cli_ok(&["bal", "show", GONE]).contains("suspended"));
    assert!(server.cli_ok(&["bal", "show", NEVER]).contains("active"));
    assert!(!server.cli_ok(&["bal", "show", NEVER]).contains("suspended"));
}

#[test]
fn traces_expire_exactly_on_sqlite() {
    traces_older_than_the_limit_are_deleted_exactly(Engine::Sqlite);
}

#[test]
fn traces_expire_exactly_on_postgres() {
    traces_older_than_the_limit_are_deleted_exactly(Engine::Postgres);
}

#[test]
fn inactive_bals_warned_then_suspended_on_sqlite() {
    inactive_bals_are_warned_then_suspended(Engine::Sqlite);
}

#[test]
fn inactive_bals_warned_then_suspended_on_postgres() {
    inactive_bals_are_warned_then_suspended(Engine::Postgres);
}

#[test]
fn traces_kept_less_than_six_months_is_refused() {
    let server = Server::configure(Engine::Sqlite, "[retention]\ntraces_days = 90\n");
    let out = server.cli(&["config", "check"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("retention.traces_days: 90 is less than the 183 days"),
        "{stderr}"
    );
}
