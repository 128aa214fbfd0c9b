//! One file per IMAP command (`fetch.rs` holds FETCH and UID FETCH). Commands that share
//! a handler say so at the top of their file. Below: what the commands on the selected
//! mailbox share.

mod acl;
mod append;
mod authenticate;
mod authenticate_bearer;
mod authenticate_external;
mod capability;
mod catenate;
mod close;
mod compress;
mod context;
mod copy;
mod create;
mod delete;
mod enable;
mod expunge;
mod fetch;
mod getquota;
mod getquotaroot;
mod id;
mod idle;
mod list;
mod login;
mod lsub;
mod r#move;
mod namespace;
mod notify;
pub(crate) mod notify_state;
mod rename;
mod replace;
mod search;
mod select;
mod sort;
mod starttls;
mod status;
mod store;
mod subscribe;
mod thread;
mod unauthenticate;

use tokio::io::{AsyncRead, AsyncWrite};

use mssante_store::MessageInfo;

use crate::parse::SequenceSet;
use crate::session::Session;

/// One message matched by SORT or THREAD, with what ordering it needs.
pub(crate) struct Matched<'a> {
    pub seq: u32,
    pub uid: u32,
    pub modseq: u64,
    pub info: &'a MessageInfo,
    /// The message's bytes, or empty when the caller did not ask for them.
    pub raw: &'a [u8],
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Resolves a sequence set (by number or by UID) to the UIDs of the view, in order.
    pub(crate) fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<u32> {
        let sel = self.selected.as_ref().expect("selected");
        if uid {
            let largest = sel.largest_uid();
            sel.messages
                .iter()
                .map(|m| m.uid)
                .filter(|&u| set.contains(u, largest))
                .collect()
        } else {
            let exists = sel.exists();
            let mut seqs: Vec<u32> = set
                .ranges(exists)
                .flat_map(|(lo, hi)| lo.max(1)..=hi.min(exists))
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            seqs.into_iter()
                .map(|s| sel.messages[s as usize - 1].uid)
                .collect()
        }
    }

    /// Calls `each` for every search hit (seq, uid, modseq) with its stored information and,
    /// when `with_bytes`, its bytes: what SORT and THREAD share. Messages expunged meanwhile
    /// by another session are skipped.
    pub(crate) async fn for_each_hit(
        &mut self,
        hits: &[(u32, u32, u64)],
        with_bytes: bool,
        mut each: impl FnMut(Matched<'_>),
    ) -> mssante_store::Result<()> {
        let folder_id = self.selected.as_ref().expect("selected").folder.id;
        for chunk in hits.chunks(256) {
            let uids: Vec<u32> = chunk.iter().map(|h| h.1).collect();
            let infos = self.ctx.store.message_infos(folder_id, &uids).await?;
            for &(seq, uid, modseq) in chunk {
                let Some(info) = infos.iter().find(|i| i.uid == uid) else {
                    continue;
                };
                let raw = match with_bytes {
                    true => self.ctx.store.read_blob(&info.blob_hash).await?,
                    false => Vec::new(),
                };
                each(Matched {
                    seq,
                    uid,
                    modseq,
                    info,
                    raw: &raw,
                });
            }
        }
        Ok(())
    }

    /// RFC 9051 §6.4.5: a sequence number beyond EXISTS is an error (UIDs are not).
    pub(crate) fn invalid_seqs(&self, set: &SequenceSet) -> bool {
        let exists = self.selected.as_ref().map(|s| s.exists()).unwrap_or(0);
        set.0.iter().any(|&(a, b)| {
            [a, b]
                .iter()
                .any(|s| matches!(s, crate::parse::SeqNum::Num(n) if *n > exists))
        })
    }
}
