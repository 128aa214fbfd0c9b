//! The LPS flow of the HTTP API with a Pro Santé Connect token from the loopback OIDC
//! provider, on SQLite and PostgreSQL: the token lists the BALs of its identity, reads new
//! messages with the metadata of their `IHE_XDM.zip` (a real-shaped submission set built by
//! Python's zipfile from `api-lps/tests/fixtures/METADATA.XML`), fetches an attachment and
//! the raw message, sets a flag, and never alters the stored message.

mod common;

use std::process::Command;

use base64::Engine as _;
use common::http::*;
use common::*;
use mssante_testkit::engine_tests_sync;
use mssante_testkit::oidc::{OidcOptions, OidcProvider};
use serde_json::{Value, json};

const IDENTITY: &str = "810001234567";
const LAB: &str = "resultats@ch-test.mssante.fr";

fn bal(local: &str) -> String {
    format!("{local}@{DOMAIN}")
}

/// `IHE_XDM.zip` as a laboratory builds it (ITI TF-1 §16.1.2: INDEX.HTM, README.TXT,
/// IHE_XDM/SUBSET01/ with METADATA.XML and the document), written by Python's zipfile.
fn xdm_zip() -> Vec<u8> {
    let metadata = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/api-lps/tests/fixtures/METADATA.XML"
    );
    let script = "import io,sys,zipfile\n\
        b=io.BytesIO()\n\
        z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\n\
        z.writestr('INDEX.HTM','<html><body><a href=\"IHE_XDM/SUBSET01/DOC0001.XML\">CR</a></body></html>')\n\
        z.writestr('README.TXT','Laboratoire de test - logiciel SIL 1.0\\r\\n')\n\
        z.write(sys.argv[1],'IHE_XDM/SUBSET01/METADATA.XML')\n\
        z.writestr('IHE_XDM/SUBSET01/DOC0001.XML','<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>')\n\
        z.close()\n\
        sys.stdout.buffer.write(b.getvalue())\n";
    let out = Command::new("python3")
        .args(["-c", script, metadata])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

fn setup(engine: Engine) -> (Server, OidcProvider, String, tempfile::TempDir) {
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
    server.create_bal(&bal("dr.martin"), "10001234567");
    server.create_bal(&bal("dr.other"), "10009999999");
    server.cli_ok(&[
        "bal",
        "create",
        &bal("cardio"),
        "--type",
        "ORG",
        "--finess",
        "750712184",
    ]);
    create_lab_bal(&server, LAB);
    server.cli_ok(&["access", "grant", &bal("cardio"), "--national-id", IDENTITY]);
    let key = create_api_key(&server, "SIL", "send", LAB);
    server.spawn();
    (server, provider, key, dir)
}

fn send_report(server: &Server, key: &str, zip: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let request = json!({
        "to": [bal("dr.martin")],
        "subject": "CR biologie DUPONT Marie",
        "text": "Compte rendu en pièce jointe.",
        "headers": {"X-MSS-NIL": "SIL-Test 1.0", "X-MSS-Ins": "279035121518989"},
        "attachments": [
            {"filename": "IHE_XDM.zip", "content_type": "application/zip", "content_base64": b64.encode(zip)},
            {"filename": "cr.pdf", "content_type": "application/pdf", "content_base64": b64.encode(b"%PDF-1.4\n")}
        ]
    });
    let auth = bearer(key);
    let body = request.to_string();
    let target = url(server, &format!("/api/v1/bals/{LAB}/messages"));
    let sent = curl(&[
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body,
        &target,
    ]);
    assert_eq!(sent.status, 202, "{}", sent.body);
    sent.json()
}

