//! SMTP command parsing (RFC 5321 §4.1), free of I/O and storage.

use std::fmt;

/// A parsed command line (without its CRLF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        from: Path,
        params: Vec<Param>,
    },
    Rcpt {
        to: Path,
        params: Vec<Param>,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

/// A reverse-path or forward-path: `<>` is the null path (MAIL FROM only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    Null,
    /// `local@domain` as received, source route stripped (RFC 5321 §4.1.1.3 / App. C).
    Address(String),
    /// `<Postmaster>` without a domain (RFC 5321 §4.1.1.3, RCPT only).
    Postmaster,
}

/// An ESMTP parameter `KEYWORD[=value]`; keyword upper-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub keyword: String,
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Verb not known: 500.
    UnknownCommand,
    /// Known verb, bad arguments: 501, with the reason.
    Syntax(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownCommand => f.write_str("command not recognized"),
            ParseError::Syntax(why) => f.write_str(why),
        }
    }
}

/// Parses one command line. `line` excludes the terminating CRLF; bytes must be UTF-8
/// (ASCII for everything but SMTPUTF8 addresses, RFC 6531 §3.3).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("invalid UTF-8"))?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let no_args = |cmd: Command| {
        if rest.trim().is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::Syntax("this command takes no argument"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => Ok(Command::Ehlo(parse_domain_arg(rest)?)),
        "HELO" => Ok(Command::Helo(parse_domain_arg(rest)?)),
        "MAIL" => {
            let (from, params) = parse_path_and_params(rest, "FROM:")?;
            if from == Path::Postmaster {
                return Err(ParseError::Syntax("invalid reverse-path"));
            }
            Ok(Command::Mail { from, params })
        }
        "RCPT" => {
            let (to, params) = parse_path_and_params(rest, "TO:")?;
            if to == Path::Null {
                return Err(ParseError::Syntax("null forward-path"));
            }
            Ok(Command::Rcpt { to, params })
        }
        "DATA" => no_args(Command::Data),
        "BDAT" => parse_bdat(rest),
        "RSET" => no_args(Command::Rset),
        // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" => Ok(Command::Expn),
        "HELP" => Ok(Command::Help),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => parse_auth(rest),
        _ => Err(ParseError::UnknownCommand),
    }
}

fn parse_domain_arg(rest: &str) -> Result<String, ParseError> {
    let arg = rest.trim();
    if arg.is_empty() || arg.contains(' ') {
        return Err(ParseError::Syntax("expected one domain or address literal"));
    }
    Ok(arg.to_string())
}

/// `FROM:<path> params` / `TO:<path> params`. A space after the colon is tolerated, as
/// deployed clients send it (RFC 5321 §4.1.2 does not allow it, but rejecting helps nobody).
fn parse_path_and_params(rest: &str, prefix: &str) -> Result<(Path, Vec<Param>), ParseError> {
    // Compared as bytes: a multi-byte character across the prefix's end must not panic
    // (found by the fuzzer: `MAIL FMIR¹O`).
    let starts = rest
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()));
    if !starts {
        return Err(ParseError::Syntax(if prefix == "FROM:" {
            "expected MAIL FROM:<address>"
        } else {
            "expected RCPT TO:<address>"
        }));
    }
    let rest = rest[prefix.len()..].trim_start();
    let rest = rest
        .strip_prefix('<')
        .ok_or(ParseError::Syntax("address must be enclosed in <>"))?;
    let end = rest
        .find('>')
        .ok_or(ParseError::Syntax("address must be enclosed in <>"))?;
    let path = parse_path(&rest[..end])?;
    let params = parse_params(&rest[end + 1..])?;
    Ok((path, params))
}

fn parse_path(inner: &str) -> Result<Path, ParseError> {
    if inner.is_empty() {
        return Ok(Path::Null);
    }
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok(Path::Postmaster);
    }
    // RFC 5321 §4.1.1.3: a source route `@a,@b:` is accepted and ignored.
    let mailbox = match inner.starts_with('@') {
        true => inner
            .split_once(':')
            .map(|(_, m)| m)
            .ok_or(ParseError::Syntax("invalid source route"))?,
        false => inner,
    };
    if mailbox.contains(char::is_whitespace) || !mailbox.contains('@') {
        return Err(ParseError::Syntax("invalid address"));
    }
    Ok(Path::Address(mailbox.to_string()))
}

fn parse_params(rest: &str) -> Result<Vec<Param>, ParseError> {
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(ParseError::Syntax("garbage after address"));
    }
    rest.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (p, None),
            };
            let valid = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                return Err(ParseError::Syntax("invalid parameter"));
            }
            Ok(Param {
                keyword: k.to_ascii_uppercase(),
                value: v,
            })
        })
        .collect()
}

