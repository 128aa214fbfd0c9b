//! FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2; BINARY RFC 3516; CONDSTORE RFC 7162
//! §3.1.4; QRESYNC VANISHED RFC 7162 §3.2.6). Responses are streamed message by message:
//! a whole mailbox is never held in memory.

use mssante_store::{FlagOp, MessageInfo};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::datetime::format_internaldate;
use crate::message::encode::{write_literal, write_literal8, write_nstring};
use crate::message::preview::preview;
use crate::message::{
    BinaryError, binary, binary_size, body_structure, envelope, extract, parse_section, partial,
};
use crate::parse::{FetchArgs, FetchItem, SequenceSet, compact};
use crate::session::Session;

/// Messages whose metadata is loaded per store query.
const BATCH: usize = 256;

/// Messages loaded per store query when their bodies come along (ADR 0043): at most
/// 16 × `BODY_WITH_INFO_MAX` (2 MB) held by one FETCH.
const BODY_BATCH: usize = 16;

fn needs_bytes(items: &[FetchItem]) -> bool {
    items.iter().any(|i| {
        !matches!(
            i,
            FetchItem::Flags
                | FetchItem::Uid
                | FetchItem::InternalDate
                | FetchItem::Rfc822Size
                | FetchItem::ModSeq
                | FetchItem::EmailId
                | FetchItem::ThreadId
                | FetchItem::SaveDate
        )
    })
}

/// Whether the items mark the message \Seen (RFC 9051 §6.4.5: BODY[...] without PEEK,
/// RFC822, RFC822.TEXT, BINARY[...] without PEEK).
fn sets_seen(items: &[FetchItem]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchItem::Section { peek: false, .. }
                | FetchItem::Binary { peek: false, .. }
                | FetchItem::Rfc822
                | FetchItem::Rfc822Text
        )
    })
}

enum Rendered {
    Ok,
    /// RFC 3516 §4.3: the part's encoding cannot be decoded.
    UnknownCte,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn fetch(
        &mut self,
        tag: &str,
        FetchArgs {
            uid,
            set,
            mut items,
            changed_since,
            vanished,
            partial,
        }: FetchArgs,
    ) {
        let set = &set;
        if !uid && self.invalid_seqs(set) {
            return self.tagged(tag, "BAD", "Invalid message sequence number");
        }
        if vanished && (!uid || changed_since.is_none() || !self.enabled.qresync) {
            return self.tagged(
                tag,
                "BAD",
                "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled",
            );
        }
        if partial.is_some() && !uid {
            // RFC 9394 §3.3: the PARTIAL modifier is for UID FETCH only.
            return self.tagged(tag, "BAD", "PARTIAL needs UID FETCH");
        }
        // RFC 7162 §3.2.4: once QRESYNC is enabled every untagged FETCH carries the UID.
        if (uid || self.enabled.qresync) && !items.contains(&FetchItem::Uid) {
            items.insert(0, FetchItem::Uid);
        }
        if changed_since.is_some() && !items.contains(&FetchItem::ModSeq) {
            items.push(FetchItem::ModSeq);
        }
        if items.contains(&FetchItem::ModSeq) {
            self.condstore_enabling_command();
        }
        let sel = self.selected.as_ref().expect("selected");
        let (folder_id, read_only) = (sel.folder.id, sel.read_only);
        let mut uids = self.resolve(set, uid);
        if let Some(since) = changed_since {
            let sel = self.selected.as_ref().expect("selected");
            uids.retain(|u| {
                sel.seq_of(*u)
                    .map(|s| sel.messages[s as usize - 1].modseq > since)
                    .unwrap_or(false)
            });
            if vanished {
                self.send_vanished_earlier(folder_id, since, set).await;
            }
        }
        if let Some(range) = partial {
            // RFC 9394 §3.3: the window counts the messages left after CHANGEDSINCE.
            uids = range.select(&uids).to_vec();
        }
        if sets_seen(&items) && !read_only {
            self.mark_seen(folder_id, &uids).await;
            if !items.contains(&FetchItem::Flags) {
                items.push(FetchItem::Flags);
            }
        }
        let (mut unknown_cte, mut expunge_issued) = (false, false);
        let with_bytes = needs_bytes(&items);
        let batch = if with_bytes { BODY_BATCH } else { BATCH };
        for chunk in uids.chunks(batch) {
            let infos = match self.message_infos(folder_id, chunk, with_bytes).await {
                Ok(i) => i,
                Err(e) => return self.store_failed(tag, e),
            };
            // Expunged by another session, not reported yet (RFC 9051 §7.5.1): what the
            // session's view holds is still answered; the rest cannot be.
            for uid in chunk
                .iter()
                .filter(|u| !infos.iter().any(|i| i.0.uid == **u))
            {
                if !self.fetch_from_view(*uid, &items) {
                    expunge_issued = true;
                }
            }
            for (info, body) in infos {
                let raw = match (with_bytes, body) {
                    (true, Some(body)) => Some(body),
                    (true, None) => match self.ctx.store.read_blob(&info.blob_hash).await {
                        Ok(r) => Some(r),
                        Err(e) => return self.store_failed(tag, e),
                    },
                    (false, _) => None,
                };
                if let Rendered::UnknownCte = self.fetch_response(&info, raw.as_deref(), &items) {
                    unknown_cte = true;
                }
                if self.flush_if_large().await.is_err() {
                    return;
                }
            }
        }
        if expunge_issued {
            // RFC 9051 §7.1: the client may NOOP to hear of the expunges.
            self.tagged(
                tag,
                "NO",
                "[EXPUNGEISSUED] Some of the requested messages no longer exist",
            );
        } else if unknown_cte {
            self.tagged(
                tag,
                "NO",
                "[UNKNOWN-CTE] Cannot decode the content-transfer-encoding",
            );
        } else {
            self.tagged(tag, "OK", "FETCH completed");
        }
    }

