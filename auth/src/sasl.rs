//! SASL messages carrying OAuth 2.0 bearer tokens, without I/O: the protocol layers decode
//! base64 and pass the raw message here.
//!
//! - XOAUTH2 (Google's mechanism, what LPS send per Ségur wave 2):
//!   `user=<bal>\x01auth=Bearer <token>\x01\x01`.
//! - OAUTHBEARER (RFC 7628 §3.1): `n,a=<bal>,\x01[host=..\x01port=..\x01]auth=Bearer
//!   <token>\x01\x01`, and on failure the JSON error challenge of §3.2.2 that the client
//!   acknowledges with a lone `\x01` (§3.2.3) before the server fails the exchange.

/// A decoded initial client response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BearerResponse {
    /// XOAUTH2 `user`, OAUTHBEARER authzid (`a=`): the BAL to open, when named.
    pub user: Option<String>,
    /// The bearer token (RFC 6750 §2.1 b64token).
    pub token: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("empty message")]
    Empty,
    #[error("message is not UTF-8")]
    NotUtf8,
    #[error("message does not end with \\x01\\x01")]
    MissingTerminator,
    #[error("field {0:?} is not key=value")]
    MalformedField(String),
    #[error("field {0:?} appears twice")]
    DuplicateField(String),
    #[error("no user field")]
    MissingUser,
    #[error("no auth field")]
    MissingAuth,
    #[error("auth is not a Bearer credential")]
    NotBearer,
    #[error("the bearer token is empty or has characters outside b64token")]
    BadToken,
    #[error("bad GS2 header")]
    BadGs2Header,
    #[error("channel binding is not supported")]
    ChannelBindingUnsupported,
    #[error("bad authorization identity encoding")]
    BadAuthzid,
}

const KVSEP: char = '\x01';

/// Parses an XOAUTH2 initial response.
pub fn parse_xoauth2(message: &[u8]) -> Result<BearerResponse, SaslError> {
    let text = as_text(message)?;
    let body = text
        .strip_suffix("\x01\x01")
        .ok_or(SaslError::MissingTerminator)?;
    let fields = key_values(body)?;
    let user = field(&fields, "user").ok_or(SaslError::MissingUser)?;
    if user.is_empty() {
        return Err(SaslError::MissingUser);
    }
    let auth = field(&fields, "auth").ok_or(SaslError::MissingAuth)?;
    Ok(BearerResponse {
        user: Some(user.to_string()),
        token: bearer_token(auth)?,
    })
}

/// Parses an OAUTHBEARER initial response (RFC 7628 §3.1).
pub fn parse_oauthbearer(message: &[u8]) -> Result<BearerResponse, SaslError> {
    let text = as_text(message)?;
    // gs2-header = gs2-cb-flag "," [ authzid ] "," (RFC 5801 §4), then kvsep.
    let (cb_flag, rest) = text.split_once(',').ok_or(SaslError::BadGs2Header)?;
    match cb_flag {
        "n" | "y" => {}
        flag if flag.starts_with("p=") => return Err(SaslError::ChannelBindingUnsupported),
        _ => return Err(SaslError::BadGs2Header),
    }
    let (authzid, rest) = rest.split_once(',').ok_or(SaslError::BadGs2Header)?;
    let user = match authzid {
        "" => None,
        named => Some(decode_saslname(
            named.strip_prefix("a=").ok_or(SaslError::BadGs2Header)?,
        )?),
    };
    let pairs = rest.strip_prefix(KVSEP).ok_or(SaslError::BadGs2Header)?;
    let body = pairs
        .strip_suffix("\x01\x01")
        .ok_or(SaslError::MissingTerminator)?;
    let fields = key_values(body)?;
    let auth = field(&fields, "auth").ok_or(SaslError::MissingAuth)?;
    Ok(BearerResponse {
        user,
        token: bearer_token(auth)?,
    })
}

/// RFC 7628 §3.2.2: the server's failure challenge, a JSON object with `status`
/// (`invalid_token`), and the optional `scope` and `openid-configuration`.
pub fn oauthbearer_error_challenge(openid_configuration: Option<&str>) -> Vec<u8> {
    let mut error = serde_json::Map::new();
    error.insert("status".into(), "invalid_token".into());
    if let Some(url) = openid_configuration {
        error.insert("openid-configuration".into(), url.into());
    }
    serde_json::Value::Object(error).to_string().into_bytes()
}

/// XOAUTH2's failure challenge (Google's form): a JSON object the client answers with an
/// empty response before the final failure.
pub fn xoauth2_error_challenge() -> Vec<u8> {
    br#"{"status":"401","schemes":"bearer"}"#.to_vec()
}

/// RFC 7628 §3.2.3: after the error challenge the client sends a single kvsep.
pub fn is_oauthbearer_error_ack(response: &[u8]) -> bool {
    response == b"\x01"
}

