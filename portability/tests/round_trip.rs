//! Export and import on real stores (SQLite and PostgreSQL, each exporting to the other and
//! back): every message byte-identical under the same UID, flags, dates, modseqs; folders
//! with their UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ, subscriptions, grants, receipts state.
//! Then what must be refused or resumed: a second run, a conflict, a damaged or truncated
//! archive, a dry run, an import killed half-way.

use std::path::{Path, PathBuf};

use mssante_portability::{BalOutcome, DroppedSeen, Error, Quiet, Scope};
use mssante_store::*;
use mssante_testkit::{Engine as TestEngine, TestDb, engine_tests};

const DOMAIN: &str = "ch-exemple.mssante.fr";
const PER: &str = "dr.martin@ch-exemple.mssante.fr";
const ORG: &str = "secretariat.cardio@ch-exemple.mssante.fr";
const NESTED: &str = "Patients/Dossiers";
const UTF8: &str = "Comptes rendus/Échographie";
/// The PSC identity a delegation of the PER BAL names: a reader with a `\Seen` of their own.
const DELEGATE: &str = "810009999999";

async fn open(engine: TestEngine) -> (Store, TestDb) {
    let db = TestDb::new(engine);
    let store = Store::open(&db.url, db.data_path())
        .await
        .expect("open store");
    (store, db)
}

