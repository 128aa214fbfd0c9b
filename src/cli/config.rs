//! `mssante config …`: the example file, and the check of the configuration in force, printed
//! as TOML with the keys of the file and every secret replaced by `***`.

use anyhow::Result;
use clap::Subcommand;
use toml::{Table, Value};

use crate::config::{Config, EXAMPLE};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Prints a complete, commented configuration.
    Example,
    /// Checks the configuration (and the files it names) and prints the values in force, as
    /// TOML, secrets hidden.
    Check,
}

pub fn example() -> Result<()> {
    print!("{EXAMPLE}");
    Ok(())
}

pub fn run(cmd: ConfigCommand, config: &Config) -> Result<()> {
    match cmd {
        ConfigCommand::Example => example(),
        ConfigCommand::Check => {
            config.check_files()?;
            let source = match &config.file {
                Some(p) => format!("{}", p.display()),
                None => "no file: the embedded defaults".into(),
            };
            println!("# mssante configuration in force ({source}); secrets shown as ***");
            print!("{}", in_force(config)?);
            Ok(())
        }
    }
}

/// Keys whose values are secrets, wherever they appear.
const SECRET_KEYS: [&str; 5] = [
    "password",
    "bind_password",
    "api_key",
    "secret",
    "client_secret",
];

/// The configuration as a TOML file of the same keys, every value explicit, secrets hidden.
fn in_force(config: &Config) -> Result<String> {
    let mut root = Table::new();
    root.insert("hostname".into(), config.hostname.clone().into());
    root.insert("data_dir".into(), path(&config.data_dir));
    root.insert(
        "database_url".into(),
        crate::serve::redact(&config.database_url).into(),
    );
    root.insert("listen".into(), listen(config).into());
    root.insert("public".into(), public(config).into());
    let mut tls = Table::new();
    if let Some((cert, key)) = &config.tls {
        tls.insert("cert".into(), path(cert));
        tls.insert("key".into(), path(key));
    }
    root.insert("tls".into(), tls.into());
    root.insert("smtp".into(), smtp(config).into());
    root.insert("imap".into(), imap(config).into());
    root.insert("login".into(), login(config).into());
    root.insert(
        "log".into(),
        Table::from_iter([
            ("level".to_string(), config.log_level.clone().into()),
            (
                "format".to_string(),
                match config.log_format {
                    crate::config::LogFormat::Text => "text",
                    crate::config::LogFormat::Json => "json",
                }
                .into(),
            ),
        ])
        .into(),
    );
    root.insert("trust".into(), Value::try_from(&config.trust)?);
    root.insert("relay".into(), relay(config).into());
    root.insert("psc".into(), Value::try_from(&config.psc)?);
    root.insert("api".into(), Value::try_from(&config.api)?);
    root.insert("directory".into(), Value::try_from(&config.directory)?);
    root.insert("retention".into(), Value::try_from(&config.retention)?);
    hide_secrets(&mut root);
    Ok(toml::to_string(&root)?)
}

fn path(p: &std::path::Path) -> Value {
    p.display().to_string().into()
}

fn secs(d: std::time::Duration) -> Value {
    (d.as_secs() as i64).into()
}

fn listen(config: &Config) -> Table {
    config
        .listen
        .named()
        .into_iter()
        .map(|(key, addr)| {
            let value = addr.map_or_else(|| "off".to_string(), |a| a.to_string());
            (key.to_string(), value.into())
        })
        .collect()
}

/// `[public]`: what clients and peers are told, each service as `HOST:PORT` (the MX and the
/// autoconfig host as `HOST`) or `"off"`.
fn public(config: &Config) -> Table {
    let p = &config.public;
    let off = || "off".to_string();
    let endpoint = |e: &Option<mssante_api_lps::Endpoint>| {
        e.as_ref()
            .map_or_else(off, |e| format!("{}:{}", e.host, e.port))
    };
    let mut t = Table::from_iter([
        (
            "mx".to_string(),
            p.mx.as_ref().map_or_else(off, |e| e.host.clone()).into(),
        ),
        ("submission".into(), endpoint(&p.submission).into()),
        ("submissions".into(), endpoint(&p.submissions).into()),
        ("imap".into(), endpoint(&p.imap).into()),
        ("imaps".into(), endpoint(&p.imaps).into()),
        (
            "autoconfig".into(),
            p.autoconfig.clone().unwrap_or_else(off).into(),
        ),
    ]);
    if let Some(o) = &config.oauth2 {
        let hints = Table::from_iter([
            ("issuer".to_string(), o.issuer.clone().into()),
            ("scope".into(), o.scope.clone().into()),
            ("auth_url".into(), o.auth_url.clone().into()),
            ("token_url".into(), o.token_url.clone().into()),
        ]);
        t.insert("oauth2".into(), hints.into());
    }
    t
}