/// The XOAUTH2 message for `user` and `token` (clients, tests).
pub fn encode_xoauth2(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// The OAUTHBEARER message for an optional authzid and `token` (clients, tests).
pub fn encode_oauthbearer(authzid: Option<&str>, token: &str) -> Vec<u8> {
    let authzid = authzid
        .map(|a| format!("a={}", a.replace('=', "=3D").replace(',', "=2C")))
        .unwrap_or_default();
    format!("n,{authzid},\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn as_text(message: &[u8]) -> Result<&str, SaslError> {
    if message.is_empty() {
        return Err(SaslError::Empty);
    }
    std::str::from_utf8(message).map_err(|_| SaslError::NotUtf8)
}

/// `key=value` fields separated by kvsep (the final terminator already stripped).
fn key_values(body: &str) -> Result<Vec<(&str, &str)>, SaslError> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for raw in body.split(KVSEP) {
        let (key, value) = raw
            .split_once('=')
            .filter(|(key, _)| !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic()))
            .ok_or_else(|| SaslError::MalformedField(raw.chars().take(20).collect()))?;
        if fields.iter().any(|(seen, _)| *seen == key) {
            return Err(SaslError::DuplicateField(key.to_string()));
        }
        fields.push((key, value));
    }
    Ok(fields)
}

fn field<'a>(fields: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| *value)
}

/// `Bearer <b64token>`: the scheme is case-insensitive (RFC 7235 §2.1), then one or more
/// spaces, then the token (RFC 6750 §2.1).
fn bearer_token(auth: &str) -> Result<String, SaslError> {
    let scheme_len = "Bearer".len();
    if auth.len() <= scheme_len
        || !auth.is_char_boundary(scheme_len)
        || !auth[..scheme_len].eq_ignore_ascii_case("Bearer")
        || !auth[scheme_len..].starts_with(' ')
    {
        return Err(SaslError::NotBearer);
    }
    let token = auth[scheme_len..].trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let b64token = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !b64token {
        return Err(SaslError::BadToken);
    }
    Ok(token.to_string())
}