fn other(engine: TestEngine) -> TestEngine {
    match engine {
        TestEngine::Sqlite => TestEngine::Postgres,
        TestEngine::Postgres => TestEngine::Sqlite,
    }
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: a@labo.mssante.fr\r\nTo: {PER}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn incoming(
    raw: Vec<u8>,
    source: Source,
    auth: Option<i64>,
    rcpts: Vec<RecipientSpec>,
) -> IncomingMessage {
    IncomingMessage {
        raw,
        mail_from: "a@labo.mssante.fr".into(),
        envid: Some("ENV1".into()),
        ret: None,
        source,
        auth_bal_id: auth,
        meta: MessageMeta {
            message_id: Some("sent-1@test".into()),
            subject: Some("envoi".into()),
            x_mss_nil: None,
            tracking: Vec::new(),
        },
        recipients: rcpts,
    }
}

fn local(address: &str, bal_id: i64) -> RecipientSpec {
    RecipientSpec {
        address: Address::parse(address).unwrap(),
        orcpt: None,
        notify: None,
        disposition: RcptDisposition::Local { bal_id },
    }
}

/// An instance with a PER and an ORG BAL, nested and UTF-8 folders, every flag, keywords,
/// a large body, a copy, an expunge, a habilitation, a sent message with receipts state.
async fn populate(store: &Store) {
    store.add_domain(DOMAIN).await.unwrap();
    let per = store
        .create_bal(&NewBal {
            address: PER.into(),
            bal_type: BalType::Per,
            rpps: Some("10001234567".into()),
            adeli: None,
            finess: None,
            siret: None,
            display_name: Some("Dr Jeanne Martin".into()),
            password_hash: Some(hash_password("une longue phrase").unwrap()),
            liste_rouge: true,
        })
        .await
        .unwrap();
    let org = store
        .create_bal(&NewBal {
            address: ORG.into(),
            bal_type: BalType::Org,
            rpps: None,
            adeli: None,
            finess: Some("750712184".into()),
            siret: None,
            display_name: None,
            password_hash: None,
            liste_rouge: false,
        })
        .await
        .unwrap();
    store.set_bal_quota(PER, Some(1 << 30)).await.unwrap();
    store
        .grant_habilitation(ORG, "810001234567", Some(2_000_000_000))
        .await
        .unwrap();
    let nested = store.create_folder(per.id, NESTED, None).await.unwrap();
    // A delegation restricted to one folder: a grant, its per-folder rights, audit entries.
    store
        .grant_delegation(&NewDelegation {
            bal: PER,
            grantee: &Grantee::NationalId("810009999999".into()),
            rights: Rights::parse("lrs").unwrap(),
            folders: &[NESTED.to_string()],
            not_after: None,
            author: "operator",
            client: "test",
        })
        .await
        .unwrap();
    let utf8 = store.create_folder(per.id, UTF8, None).await.unwrap();
    store.set_subscription(per.id, NESTED, true).await.unwrap();
    store
        .set_subscription(per.id, "Trash", false)
        .await
        .unwrap();
    for i in 0..5 {
        let raw = message(&format!("m{i}"), &format!("corps {i}"));
        store
            .deliver(incoming(
                raw,
                Source::Mx,
                None,
                vec![local(PER, per.id), local(ORG, org.id)],
            ))
            .await
            .unwrap();
    }
    let attachment = "A".repeat(400 * 1024);
    store
        .deliver(incoming(
            message("gros", &attachment),
            Source::Mx,
            None,
            vec![local(PER, per.id)],
        ))
        .await
        .unwrap();
    // Sent by the PER BAL to the ORG BAL and to another operator (queued).
    let remote = RecipientSpec {
        address: Address::parse("dr.x@autre.mssante.fr").unwrap(),
        orcpt: Some("rfc822;dr.x@autre.mssante.fr".into()),
        notify: None,
        disposition: RcptDisposition::Remote,
    };
    store
        .deliver(incoming(
            message("envoi", "bonjour"),
            Source::Submission,
            Some(per.id),
            vec![local(ORG, org.id), remote],
        ))
        .await
        .unwrap();
    let all: Vec<String> = [
        "\\Seen",
        "\\Answered",
        "\\Flagged",
        "\\Deleted",
        "\\Draft",
        "$Urgent",
        "Projet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    store
        .append(
            nested.id,
            message("classe", "dossier"),
            &all,
            1_600_000_000,
            MessageMeta::default(),
        )
        .await
        .unwrap();
    let inbox = store.folder(per.id, "INBOX").await.unwrap().unwrap();
    store
        .update_flags(
            inbox.id,
            &[1, 2],
            FlagOp::Add,
            &["\\Seen".into(), "$Label1".into()],
            None,
        )
        .await
        .unwrap();
    store
        .copy_messages(inbox.id, &[2, 3], utf8.id, false)
        .await
        .unwrap();
    store.expunge(inbox.id, &[4]).await.unwrap();
    // The delegate's own \Seen (ADR 0034): read then unread again (a row saying "not
    // seen") on the message the holder has read, read on one the holder has not.
    store
        .append(
            nested.id,
            message("a-lire", "x"),
            &[],
            1_600_000_100,
            MessageMeta::default(),
        )
        .await
        .unwrap();
    delegate_seen(store, nested.id, 1, FlagOp::Add, DELEGATE).await;
    delegate_seen(store, nested.id, 1, FlagOp::Remove, DELEGATE).await;
    delegate_seen(store, nested.id, 2, FlagOp::Add, DELEGATE).await;
}

async fn delegate_seen(store: &Store, folder_id: i64, uid: u32, op: FlagOp, reader: &str) {
    let seen = ["\\Seen".to_string()];
    store
        .update_flags_as(folder_id, &[uid], (op, &seen), None, Some(reader))
        .await
        .unwrap();
}

/// UID → whether `reader` (the holder when `None`) sees the message `\Seen`.
async fn seen_by(store: &Store, folder: &str, reader: Option<&str>) -> Vec<(u32, bool)> {
    let bal = store.bal(PER).await.unwrap();
    let folder = store.folder(bal.id, folder).await.unwrap().unwrap();
    let snapshot = store.snapshot_as(folder.id, None, reader).await.unwrap();
    snapshot
        .messages
        .iter()
        .map(|m| (m.uid, m.flags.iter().any(|f| f == "\\Seen")))
        .collect()
}

/// Folder, UID, modseq, flags, INTERNALDATE, body hash, size, envelope facts.
type Placement = (String, i64, i64, String, i64, String, i64, MessageRecord);

/// Everything of a BAL that must survive the trip, instance ids left out.
#[derive(Debug, PartialEq)]
struct Dump {
    snapshot: BalSnapshot,
    placements: Vec<Placement>,
    bytes: Vec<String>,
    receipts: Vec<Receipts>,
    /// (folder, UID, a delegate's own `\Seen`).
    delegate_seen: Vec<(String, i64, DelegateSeenRecord)>,
}

/// A recipient queued at export is recorded as failed by the import (not relayed from the
/// new instance): put it back as it was to compare.
fn requeue(d: &mut Dump) {
    for r in &mut d.receipts {
        for rcpt in &mut r.recipients {
            if rcpt.status == "failed"
                && rcpt
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("queued when exported"))
            {
                rcpt.status = "queued".into();
                rcpt.last_error = None;
            }
        }
    }
}

/// Field by field, so that a difference is shown small.
fn assert_same(expected: &Dump, got: &Dump) {
    assert_eq!(expected.snapshot.bal, got.snapshot.bal);
    assert_eq!(expected.snapshot.folders, got.snapshot.folders);
    assert_eq!(expected.snapshot.subscriptions, got.snapshot.subscriptions);
    assert_eq!(expected.snapshot.grants, got.snapshot.grants);
    assert_eq!(expected.snapshot.publications, got.snapshot.publications);
    assert_eq!(expected.snapshot.audit, got.snapshot.audit);
    assert_eq!(expected.placements.len(), got.placements.len());
    for (e, g) in expected.placements.iter().zip(&got.placements) {
        assert_eq!(e, g);
    }
    assert_eq!(expected.bytes, got.bytes, "bodies byte-identical");
    assert_eq!(expected.receipts, got.receipts);
    assert_eq!(
        expected.delegate_seen, got.delegate_seen,
        "delegates' own \\Seen"
    );
}

async fn dump(store: &Store, address: &str) -> Dump {
    let (bal_id, mut snapshot) = store.bal_snapshot(address).await.unwrap();
    let mut placements = Vec::new();
    let mut bytes = Vec::new();
    let mut receipts = Vec::new();
    let mut delegate_seen = Vec::new();
    for folder in &mut snapshot.folders {
        let entries = store
            .folder_entries_page(bal_id, folder.id, 0, 1_000_000)
            .await
            .unwrap();
        for e in entries {
            bytes.push(blob_hash(&store.read_blob(&e.blob_hash).await.unwrap()));
            if e.message.sent_by_bal {
                receipts.push(store.receipts_of(e.message_number).await.unwrap());
            }
            for d in &e.delegate_seen {
                delegate_seen.push((folder.name.clone(), e.uid, d.clone()));
            }
            placements.push((
                folder.name.clone(),
                e.uid,
                e.modseq,
                e.flags,
                e.internaldate,
                e.blob_hash,
                e.size,
                e.message,
            ));
        }
        folder.id = 0;
    }
    // The trail is chained again for the importing instance's BAL id: compare its entries,
    // and check the chain where it lives.
    for entry in &mut snapshot.audit {
        entry.id = 0;
        entry.prev_hash.clear();
        entry.hash.clear();
    }
    let verification = store.verify_audit(Some(address)).await.unwrap();
    assert_eq!(
        verification.first_bad, None,
        "the audit chain of {address} holds"
    );
    for e in store.sent_entries_page(bal_id, 0, 1_000_000).await.unwrap() {
        bytes.push(blob_hash(&store.read_blob(&e.blob_hash).await.unwrap()));
        receipts.push(store.receipts_of(e.message_number).await.unwrap());
        placements.push((
            String::new(),
            0,
            0,
            String::new(),
            0,
            e.blob_hash,
            e.size,
            e.message,
        ));
    }
    Dump {
        snapshot,
        placements,
        bytes,
        receipts,
        delegate_seen,
    }
}

async fn export_to(
    store: &Store,
    scope: Scope,
    path: &Path,
    zstd: bool,
) -> mssante_portability::ExportSummary {
    let store = store.clone();
    let path = path.to_path_buf();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&path).unwrap();
        mssante_portability::export(&store, &handle, &scope, file, zstd, &mut Quiet)
    })
    .await
    .unwrap()
    .expect("export")
}

