//! The archive format, version 2 (documented in `docs/export-format.md`, decided in ADR 0020).
//!
//! A tar stream (optionally zstd-compressed) whose entries come in this order:
//!
//! 1. `manifest.json`: [`Manifest`], everything Maildir cannot hold, and the size and SHA-256
//!    of every other file but the messages (whose SHA-256 is in the index);
//! 2. `manifest.json.sha256`: the SHA-256 of the manifest, `sha256sum` style;
//! 3. for each BAL, in the manifest's order: its index `bals/ADDRESS/index.jsonl` (one
//!    [`IndexLine`] per message placement), its Maildir side files (`dovecot-uidlist`,
//!    `dovecot-keywords`, `subscriptions`), then one Maildir file per index line, in the
//!    index's order.
//!
//! The order lets an importer work in one pass with constant memory: it knows every BAL
//! (and every conflict) before the first message, and each message's line before its bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: &str = "mssante-export";
/// The version written. Version 2 added the delegates' own `\Seen` (ADR 0034):
/// [`BalEntry::delegate_seen`] and [`IndexLine::delegate_seen`], both absent from a version 1
/// archive, which reads as "no delegate has a read state of their own".
pub const VERSION: u32 = 2;
/// The oldest version an importer reads.
pub const OLDEST_READ_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SUM: &str = "manifest.json.sha256";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Unix seconds.
    pub created_at: i64,
    pub producer: String,
    /// `sqlite` or `postgres`: informative.
    pub source_engine: String,
    /// What was asked: `bal ADDRESS`, `domain NAME` or `all`.
    pub scope: String,
    pub bals: Vec<BalEntry>,
}

/// A file of the archive other than a message, with what checks it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSum {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BalEntry {
    pub address: String,
    pub domain: String,
    /// PER, ORG, APP or CAB.
    pub bal_type: String,
    pub national_id: Option<String>,
    pub finess: Option<String>,
    pub siret: Option<String>,
    pub display_name: Option<String>,
    pub status: String,
    /// argon2id PHC string: the archive is as secret as the database.
    pub password_hash: Option<String>,
    pub liste_rouge: bool,
    pub quota_bytes: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub status_changed_at: i64,
    pub folders: Vec<FolderEntry>,
    pub subscriptions: Vec<String>,
    pub grants: Vec<Grant>,
    /// The BAL's audit trail (ADR 0016), oldest first, with the hashes of the exporting
    /// instance's chain, which cover `source_bal_id`. An import chains it again for its own id.
    pub audit: Vec<AuditRecord>,
    /// The BAL's id on the exporting instance (what the audit hashes cover).
    pub source_bal_id: i64,
    /// Publications of the BAL to the national directory and their state.
    pub publications: Vec<Publication>,
    /// Message placements (index lines) and their bytes.
    pub messages: u64,
    pub bytes: u64,
    pub index: FileSum,
    /// Maildir side files (`dovecot-uidlist`, `dovecot-keywords`, `subscriptions`).
    pub files: Vec<FileSum>,
    /// Version 2: the delegates with a `\Seen` of their own on the BAL's messages (ADR 0034),
    /// by reader, with how many index entries name them.
    #[serde(default)]
    pub delegate_seen: Vec<ReaderSeen>,
}

