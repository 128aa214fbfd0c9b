//! Unit tests of the configuration: defaults, the shipped example, checks that name the key,
//! relative paths and listeners turned off.

use super::*;

fn parse(text: &str) -> Result<Config> {
    Config::from_raw(toml::from_str(text).map_err(|e| anyhow!("{e}"))?)
}

#[test]
fn defaults_are_the_embedded_ones() {
    let c = parse("").unwrap();
    assert_eq!(c.hostname, "localhost");
    assert_eq!(c.database_url, "sqlite://./data/mssante.db");
    assert_eq!(c.listen.smtp, Some("127.0.0.1:2525".parse().unwrap()));
    assert_eq!(c.listen.submission, Some("127.0.0.1:5587".parse().unwrap()));
    assert_eq!(
        c.listen.submissions,
        Some("127.0.0.1:5465".parse().unwrap())
    );
    assert_eq!(c.smtp.max_message_size, 50 * 1024 * 1024);
    let imap = mssante_imap::ImapConfig::default();
    assert_eq!(c.imap.max_literal, imap.max_literal);
    assert_eq!(c.imap.autologout, imap.autologout);
}

#[test]
fn the_example_is_valid_and_complete() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.hostname, "mail.example.mssante.fr");
    assert!(
        c.tls.is_none(),
        "the example leaves TLS on the self-signed default"
    );
    // The example writes the defaults out: it must agree with them.
    let (example, default) = (c.relay.unwrap(), mssante_relay::RelayConfig::default());
    assert_eq!(example.retry_schedule, default.retry_schedule);
    assert_eq!(example.give_up_after, default.give_up_after);
    assert_eq!(example.delay_notify_after, default.delay_notify_after);
    assert_eq!(example.port, 25);
    assert!(c.trust.enforce && example.enforce_trust);
    let imap = mssante_imap::ImapConfig::default();
    assert_eq!(
        (c.imap.max_literal, c.imap.max_line, c.imap.autologout),
        (imap.max_literal, imap.max_line, imap.autologout)
    );
    assert_eq!(c.imap.max_connections, imap.max_connections);
    assert_eq!(c.imap.idle_report_delay, imap.idle_report_delay);
}

#[test]
fn relay_settings_are_checked_and_can_be_turned_off() {
    let c = parse("[relay]\nenabled = false").unwrap();
    assert!(c.relay.is_none());
    let c =
        parse("[trust]\nenforce = false\n[relay]\nport = 2525\nnameserver = \"127.0.0.1:5353\"")
            .unwrap();
    let relay = c.relay.unwrap();
    assert_eq!((relay.port, relay.enforce_trust), (2525, false));
    assert_eq!(relay.nameserver, Some("127.0.0.1:5353".parse().unwrap()));
    for (text, key) in [
        (
            "[relay]\nretry_schedule_secs = []",
            "relay.retry_schedule_secs",
        ),
        ("[relay]\nnameserver = \"dns.example\"", "relay.nameserver"),
        (
            "[relay]\nmax_per_destination = 0",
            "relay.max_per_destination",
        ),
        ("[trust]\nenforce = \"yes\"", "enforce"),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text:?} gave {err:?}");
    }
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("[listen]\nsmtp = \"nonsense\"", "listen.smtp"),
        ("database_url = \"mysql://x\"", "database_url"),
        ("hostname = \"bad host\"", "hostname"),
        ("[tls]\ncert = \"/x.pem\"", "tls.key"),
        ("[smtp]\nmax_recipients = 5", "smtp.max_recipients"),
        ("[imap]\nautologout_secs = 60", "imap.autologout_secs"),
        ("[imap]\nmax_line = 100", "imap.max_line"),
        (
            "[imap]\nidle_report_delay_ms = 60000",
            "imap.idle_report_delay_ms",
        ),
        ("unknown_key = 1", "unknown_key"),
        ("[listen]\nsmtp = 25", "smtp"),
        ("[listen]\nhttps = \"443\"", "listen.https"),
        ("[public]\nimap = \"imap.ch.fr:0\"", "public.imap"),
        (
            "[public.oauth2]\nissuer = \"https://a\"\nscope = \"openid\"\nauth_url = \"http://a/auth\"\ntoken_url = \"https://a/t\"",
            "public.oauth2.auth_url",
        ),
        ("[public.oauth2]\nissuer = \"https://a\"", "scope"),
        ("[log]\nlevel = \"verbose\"", "log.level"),
        ("[log]\nformat = \"xml\"", "log.format"),
    ];
    for (text, key) in cases {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text:?} gave {err:?}");
    }
}