async fn import_from(
    store: &Store,
    path: &Path,
    dry_run: bool,
) -> mssante_portability::Result<mssante_portability::ImportReport> {
    let store = store.clone();
    let path = path.to_path_buf();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        mssante_portability::import(&store, &handle, &path, dry_run, &mut Quiet)
    })
    .await
    .unwrap()
}

/// A populated instance and the archive of its PER BAL (plain tar).
async fn populated_per_archive(engine: TestEngine) -> (Store, TestDb, PathBuf) {
    let (source, db) = open(engine).await;
    populate(&source).await;
    let archive = archive_path(&db, "per.tar");
    export_to(&source, Scope::Bal(PER.into()), &archive, false).await;
    (source, db, archive)
}

fn archive_path(db: &TestDb, name: &str) -> PathBuf {
    db.data_path().join(name)
}

engine_tests!(
    round_trip_to_the_other_engine_and_back_is_exact,
    |engine| async move {
        let (source, source_db) = open(engine).await;
        populate(&source).await;
        let before = [dump(&source, PER).await, dump(&source, ORG).await];
        assert!(
            !before[0].snapshot.audit.is_empty(),
            "the audit trail is exported"
        );
        assert!(
            before[0]
                .snapshot
                .grants
                .iter()
                .any(|g| g.folders.len() == 1),
            "per-folder rights are exported"
        );
        assert!(
            before[0].receipts.iter().any(|r| r.recipients.len() == 2),
            "the sent message's receipts state is exported"
        );
        assert_eq!(
            before[0].delegate_seen.len(),
            2,
            "the delegate's own \\Seen"
        );

        let archive = archive_path(&source_db, "all.tar.zst");
        let summary = export_to(&source, Scope::All, &archive, true).await;
        assert_eq!(summary.bals, 2);

        let (target, target_db) = open(other(engine)).await;
        let report = import_from(&target, &archive, false).await.unwrap();
        assert_eq!(report.conflicts(), 0);
        let mut after = [dump(&target, PER).await, dump(&target, ORG).await];
        after.iter_mut().for_each(requeue);
        for (b, a) in before.iter().zip(&after) {
            assert_same(b, a);
        }
        // ADR 0049: the import counts the copies it places in each BAL's usage itself.
        for address in [PER, ORG] {
            let (was, _) = source
                .bal_usage(source.bal(address).await.unwrap().id)
                .await
                .unwrap();
            let (is, _) = target
                .bal_usage(target.bal(address).await.unwrap().id)
                .await
                .unwrap();
            assert!(was > 0, "{address} holds messages");
            assert_eq!(is, was, "{address}: the imported copies are counted");
        }
        // As the delegate and the holder see the folder: each their own \Seen.
        assert_eq!(
            seen_by(&target, NESTED, Some(DELEGATE)).await,
            vec![(1, false), (2, true)]
        );
        assert_eq!(
            seen_by(&target, NESTED, None).await,
            vec![(1, true), (2, false)]
        );
        assert!(report.dropped_seen.is_empty(), "{:?}", report.dropped_seen);
        let bal = target.bal(PER).await.unwrap();
        assert!(bal.has_password && bal.liste_rouge);
        let status = target.message_status("sent-1@test").await.unwrap();
        assert!(
            status.iter().any(|m| m.recipients.len() == 2),
            "tracking of the sent message shows: {status:?}"
        );

        // And back to the first engine, from a plain tar this time.
        let back = archive_path(&target_db, "back.tar");
        export_to(&target, Scope::Domain(DOMAIN.into()), &back, false).await;
        let (again, _again_db) = open(engine).await;
        import_from(&again, &back, false).await.unwrap();
        let mut again_dump = [dump(&again, PER).await, dump(&again, ORG).await];
        again_dump.iter_mut().for_each(requeue);
        for (b, a) in after.iter().zip(&again_dump) {
            assert_same(b, a);
        }
        assert_eq!(
            seen_by(&again, NESTED, Some(DELEGATE)).await,
            vec![(1, false), (2, true)]
        );
    }
);

