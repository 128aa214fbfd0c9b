//! The account list of `mssante migrate --csv FILE`: one line per BAL,
//! `source login,secret,target BAL`, where the secret is the password or `xoauth2:PATH`,
//! a file holding an OAuth 2.0 access token. Fields may be double-quoted (`""` inside for a
//! quote), as RFC 4180 writes them; `#` lines, blank lines and a header line starting with
//! `source` are skipped. Every bad line is reported, naming it, before anything runs.

use std::path::PathBuf;

/// How an account proves itself to the source.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    /// Read when the account's turn comes (tokens are short-lived).
    TokenFile(PathBuf),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(…)"),
            Secret::TokenFile(p) => write!(f, "TokenFile({})", p.display()),
        }
    }
}

/// One BAL to migrate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Where it came from (`accounts.csv line 3`), for messages.
    pub origin: String,
    pub login: String,
    pub secret: Secret,
    pub target: String,
}

/// The prefix that marks a token file instead of a password.
pub const TOKEN_PREFIX: &str = "xoauth2:";

/// Splits a CSV line into fields (RFC 4180 quoting). `None` on an unclosed quote.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Some(out);
                }
                Some(',') => {}
                Some(_) => return None,
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field.trim().to_string());
                        return Some(out);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            field = field.trim().to_string();
        }
        out.push(field);
    }
}

/// Parses the whole list; `Err` holds one message per bad line.
pub fn parse(name: &str, text: &str) -> Result<Vec<Account>, Vec<String>> {
    let mut accounts = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let origin = format!("{name} line {}", i + 1);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if accounts.is_empty()
            && errors.is_empty()
            && trimmed.to_ascii_lowercase().starts_with("source")
        {
            continue;
        }
        let Some(f) = fields(line.trim_end_matches('\r')) else {
            errors.push(format!("{origin}: unclosed double quote"));
            continue;
        };
        let [login, secret, target] = f.as_slice() else {
            errors.push(format!(
                "{origin}: {} field(s), expected 3: source login, password or {TOKEN_PREFIX}TOKEN_FILE, target BAL",
                f.len()
            ));
            continue;
        };
        let problem = if login.is_empty() {
            Some("the source login is empty")
        } else if secret.is_empty() {
            Some("the password is empty")
        } else if !target.contains('@') {
            Some("the target BAL is not an address")
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.push(format!("{origin}: {problem}"));
            continue;
        }
        let secret = match secret.strip_prefix(TOKEN_PREFIX) {
            Some(path) => Secret::TokenFile(PathBuf::from(path)),
            None => Secret::Password(secret.clone()),
        };
        accounts.push(Account {
            origin,
            login: login.clone(),
            secret,
            target: target.clone(),
        });
    }
    if errors.is_empty() {
        Ok(accounts)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_quotes_and_token_files() {
        let text = "source_login,secret,target_bal\n\
                    # a comment\n\
                    u1@old.fr,pass word,dr.a@ch.mssante.fr\n\
                    \n\
                    \"u2@old.fr\",\"a,\"\"b\"\"\",dr.b@ch.mssante.fr\r\n\
                    u3@old.fr,xoauth2:/etc/tokens/u3,dr.c@ch.mssante.fr\n";
        let accounts = parse("a.csv", text).unwrap();
        assert_eq!(accounts.len(), 3);
        assert_eq!(accounts[0].secret, Secret::Password("pass word".into()));
        assert_eq!(accounts[0].origin, "a.csv line 3");
        assert_eq!(accounts[1].secret, Secret::Password("a,\"b\"".into()));
        assert_eq!(accounts[1].login, "u2@old.fr");
        assert_eq!(
            accounts[2].secret,
            Secret::TokenFile("/etc/tokens/u3".into())
        );
        assert_eq!(format!("{:?}", accounts[0].secret), "Password(…)");
    }

    #[test]
    fn every_bad_line_is_named() {
        let errors = parse(
            "a.csv",
            "u1@old.fr,p,dr.a@ch.fr\nu2@old.fr,p\nu3,\"open,x\n,p,dr@x.fr\nu5,p,nobody\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("a.csv line 2: 2 field(s), expected 3"));
        assert_eq!(errors[1], "a.csv line 3: unclosed double quote");
        assert_eq!(errors[2], "a.csv line 4: the source login is empty");
        assert_eq!(errors[3], "a.csv line 5: the target BAL is not an address");
    }
}
