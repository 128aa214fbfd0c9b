//! The HTTP client for the issuer: discovery, JWKS, introspection.

use std::path::Path;
use std::time::Duration;

use crate::config::is_loopback;

/// Discovery documents and key sets are a few KB; anything much larger is not what we asked.
pub(crate) const MAX_DOCUMENT: usize = 1024 * 1024;

/// rustls (ring) with the Mozilla roots plus `ca_file` when given; no redirects (an issuer
/// serves its documents where it says), and no proxy for a loopback issuer (tests).
pub(crate) fn client(
    ca_file: Option<&Path>,
    timeout: Duration,
    urls: &[&reqwest::Url],
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mssante-auth/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("psc.ca_file: cannot read {}: {e}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("psc.ca_file: {}: {e}", path.display()))?;
        if roots.is_empty() {
            return Err(format!(
                "psc.ca_file: {} holds no certificate",
                path.display()
            ));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    if !urls.is_empty() && urls.iter().all(|url| is_loopback(url)) {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// Sends `request` and returns the body of a 2xx answer, at most [`MAX_DOCUMENT`] bytes.
pub(crate) async fn fetch(request: reqwest::RequestBuilder) -> Result<Vec<u8>, String> {
    let mut response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("answer larger than {MAX_DOCUMENT} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's top-level message is "error sending request": the cause is in the sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