engine_tests!(
    second_run_is_a_no_op_and_conflicts_are_left_alone,
    |engine| async move {
        let (source, _db, archive) = populated_per_archive(engine).await;

        let (target, _t) = open(engine).await;
        let first = import_from(&target, &archive, false).await.unwrap();
        assert!(
            matches!(&first.outcomes[0], BalOutcome::Imported { messages, .. } if *messages > 5)
        );
        let expected = dump(&target, PER).await;
        let second = import_from(&target, &archive, false).await.unwrap();
        assert_eq!(
            second.outcomes,
            vec![BalOutcome::AlreadyImported {
                address: PER.into()
            }]
        );
        assert_eq!(dump(&target, PER).await, expected, "no duplicates");

        // The source instance still holds the BAL: a conflict, reported, nothing changed.
        let before = dump(&source, PER).await;
        let report = import_from(&source, &archive, false).await.unwrap();
        assert_eq!(report.conflicts(), 1);
        assert_eq!(dump(&source, PER).await, before);
    }
);

/// A copy of `archive` with `edit` applied to its bytes.
fn damaged(archive: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(archive).unwrap();
    edit(&mut bytes);
    let path = archive.with_file_name(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

engine_tests!(
    damaged_or_truncated_archives_are_refused_naming_the_file,
    |engine| async move {
        let (_source, _db, archive) = populated_per_archive(engine).await;
        let (target, _t) = open(engine).await;

        // One byte of the large body changed (it sits in the middle of the archive).
        let flipped = damaged(&archive, "flipped.tar", |b| {
            let at = b.windows(8).position(|w| w == b"AAAAAAAA").unwrap() + 1000;
            b[at] = b'B';
        });
        match import_from(&target, &flipped, false).await {
            Err(Error::Corrupt { file, problem }) => {
                assert!(
                    file.starts_with(&format!("bals/{PER}/Maildir/cur/")),
                    "{file}"
                );
                assert!(problem.contains("SHA-256"), "{problem}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let truncated = damaged(&archive, "truncated.tar", |b| b.truncate(b.len() * 2 / 3));
        match import_from(&target, &truncated, false).await {
            Err(Error::Corrupt { file, .. }) => assert!(file.starts_with("bals/"), "{file}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(
            target.find_bal(PER).await.unwrap().is_none(),
            "nothing half-imported shows"
        );
        assert!(target.list_bals(None).await.unwrap().is_empty());

        // A dry run checks and writes nothing.
        let report = import_from(&target, &archive, true).await.unwrap();
        assert!(matches!(&report.outcomes[0], BalOutcome::Valid { .. }));
        assert!(target.find_bal(PER).await.unwrap().is_none());
    }
);

/// Stops the import (by panicking in its progress callback) after `at` messages.
struct StopAt(u64);

impl mssante_portability::Progress for StopAt {
    fn update(&mut self, done: u64, _total: u64) {
        if done == self.0 {
            panic!("stopped at {done}");
        }
    }
}

engine_tests!(an_interrupted_import_resumes_exactly, |engine| async move {
    let (source, db) = open(engine).await;
    populate(&source).await;
    // Enough messages for several staging batches.
    let per = source.bal(PER).await.unwrap();
    let inbox = source.folder(per.id, "INBOX").await.unwrap().unwrap();
    for i in 0..1200 {
        source
            .append(
                inbox.id,
                message(&format!("n{i}"), "x"),
                &[],
                1_700_000_000 + i,
                MessageMeta::default(),
            )
            .await
            .unwrap();
    }
    let expected = dump(&source, PER).await;
    let archive = archive_path(&db, "per.tar");
    export_to(&source, Scope::Bal(PER.into()), &archive, false).await;
    let (target, _t) = open(engine).await;
    for stop in [3u64, 700, 1100] {
        let (store, path, handle) = (
            target.clone(),
            archive.clone(),
            tokio::runtime::Handle::current(),
        );
        let run = tokio::task::spawn_blocking(move || {
            // 500 a batch: several batches, so some are staged when it stops.
            mssante_portability::import::import_batched(
                &store,
                &handle,
                &path,
                false,
                500,
                &mut StopAt(stop),
            )
        })
        .await;
        assert!(run.is_err(), "stopped at {stop}");
        assert!(
            target.find_bal(PER).await.unwrap().is_none(),
            "not visible before the end"
        );
    }
    import_from(&target, &archive, false).await.unwrap();
    let mut imported = dump(&target, PER).await;
    requeue(&mut imported);
    assert_same(&expected, &imported);
});

engine_tests!(
    the_seen_of_a_reader_unknown_here_is_reported_not_imported,
    |engine| async move {
        let (source, db) = open(engine).await;
        populate(&source).await;
        // A former secretary, neither a grantee of the BAL any more nor a BAL anywhere.
        let per = source.bal(PER).await.unwrap();
        let inbox = source.folder(per.id, "INBOX").await.unwrap().unwrap();
        delegate_seen(&source, inbox.id, 1, FlagOp::Add, "partie@ailleurs.fr").await;
        let archive = archive_path(&db, "per.tar");
        export_to(&source, Scope::Bal(PER.into()), &archive, false).await;

        let (target, _t) = open(other(engine)).await;
        let dropped = vec![DroppedSeen {
            address: PER.into(),
            reader: "partie@ailleurs.fr".into(),
            entries: 1,
        }];
        let dry = import_from(&target, &archive, true).await.unwrap();
        assert_eq!(dry.dropped_seen, dropped, "a dry run says so too");
        let report = import_from(&target, &archive, false).await.unwrap();
        assert_eq!(report.dropped_seen, dropped);
        let readers: Vec<String> = dump(&target, PER)
            .await
            .delegate_seen
            .into_iter()
            .map(|(_, _, d)| d.reader)
            .collect();
        assert_eq!(readers, vec![DELEGATE.to_string(); 2]);
        assert_eq!(
            seen_by(&target, NESTED, Some(DELEGATE)).await,
            vec![(1, false), (2, true)]
        );
    }
);

/// `archive` (plain tar) rebuilt as `name` after `edit_manifest` on its manifest and
/// `edit_line` on each index line, with the index sums and the manifest's SHA-256 made to
/// match again: only what the edits change differs.
fn rewritten(
    archive: &Path,
    name: &str,
    edit_manifest: impl Fn(&mut serde_json::Value),
    edit_line: impl Fn(&mut serde_json::Value),
) -> PathBuf {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        entries.push((path, bytes));
    }
    let mut manifest: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
    edit_manifest(&mut manifest);
    for (path, bytes) in entries
        .iter_mut()
        .filter(|(p, _)| p.ends_with("index.jsonl"))
    {
        let mut out = Vec::new();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut line: serde_json::Value = serde_json::from_slice(line).unwrap();
            edit_line(&mut line);
            out.extend(serde_json::to_vec(&line).unwrap());
            out.push(b'\n');
        }
        *bytes = out;
        for bal in manifest["bals"].as_array_mut().unwrap() {
            if bal["index"]["path"] == path.as_str() {
                bal["index"]["size"] = bytes.len().into();
                bal["index"]["sha256"] = mssante_portability::format::sha256_hex(bytes).into();
            }
        }
    }
    entries[0].1 = serde_json::to_vec_pretty(&manifest).unwrap();
    let sum = mssante_portability::format::sha256_hex(&entries[0].1);
    entries[1].1 = format!("{sum}  manifest.json\n").into_bytes();
    let out = archive.with_file_name(name);
    let mut builder = tar::Builder::new(std::fs::File::create(&out).unwrap());
    for (path, bytes) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    builder.finish().unwrap();
    out
}

/// A change to one JSON value of an archive.
type Edit = fn(&mut serde_json::Value);

engine_tests!(
    a_version_1_archive_imports_and_a_bad_delegate_seen_is_refused,
    |engine| async move {
        let (_source, _db, archive) = populated_per_archive(engine).await;

        // Version 1 (before ADR 0034's field): read as "no delegate's own \Seen".
        let v1 = rewritten(
            &archive,
            "v1.tar",
            |m| {
                m["version"] = 1.into();
                for bal in m["bals"].as_array_mut().unwrap() {
                    bal.as_object_mut().unwrap().remove("delegate_seen");
                }
            },
            |line| {
                line.as_object_mut().unwrap().remove("delegate_seen");
            },
        );
        let (target, _t) = open(engine).await;
        let report = import_from(&target, &v1, false).await.unwrap();
        assert!(matches!(&report.outcomes[0], BalOutcome::Imported { .. }));
        assert!(dump(&target, PER).await.delegate_seen.is_empty());
        assert_eq!(
            seen_by(&target, NESTED, None).await,
            vec![(1, true), (2, false)],
            "the holder's \\Seen as it was"
        );

        // Well-hashed but wrong values, each refused naming the index, by a dry run too.
        let index = format!("bals/{PER}/index.jsonl");
        let bad_values: [(&str, Edit, &str); 3] = [
            ("not-bool.tar", |d| d["seen"] = "yes".into(), "invalid type"),
            (
                "modseq.tar",
                |d| d["modseq"] = 1_000_000.into(),
                "HIGHESTMODSEQ",
            ),
            (
                "reader.tar",
                |d| d["reader"] = "x@y.fr".into(),
                "not in the manifest",
            ),
        ];
        let (fresh, _f) = open(engine).await;
        for (name, edit, problem_says) in bad_values {
            let bad = rewritten(
                &archive,
                name,
                |_| {},
                |line| {
                    if let Some(first) = line
                        .get_mut("delegate_seen")
                        .and_then(|d| d.as_array_mut())
                        .and_then(|d| d.first_mut())
                    {
                        edit(first);
                    }
                },
            );
            for dry_run in [true, false] {
                match import_from(&fresh, &bad, dry_run).await {
                    Err(Error::Corrupt { file, problem }) => {
                        assert_eq!(file, index, "{name}");
                        assert!(problem.contains(problem_says), "{name}: {problem}");
                    }
                    other => panic!("{name}: expected a refusal, got {other:?}"),
                }
            }
        }
        assert!(fresh.list_bals(None).await.unwrap().is_empty());
    }
);
