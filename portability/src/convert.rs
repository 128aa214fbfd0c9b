//! Between the store's records and the archive's: field for field, both ways, so that an
//! import writes back exactly what an export read.

use mssante_store as store;

use crate::format::{
    AuditRecord, BalEntry, DelegateSeen, FileSum, FolderEntry, Grant, IndexLine, Publication,
    ReceiptsEntry, Recipient, TrackingEvent,
};

pub fn folder_entry(
    f: &store::FolderRecord,
    maildir: String,
    keywords: &[String],
    messages: u64,
) -> FolderEntry {
    FolderEntry {
        name: f.name.clone(),
        maildir,
        special_use: f.special_use.clone(),
        uidvalidity: f.uidvalidity,
        uidnext: f.uidnext,
        highestmodseq: f.highestmodseq,
        first_recent_uid: f.first_recent_uid,
        created_at: f.created_at,
        expunged: f.expunged.clone(),
        keywords: keywords.to_vec(),
        messages,
    }
}

/// The manifest entry of a BAL, its counts and files left for the caller to fill.
pub fn bal_entry(s: &store::BalSnapshot, folders: Vec<FolderEntry>) -> BalEntry {
    let b = &s.bal;
    BalEntry {
        address: b.address.clone(),
        domain: b.domain.clone(),
        bal_type: b.bal_type.clone(),
        national_id: b.national_id.clone(),
        finess: b.finess.clone(),
        siret: b.siret.clone(),
        display_name: b.display_name.clone(),
        status: b.status.clone(),
        password_hash: b.password_hash.clone(),
        liste_rouge: b.liste_rouge,
        quota_bytes: b.quota_bytes,
        created_at: b.created_at,
        updated_at: b.updated_at,
        status_changed_at: b.status_changed_at,
        folders,
        subscriptions: s.subscriptions.clone(),
        grants: s
            .grants
            .iter()
            .map(|g| Grant {
                grantee_kind: g.grantee_kind.clone(),
                grantee: g.grantee.clone(),
                origin: g.origin.clone(),
                rights: g.rights.clone(),
                not_after: g.not_after,
                created_at: g.created_at,
                folders: g.folders.clone(),
            })
            .collect(),
        audit: s
            .audit
            .iter()
            .map(|a| AuditRecord {
                seq: a.seq,
                at: a.at,
                author: a.author.clone(),
                action: a.action.clone(),
                folder: a.folder.clone(),
                message_ids: a.message_ids.clone(),
                client: a.client.clone(),
                result: a.result.clone(),
                detail: a.detail.clone(),
                prev_hash: a.prev_hash.clone(),
                hash: a.hash.clone(),
            })
            .collect(),
        source_bal_id: 0,
        publications: s
            .publications
            .iter()
            .map(|p| Publication {
                resource_url: p.resource_url.clone(),
                body: p.body.clone(),
                status: p.status.clone(),
                attempts: p.attempts,
                next_attempt: p.next_attempt,
                last_error: p.last_error.clone(),
                created_at: p.created_at,
                updated_at: p.updated_at,
            })
            .collect(),
        messages: 0,
        bytes: 0,
        index: FileSum {
            path: String::new(),
            size: 0,
            sha256: String::new(),
        },
        files: Vec::new(),
        delegate_seen: Vec::new(),
    }
}

/// The store's view of a manifest entry, for the import's final commit.
pub fn bal_snapshot(e: &BalEntry) -> store::BalSnapshot {
    store::BalSnapshot {
        bal: store::BalRecord {
            address: e.address.clone(),
            domain: e.domain.clone(),
            bal_type: e.bal_type.clone(),
            national_id: e.national_id.clone(),
            finess: e.finess.clone(),
            siret: e.siret.clone(),
            display_name: e.display_name.clone(),
            status: e.status.clone(),
            password_hash: e.password_hash.clone(),
            liste_rouge: e.liste_rouge,
            quota_bytes: e.quota_bytes,
            created_at: e.created_at,
            updated_at: e.updated_at,
            status_changed_at: e.status_changed_at,
        },
        folders: e
            .folders
            .iter()
            .map(|f| store::FolderRecord {
                id: 0,
                name: f.name.clone(),
                special_use: f.special_use.clone(),
                uidvalidity: f.uidvalidity,
                uidnext: f.uidnext,
                highestmodseq: f.highestmodseq,
                first_recent_uid: f.first_recent_uid,
                created_at: f.created_at,
                expunged: f.expunged.clone(),
            })
            .collect(),
        subscriptions: e.subscriptions.clone(),
        grants: e
            .grants
            .iter()
            .map(|g| store::GrantRecord {
                grantee_kind: g.grantee_kind.clone(),
                grantee: g.grantee.clone(),
                origin: g.origin.clone(),
                rights: g.rights.clone(),
                not_after: g.not_after,
                created_at: g.created_at,
                folders: g.folders.clone(),
            })
            .collect(),
        audit: e
            .audit
            .iter()
            .map(|a| store::AuditEntry {
                id: 0,
                bal: e.address.clone(),
                seq: a.seq,
                at: a.at,
                author: a.author.clone(),
                action: a.action.clone(),
                folder: a.folder.clone(),
                message_ids: a.message_ids.clone(),
                client: a.client.clone(),
                result: a.result.clone(),
                detail: a.detail.clone(),
                prev_hash: a.prev_hash.clone(),
                hash: a.hash.clone(),
            })
            .collect(),
        publications: e
            .publications
            .iter()
            .map(|p| store::PublicationRecord {
                resource_url: p.resource_url.clone(),
                body: p.body.clone(),
                status: p.status.clone(),
                attempts: p.attempts,
                next_attempt: p.next_attempt,
                last_error: p.last_error.clone(),
                created_at: p.created_at,
                updated_at: p.updated_at,
            })
            .collect(),
    }
}