    /// The FETCH metadata of `uids`, with the bodies the query can bring along when
    /// `with_bytes` (the others are read one by one).
    async fn message_infos(
        &self,
        folder_id: i64,
        uids: &[u32],
        with_bytes: bool,
    ) -> Result<Vec<(MessageInfo, Option<Vec<u8>>)>, mssante_store::StoreError> {
        let store = &self.ctx.store;
        match with_bytes {
            true => store.message_infos_with_bodies(folder_id, uids).await,
            false => Ok(store
                .message_infos(folder_id, uids)
                .await?
                .into_iter()
                .map(|i| (i, None))
                .collect()),
        }
    }

    /// RFC 7162 §3.2.6: UIDs of the set expunged since the modseq.
    async fn send_vanished_earlier(&mut self, folder_id: i64, since: u64, set: &SequenceSet) {
        if let Ok(snapshot) = self.ctx.store.changes_since(folder_id, since).await {
            let vanished = snapshot.vanished;
            let largest = vanished
                .last()
                .copied()
                .unwrap_or(0)
                .max(self.selected.as_ref().map(|s| s.largest_uid()).unwrap_or(0));
            let in_set: Vec<u32> = vanished
                .into_iter()
                .filter(|u| set.contains(*u, largest))
                .collect();
            if !in_set.is_empty() {
                self.untagged(format!("VANISHED (EARLIER) {}", compact(&in_set)));
            }
        }
    }

