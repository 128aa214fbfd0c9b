//! Mozilla's autoconfig document, `clientConfig` version 1.1, as Thunderbird reads it
//! (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat).

use std::fmt::Write;

use super::xml_escape;
use crate::{Advertised, Endpoint, OAuth2Hints};

/// Thunderbird's names for the two ways of starting TLS.
const IMPLICIT_TLS: &str = "SSL";
const STARTTLS: &str = "STARTTLS";

/// The document for `domain`; `None` when no incoming or no outgoing service is
/// advertised (Thunderbird needs one of each).
///
/// Implicit TLS is listed before STARTTLS (RFC 8314 §3: implicit TLS is preferred) and
/// Thunderbird takes the first server of each kind. It also takes the first
/// authentication method it knows: password-cleartext comes first because Thunderbird
/// only runs OAuth2 for issuers it has been taught (Pro Santé Connect is not among its
/// built-in providers); OAuth2 follows for the clients that can use it.
pub fn render(domain: &str, public: &Advertised, oauth2: Option<&OAuth2Hints>) -> Option<String> {
    let incoming = servers(&public.imaps, &public.imap);
    let outgoing = servers(&public.submissions, &public.submission);
    if incoming.is_empty() || outgoing.is_empty() {
        return None;
    }
    let domain = xml_escape(domain);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str("<clientConfig version=\"1.1\">\n");
    let _ = writeln!(xml, "  <emailProvider id=\"{domain}\">");
    let _ = writeln!(xml, "    <domain>{domain}</domain>");
    let _ = writeln!(xml, "    <displayName>MSSanté {domain}</displayName>");
    let _ = writeln!(xml, "    <displayShortName>{domain}</displayShortName>");
    for (endpoint, socket) in incoming {
        server(&mut xml, "incomingServer", "imap", endpoint, socket, oauth2);
    }
    for (endpoint, socket) in outgoing {
        server(&mut xml, "outgoingServer", "smtp", endpoint, socket, oauth2);
    }
    if let Some(hints) = oauth2 {
        xml.push_str("    <oAuth2>\n");
        let _ = writeln!(xml, "      <issuer>{}</issuer>", xml_escape(&hints.issuer));
        let _ = writeln!(xml, "      <scope>{}</scope>", xml_escape(&hints.scope));
        let _ = writeln!(
            xml,
            "      <authURL>{}</authURL>",
            xml_escape(&hints.auth_url)
        );
        let _ = writeln!(
            xml,
            "      <tokenURL>{}</tokenURL>",
            xml_escape(&hints.token_url)
        );
        xml.push_str("    </oAuth2>\n");
    }
    xml.push_str("  </emailProvider>\n</clientConfig>\n");
    Some(xml)
}

/// The advertised servers of one kind, implicit TLS first.
fn servers<'a>(
    implicit: &'a Option<Endpoint>,
    starttls: &'a Option<Endpoint>,
) -> Vec<(&'a Endpoint, &'static str)> {
    let implicit = implicit.as_ref().map(|e| (e, IMPLICIT_TLS));
    let starttls = starttls.as_ref().map(|e| (e, STARTTLS));
    implicit.into_iter().chain(starttls).collect()
}

fn server(
    xml: &mut String,
    element: &str,
    kind: &str,
    endpoint: &Endpoint,
    socket: &str,
    oauth2: Option<&OAuth2Hints>,
) {
    let _ = writeln!(xml, "    <{element} type=\"{kind}\">");
    let _ = writeln!(
        xml,
        "      <hostname>{}</hostname>",
        xml_escape(&endpoint.host)
    );
    let _ = writeln!(xml, "      <port>{}</port>", endpoint.port);
    let _ = writeln!(xml, "      <socketType>{socket}</socketType>");
    xml.push_str("      <username>%EMAILADDRESS%</username>\n");
    xml.push_str("      <authentication>password-cleartext</authentication>\n");
    if oauth2.is_some() {
        xml.push_str("      <authentication>OAuth2</authentication>\n");
    }
    let _ = writeln!(xml, "    </{element}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> Advertised {
        let at = |port| {
            Some(Endpoint {
                host: "mail.ch.fr".into(),
                port,
            })
        };
        Advertised {
            imap: at(143),
            imaps: at(993),
            submission: at(587),
            submissions: None,
            ..Default::default()
        }
    }

    #[test]
    fn implicit_tls_comes_first_and_oauth2_only_with_hints() {
        let xml = render("ch.fr", &public(), None).unwrap();
        let imaps = xml.find("<port>993</port>").unwrap();
        let imap = xml.find("<port>143</port>").unwrap();
        assert!(imaps < imap, "{xml}");
        assert!(xml.contains("<port>587</port>\n      <socketType>STARTTLS</socketType>"));
        assert!(!xml.contains("OAuth2") && !xml.contains("oAuth2"), "{xml}");
        let hints = OAuth2Hints {
            issuer: "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet".into(),
            scope: "openid scope_all".into(),
            auth_url: "https://a.fr/auth?x=1&y=2".into(),
            token_url: "https://a.fr/token".into(),
        };
        let xml = render("ch.fr", &public(), Some(&hints)).unwrap();
        assert_eq!(
            xml.matches("<authentication>OAuth2</authentication>")
                .count(),
            3
        );
        assert!(
            xml.contains("<authURL>https://a.fr/auth?x=1&amp;y=2</authURL>"),
            "{xml}"
        );
    }

    #[test]
    fn nothing_without_an_outgoing_server() {
        let mut p = public();
        p.submission = None;
        assert_eq!(render("ch.fr", &p, None), None);
    }
}
