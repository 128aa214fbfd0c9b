//! Request bodies: JSON read strictly (unknown fields refused) with one problem type per
//! kind of mistake, and the cursors of paginated lists.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;

use crate::Problem;

/// Largest page a list returns; the default when `limit` is absent.
pub const MAX_PAGE: u32 = 500;
pub const DEFAULT_PAGE: u32 = 100;

/// `body` as `T`: a syntax error is `malformed-json` (400), a well-formed document that
/// does not fit (unknown or missing field, wrong type) is `invalid-request` (422).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Problem::invalid(format!("request body: {e}")),
        _ => Problem::bad_request("malformed-json", format!("request body is not JSON: {e}")),
    })
}

/// The media type of the request, without parameters, lower-cased.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub fn unsupported_media_type(given: &str, wanted: &[&str]) -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!(
            "Content-Type {given:?} is not accepted here; send {}",
            wanted.join(" or ")
        ),
    )
}

pub fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
        format!("the request body or the message exceeds {limit} bytes"),
    )
}

/// An opaque cursor: the last id a page held, encoded so that clients do not build them.
pub fn encode_cursor(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("after:{last_id}"))
}

pub fn decode_cursor(cursor: Option<&str>) -> Result<i64, Problem> {
    let Some(text) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(0);
    };
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| s.strip_prefix("after:").and_then(|n| n.parse().ok()))
        .filter(|n: &i64| *n >= 0)
        .ok_or_else(|| {
            Problem::bad_request(
                "bad-cursor",
                "cursor: not one this server gave (use next_cursor as given)".into(),
            )
        })
}

pub fn page_limit(limit: Option<u32>) -> Result<u32, Problem> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(Problem::invalid(format!(
            "limit: {n} is out of range 1..={MAX_PAGE}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_cursor(Some(&encode_cursor(42))).unwrap(), 42);
        assert_eq!(decode_cursor(None).unwrap(), 0);
        assert_eq!(decode_cursor(Some("42")).unwrap_err().name(), "bad-cursor");
    }

    #[test]
    fn json_mistakes_have_their_own_types() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u8,
        }
        assert_eq!(parse_json::<T>(b"{").unwrap_err().name(), "malformed-json");
        assert_eq!(
            parse_json::<T>(br#"{"a":1,"b":2}"#).unwrap_err().name(),
            "invalid-request"
        );
        assert!(parse_json::<T>(br#"{"a":1}"#).is_ok());
    }
}