/// RFC 3030 §2: `BDAT <size> [LAST]`.
fn parse_bdat(rest: &str) -> Result<Command, ParseError> {
    let mut words = rest.split_ascii_whitespace();
    let size = words
        .next()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 18)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ParseError::Syntax("expected BDAT <size> [LAST]"))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax("expected BDAT <size> [LAST]")),
    };
    if words.next().is_some() {
        return Err(ParseError::Syntax("expected BDAT <size> [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

/// RFC 4954 §4: `AUTH mechanism [initial-response]`.
fn parse_auth(rest: &str) -> Result<Command, ParseError> {
    let mut words = rest.split_ascii_whitespace();
    let mechanism = words
        .next()
        .ok_or(ParseError::Syntax("expected AUTH <mechanism>"))?
        .to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    if words.next().is_some() {
        return Err(ParseError::Syntax(
            "expected AUTH <mechanism> [initial-response]",
        ));
    }
    Ok(Command::Auth { mechanism, initial })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Path {
        Path::Address(s.into())
    }

    #[test]
    fn parses_envelope_commands() {
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b.fr> SIZE=100 body=8BITMIME").unwrap(),
            Command::Mail {
                from: addr("a@b.fr"),
                params: vec![
                    Param {
                        keyword: "SIZE".into(),
                        value: Some("100".into())
                    },
                    Param {
                        keyword: "BODY".into(),
                        value: Some("8BITMIME".into())
                    },
                ]
            }
        );
        assert_eq!(
            parse_command(b"mail from: <>").unwrap(),
            Command::Mail {
                from: Path::Null,
                params: vec![]
            }
        );
        assert_eq!(
            parse_command(b"RCPT TO:<@relay.fr,@other.fr:x@y.fr> NOTIFY=SUCCESS,FAILURE").unwrap(),
            Command::Rcpt {
                to: addr("x@y.fr"),
                params: vec![Param {
                    keyword: "NOTIFY".into(),
                    value: Some("SUCCESS,FAILURE".into())
                }]
            }
        );
        assert_eq!(
            parse_command(b"RCPT TO:<Postmaster>").unwrap(),
            Command::Rcpt {
                to: Path::Postmaster,
                params: vec![]
            }
        );
        assert_eq!(
            parse_command("RCPT TO:<élodie@ch-x.mssante.fr>".as_bytes()).unwrap(),
            Command::Rcpt {
                to: addr("élodie@ch-x.mssante.fr"),
                params: vec![]
            }
        );
    }

    #[test]
    fn rejects_malformed_envelopes() {
        for bad in [
            "MAIL FROM:a@b.fr",
            "MAIL FROM:<a@b.fr",
            "MAIL TO:<a@b.fr>",
            "MAIL FROM:<a@b.fr>SIZE=1",
            "MAIL FROM:<Postmaster>",
            "RCPT TO:<>",
            "RCPT TO:<no-at-sign>",
            "RCPT TO:<a b@c.fr>",
            "RCPT TO:<a@b.fr> =x",
            "RCPT",
        ] {
            assert!(
                matches!(parse_command(bad.as_bytes()), Err(ParseError::Syntax(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn parses_simple_verbs_case_insensitively() {
        assert_eq!(
            parse_command(b"ehlo client.example").unwrap(),
            Command::Ehlo("client.example".into())
        );
        assert_eq!(
            parse_command(b"EHLO [127.0.0.1]").unwrap(),
            Command::Ehlo("[127.0.0.1]".into())
        );
        assert_eq!(parse_command(b"data").unwrap(), Command::Data);
        assert_eq!(parse_command(b"NOOP anything").unwrap(), Command::Noop);
        assert_eq!(parse_command(b"STARTTLS").unwrap(), Command::StartTls);
        assert!(matches!(parse_command(b"EHLO"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse_command(b"DATA x"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_command(b"STARTTLS now"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(parse_command(b"XYZZY"), Err(ParseError::UnknownCommand));
        assert!(parse_command(b"\xff\xfe").is_err());
    }

    #[test]
    fn parses_bdat_and_auth() {
        assert_eq!(
            parse_command(b"BDAT 1000").unwrap(),
            Command::Bdat {
                size: 1000,
                last: false
            }
        );
        assert_eq!(
            parse_command(b"BDAT 0 last").unwrap(),
            Command::Bdat {
                size: 0,
                last: true
            }
        );
        for bad in [
            "BDAT",
            "BDAT -1",
            "BDAT 12 FIRST",
            "BDAT 1 LAST x",
            "BDAT 99999999999999999999",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_command(b"AUTH plain AGEAYg==").unwrap(),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            }
        );
        assert_eq!(
            parse_command(b"AUTH LOGIN").unwrap(),
            Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            }
        );
    }
}
