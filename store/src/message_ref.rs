//! What a session keeps per message of the selected folder: a leaf module, so that the
//! folder's writes (`folder_messages.rs`), its snapshots (`folder_snapshot.rs`) and the
//! delegates' own `\\Seen` (`delegate_seen.rs`) can all speak of it without an import loop
//! (`tests/module_cycles.rs`).

/// What a session keeps per message of the selected folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRef {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Vec<String>,
}
