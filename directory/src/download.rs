//! Fetching the extraction over HTTPS (rustls with the ring provider): streamed to a temp file
//! chunk by chunk, never held in memory, then read like a local file.

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Downloads `url` into a temp file removed when the returned handle is dropped.
pub async fn download_to_temp(url: &str) -> anyhow::Result<tempfile::TempPath> {
    let response = http_client()?
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    if !response.status().is_success() {
        bail!("fetching {url} answered {}", response.status());
    }
    let temp = tempfile::NamedTempFile::new()?.into_temp_path();
    let mut file = tokio::fs::File::create(&temp).await?;
    let mut body = response.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.with_context(|| format!("download of {url} interrupted after {bytes} bytes"))?;
        bytes += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    tracing::info!(url, bytes, "extraction downloaded");
    Ok(temp)
}

/// One client configuration for every HTTP use of the crate: rustls (ring) with the Mozilla
/// roots, and timeouts so that a stalled server cannot hang an import or the outbox.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .read_timeout(std::time::Duration::from_secs(120))
        .user_agent(concat!("mssante/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
