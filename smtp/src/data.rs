//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), and the hand-over to the store.

use mssante_store::{AuditAction, AuditEvent, Source};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::{Body, DataDecoder};
use crate::reply::{self, Reply};
use crate::session::{BdatMessage, Flow, ReadStop, Session};
use crate::submit::{Envelope, incoming_message};
use crate::trace::{TraceInfo, received_header, trace_id, with_protocol};

fn too_big(limit: usize) -> Reply {
    Reply::new(
        552,
        "5.3.4",
        format!("Message size exceeds fixed limit of {limit} bytes"),
    )
}

fn bare_newline() -> Reply {
    // docs/adr/0003-bare-lf-rejected.md
    Reply::new(
        550,
        "5.6.0",
        "Message refused: bare CR or LF in message body (RFC 5321 §2.3.8)",
    )
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Checks that a transaction with recipients is open; the reply to give otherwise.
    fn ready_for_data(&self) -> Result<(), Reply> {
        match &self.txn {
            None => Err(reply::bad_sequence("Send MAIL FROM first")),
            Some(t) if t.rcpts.is_empty() => Err(Reply::new(554, "5.5.1", "No valid recipients")),
            Some(_) => Ok(()),
        }
    }

    fn trace_header(&self, id: &str) -> Vec<u8> {
        let txn = self.txn.as_ref().expect("transaction open");
        let for_rcpt = match txn.rcpts.as_slice() {
            [only] => Some(only.address.as_str()),
            _ => None,
        };
        let helo = self.helo.as_ref();
        received_header(&TraceInfo {
            helo: helo.map(|h| h.name.as_str()).unwrap_or("unknown"),
            peer: self.peer.ip(),
            hostname: &self.ctx.config.hostname,
            protocol: with_protocol(
                helo.is_some_and(|h| h.extended),
                self.tls,
                self.auth.is_some(),
                txn.smtputf8,
            ),
            id,
            for_rcpt,
            now: mssante_store::now(),
        })
    }

    pub(crate) async fn data(&mut self) -> Flow {
        if let Err(r) = self.ready_for_data() {
            self.reply(r);
            return Flow::Continue;
        }
        if self.txn.as_ref().is_some_and(|t| t.bdat.is_some()) {
            self.reply(reply::bad_sequence("DATA not allowed after BDAT"));
            return Flow::Continue;
        }
        let id = trace_id();
        let header = self.trace_header(&id);
        let limit = self.ctx.config.max_message_size + header.len();
        let mut decoder = DataDecoder::new(limit, header);
        self.reply(Reply::bare(354, "End data with <CR><LF>.<CR><LF>"));
        loop {
            if let Some(end) = decoder.feed(&self.rbuf) {
                self.rbuf.drain(..end);
                break;
            }
            self.rbuf.clear();
            if let Err(stop) = self.fill(false).await {
                tracing::info!(peer = %self.peer, ?stop, "connection lost during DATA; nothing stored");
                return Flow::Close;
            }
        }
        let body = decoder.finish();
        let size = match &body {
            Body::Complete(raw) => raw.len(),
            Body::TooBig | Body::BareNewline => 0,
        };
        let outcome = match body {
            Body::Complete(raw) => self.deliver(raw, &id).await,
            Body::TooBig => too_big(self.ctx.config.max_message_size),
            Body::BareNewline => bare_newline(),
        };
        self.log_transaction(&id, size, &outcome);
        self.txn = None;
        self.reply(outcome);
        Flow::Continue
    }

    /// RFC 3030 §2: the chunk is always read (so the session stays in step), then judged.
    pub(crate) async fn bdat(&mut self, size: u64, last: bool) -> Flow {
        let state = self.ready_for_data();
        let limit = self.ctx.config.max_message_size;
        if state.is_ok() && self.txn.as_ref().is_some_and(|t| t.bdat.is_none()) {
            let id = trace_id();
            let header = self.trace_header(&id);
            self.txn.as_mut().expect("open").bdat = Some(BdatMessage {
                id,
                bytes: header,
                too_big: false,
            });
        }
        let mut remaining = size;
        loop {
            let take = remaining.min(self.rbuf.len() as u64) as usize;
            if take > 0 {
                self.append_chunk(take, limit);
                self.rbuf.drain(..take);
                remaining -= take as u64;
            }
            if remaining == 0 {
                break;
            }
            if let Err(stop) = self.fill(false).await {
                tracing::info!(peer = %self.peer, ?stop, "connection lost during BDAT; nothing stored");
                return Flow::Close;
            }
        }
        if let Err(r) = state {
            self.reply(r);
            return Flow::Continue;
        }
        if !last {
            self.reply(Reply::new(250, "2.0.0", format!("{size} octets received")));
            return Flow::Continue;
        }
        let message = self
            .txn
            .as_mut()
            .and_then(|t| t.bdat.take())
            .expect("bdat open");
        let size = message.bytes.len();
        let outcome = match message.too_big {
            true => too_big(limit),
            false => self.deliver(message.bytes, &message.id).await,
        };
        self.log_transaction(&message.id, size, &outcome);
        self.txn = None;
        self.reply(outcome);
        Flow::Continue
    }

    fn append_chunk(&mut self, n: usize, limit: usize) {
        let Some(msg) = self.txn.as_mut().and_then(|t| t.bdat.as_mut()) else {
            return;
        };
        if msg.too_big || msg.bytes.len() + n > limit {
            msg.too_big = true;
            msg.bytes = Vec::new();
            return;
        }
        msg.bytes.extend_from_slice(&self.rbuf[..n]);
    }

    /// One line per transaction (target `smtp.transaction`), the fields an operator greps
    /// for; never content, and of authentication only the BAL's address.
    fn log_transaction(&self, id: &str, size: usize, reply: &Reply) {
        let txn = self.txn.as_ref().expect("transaction open");
        let from = txn.from.as_ref().map_or(String::new(), |a| a.to_string());
        let peer_dn = match &self.peer_identity {
            Some(Ok(dn)) => dn.to_string(),
            _ => String::new(),
        };
        tracing::info!(
            target: "smtp.transaction",
            queue_id = id,
            listener = self.kind.name(),
            client = %self.peer,
            tls = self.tls,
            peer_dn,
            message_id = txn.message_id.as_deref().unwrap_or(""),
            auth = self.auth.as_ref().map_or("", |b| b.address.as_str()),
            from,
            recipients = txn.rcpts.len(),
            size,
            code = reply.code,
            status = reply.status.as_deref().unwrap_or(""),
            duration_ms = txn.started.elapsed().as_millis() as u64,
            "transaction"
        );
    }

    /// Hands the message to the store; "250" only once it is durable.
    async fn deliver(&mut self, raw: Vec<u8>, id: &str) -> Reply {
        let txn = self.txn.as_ref().expect("transaction open");
        // ADR 0016: a delegate sending as the BAL is named in Sender: (RFC 5322 §3.6.2).
        let on_behalf = match (&self.auth, &txn.from) {
            (Some(auth), Some(from)) if auth.address.as_str() != from.as_str() => {
                Some((auth.address.to_string(), from.to_string()))
            }
            _ => None,
        };
        let raw = match &on_behalf {
            Some((delegate, _)) => crate::submit::with_sender(raw, delegate),
            None => raw,
        };
        let incoming = incoming_message(
            raw,
            Envelope {
                from: txn.from.as_ref(),
                envid: txn.envid.clone(),
                ret: txn.ret,
                source: if self.kind.requires_auth() {
                    Source::Submission
                } else {
                    Source::Mx
                },
                auth_bal_id: self.auth.as_ref().map(|b| b.id),
                recipients: txn.rcpts.clone(),
            },
        );
        if let Some(txn) = self.txn.as_mut() {
            txn.message_id = incoming.meta.message_id.clone();
        }
        match self.ctx.store.deliver(incoming).await {
            Ok(receipt) => {
                tracing::debug!(
                    peer = %self.peer, id, db_id = receipt.message_id,
                    local = receipt.delivered_local, queued = receipt.queued_remote, "message accepted"
                );
                if let Some((delegate, bal)) = &on_behalf {
                    self.audit_send(delegate, bal, id).await;
                }
                Reply::new(250, "2.0.0", format!("OK queued as {id}"))
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, id, "storing message failed: {e}");
                reply::store_error(&e)
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// The delegated BAL's audit trail records the send (never the content).
    async fn audit_send(&self, delegate: &str, bal: &str, id: &str) {
        let Ok(Some(bal)) = self.ctx.store.find_bal(bal).await else {
            return;
        };
        let mut event = AuditEvent::new(bal.id, delegate, AuditAction::Send);
        event.message_ids = vec![id.to_string()];
        event.client = self.peer.to_string();
        if let Err(e) = self.ctx.store.record_audit(&event).await {
            tracing::error!(peer = %self.peer, id, "audit trail write failed: {e}");
        }
    }
}

impl From<ReadStop> for Flow {
    fn from(_: ReadStop) -> Flow {
        Flow::Close
    }
}