    /// RFC 9051 §6.4.5: reading a body sets \Seen. A delegate's reading sets their own
    /// \Seen and leaves the holder's read state alone (ADR 0034: shared \Seen set by a
    /// secretary is what users of peer servers complain about).
    async fn mark_seen(&mut self, folder_id: i64, uids: &[u32]) {
        let sel = self.selected.as_ref().expect("selected");
        let delegate = self.delegate_seen(sel.folder.bal_id);
        let unseen: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| {
                sel.seq_of(*u).is_some_and(|s| {
                    !sel.messages[s as usize - 1]
                        .flags
                        .iter()
                        .any(|f| f == "\\Seen")
                })
            })
            .collect();
        if unseen.is_empty() {
            return;
        }
        let seen = ["\\Seen".to_string()];
        if let Ok(update) = self
            .ctx
            .store
            .update_flags_as(
                folder_id,
                &unseen,
                (FlagOp::Add, &seen),
                None,
                delegate.as_deref(),
            )
            .await
        {
            let sel = self.selected.as_mut().expect("selected");
            for m in update.changed {
                if let Some(s) = sel.seq_of(m.uid) {
                    sel.messages[s as usize - 1] = m;
                }
            }
        }
    }

    /// Answers UID, FLAGS and MODSEQ of a message from the session's view alone; false when
    /// other items were asked (their data left with the message).
    fn fetch_from_view(&mut self, uid: u32, items: &[FetchItem]) -> bool {
        let sel = self.selected.as_ref().expect("selected");
        let Some(seq) = sel.seq_of(uid) else {
            return true;
        };
        let known = &sel.messages[seq as usize - 1];
        let mut parts = Vec::new();
        let mut complete = true;
        for item in items {
            match item {
                FetchItem::Uid => parts.push(format!("UID {uid}")),
                FetchItem::Flags => parts.push(format!("FLAGS ({})", sel.flags_text(known))),
                FetchItem::ModSeq => parts.push(format!("MODSEQ ({})", known.modseq)),
                _ => complete = false,
            }
        }
        if !parts.is_empty() {
            self.untagged(format!("{seq} FETCH ({})", parts.join(" ")));
        }
        complete
    }

    fn fetch_response(
        &mut self,
        info: &MessageInfo,
        raw: Option<&[u8]>,
        items: &[FetchItem],
    ) -> Rendered {
        let sel = self.selected.as_ref().expect("selected");
        let Some(seq) = sel.seq_of(info.uid) else {
            return Rendered::Ok;
        };
        // Flags as this session knows them (a STORE by this session is already applied).
        let known = &sel.messages[seq as usize - 1];
        let (flags, modseq) = (sel.flags_text(known), known.modseq.max(info.modseq));
        let mut out = format!("* {seq} FETCH (").into_bytes();
        let mut result = Rendered::Ok;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let raw = raw.unwrap_or(&[]);
            match item {
                FetchItem::Uid => out.extend(format!("UID {}", info.uid).as_bytes()),
                FetchItem::Flags => out.extend(format!("FLAGS ({flags})").as_bytes()),
                FetchItem::ModSeq => out.extend(format!("MODSEQ ({modseq})").as_bytes()),
                FetchItem::InternalDate => out.extend(
                    format!(
                        "INTERNALDATE \"{}\"",
                        format_internaldate(info.internaldate)
                    )
                    .as_bytes(),
                ),
                FetchItem::Rfc822Size => {
                    out.extend(format!("RFC822.SIZE {}", info.size).as_bytes())
                }
                FetchItem::EmailId => out.extend(format!("EMAILID ({})", info.email_id).as_bytes()),
                FetchItem::ThreadId => out.extend_from_slice(b"THREADID NIL"),
                FetchItem::SaveDate => match info.saved_at {
                    Some(t) => {
                        out.extend(format!("SAVEDATE \"{}\"", format_internaldate(t)).as_bytes())
                    }
                    None => out.extend_from_slice(b"SAVEDATE NIL"),
                },
                FetchItem::Preview => {
                    out.extend_from_slice(b"PREVIEW ");
                    write_nstring(&mut out, Some(preview(raw).as_bytes()));
                }
                FetchItem::Envelope => {
                    out.extend_from_slice(b"ENVELOPE ");
                    out.extend(envelope(raw));
                }
                FetchItem::Body => {
                    out.extend_from_slice(b"BODY ");
                    out.extend(body_structure(raw, false));
                }
                FetchItem::BodyStructure => {
                    out.extend_from_slice(b"BODYSTRUCTURE ");
                    out.extend(body_structure(raw, true));
                }
                FetchItem::Rfc822 => {
                    out.extend_from_slice(b"RFC822 ");
                    write_literal(&mut out, raw);
                }
                FetchItem::Rfc822Header | FetchItem::Rfc822Text => {
                    let (name, spec) = if *item == FetchItem::Rfc822Header {
                        ("RFC822.HEADER ", "HEADER")
                    } else {
                        ("RFC822.TEXT ", "TEXT")
                    };
                    out.extend_from_slice(name.as_bytes());
                    let section = parse_section(spec).expect("static section");
                    write_literal(&mut out, &extract(raw, &section));
                }
                FetchItem::Section {
                    section,
                    partial: range,
                    ..
                } => {
                    let bytes = parse_section(section)
                        .map(|s| extract(raw, &s))
                        .unwrap_or_default();
                    let (origin, bytes) = match range {
                        Some((start, len)) => (
                            format!("<{start}>"),
                            partial(&bytes, *start, Some(*len)).to_vec(),
                        ),
                        None => (String::new(), bytes),
                    };
                    out.extend(format!("BODY[{section}]{origin} ").as_bytes());
                    write_nstring(&mut out, Some(&bytes));
                }
                FetchItem::Binary {
                    part,
                    partial: range,
                    ..
                } => {
                    let name = part
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(".");
                    match binary(raw, part) {
                        Ok(bytes) => {
                            let (origin, bytes) = match range {
                                Some((start, len)) => (
                                    format!("<{start}>"),
                                    partial(&bytes, *start, Some(*len)).to_vec(),
                                ),
                                None => (String::new(), bytes),
                            };
                            out.extend(format!("BINARY[{name}]{origin} ").as_bytes());
                            write_literal8(&mut out, &bytes);
                        }
                        Err(BinaryError::UnknownCte(_)) => {
                            result = Rendered::UnknownCte;
                            out.extend(format!("BINARY[{name}] NIL").as_bytes());
                        }
                    }
                }
                FetchItem::BinarySize { part } => {
                    let name = part
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(".");
                    let size = binary_size(raw, part).unwrap_or(0);
                    out.extend(format!("BINARY.SIZE[{name}] {size}").as_bytes());
                }
            }
        }
        out.extend_from_slice(b")\r\n");
        self.wbuf.extend(out);
        result
    }
}
