//! CATENATE (RFC 4469): APPEND of a message put together from literal text and (parts of)
//! messages the BAL already holds, named by IMAP URLs (RFC 5092). The URL grammar is in
//! `parse/catenate.rs`; here each URL is looked up.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::mailbox_names::normalise_inbox;
use crate::message::{extract, parse_section, partial};
use crate::parse::{CatPart, ImapUrl, parse_imap_url};
use crate::session::Session;

/// Why a CATENATE could not be put together.
pub(crate) enum CatenateError {
    /// RFC 4469 §6: `NO [BADURL url]`: invalid, or naming nothing we can read.
    BadUrl(String),
    TooBig,
    Store(mssante_store::StoreError),
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// The bytes a URL names, `None` when it names nothing this BAL can read.
    async fn url_bytes(&mut self, url: &ImapUrl) -> mssante_store::Result<Option<Vec<u8>>> {
        let bal_id = self.bal.as_ref().expect("authenticated").id;
        let name = normalise_inbox(&url.mailbox);
        let Some(folder) = self.ctx.store.folder(bal_id, &name).await? else {
            return Ok(None);
        };
        if url.uidvalidity.is_some_and(|v| v != folder.uidvalidity) {
            return Ok(None);
        }
        let infos = self.ctx.store.message_infos(folder.id, &[url.uid]).await?;
        let Some(info) = infos.into_iter().find(|i| i.uid == url.uid) else {
            return Ok(None);
        };
        let raw = self.ctx.store.read_blob(&info.blob_hash).await?;
        let bytes = match &url.section {
            None => raw,
            Some(spec) => match parse_section(spec) {
                Some(section) => extract(&raw, &section),
                None => return Ok(None),
            },
        };
        Ok(Some(match url.partial {
            Some((start, len)) => partial(&bytes, start, len).to_vec(),
            None => bytes,
        }))
    }

    /// The message made of `parts`, in order (RFC 4469 §5).
    pub(crate) async fn catenate(&mut self, parts: &[CatPart]) -> Result<Vec<u8>, CatenateError> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(bytes) => out.extend_from_slice(bytes),
                CatPart::Url(text) => {
                    let bad = || CatenateError::BadUrl(text.clone());
                    let url = parse_imap_url(text).ok_or_else(bad)?;
                    match self.url_bytes(&url).await {
                        Ok(Some(bytes)) => out.extend(bytes),
                        Ok(None) => return Err(bad()),
                        Err(e) => return Err(CatenateError::Store(e)),
                    }
                }
            }
            if out.len() > self.ctx.config.max_literal {
                return Err(CatenateError::TooBig);
            }
        }
        Ok(out)
    }

    pub(crate) fn catenate_failed(&mut self, tag: &str, e: CatenateError) {
        match e {
            CatenateError::BadUrl(url) => {
                // RFC 4469 §6: url-resp-text has no ']' (nor CR, LF).
                let shown: String = url
                    .chars()
                    .filter(|c| !matches!(c, ']' | '\r' | '\n'))
                    .collect();
                self.tagged(tag, "NO", &format!("[BADURL {shown}] CATENATE URL refused"))
            }
            CatenateError::TooBig => self.tagged(tag, "NO", "[TOOBIG] Message too big"),
            CatenateError::Store(e) => self.store_failed(tag, e),
        }
    }
}
