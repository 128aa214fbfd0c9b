//! Delegations and the audit trail through the HTTP API (issue 14, ADR 0037), on SQLite and
//! PostgreSQL, with curl against the real binary and the secretary on IMAP (imaplib): the
//! holder's key delegates, the secretary sees the doctor's BAL under the other-users
//! namespace; the trail lists exactly what was done (the grant by the key, with its
//! address), pages and filters, verifies, and names an edited entry; revoking over HTTP
//! ends an IDLE session at once; a manager grants within its rights only; delegates
//! read no trail; every refusal is a problem with a stable type; Pro Santé Connect
//! identities (the loopback OIDC provider) hold and manage as their BALs and grants say.

mod common;

use common::http::*;
use common::*;
use mssante_testkit::engine_tests_sync;
use serde_json::{Value, json};

const DR: &str = "dr.martin@ch-test.mssante.fr";
const SEC: &str = "sec.dupont@ch-test.mssante.fr";
const AIDE: &str = "aide.leroy@ch-test.mssante.fr";
const OTHER: &str = "autre@ch-test.mssante.fr";

/// The doctor, the secretary, an assistant and a stranger; a result in the doctor's INBOX;
/// the holder's key (`delegation,audit` on the doctor's BAL) and the server running.
fn start(engine: mssante_testkit::Engine) -> (Server, String) {
    let mut server = Server::configure(engine, "[relay]\nenabled = false\n");
    server.cli_ok(&["domain", "add", DOMAIN]);
    for (i, bal) in [DR, SEC, AIDE, OTHER].iter().enumerate() {
        server.create_bal(bal, &format!("1000123456{i}"));
    }
    let holder = create_api_key(&server, "cabinet", "delegation,audit", DR);
    server.spawn();
    server.deliver_mx(
        "lab@labo.mssante.fr",
        DR,
        &format!(
            "From: <lab@labo.mssante.fr>\r\nTo: <{DR}>\r\nSubject: resultats\r\nMessage-ID: <res-1@labo>\r\n\r\nGlycemie normale.\r\n"
        ),
    );
    (server, holder)
}

/// `METHOD path` with the key, a JSON body when given.
fn call(server: &Server, key: &str, method: &str, path: &str, body: Option<&Value>) -> Answer {
    let (auth, target) = (bearer(key), url(server, path));
    let text = body.map(Value::to_string);
    let mut args = vec!["-X", method, "-H", &auth];
    if let Some(text) = &text {
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            text,
        ]);
    }
    args.push(&target);
    curl(&args)
}

fn get(server: &Server, key: &str, path: &str) -> Answer {
    call(server, key, "GET", path, None)
}

fn delegations(bal: &str) -> String {
    format!("/api/v1/bals/{bal}/delegations")
}

fn audit(bal: &str) -> String {
    format!("/api/v1/bals/{bal}/audit")
}

/// The key's id as the trail names its author (`key:<key id>`): what `/api/v1/me` says.
fn author_of(server: &Server, key: &str) -> String {
    get(server, key, "/api/v1/me").json()["client"]
        .as_str()
        .unwrap()
        .to_string()
}

fn refused(answer: &Answer, status: u16, problem: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.problem(), problem, "{}", answer.body);
}

