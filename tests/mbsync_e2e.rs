//! Two-way synchronisation with `mbsync` (isync), an IMAP client nobody here wrote: a BAL
//! synced into a local Maildir and back, flags preserved, and a repeated sync changes nothing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mssante_testkit::engine_tests_sync;

const DR: &str = "dr.martin@ch-test.mssante.fr";

fn mbsync(config: &Path) -> String {
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .args(["-V", "bal"])
        .output()
        .expect("mbsync is required for the end-to-end tests (Debian package isync)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed: {text}");
    text
}

/// Every file of the local Maildir (names carry mbsync's UIDs and the flags).
fn maildir_files(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
                out.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// The server side as the store holds it: (folder, uid, modseq, flags) of every message.
fn server_state(server: &Server) -> Vec<(String, i64, i64, String)> {
    block_on(async {
        let store = mssante_store::Store::open(&server.db.url, server.db.data_path())
            .await
            .unwrap();
        let mut state = Vec::new();
        for folder in ["INBOX", "Sent", "Drafts", "Trash"] {
            for m in store.folder_messages(DR, folder).await.unwrap() {
                state.push((folder.to_string(), m.uid, m.modseq, m.flags));
            }
        }
        store.close().await;
        state
    })
}

fn write_config(server: &Server, maildir: &Path) -> PathBuf {
    let config = server.db.data_path().join("mbsyncrc");
    let cert = server.db.data_path().join("tls/cert.pem");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount bal\nHost localhost\nPort {port}\nUser {DR}\nPass \"{PASSWORD}\"\nSSLType STARTTLS\n\
             CertificateFile {cert}\n\nIMAPStore remote\nAccount bal\n\nMaildirStore local\nPath {dir}/\n\
             Inbox {dir}/INBOX\nSubFolders Verbatim\n\nChannel bal\nFar :remote:\nNear :local:\nPatterns *\n\
             Create Both\nExpunge Both\nSyncState *\nSync All\n",
            port = server.ports.imap,
            cert = cert.display(),
            dir = maildir.display(),
        ),
    )
    .unwrap();
    config
}

engine_tests_sync!(mbsync_two_way_sync_keeps_flags_and_converges, |engine| {
    let mut server = Server::configure_host(engine, "localhost", "");
    server.cli_ok(&["domain", "add", "ch-test.mssante.fr"]);
    server.create_bal(DR, "10000000001");
    server.spawn();
    for subject in ["resultats", "compte-rendu"] {
        let msg = format!("From: <lab@labo.mssante.fr>\r\nSubject: {subject}\r\n\r\n{subject}\r\n");
        let file = server.db.data_path().join(format!("{subject}.eml"));
        std::fs::write(&file, msg).unwrap();
        let out = py(
            "mx",
            &server,
            &[
                "--sender",
                "lab@labo.mssante.fr",
                "--rcpt",
                DR,
                "--message-file",
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(out["data"][0], 250, "{out}");
    }
    let maildir = server.db.data_path().join("maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let config = write_config(&server, &maildir);

    // 1. Server → Maildir: both messages and the four folders arrive.
    mbsync(&config);
    let files = maildir_files(&maildir);
    let inbox: Vec<&String> = files.iter().filter(|f| f.starts_with("INBOX/")).collect();
    assert_eq!(inbox.len(), 2, "{files:?}");
    for folder in ["Sent", "Drafts", "Trash"] {
        assert!(
            maildir.join(folder).is_dir(),
            "{folder} not created locally"
        );
    }

    // 2. Maildir → server: a message marked seen and flagged locally, a new local draft.
    let first = maildir.join(inbox[0]);
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    let (base, _) = name.split_once(":2,").unwrap();
    std::fs::rename(
        &first,
        maildir.join("INBOX/cur").join(format!("{base}:2,FS")),
    )
    .unwrap();
    std::fs::create_dir_all(maildir.join("Drafts/cur")).unwrap();
    std::fs::write(
        maildir.join("Drafts/cur/1.local:2,D"),
        "From: <dr.martin@ch-test.mssante.fr>\r\nSubject: brouillon\r\n\r\nA finir.\r\n",
    )
    .unwrap();
    mbsync(&config);
    let state = server_state(&server);
    let flags_of = |folder: &str| -> Vec<String> {
        state
            .iter()
            .filter(|s| s.0 == folder)
            .map(|s| s.3.clone())
            .collect()
    };
    let inbox_flags = flags_of("INBOX");
    assert!(
        inbox_flags
            .iter()
            .any(|f| f.contains("\\Seen") && f.contains("\\Flagged")),
        "{state:?}"
    );
    assert!(
        inbox_flags.iter().any(|f| f.is_empty()),
        "the other message stays unseen: {state:?}"
    );
    assert_eq!(flags_of("Drafts"), vec!["\\Draft".to_string()], "{state:?}");
    let drafts = server.messages(DR, "Drafts");
    assert!(String::from_utf8_lossy(&drafts[0]).contains("Subject: brouillon"));

    // 3. A further sync transfers nothing: neither side changes (no APPEND, no STORE, no
    //    new modseq on the server; the same files locally).
    let (files_before, server_before) = (maildir_files(&maildir), server_state(&server));
    mbsync(&config);
    assert_eq!(maildir_files(&maildir), files_before);
    assert_eq!(server_state(&server), server_before);
    server.kill();
});
