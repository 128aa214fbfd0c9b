//! The verification report of one BAL: per folder, counts, sizes and a digest of the
//! messages' SHA-256 on both sides, and the verdict on the cut-over.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One side of a folder: how many messages, their bytes, and the SHA-256 of their sorted
/// SHA-256s (equal digests: the same messages, byte for byte).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    pub messages: u64,
    pub bytes: u64,
    pub digest: String,
}

impl Side {
    pub fn of(sizes_and_hashes: impl Iterator<Item = (u64, String)>) -> Side {
        let mut hashes = Vec::new();
        let mut side = Side::default();
        for (size, hash) in sizes_and_hashes {
            side.messages += 1;
            side.bytes += size;
            hashes.push(hash);
        }
        hashes.sort_unstable();
        let mut digest = Sha256::new();
        for h in &hashes {
            digest.update(h.as_bytes());
            digest.update(b"\n");
        }
        side.digest = hex::encode(digest.finalize());
        side
    }
}

/// A source folder and where it went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FolderReport {
    pub source: String,
    pub target: String,
    pub source_side: Side,
    /// The copies of the source's messages, as the store has them.
    pub target_side: Side,
    /// Copied by this run.
    pub copied: u64,
    pub copied_bytes: u64,
    /// Already here, found again by Message-ID and size after the source's UIDVALIDITY
    /// changed.
    pub matched: u64,
    /// Copied earlier, whose flags this run brought up to date with the source's.
    pub flags_updated: u64,
    /// Source messages with no copy here (a failure of this run).
    pub missing: u64,
    /// Copies whose flags or internal date differ from the source's.
    pub metadata_differences: u64,
}

impl FolderReport {
    pub fn consistent(&self) -> bool {
        self.missing == 0 && self.metadata_differences == 0 && self.source_side == self.target_side
    }
}

/// What became of one BAL.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BalReport {
    /// Where the account came from (`accounts.csv line 3`, or `command line`).
    pub origin: String,
    pub login: String,
    pub target: String,
    pub folders: Vec<FolderReport>,
    pub subscriptions: u64,
    /// Why the BAL could not be migrated (the run went on with the others).
    pub error: Option<String>,
    pub seconds: f64,
}

impl BalReport {
    /// The cut-over is safe when every source message is here, byte for byte, with its flags
    /// and internal date, in every folder, and nothing failed.
    pub fn safe(&self) -> bool {
        self.error.is_none() && self.folders.iter().all(FolderReport::consistent)
    }

    pub fn copied(&self) -> u64 {
        self.folders.iter().map(|f| f.copied).sum()
    }

    pub fn copied_bytes(&self) -> u64 {
        self.folders.iter().map(|f| f.copied_bytes).sum()
    }

    /// The report for a person.
    pub fn text(&self) -> String {
        let mut out = format!("== {} -> {} ({})\n", self.login, self.target, self.origin);
        for f in &self.folders {
            let side = |s: &Side| {
                format!(
                    "{} messages, {} bytes, sha256 {}",
                    s.messages,
                    s.bytes,
                    &s.digest[..16]
                )
            };
            out.push_str(&format!(
                "  {:?} -> {:?}: source {}; here {}; copied {}, matched {}, flags updated {}{}{}\n",
                f.source,
                f.target,
                side(&f.source_side),
                side(&f.target_side),
                f.copied,
                f.matched,
                f.flags_updated,
                if f.missing > 0 {
                    format!(", MISSING {}", f.missing)
                } else {
                    String::new()
                },
                if f.metadata_differences > 0 {
                    format!(", FLAGS/DATE DIFFER {}", f.metadata_differences)
                } else {
                    String::new()
                },
            ));
        }
        out.push_str(&format!(
            "  {} folders, {} subscriptions, {} messages ({} bytes) copied in {:.1} s\n",
            self.folders.len(),
            self.subscriptions,
            self.copied(),
            self.copied_bytes(),
            self.seconds
        ));
        match &self.error {
            Some(e) => out.push_str(&format!("  FAILED: {e}\n  cut-over NOT safe\n")),
            None if self.safe() => out.push_str(
                "  cut-over safe: every source message is here, byte for byte, with its flags and date\n",
            ),
            None => out.push_str("  cut-over NOT safe: see the folders marked above\n"),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_ignore_order_and_see_every_byte() {
        let a = Side::of([(3, "aa".to_string()), (4, "bb".to_string())].into_iter());
        let b = Side::of([(4, "bb".to_string()), (3, "aa".to_string())].into_iter());
        let c = Side::of([(4, "bb".to_string()), (3, "ab".to_string())].into_iter());
        assert_eq!(a, b);
        assert_ne!(a.digest, c.digest);
        assert_eq!((a.messages, a.bytes), (2, 7));
    }

    #[test]
    fn verdicts() {
        let side = Side::of(std::iter::once((1, "x".to_string())));
        let mut f = FolderReport {
            source_side: side.clone(),
            target_side: side,
            ..FolderReport::default()
        };
        let mut report = BalReport {
            folders: vec![f.clone()],
            ..BalReport::default()
        };
        assert!(report.safe());
        assert!(report.text().contains("cut-over safe"));
        f.metadata_differences = 1;
        report.folders = vec![f];
        assert!(!report.safe());
        report.error = Some("the source refused the login".into());
        assert!(
            report
                .text()
                .contains("FAILED: the source refused the login")
        );
    }
}