/// RFC 5801 §4 saslname: `,` and `=` travel as `=2C` and `=3D`; any other `=` is an error.
fn decode_saslname(encoded: &str) -> Result<String, SaslError> {
    if encoded.is_empty() {
        return Err(SaslError::BadAuthzid);
    }
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).ok_or(SaslError::BadAuthzid)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return Err(SaslError::BadAuthzid),
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_";

    #[test]
    fn xoauth2_round_trip() {
        let message = encode_xoauth2("dr.martin@ch.mssante.fr", TOKEN);
        assert_eq!(
            parse_xoauth2(&message).unwrap(),
            BearerResponse {
                user: Some("dr.martin@ch.mssante.fr".into()),
                token: TOKEN.into()
            }
        );
        // Scheme case and extra spaces are tolerated; UTF-8 addresses too (SMTPUTF8).
        let loose = format!("user=élise@ch.fr\x01auth=bearer   {TOKEN}\x01\x01");
        let parsed = parse_xoauth2(loose.as_bytes()).unwrap();
        assert_eq!(parsed.user.as_deref(), Some("élise@ch.fr"));
        assert_eq!(parsed.token, TOKEN);
    }

    #[test]
    fn xoauth2_error_paths() {
        let t = TOKEN;
        let cases: Vec<(Vec<u8>, SaslError)> = vec![
            (b"".to_vec(), SaslError::Empty),
            (
                b"user=\xff\x01auth=Bearer x\x01\x01".to_vec(),
                SaslError::NotUtf8,
            ),
            (
                format!("user=a\x01auth=Bearer {t}\x01").into_bytes(),
                SaslError::MissingTerminator,
            ),
            (
                format!("user=a\x01auth=Bearer {t}").into_bytes(),
                SaslError::MissingTerminator,
            ),
            (
                format!("auth=Bearer {t}\x01\x01").into_bytes(),
                SaslError::MissingUser,
            ),
            (
                format!("user=\x01auth=Bearer {t}\x01\x01").into_bytes(),
                SaslError::MissingUser,
            ),
            (b"user=a\x01\x01".to_vec(), SaslError::MissingAuth),
            (
                format!("user=a\x01auth=Basic {t}\x01\x01").into_bytes(),
                SaslError::NotBearer,
            ),
            (
                format!("user=a\x01auth=Bearer{t}\x01\x01").into_bytes(),
                SaslError::NotBearer,
            ),
            (
                b"user=a\x01auth=Bearer \x01\x01".to_vec(),
                SaslError::BadToken,
            ),
            (
                b"user=a\x01auth=Bearer a b\x01\x01".to_vec(),
                SaslError::BadToken,
            ),
            (
                b"user=a\x01auth=Bearer ===\x01\x01".to_vec(),
                SaslError::BadToken,
            ),
            (
                format!("user=a\x01nonsense\x01auth=Bearer {t}\x01\x01").into_bytes(),
                SaslError::MalformedField("nonsense".into()),
            ),
            (
                format!("user=a\x01user=b\x01auth=Bearer {t}\x01\x01").into_bytes(),
                SaslError::DuplicateField("user".into()),
            ),
            (
                format!("user=a\x01\x01auth=Bearer {t}\x01\x01").into_bytes(),
                SaslError::MalformedField(String::new()),
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(
                parse_xoauth2(&message),
                Err(expected.clone()),
                "{:?}",
                String::from_utf8_lossy(&message)
            );
        }
    }

    #[test]
    fn oauthbearer_round_trip_and_curl_shape() {
        let message = encode_oauthbearer(Some("a=b,c@x.fr"), TOKEN);
        assert!(message.starts_with(b"n,a=a=3Db=2Cc@x.fr,\x01"));
        assert_eq!(
            parse_oauthbearer(&message).unwrap(),
            BearerResponse {
                user: Some("a=b,c@x.fr".into()),
                token: TOKEN.into()
            }
        );
        // curl sends host and port before auth.
        let curl =
            format!("n,a=dr@ch.fr,\x01host=127.0.0.1\x01port=1993\x01auth=Bearer {TOKEN}\x01\x01");
        let parsed = parse_oauthbearer(curl.as_bytes()).unwrap();
        assert_eq!(parsed.user.as_deref(), Some("dr@ch.fr"));
        let no_authzid = format!("y,,\x01auth=Bearer {TOKEN}\x01\x01");
        assert_eq!(parse_oauthbearer(no_authzid.as_bytes()).unwrap().user, None);
    }

    #[test]
    fn oauthbearer_error_paths() {
        let t = TOKEN;
        let cases: Vec<(String, SaslError)> = vec![
            (
                format!("n,a=x\x01auth=Bearer {t}\x01\x01"),
                SaslError::BadGs2Header,
            ),
            (
                format!("x,,\x01auth=Bearer {t}\x01\x01"),
                SaslError::BadGs2Header,
            ),
            (
                format!("n\x01auth=Bearer {t}\x01\x01"),
                SaslError::BadGs2Header,
            ),
            (
                format!("p=tls-unique,,\x01auth=Bearer {t}\x01\x01"),
                SaslError::ChannelBindingUnsupported,
            ),
            (
                format!("n,u=x,\x01auth=Bearer {t}\x01\x01"),
                SaslError::BadGs2Header,
            ),
            (
                format!("n,a=,\x01auth=Bearer {t}\x01\x01"),
                SaslError::BadAuthzid,
            ),
            (
                format!("n,a=x=2,\x01auth=Bearer {t}\x01\x01"),
                SaslError::BadAuthzid,
            ),
            (
                format!("n,a=x=41,\x01auth=Bearer {t}\x01\x01"),
                SaslError::BadAuthzid,
            ),
            (
                format!("n,,auth=Bearer {t}\x01\x01"),
                SaslError::BadGs2Header,
            ),
            (
                format!("n,,\x01auth=Bearer {t}\x01"),
                SaslError::MissingTerminator,
            ),
            ("n,,\x01host=x\x01\x01".into(), SaslError::MissingAuth),
            (
                format!("n,,\x01auth=Basic {t}\x01\x01"),
                SaslError::NotBearer,
            ),
            (
                format!("n,,\x01auth=Bearer {t}\x01auth=Bearer {t}\x01\x01"),
                SaslError::DuplicateField("auth".into()),
            ),
            (
                format!("n,,\x01ho st=x\x01auth=Bearer {t}\x01\x01"),
                SaslError::MalformedField("ho st=x".into()),
            ),
            ("\x01".into(), SaslError::BadGs2Header),
        ];
        for (message, expected) in cases {
            assert_eq!(
                parse_oauthbearer(message.as_bytes()),
                Err(expected.clone()),
                "{message:?}"
            );
        }
        assert_eq!(parse_oauthbearer(b""), Err(SaslError::Empty));
        assert_eq!(
            parse_oauthbearer(b"n,,\x01\xfe\x01\x01"),
            Err(SaslError::NotUtf8)
        );
    }

    #[test]
    fn error_challenges() {
        let challenge = oauthbearer_error_challenge(Some("https://i.example/.well-known/x"));
        let json: serde_json::Value = serde_json::from_slice(&challenge).unwrap();
        assert_eq!(json["status"], "invalid_token");
        assert_eq!(
            json["openid-configuration"],
            "https://i.example/.well-known/x"
        );
        let bare: serde_json::Value =
            serde_json::from_slice(&oauthbearer_error_challenge(None)).unwrap();
        assert_eq!(bare, serde_json::json!({"status": "invalid_token"}));
        assert!(is_oauthbearer_error_ack(b"\x01"));
        assert!(!is_oauthbearer_error_ack(b""));
        assert!(!is_oauthbearer_error_ack(b"\x01\x01"));
        let x: serde_json::Value = serde_json::from_slice(&xoauth2_error_challenge()).unwrap();
        assert_eq!(x["status"], "401");
    }
}
