//! HTTP with curl for the API tests: an answer split into status, headers and body, and
//! the problem type of an error.

use std::process::Command;

use serde_json::Value;

use super::Server;

/// An HTTP answer as curl saw it.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The problem type's name (`urn:mssante:problem:<name>`), checking the media type.
    pub fn problem(&self) -> String {
        assert!(
            self.header("content-type").as_deref() == Some("application/problem+json"),
            "{} {}",
            self.headers,
            self.body
        );
        let kind = self.json()["type"].as_str().unwrap().to_string();
        kind.strip_prefix("urn:mssante:problem:")
            .unwrap()
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// curl with `args`, the answer split into status, headers and body.
pub fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-sS", "-i"])
        .args(args)
        .output()
        .expect("curl is required for the end-to-end tests (Debian package curl)");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    }
}

pub fn url(server: &Server, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", server.ports.http)
}

pub fn bearer(key: &str) -> String {
    format!("Authorization: Bearer {key}")
}

/// A laboratory's APP BAL (FINESS 750712186), the usual sender of the API tests.
pub fn create_lab_bal(server: &Server, address: &str) {
    server.cli_ok(&[
        "bal",
        "create",
        address,
        "--type",
        "APP",
        "--finess",
        "750712186",
    ]);
}

/// An API key named `name` with `scopes` (comma-separated) on the BAL `bal`, as
/// `mssante apikey create` prints it.
pub fn create_api_key(server: &Server, name: &str, scopes: &str, bal: &str) -> String {
    let args = [
        "apikey", "create", "--name", name, "--scope", scopes, "--bal", bal,
    ];
    server.cli_ok(&args).trim().to_string()
}

/// POST `body` as JSON to `path` with the key, `extra` curl arguments before the URL.
pub fn post_json(server: &Server, key: &str, path: &str, body: &Value, extra: &[&str]) -> Answer {
    let (auth, text, target) = (bearer(key), body.to_string(), url(server, path));
    let mut args = vec![
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &text,
    ];
    args.extend_from_slice(extra);
    args.push(&target);
    curl(&args)
}