/// A delegate with a read state of their own on a BAL, and how many placements it covers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReaderSeen {
    /// The delegate's address or PSC identity (the audit author of their sessions).
    pub reader: String,
    /// Index entries (`delegate_seen` items of the BAL's index lines) naming this reader.
    pub entries: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FolderEntry {
    pub name: String,
    /// Its directory in the Maildir++ tree (`""` for INBOX, `.Name.Sub` otherwise).
    pub maildir: String,
    pub special_use: Option<String>,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highestmodseq: i64,
    pub first_recent_uid: i64,
    pub created_at: i64,
    /// `[uid, modseq]` of expunged messages (QRESYNC VANISHED).
    pub expunged: Vec<(i64, i64)>,
    /// Keywords in `dovecot-keywords` order: the n-th is Maildir letter `a` + n.
    pub keywords: Vec<String>,
    pub messages: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub grantee_kind: String,
    pub grantee: String,
    pub origin: String,
    pub rights: String,
    pub not_after: Option<i64>,
    pub created_at: i64,
    /// Per-folder rights of a delegation: `[folder, rights]`.
    #[serde(default)]
    pub folders: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: i64,
    pub author: String,
    pub action: String,
    pub folder: String,
    pub message_ids: String,
    pub client: String,
    pub result: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Publication {
    pub resource_url: String,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One message placement: a message in a folder under a UID; or, with an empty `folder`
/// (and UID 0), a message the BAL sent that none of its folders holds, kept for its
/// receipts state (file under `bals/ADDRESS/sent/`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexLine {
    pub folder: String,
    pub uid: i64,
    pub modseq: i64,
    /// System flags and keywords, as IMAP spells them.
    pub flags: Vec<String>,
    pub internaldate: i64,
    /// Placements sharing this number share one stored message (IMAP COPY).
    pub message: i64,
    pub size: u64,
    pub sha256: String,
    /// The Maildir file in the archive.
    pub path: String,
    pub received_at: i64,
    pub mail_from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<String>,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_mss_nil: Option<String>,
    #[serde(default)]
    pub sent_by_bal: bool,
    /// Receipts state of a message the BAL sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<ReceiptsEntry>,
    /// Version 2: the delegates' own `\Seen` on this placement (ADR 0034); `flags` holds the
    /// holder's. Only on a placement in a folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegate_seen: Vec<DelegateSeen>,
}

/// One delegate's `\Seen` on one placement: set (`seen`) or cleared, at `modseq` (the folder
/// modseq the change took, at most the folder's `highestmodseq`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DelegateSeen {
    pub reader: String,
    pub seen: bool,
    pub modseq: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptsEntry {
    pub recipients: Vec<Recipient>,
    pub events: Vec<TrackingEvent>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub orcpt: Option<String>,
    pub notify: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub dsn_status: Option<String>,
    pub remote_mta: Option<String>,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrackingEvent {
    pub original_msgid: Option<String>,
    pub recipient: String,
    pub kind: String,
    pub state: String,
    pub detail: Option<String>,
    pub error_codes: Option<String>,
    pub received_at: i64,
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The folder of a BAL's archive entries.
pub fn bal_dir(address: &str) -> String {
    format!("bals/{address}")
}

/// Whether `path` (an archive entry) lies in the folder of the BAL `address`, `bals/ADDRESS/`,
/// with no empty, `.` or `..` step anywhere: extracted, it stays inside that BAL's folder.
pub fn within_bal(address: &str, path: &str) -> bool {
    let inside = path
        .strip_prefix(&bal_dir(address))
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'));
    inside
        && path
            .split('/')
            .all(|step| !step.is_empty() && step != "." && step != "..")
}

#[cfg(test)]
mod tests {
    use super::within_bal;

    #[test]
    fn entries_stay_inside_their_bal() {
        let a = "dr.martin@hopital.mssante.fr";
        for inside in [
            "bals/dr.martin@hopital.mssante.fr/index.jsonl",
            "bals/dr.martin@hopital.mssante.fr/Maildir/.Sent/cur/1.M1Pab.mssante,S=3:2,S",
            "bals/dr.martin@hopital.mssante.fr/sent/1.eml",
        ] {
            assert!(within_bal(a, inside), "{inside}");
        }
        for outside in [
            "bals/dr.martin@hopital.mssante.fr/",
            "bals/dr.martin@hopital.mssante.fr",
            "bals/dr.martin@hopital.mssante.fr/../other@x.fr/index.jsonl",
            "bals/dr.martin@hopital.mssante.fr/Maildir/../../../etc/passwd",
            "bals/dr.martin@hopital.mssante.fr/./index.jsonl",
            "bals/dr.martin@hopital.mssante.fr//index.jsonl",
            "bals/dr.martin@hopital.mssante.fr.evil/index.jsonl",
            "bals/other@hopital.mssante.fr/index.jsonl",
            "/bals/dr.martin@hopital.mssante.fr/index.jsonl",
            "manifest.json",
        ] {
            assert!(!within_bal(a, outside), "{outside}");
        }
        assert!(!within_bal("../x@y.fr", "bals/../x@y.fr/index.jsonl"));
    }
}
