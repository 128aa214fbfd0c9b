//! Client autoconfiguration: Mozilla's autoconfig XML (Thunderbird and the clients that
//! read it), Apple configuration profiles, and the DNS records that point clients here
//! (RFC 6186, RFC 8314 §5.1).
//!
//! Only the domain of an address is checked (it must be local): whether a BAL exists is
//! not revealed to anonymous callers.

pub mod apple;
pub mod dns;
pub mod thunderbird;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::{ApiContext, Problem};

/// Where Thunderbird looks: `https://<domain>/.well-known/autoconfig/…` and
/// `https://autoconfig.<domain>/mail/config-v1.1.xml`, both with `?emailaddress=`.
pub const WELL_KNOWN_PATH: &str = "/.well-known/autoconfig/mail/config-v1.1.xml";
pub const MAIL_PATH: &str = "/mail/config-v1.1.xml";
/// The Apple profile of one address (`?emailaddress=`).
pub const MOBILECONFIG_PATH: &str = "/mail/mssante.mobileconfig";

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route(WELL_KNOWN_PATH, get(mozilla_config))
        .route(MAIL_PATH, get(mozilla_config))
        .route(MOBILECONFIG_PATH, get(apple_profile))
}

#[derive(Deserialize)]
struct AddressQuery {
    emailaddress: Option<String>,
}

/// The autoconfig document of the address's domain, or of the domain named by the Host
/// header (`autoconfig.<domain>` or `<domain>`) when no address is given.
async fn mozilla_config(
    State(ctx): State<Arc<ApiContext>>,
    query: Result<Query<AddressQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let domain = match query_address(query)? {
        Some(address) => address.domain,
        None => domain_from_host(&headers)?,
    };
    check_local(&ctx, &domain).await?;
    let document = thunderbird::render(&domain, &ctx.settings.public, ctx.settings.oauth2.as_ref())
        .ok_or_else(|| no_client_service(&domain))?;
    Ok((
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        document,
    )
        .into_response())
}

/// A `.mobileconfig` for one address: iOS and macOS Mail set the account up from it.
async fn apple_profile(
    State(ctx): State<Arc<ApiContext>>,
    query: Result<Query<AddressQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let address = query_address(query)?.ok_or_else(|| {
        Problem::bad_request(
            "missing-address",
            "give the mail address: ?emailaddress=name@domain".into(),
        )
    })?;
    check_local(&ctx, &address.domain).await?;
    let profile = apple::render(&address.full, &address.domain, &ctx.settings.public)
        .ok_or_else(|| no_client_service(&address.domain))?;
    let disposition = format!("attachment; filename=\"{}.mobileconfig\"", address.domain);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/x-apple-aspen-config".to_string(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        profile,
    )
        .into_response())
}

/// A mail address split for our use: the whole (as given, trimmed) and its domain,
/// lower-cased.
#[derive(Debug, PartialEq)]
pub struct Address {
    pub full: String,
    pub domain: String,
}

/// `local@domain` with a non-empty local part without control characters and a DNS
/// domain; the local part is kept as given (it may hold any printable UTF-8).
pub fn parse_address(text: &str) -> Option<Address> {
    let text = text.trim();
    let (local, domain) = text.rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let fits = !local.is_empty()
        && text.len() <= 254
        && !local.chars().any(char::is_control)
        && crate::is_dns_name(&domain);
    fits.then(|| Address {
        full: text.to_string(),
        domain,
    })
}

fn query_address(
    query: Result<Query<AddressQuery>, QueryRejection>,
) -> Result<Option<Address>, Problem> {
    let Query(query) =
        query.map_err(|e| Problem::bad_request("bad-query", format!("query string: {e}")))?;
    match query.emailaddress {
        None => Ok(None),
        Some(text) => parse_address(&text).map(Some).ok_or_else(|| {
            Problem::bad_request(
                "bad-address",
                format!("emailaddress: {text:?} is not a mail address"),
            )
        }),
    }
}

/// `autoconfig.ch.fr:443` → `ch.fr`.
fn domain_from_host(headers: &HeaderMap) -> Result<String, Problem> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let name = name.to_ascii_lowercase();
    let domain = name.strip_prefix("autoconfig.").unwrap_or(&name);
    if crate::is_dns_name(domain) {
        Ok(domain.to_string())
    } else {
        Err(Problem::bad_request(
            "missing-address",
            "give the mail address: ?emailaddress=name@domain".into(),
        ))
    }
}

async fn check_local(ctx: &ApiContext, domain: &str) -> Result<(), Problem> {
    match ctx.store.is_local_domain(domain).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-domain",
            "Unknown domain",
            format!("{domain} is not a domain of this server"),
        )),
        Err(e) => Err(Problem::internal(e)),
    }
}

/// Both incoming (or both outgoing) services are off: no document would work.
fn no_client_service(domain: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-client-service",
        "No client service",
        format!("this server offers no IMAP or no submission service for {domain}"),
    )
}

/// Text for XML character data and attribute values (all five markup characters
/// escaped, both quote kinds included).
pub fn xml_escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_at_the_last_at_sign() {
        let a = parse_address(" \"a@b\"@CH-Test.MSSante.fr ").unwrap();
        assert_eq!(a.full, "\"a@b\"@CH-Test.MSSante.fr");
        assert_eq!(a.domain, "ch-test.mssante.fr");
        for bad in ["", "@ch.fr", "dr.martin", "a@bad domain", "a\n@ch.fr", "a@"] {
            assert_eq!(parse_address(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            xml_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }

    #[test]
    fn the_host_header_names_the_domain() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "autoconfig.CH.fr:8443".parse().unwrap());
        assert_eq!(domain_from_host(&h).unwrap(), "ch.fr");
        h.insert(header::HOST, "ch.fr".parse().unwrap());
        assert_eq!(domain_from_host(&h).unwrap(), "ch.fr");
        h.insert(header::HOST, "[::1]:80".parse().unwrap());
        assert!(domain_from_host(&h).is_err());
    }
}
