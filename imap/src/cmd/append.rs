//! APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315 §3),
//! APPENDLIMIT (RFC 7889), CATENATE (RFC 4469, `catenate.rs`).

use mssante_store::MessageMeta;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::datetime::parse_date_time;
use crate::parse::{AppendArgs, compact};
use crate::session::Session;

fn meta_of(raw: &[u8]) -> MessageMeta {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return MessageMeta::default();
    };
    MessageMeta {
        message_id: msg.message_id().map(str::to_string),
        subject: msg.subject().map(str::to_string),
        x_mss_nil: msg.header_raw("X-MSS-NIL").map(|v| v.trim().to_string()),
        ..MessageMeta::default()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn append(
        &mut self,
        tag: &str,
        AppendArgs {
            mailbox,
            mut messages,
        }: AppendArgs,
    ) {
        let Some(name) = self.mailbox_name(&mailbox) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        let bal_id = self.bal.as_ref().expect("authenticated").id;
        let folder = match self.ctx.store.folder(bal_id, &name).await {
            Ok(Some(f)) => f,
            Ok(None) => return self.tagged(tag, "NO", "[TRYCREATE] No such mailbox"),
            Err(e) => return self.store_failed(tag, e),
        };
        // RFC 4469 §5: CATENATE messages are put together (their URLs checked) first.
        for m in messages.iter_mut() {
            if let Some(parts) = m.catenate.take() {
                match self.catenate(&parts).await {
                    Ok(bytes) => m.bytes = bytes,
                    Err(e) => return self.catenate_failed(tag, e),
                }
            }
        }
        // Check every message before storing any (RFC 3502 §6: all or nothing).
        let mut dates = Vec::with_capacity(messages.len());
        for m in &messages {
            if m.bytes.is_empty() {
                return self.tagged(tag, "NO", "Empty message");
            }
            if m.bytes.len() > self.ctx.config.max_literal {
                return self.tagged(tag, "NO", "[TOOBIG] Message too big");
            }
            if m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Recent")) {
                return self.tagged(tag, "BAD", "\\Recent cannot be set");
            }
            match &m.date {
                None => dates.push(mssante_store::now()),
                Some(d) => match parse_date_time(d) {
                    Some(t) => dates.push(t),
                    None => return self.tagged(tag, "BAD", "Invalid date-time"),
                },
            }
        }
        // RFC 9208 §5.2: refuse before storing anything when the quota would be exceeded.
        let total: u64 = messages.iter().map(|m| m.bytes.len() as u64).sum();
        match self.ctx.store.over_quota(bal_id, total).await {
            Ok(true) => return self.tagged(tag, "NO", "[OVERQUOTA] Quota exceeded"),
            Ok(false) => {}
            Err(e) => return self.store_failed(tag, e),
        }
        let mut uids = Vec::new();
        let mut uidvalidity = folder.uidvalidity;
        for (m, date) in messages.into_iter().zip(dates) {
            let meta = meta_of(&m.bytes);
            match self
                .ctx
                .store
                .append(folder.id, m.bytes, &m.flags, date, meta)
                .await
            {
                Ok((v, uid)) => {
                    uidvalidity = v;
                    uids.push(uid);
                }
                Err(e) => return self.store_failed(tag, e),
            }
        }
        self.tagged(
            tag,
            "OK",
            &format!(
                "[APPENDUID {uidvalidity} {}] APPEND completed",
                compact(&uids)
            ),
        );
    }
}
