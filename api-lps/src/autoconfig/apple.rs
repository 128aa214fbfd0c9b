//! Apple configuration profile (`.mobileconfig`) with one `com.apple.mail.managed` payload:
//! an IMAP account and its SMTP server, for iOS and macOS Mail.
//!
//! The profile is unsigned (the device shows it as "not verified"); Apple Mail logs in with
//! the password, as it has no way to use a third-party OAuth2 issuer from a profile.

use sha2::{Digest, Sha256};

use super::xml_escape;
use crate::{Advertised, Endpoint};

/// The profile for `address`; `None` when no IMAP or no submission service is advertised.
///
/// Implicit TLS (imaps, submissions) is preferred when advertised. `UseSSL` is always true:
/// on a port other than the implicit-TLS one Apple Mail starts TLS with STARTTLS, and a
/// password never travels in clear.
pub fn render(address: &str, domain: &str, public: &Advertised) -> Option<String> {
    let incoming = public.imaps.as_ref().or(public.imap.as_ref())?;
    let outgoing = public.submissions.as_ref().or(public.submission.as_ref())?;
    let account_uuid = stable_uuid("account", address);
    let profile_uuid = stable_uuid("profile", address);
    // Reverse-DNS identifiers: a profile installed again for the same address replaces
    // the first one instead of adding a second account.
    let reverse: String = domain.split('.').rev().collect::<Vec<_>>().join(".");
    let address = xml_escape(address);
    let domain = xml_escape(domain);
    let mut account = vec![
        entry(
            "EmailAccountDescription",
            string(&format!("MSSanté {domain}")),
        ),
        entry("EmailAccountName", string(&address)),
        entry("EmailAccountType", string("EmailTypeIMAP")),
        entry("EmailAddress", string(&address)),
    ];
    account.extend(server("Incoming", incoming, &address));
    account.extend(server("Outgoing", outgoing, &address));
    account.extend([
        entry("OutgoingPasswordSameAsIncomingPassword", "<true/>".into()),
        entry("PayloadDisplayName", string(&format!("MSSanté {address}"))),
        entry(
            "PayloadIdentifier",
            string(&format!("{reverse}.mssante.mail.{account_uuid}")),
        ),
        entry("PayloadType", string("com.apple.mail.managed")),
        entry("PayloadUUID", string(&account_uuid)),
        entry("PayloadVersion", "<integer>1</integer>".into()),
        entry("SMIMEEnabled", "<false/>".into()),
    ]);
    let profile = [
        entry(
            "PayloadContent",
            format!("<array>\n<dict>\n{}</dict>\n</array>", account.concat()),
        ),
        entry(
            "PayloadDescription",
            string(&format!("Compte de messagerie MSSanté {address}")),
        ),
        entry("PayloadDisplayName", string(&format!("MSSanté {domain}"))),
        entry(
            "PayloadIdentifier",
            string(&format!("{reverse}.mssante.{profile_uuid}")),
        ),
        entry("PayloadRemovalDisallowed", "<false/>".into()),
        entry("PayloadType", string("Configuration")),
        entry("PayloadUUID", string(&profile_uuid)),
        entry("PayloadVersion", "<integer>1</integer>".into()),
    ];
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n{}</dict>\n</plist>\n",
        profile.concat()
    ))
}

/// The keys of one server; `side` is `Incoming` or `Outgoing`. `address` is escaped.
/// No password is put in the profile: the device asks for it at install.
fn server(side: &str, endpoint: &Endpoint, address: &str) -> [String; 5] {
    [
        entry(
            &format!("{side}MailServerAuthentication"),
            string("EmailAuthPassword"),
        ),
        entry(
            &format!("{side}MailServerHostName"),
            string(&xml_escape(&endpoint.host)),
        ),
        entry(
            &format!("{side}MailServerPortNumber"),
            format!("<integer>{}</integer>", endpoint.port),
        ),
        entry(&format!("{side}MailServerUseSSL"), "<true/>".into()),
        entry(&format!("{side}MailServerUsername"), string(address)),
    ]
}

fn entry(key: &str, value: String) -> String {
    format!("<key>{key}</key>\n{value}\n")
}

/// `text` must already be escaped.
fn string(text: &str) -> String {
    format!("<string>{text}</string>")
}

/// A UUID that is the same every time for one (purpose, address): RFC 9562 version 8
/// (custom) over SHA-256.
fn stable_uuid(purpose: &str, address: &str) -> String {
    let digest = Sha256::digest(format!("mssante mobileconfig {purpose} {address}").as_bytes());
    let mut b: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let h = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_per_address_and_well_formed() {
        let a = stable_uuid("account", "dr@ch.fr");
        assert_eq!(a, stable_uuid("account", "dr@ch.fr"));
        assert_ne!(a, stable_uuid("account", "other@ch.fr"));
        assert_ne!(a, stable_uuid("profile", "dr@ch.fr"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
    }

    #[test]
    fn prefers_implicit_tls_and_escapes_the_address() {
        let at = |port| {
            Some(Endpoint {
                host: "mail.ch.fr".into(),
                port,
            })
        };
        let public = Advertised {
            imap: at(143),
            imaps: at(993),
            submission: at(587),
            ..Default::default()
        };
        let plist = render("a&b@ch.fr", "ch.fr", &public).unwrap();
        assert!(
            plist.contains("<integer>993</integer>") && plist.contains("<integer>587</integer>")
        );
        assert!(!plist.contains("<integer>143</integer>"));
        assert!(plist.contains("<string>a&amp;b@ch.fr</string>") && !plist.contains("a&b"));
        assert!(plist.contains("fr.ch.mssante.mail."));
    }
}