engine_tests_sync!(
    a_psc_token_lists_its_bals_and_reads_reports_with_xdm_metadata,
    |engine| {
        let (server, provider, key, _dir) = setup(engine);
        let token = provider.token("rsa-1", &provider.psc_claims(IDENTITY));
        let auth = bearer(&token);

        let me = curl(&["-H", &auth, &url(&server, "/api/v1/me")]);
        assert_eq!(me.status, 200, "{}", me.body);
        let me = me.json();
        assert_eq!(
            (me["kind"].as_str(), me["national_id"].as_str()),
            (Some("psc"), Some(IDENTITY))
        );
        let bals: Vec<(String, String)> = me["bals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["address"].as_str().unwrap().to_string(),
                    b["origin"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            bals,
            vec![
                (bal("dr.martin"), "holder".into()),
                (bal("cardio"), "habilitation".into())
            ]
        );

        let zip = xdm_zip();
        send_report(&server, &key, &zip);
        let inbox = url(
            &server,
            &format!("/api/v1/bals/{}/messages", bal("dr.martin")),
        );
        let page = curl(&["-H", &auth, &inbox]);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        let item = &page["items"][0];
        assert_eq!(item["from"], LAB);
        assert_eq!(item["subject"], "CR biologie DUPONT Marie");
        assert_eq!(item["x_mss"]["X-MSS-NIL"], "SIL-Test 1.0");
        assert_eq!(item["x_mss"]["X-MSS-Ins"], "279035121518989");
        let xdm = &item["xdm"];
        assert_eq!(
            xdm["patient"],
            json!({"id": "279035121518989", "authority": "1.2.250.1.213.1.4.8", "is_ins": true})
        );
        assert_eq!(xdm["documents"][0]["type_code"]["code"], "11502-2");
        assert_eq!(xdm["documents"][0]["class_code"]["code"], "10");
        assert_eq!(
            xdm["documents"][0]["format_code"]["code"],
            "urn:ihe:lab:xd-lab:2008"
        );
        assert_eq!(item["attachments"][0]["filename"], "IHE_XDM.zip");
        let uid = item["uid"].as_i64().unwrap();

        // The attachment comes back byte for byte.
        let attachment_url = url(
            &server,
            &format!(
                "/api/v1/bals/{}/messages/{uid}/attachments/0",
                bal("dr.martin")
            ),
        );
        let out = Command::new("curl")
            .args(["-sS", "-f", "-H", &auth, &attachment_url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stdout == zip,
            "the attachment differs from what was sent"
        );

        // Raw message, then a flag: the stored bytes do not change.
        let raw_url = url(
            &server,
            &format!("/api/v1/bals/{}/messages/{uid}", bal("dr.martin")),
        );
        let before = curl(&["-H", &auth, &raw_url]);
        assert_eq!(
            before.header("content-type").as_deref(),
            Some("message/rfc822")
        );
        let flags_url = format!("{raw_url}/flags");
        let flagged = curl(&[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"add": ["\\Seen", "$Classe"]}"#,
            &flags_url,
        ]);
        assert_eq!(flagged.status, 200, "{}", flagged.body);
        assert_eq!(flagged.json()["flags"], json!(["\\Seen", "$Classe"]));
        let after = curl(&["-H", &auth, &raw_url]);
        assert!(before.body == after.body, "a flag changed the message");
        assert!(server.messages(&bal("dr.martin"), "INBOX")[0] == after.body.as_bytes());

        // The cursor: nothing new, then the next report only.
        let cursor = page["next_cursor"].as_str().unwrap();
        let empty = curl(&["-H", &auth, &format!("{inbox}?cursor={cursor}")]).json();
        assert_eq!(empty["items"], json!([]));
        send_report(&server, &key, &zip);
        let next = curl(&["-H", &auth, &format!("{inbox}?cursor={cursor}")]).json();
        assert_eq!(next["items"].as_array().unwrap().len(), 1);
        assert_eq!(next["items"][0]["uid"], uid + 1);

        // Out of reach, and a bad token.
        let other = curl(&[
            "-H",
            &auth,
            &url(
                &server,
                &format!("/api/v1/bals/{}/messages", bal("dr.other")),
            ),
        ]);
        assert_eq!(
            (other.status, other.problem().as_str()),
            (403, "bal-out-of-scope")
        );
        let mut expired = provider.psc_claims(IDENTITY);
        expired["exp"] = json!(1_000_000_000);
        let stale = provider.token("rsa-1", &expired);
        let refused = curl(&["-H", &bearer(&stale), &url(&server, "/api/v1/me")]);
        assert_eq!(
            (refused.status, refused.problem().as_str()),
            (401, "unauthorized")
        );
        assert!(!server.log().contains(&stale), "a token was logged");
    }
);