#[test]
fn clients_are_told_the_hostname_and_listener_ports_by_default() {
    let c = parse("hostname = \"mail.ch.fr\"\n[listen]\nimaps = \"off\"").unwrap();
    let endpoint = |port| {
        Some(mssante_api_lps::Endpoint {
            host: "mail.ch.fr".into(),
            port,
        })
    };
    assert_eq!(c.public.imap, endpoint(1143));
    assert_eq!(c.public.submissions, endpoint(5465));
    assert_eq!(c.public.imaps, None, "a closed listener is not advertised");
    assert_eq!(c.public.autoconfig.as_deref(), Some("mail.ch.fr"));
    assert!(c.listen.https.is_none() && c.oauth2.is_none());
}

#[test]
fn the_oauth2_hints_name_an_issuer_psc_accepts() {
    let hints = "[public.oauth2]\nissuer = \"https://psc.test/realm\"\nscope = \"openid scope_all\"\n\
                 auth_url = \"https://psc.test/auth\"\ntoken_url = \"https://psc.test/token\"\n";
    let psc = |issuer: &str| {
        format!("[psc]\ndiscovery_url = \"https://psc.test/d\"\nissuers = [\"{issuer}\"]\n")
    };
    assert!(parse(&format!("{hints}{}", psc("https://psc.test/realm"))).is_ok());
    let err = parse(&format!("{hints}{}", psc("https://other.test/realm")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("public.oauth2.issuer"), "{err}");
    assert!(
        parse(hints).is_ok(),
        "without [psc] nothing to compare with"
    );
}

#[test]
fn relative_paths_are_taken_from_the_configuration_folder() {
    let raw: RawConfig = toml::from_str(
        "data_dir = \"./var/data\"\ndatabase_url = \"sqlite:db/x.db?mode=rwc\"\n\
         [tls]\ncert = \"tls/c.pem\"\nkey = \"/etc/k.pem\"\n\
         [trust]\nca_file = \"roots.pem\"\nwhitelist = \"https://x/l.xml\"\nchecksum = \"sum\"\n\
         [directory]\nextraction = \"e.zip\"",
    )
    .unwrap();
    let c = Config::from_raw(raw.resolve_paths(Path::new("/etc/mssante"))).unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/mssante/var/data"));
    assert_eq!(c.database_url, "sqlite:///etc/mssante/db/x.db?mode=rwc");
    let (cert, key) = c.tls.unwrap();
    assert_eq!(
        (cert.as_path(), key.as_path()),
        (Path::new("/etc/mssante/tls/c.pem"), Path::new("/etc/k.pem"))
    );
    assert_eq!(
        c.trust.ca_file.unwrap(),
        Path::new("/etc/mssante/roots.pem")
    );
    assert_eq!(c.trust.whitelist.as_deref(), Some("https://x/l.xml"));
    assert_eq!(c.trust.checksum.as_deref(), Some("/etc/mssante/sum"));
    assert_eq!(
        c.directory.extraction.as_deref(),
        Some("/etc/mssante/e.zip")
    );
    // The default database follows the resolved data dir.
    let c = Config::from_raw(RawConfig::default().resolve_paths(Path::new("/srv"))).unwrap();
    assert_eq!(c.database_url, "sqlite:///srv/data/mssante.db");
    assert_eq!(
        resolve_sqlite_url(Path::new("/srv"), "postgres://u:p@h/db"),
        "postgres://u:p@h/db"
    );
}

#[test]
fn listeners_can_be_turned_off() {
    let c = parse("[listen]\nsubmissions = \"off\"\nimap = \"\"").unwrap();
    assert!(c.listen.submissions.is_none() && c.listen.imap.is_none());
}

#[test]
fn the_idle_report_delay_is_read_in_milliseconds() {
    let c = parse("[imap]\nidle_report_delay_ms = 0").unwrap();
    assert_eq!(c.imap.idle_report_delay, std::time::Duration::ZERO);
    let c = parse("[imap]\nidle_report_delay_ms = 500").unwrap();
    assert_eq!(
        c.imap.idle_report_delay,
        std::time::Duration::from_millis(500)
    );
}
