//! What an IMAP session holds besides its connection and its selected mailbox: who it is
//! and what is delegated to it (ADR 0016), its live searches (RFC 5267 CONTEXT) and its
//! compression (RFC 4978). Plain data with no I/O, so that `session` holds them while the
//! files that act on them (`access`, `cmd/context.rs`, `cmd/compress.rs`) build on `session`.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use mssante_store::{Delegation, Folder, Grantee, KNOWN_RIGHTS, Rights};

use crate::parse::{SearchKey, SortKey};

/// The other-users namespace prefix (RFC 2342 §5), followed by the BAL address.
pub(crate) const OTHER_USERS: &str = "Other Users";

/// Who the session acts as, and what is delegated to it.
#[derive(Default)]
pub(crate) struct SessionAccess {
    /// The author of audit entries: the PSC identity, else the address logged in with.
    pub author: String,
    pub principals: Vec<Grantee>,
    /// Set when the session logged in as a delegated BAL: its rights there.
    pub own: Option<Delegation>,
    /// BALs delegated to the session (other-users namespace).
    pub delegated: Vec<Delegation>,
    pub(crate) generation: u64,
    /// The earliest end date among the delegations held.
    pub(crate) next_end: Option<i64>,
}

impl SessionAccess {
    pub(crate) fn set(
        &mut self,
        own: Option<Delegation>,
        delegated: Vec<Delegation>,
        generation: u64,
    ) {
        self.next_end = own
            .iter()
            .chain(&delegated)
            .filter_map(|d| d.not_after)
            .min();
        self.own = own;
        self.delegated = delegated;
        self.generation = generation;
    }

    /// Rights on a folder of the own BAL (`own_bal`) or of a delegated one.
    pub fn rights_on(&self, own_bal: i64, folder: &Folder) -> Rights {
        if folder.bal_id == own_bal {
            return match &self.own {
                Some(d) => d.rights_on(&folder.name),
                None => Rights::from_stored(KNOWN_RIGHTS),
            };
        }
        self.delegated
            .iter()
            .filter(|d| d.bal_id == folder.bal_id)
            .fold(Rights::NONE, |r, d| r.union(d.rights_on(&folder.name)))
    }

    /// Whether actions on `bal_id` are a delegate's (and so audited).
    pub fn is_delegated(&self, own_bal: i64, bal_id: i64) -> bool {
        bal_id != own_bal || self.own.is_some()
    }

    /// `Other Users/dr@x.fr/INBOX` → (the delegated BAL's id, `INBOX`); `None` for a name
    /// outside that namespace; `Some(None)` for one inside naming no delegated folder.
    pub fn resolve<'n>(&self, name: &'n str) -> Option<Option<(i64, &'n str)>> {
        let rest = name.strip_prefix(OTHER_USERS)?.strip_prefix('/')?;
        let Some((address, folder)) = rest.split_once('/') else {
            return Some(None);
        };
        let folder = if folder.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            folder
        };
        Some(
            self.delegated
                .iter()
                .find(|d| d.bal.eq_ignore_ascii_case(address))
                .map(|d| (d.bal_id, folder)),
        )
    }

    /// The name a client sees for a folder of a delegated BAL.
    pub fn shared_name(&self, bal_id: i64, folder: &str) -> Option<String> {
        self.delegated
            .iter()
            .find(|d| d.bal_id == bal_id)
            .map(|d| format!("{OTHER_USERS}/{}/{folder}", d.bal))
    }
}

/// One live search or sort (RFC 5267 §4.2).
pub(crate) struct SearchContext {
    pub(crate) tag: String,
    pub(crate) uid: bool,
    pub(crate) key: SearchKey,
    /// `Some` for SORT: the result is ordered by these keys.
    pub(crate) sort: Option<Vec<SortKey>>,
    /// The result as last reported, as UIDs in result order.
    pub(crate) result: Vec<u32>,
}

/// COMPRESS=DEFLATE's two raw DEFLATE streams (RFC 1951, no zlib header): the session keeps
/// reading and writing plain bytes in its buffers, and this sits between them and the
/// connection.
pub(crate) struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Compressed bytes read from the client and not inflated yet.
    pub(crate) input: Vec<u8>,
}

impl Deflate {
    pub(crate) fn new() -> Self {
        Deflate {
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            input: Vec::new(),
        }
    }

    /// `plain` compressed and sync-flushed, so that the client can act on everything
    /// written so far (RFC 4978 §4).
    pub(crate) fn deflate(&mut self, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            out.reserve(4096);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(&plain[consumed..], &mut out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            consumed += (self.compress.total_in() - before) as usize;
            // Done when all input went in and the flush did not fill the space given.
            if consumed == plain.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// Inflates what `input` holds onto `out`; a partial block stays in `input`.
    pub(crate) fn inflate_into(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut consumed = 0;
        loop {
            out.reserve(16 * 1024);
            let (before_in, before_out) = (self.decompress.total_in(), self.decompress.total_out());
            self.decompress
                .decompress_vec(&self.input[consumed..], out, FlushDecompress::None)
                .map_err(std::io::Error::other)?;
            let used = (self.decompress.total_in() - before_in) as usize;
            let produced = self.decompress.total_out() - before_out;
            consumed += used;
            if consumed == self.input.len() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && produced == 0 {
                break;
            }
        }
        self.input.drain(..consumed);
        Ok(())
    }
}