pub fn receipts_entry(r: &store::Receipts) -> ReceiptsEntry {
    ReceiptsEntry {
        recipients: r
            .recipients
            .iter()
            .map(|r| Recipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                notify: r.notify.clone(),
                status: r.status.clone(),
                attempts: r.attempts,
                last_error: r.last_error.clone(),
                dsn_status: r.dsn_status.clone(),
                remote_mta: r.remote_mta.clone(),
                updated_at: r.updated_at,
            })
            .collect(),
        events: r
            .events
            .iter()
            .map(|e| TrackingEvent {
                original_msgid: e.original_msgid.clone(),
                recipient: e.recipient.clone(),
                kind: e.kind.clone(),
                state: e.state.clone(),
                detail: e.detail.clone(),
                error_codes: e.error_codes.clone(),
                received_at: e.received_at,
            })
            .collect(),
    }
}

fn store_receipts(r: &ReceiptsEntry) -> store::Receipts {
    store::Receipts {
        recipients: r
            .recipients
            .iter()
            .map(|r| store::RecipientRecord {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                notify: r.notify.clone(),
                status: r.status.clone(),
                attempts: r.attempts,
                last_error: r.last_error.clone(),
                dsn_status: r.dsn_status.clone(),
                remote_mta: r.remote_mta.clone(),
                updated_at: r.updated_at,
            })
            .collect(),
        events: r
            .events
            .iter()
            .map(|e| store::TrackingRecord {
                original_msgid: e.original_msgid.clone(),
                recipient: e.recipient.clone(),
                kind: e.kind.clone(),
                state: e.state.clone(),
                detail: e.detail.clone(),
                error_codes: e.error_codes.clone(),
                received_at: e.received_at,
            })
            .collect(),
    }
}

pub fn index_line(
    folder: &str,
    s: &store::FolderEntry,
    flags: Vec<String>,
    path: String,
    receipts: Option<ReceiptsEntry>,
) -> IndexLine {
    let m = &s.message;
    IndexLine {
        folder: folder.to_string(),
        uid: s.uid,
        modseq: s.modseq,
        flags,
        internaldate: s.internaldate,
        message: s.message_number,
        size: s.size as u64,
        sha256: s.blob_hash.clone(),
        path,
        received_at: m.received_at,
        mail_from: m.mail_from.clone(),
        envid: m.envid.clone(),
        ret: m.ret.clone(),
        source: m.source.clone(),
        message_id: m.message_id_hdr.clone(),
        subject: m.subject.clone(),
        x_mss_nil: m.x_mss_nil.clone(),
        sent_by_bal: m.sent_by_bal,
        receipts,
        delegate_seen: s
            .delegate_seen
            .iter()
            .map(|d| DelegateSeen {
                reader: d.reader.clone(),
                seen: d.seen,
                modseq: d.modseq,
            })
            .collect(),
    }
}

/// A line of the index with its verified bytes, as the store stages it, with the `\Seen` of
/// the delegates `keep` accepts.
pub fn staged_message(
    seq: i64,
    line: IndexLine,
    raw: Vec<u8>,
    keep: impl Fn(&str) -> bool,
) -> store::StagedMessage {
    let delegate_seen = line
        .delegate_seen
        .iter()
        .filter(|d| keep(&d.reader))
        .map(|d| store::DelegateSeenRecord {
            reader: d.reader.clone(),
            seen: d.seen,
            modseq: d.modseq,
        })
        .collect();
    store::StagedMessage {
        delegate_seen,
        seq,
        flags: line.flags.join(" "),
        folder: line.folder,
        uid: line.uid,
        modseq: line.modseq,
        internaldate: line.internaldate,
        message_number: line.message,
        blob_hash: line.sha256,
        raw,
        receipts: line
            .receipts
            .as_ref()
            .map(store_receipts)
            .unwrap_or_default(),
        message: store::MessageRecord {
            received_at: line.received_at,
            mail_from: line.mail_from,
            envid: line.envid,
            ret: line.ret,
            source: line.source,
            message_id_hdr: line.message_id,
            subject: line.subject,
            x_mss_nil: line.x_mss_nil,
            sent_by_bal: line.sent_by_bal,
        },
    }
}