engine_tests_sync!(
    the_holder_delegates_over_http_and_reads_the_exact_trail,
    |engine| {
        let (server, holder) = start(engine);
        let key_author = author_of(&server, &holder);
        assert!(key_author.starts_with("key:"), "{key_author}");
        let grant = json!({"grantee": SEC, "rights": "secretary"});
        let first = call(&server, &holder, "POST", &delegations(DR), Some(&grant));
        assert_eq!(first.status, 201, "{}", first.body);
        assert_eq!(
            first.header("location").unwrap(),
            format!("/api/v1/bals/{DR}/delegations/{SEC}")
        );
        let d = first.json();
        assert_eq!(d["grantee"], SEC);
        assert_eq!(d["grantee_kind"], "bal");
        assert_eq!(
            d["rights"],
            json!({"name": "secretary", "letters": "lrswixte0"})
        );
        assert_eq!(d["granted_by"], key_author.as_str());
        assert_eq!(d["active"], true);
        // An Idempotency-Key replays the first answer and grants once.
        let key = ["-H", "Idempotency-Key: grant-sec-1"];
        let again = post_json(&server, &holder, &delegations(DR), &grant, &key);
        assert_eq!(again.status, 200, "replaced: {}", again.body);
        let replay = post_json(&server, &holder, &delegations(DR), &grant, &key);
        assert_eq!(
            replay.header("idempotent-replayed").as_deref(),
            Some("true")
        );
        assert_eq!(replay.body, again.body);

        let listed = get(&server, &holder, &delegations(DR)).json();
        assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["items"][0]["granted_by"], key_author.as_str());
        assert!(listed["next_cursor"].is_null(), "{listed}");

        // The secretary, on IMAP, works in the doctor's BAL as the grant says.
        let v = doctor_secretary_flow(&server, "delegation_flow.py", "acceptance", (DR, SEC), &[]);
        assert!(v["namespace"].to_string().contains("Other Users/"), "{v}");
        assert!(
            v["list"]
                .to_string()
                .contains(&format!("Other Users/{DR}/INBOX")),
            "{v}"
        );
        assert_eq!(v["select"], "OK", "{v}");
        assert_eq!(v["move"][0], "OK", "{v}");

        // The trail over HTTP: exactly what was done, the grants by the key from its address.
        let page = get(&server, &holder, &audit(DR)).json();
        let items = page["items"].as_array().unwrap();
        let got: Vec<(&str, &str)> = items
            .iter()
            .map(|e| (e["author"].as_str().unwrap(), e["action"].as_str().unwrap()))
            .collect();
        let want = [
            (key_author.as_str(), "grant"),
            (key_author.as_str(), "change"),
            (SEC, "select"),
            (SEC, "fetch-body"),
            (SEC, "move"),
            (SEC, "append"),
        ];
        assert_eq!(got, want, "{page}");
        assert!(
            items[0]["client"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{page}"
        );
        assert_eq!(items[0]["detail"], format!("{SEC} secretary"));
        assert_eq!(items[4]["message_ids"], json!(["uid:1"]));
        // The command line reads the same trail.
        let cli = server.cli_ok(&["audit", DR, "--json", "--author", &key_author]);
        assert_eq!(cli.lines().count(), 2, "{cli}");

        // Filters and pages.
        let moves = get(&server, &holder, &format!("{}?action=move", audit(DR))).json();
        assert_eq!(moves["items"].as_array().unwrap().len(), 1, "{moves}");
        let by_sec = get(&server, &holder, &format!("{}?author={SEC}", audit(DR))).json();
        assert_eq!(by_sec["items"].as_array().unwrap().len(), 4, "{by_sec}");
        let later = get(&server, &holder, &format!("{}?since=4102444800", audit(DR))).json();
        assert!(later["items"].as_array().unwrap().is_empty(), "{later}");
        let mut seqs = Vec::new();
        let mut path = format!("{}?limit=4", audit(DR));
        loop {
            let page = get(&server, &holder, &path).json();
            seqs.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["seq"].as_i64().unwrap()),
            );
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("{}?limit=4&cursor={cursor}", audit(DR)),
                None => break,
            }
        }
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        refused(
            &get(&server, &holder, &format!("{}?action=read", audit(DR))),
            422,
            "invalid-request",
        );

        // Verified; then someone with database access edits the third entry.
        let verify = format!("{}/verify", audit(DR));
        let ok = get(&server, &holder, &verify).json();
        assert_eq!(
            ok,
            json!({"bal": DR, "intact": true, "entries": 6, "first_bad": null})
        );
        server.sql(&format!(
            "UPDATE audit_log SET author = 'quelqu-un' WHERE seq = 3 \
             AND bal_id = (SELECT id FROM bals WHERE address = '{DR}')"
        ));
        let broken = get(&server, &holder, &verify).json();
        assert_eq!(broken["intact"], false, "{broken}");
        assert_eq!(broken["first_bad"]["seq"], 3, "{broken}");
        assert!(
            broken["first_bad"]["reason"]
                .as_str()
                .unwrap()
                .contains("edited"),
            "{broken}"
        );
    }
);