fn smtp(config: &Config) -> Table {
    let s = &config.smtp;
    Table::from_iter([
        (
            "max_message_size".into(),
            (s.max_message_size as i64).into(),
        ),
        ("max_recipients".into(), (s.max_recipients as i64).into()),
        ("max_errors".into(), i64::from(s.max_errors).into()),
        ("max_connections".into(), (s.max_connections as i64).into()),
        (
            "max_connections_per_address".into(),
            (s.max_connections_per_address as i64).into(),
        ),
        ("command_timeout_secs".into(), secs(s.command_timeout)),
        ("data_timeout_secs".into(), secs(s.data_timeout)),
    ])
}

fn imap(config: &Config) -> Table {
    let i = &config.imap;
    Table::from_iter([
        ("max_literal".into(), (i.max_literal as i64).into()),
        ("max_line".into(), (i.max_line as i64).into()),
        ("autologout_secs".into(), secs(i.autologout)),
        ("line_timeout_secs".into(), secs(i.line_timeout)),
        ("max_connections".into(), (i.max_connections as i64).into()),
        (
            "max_connections_per_address".into(),
            (i.max_connections_per_address as i64).into(),
        ),
        (
            "idle_report_delay_ms".into(),
            (i.idle_report_delay.as_millis() as i64).into(),
        ),
    ])
}

fn login(config: &Config) -> Table {
    let l = &config.login;
    let millis = |d: std::time::Duration| Value::from(d.as_millis() as i64);
    Table::from_iter([
        ("slow_after".to_string(), i64::from(l.slow_after).into()),
        ("first_delay_ms".into(), millis(l.first_delay)),
        ("max_delay_ms".into(), millis(l.max_delay)),
        (
            "lock_account_after".into(),
            i64::from(l.lock_account_after).into(),
        ),
        (
            "lock_address_after".into(),
            i64::from(l.lock_address_after).into(),
        ),
        ("window_secs".into(), secs(l.window)),
        ("lock_secs".into(), secs(l.lock_for)),
    ])
}

fn relay(config: &Config) -> Table {
    let Some(r) = &config.relay else {
        return Table::from_iter([("enabled".to_string(), false.into())]);
    };
    let mut t = Table::from_iter([
        ("enabled".to_string(), true.into()),
        ("port".into(), i64::from(r.port).into()),
        (
            "retry_schedule_secs".into(),
            Value::Array(r.retry_schedule.iter().map(|d| secs(*d)).collect()),
        ),
        ("give_up_after_secs".into(), secs(r.give_up_after)),
        ("delay_notify_after_secs".into(), secs(r.delay_notify_after)),
        (
            "max_per_destination".into(),
            (r.max_per_destination as i64).into(),
        ),
        ("max_in_flight".into(), (r.max_in_flight as i64).into()),
        ("lease_secs".into(), secs(r.lease)),
        (
            "poll_interval_ms".into(),
            (r.poll_interval.as_millis() as i64).into(),
        ),
    ]);
    if let Some(ns) = r.nameserver {
        t.insert("nameserver".into(), ns.to_string().into());
    }
    t
}

/// Replaces the value of every secret key, at any depth, by `***`.
fn hide_secrets(table: &mut Table) {
    for (key, value) in table.iter_mut() {
        match value {
            Value::Table(inner) => hide_secrets(inner),
            Value::String(_) if SECRET_KEYS.contains(&key.as_str()) => {
                *value = "***".into();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key path of `example` that `rendered` lacks.
    fn missing_keys(example: &Table, rendered: &Table, prefix: &str) -> Vec<String> {
        let mut missing = Vec::new();
        for (key, value) in example {
            let path = format!("{prefix}{key}");
            match (value, rendered.get(key)) {
                (Value::Table(e), Some(Value::Table(r))) => {
                    missing.extend(missing_keys(e, r, &format!("{path}.")))
                }
                (_, None) => missing.push(path),
                _ => {}
            }
        }
        missing
    }

    #[test]
    fn the_check_prints_every_key_of_the_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let rendered: Table = toml::from_str(&in_force(&config).unwrap()).unwrap();
        let example: Table = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(missing_keys(&example, &rendered, ""), Vec::<String>::new());
    }

    #[test]
    fn secrets_are_hidden_at_any_depth() {
        let mut t: Table = toml::from_str(
            "a = 1\n[x]\napi_key = \"k1\"\n[x.y]\nbind_password = \"p1\"\nbind_dn = \"cn=a\"",
        )
        .unwrap();
        hide_secrets(&mut t);
        let text = toml::to_string(&t).unwrap();
        assert!(!text.contains("k1") && !text.contains("p1"), "{text}");
        assert!(
            text.contains("cn=a") && text.matches("***").count() == 2,
            "{text}"
        );
    }
}