engine_tests_sync!(revoking_over_http_ends_an_idle_session_at_once, |engine| {
    let (server, holder) = start(engine);
    let grant = json!({"grantee": SEC, "rights": "secretary"});
    let granted = call(&server, &holder, "POST", &delegations(DR), Some(&grant));
    assert_eq!(granted.status, 201, "{}", granted.body);
    let target = url(&server, &format!("{}/{SEC}", delegations(DR)));
    let auth = bearer(&holder);
    let revoke =
        serde_json::to_string(&["curl", "-fsS", "-X", "DELETE", "-H", &auth, &target]).unwrap();
    let v = doctor_secretary_flow(
        &server,
        "delegation_flow.py",
        "idle_revoke",
        (DR, SEC),
        &["--revoke-cmd", &revoke],
    );
    assert!(v["idle"].as_str().unwrap().starts_with('+'), "{v}");
    assert!(
        v["after_revoke"].to_string().contains("* BYE [NOPERM]"),
        "{v}"
    );
    assert!(v["seconds_to_bye"].as_f64().unwrap() < 5.0, "{v}");
    let trail = get(&server, &holder, &format!("{}?action=revoke", audit(DR))).json();
    let entry = &trail["items"][0];
    assert_eq!(
        entry["author"],
        author_of(&server, &holder).as_str(),
        "{trail}"
    );
    assert!(
        entry["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{trail}"
    );
    assert!(
        get(&server, &holder, &delegations(DR)).json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    refused(
        &call(
            &server,
            &holder,
            "DELETE",
            &format!("{}/{SEC}", delegations(DR)),
            None,
        ),
        404,
        "delegation-not-found",
    );
});

engine_tests_sync!(
    a_manager_grants_within_its_rights_and_delegates_read_no_trail,
    |engine| {
        let (server, holder) = start(engine);
        let manager = create_api_key(&server, "secretariat", "delegation,audit", SEC);
        let aide = create_api_key(&server, "aide", "delegation,audit", AIDE);
        let stranger = create_api_key(&server, "autre", "delegation,audit", OTHER);
        let unscoped = create_api_key(&server, "envoi", "send,read", DR);
        let admin = create_api_key(&server, "exploitant", "admin", DR);
        let grant =
            |key: &str, body: Value| call(&server, key, "POST", &delegations(DR), Some(&body));

        let made = grant(&holder, json!({"grantee": SEC, "rights": "manager"}));
        assert_eq!(made.status, 201, "{}", made.body);
        // Within its rights: given, and audited as the manager's key.
        let read = grant(&manager, json!({"grantee": AIDE, "rights": "read"}));
        assert_eq!(read.status, 201, "{}", read.body);
        assert_eq!(
            read.json()["granted_by"],
            author_of(&server, &manager).as_str()
        );
        // Beyond: `p` (post) is not the manager's.
        let beyond = grant(&manager, json!({"grantee": AIDE, "rights": "lrsp"}));
        refused(&beyond, 403, "rights-beyond-grantor");
        assert!(
            beyond.json()["detail"]
                .as_str()
                .unwrap()
                .starts_with("rights:")
        );
        // A manager until a date gives delegations ending by then at the latest.
        let until = mssante_store::now() + 3600;
        let changed = call(
            &server,
            &holder,
            "PATCH",
            &format!("{}/{SEC}", delegations(DR)),
            Some(&json!({"not_after": until})),
        );
        assert_eq!(changed.status, 200, "{}", changed.body);
        assert_eq!(
            changed.json()["rights"]["name"],
            "manager",
            "{}",
            changed.body
        );
        let open_ended = grant(&manager, json!({"grantee": AIDE, "rights": "read"}));
        refused(&open_ended, 403, "rights-beyond-grantor");
        assert!(
            open_ended.json()["detail"]
                .as_str()
                .unwrap()
                .starts_with("not_after:")
        );
        let bounded = grant(
            &manager,
            json!({"grantee": AIDE, "rights": "read", "not_after": until}),
        );
        assert_eq!(bounded.status, 200, "replaced: {}", bounded.body);
        // Not its own delegation (but it may give it up, below).
        let own = call(
            &server,
            &manager,
            "PATCH",
            &format!("{}/{SEC}", delegations(DR)),
            Some(&json!({"not_after": null})),
        );
        refused(&own, 403, "delegation-forbidden");
        assert_eq!(get(&server, &manager, &delegations(DR)).status, 200);

        // Delegates read no trail, the manager included; a reader manages nothing.
        refused(&get(&server, &manager, &audit(DR)), 403, "audit-forbidden");
        refused(
            &get(&server, &manager, &format!("{}/verify", audit(DR))),
            403,
            "audit-forbidden",
        );
        refused(&get(&server, &aide, &audit(DR)), 403, "audit-forbidden");
        refused(
            &get(&server, &aide, &delegations(DR)),
            403,
            "delegation-forbidden",
        );
        refused(
            &grant(&aide, json!({"grantee": OTHER, "rights": "read"})),
            403,
            "delegation-forbidden",
        );
        refused(
            &get(&server, &stranger, &delegations(DR)),
            403,
            "bal-out-of-scope",
        );
        refused(
            &get(&server, &unscoped, &delegations(DR)),
            403,
            "insufficient-scope",
        );
        refused(
            &get(&server, &unscoped, &audit(DR)),
            403,
            "insufficient-scope",
        );

        // Bad requests name the field; an unknown BAL is 404 to whom it would be in reach.
        for (body, field) in [
            (json!({"grantee": AIDE, "rights": "lrz"}), "rights:"),
            (
                json!({"grantee": format!("nobody@{DOMAIN}"), "rights": "read"}),
                "grantee:",
            ),
            (json!({"grantee": DR, "rights": "read"}), "grantee:"),
            (
                json!({"grantee": AIDE, "rights": "read", "not_after": 1}),
                "not_after:",
            ),
            (
                json!({"grantee": AIDE, "rights": "read", "folders": [""]}),
                "folders:",
            ),
            (
                json!({"grantee": AIDE, "rights": "read", "until": "2030-01-01"}),
                "until",
            ),
        ] {
            let answer = grant(&holder, body);
            refused(&answer, 422, "invalid-request");
            assert!(
                answer.json()["detail"].as_str().unwrap().contains(field),
                "{}",
                answer.body
            );
        }
        let auth = bearer(&holder);
        let target = url(&server, &delegations(DR));
        let malformed = curl(&[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{",
            &target,
        ]);
        refused(&malformed, 400, "malformed-json");
        refused(
            &get(&server, &admin, &delegations(&format!("nobody@{DOMAIN}"))),
            404,
            "bal-not-found",
        );
        assert_eq!(get(&server, &admin, &audit(DR)).status, 200);

        // The manager revokes what it gave, then gives up its own delegation.
        let aide_path = format!("{}/{AIDE}", delegations(DR));
        assert_eq!(
            call(&server, &manager, "DELETE", &aide_path, None).status,
            204
        );
        let own_path = format!("{}/{SEC}", delegations(DR));
        assert_eq!(
            call(&server, &manager, "DELETE", &own_path, None).status,
            204
        );
        refused(
            &get(&server, &manager, &delegations(DR)),
            403,
            "bal-out-of-scope",
        );

        // Every grant and revocation is in the trail, by whom it was made.
        let trail = get(&server, &holder, &audit(DR)).json();
        let got: Vec<(String, String)> = trail["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["author"].as_str().unwrap().into(),
                    e["action"].as_str().unwrap().into(),
                )
            })
            .collect();
        let (h, m) = (author_of(&server, &holder), author_of(&server, &manager));
        let want: Vec<(String, String)> = [
            (&h, "grant"),
            (&m, "grant"),
            (&h, "change"),
            (&m, "change"),
            (&m, "revoke"),
            (&m, "revoke"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want, "{trail}");
        assert_eq!(
            get(&server, &holder, &format!("{}/verify", audit(DR))).json()["intact"],
            true
        );
    }
);

engine_tests_sync!(psc_identities_hold_and_manage_as_their_bals_say, |engine| {
    use mssante_testkit::oidc::{OidcOptions, OidcProvider};
    let dir = tempfile::tempdir().unwrap();
    let (options, ca_file) = OidcOptions::tls(dir.path());
    let provider = OidcProvider::start(options);
    provider.add_rsa_key("rsa-1");
    let psc = format!(
        "[psc]\ndiscovery_url = \"{}\"\nissuers = [\"{}\"]\nca_file = \"{}\"\n",
        provider.discovery_url(),
        provider.issuer(),
        ca_file.display()
    );
    let mut server = Server::configure(engine, &psc);
    server.cli_ok(&["domain", "add", DOMAIN]);
    // National ids are 8 + RPPS.
    let ids = ["810001234560", "810001234561", "810001234562"];
    for (bal, id) in [DR, SEC, AIDE].iter().zip(ids) {
        server.create_bal(bal, &id[1..]);
    }
    server.spawn();
    let token = |id: &str| provider.token("rsa-1", &provider.psc_claims(id));
    let (doctor, secretary, stranger) = (token(ids[0]), token(ids[1]), token("810009999999"));

    // The doctor's identity holds the PER BAL: it delegates to the secretary's identity.
    let grant = |t: &str, body: Value| call(&server, t, "POST", &delegations(DR), Some(&body));
    let made = grant(&doctor, json!({"grantee": ids[1], "rights": "manager"}));
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.json()["grantee_kind"], "national_id");
    assert_eq!(made.json()["granted_by"], ids[0]);
    // The secretary's identity manages within its rights, and reads no trail.
    let given = grant(&secretary, json!({"grantee": AIDE, "rights": "read"}));
    assert_eq!(given.status, 201, "{}", given.body);
    assert_eq!(given.json()["granted_by"], ids[1]);
    refused(
        &grant(&secretary, json!({"grantee": AIDE, "rights": "lrsk"})),
        403,
        "rights-beyond-grantor",
    );
    refused(
        &get(&server, &secretary, &audit(DR)),
        403,
        "audit-forbidden",
    );
    refused(
        &get(&server, &stranger, &delegations(DR)),
        403,
        "bal-out-of-scope",
    );
    // The holder's identity reads the trail: each grant by the identity that made it.
    let trail = get(&server, &doctor, &audit(DR)).json();
    let got: Vec<(&str, &str)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["author"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [(ids[0], "grant"), (ids[1], "grant")], "{trail}");
    assert!(
        trail["items"][1]["client"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{trail}"
    );
    assert_eq!(
        get(&server, &doctor, &format!("{}/verify", audit(DR))).json()["intact"],
        true
    );
});
