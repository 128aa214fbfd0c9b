//! Every document and repository path that the code and the documentation cite exists in
//! the repository: a user's clone has nothing else. Checked: `*.md` files, and paths that
//! start with a folder of the repository (`docs/…`, `store/src/…`, `tests/…`), resolved from
//! the citing file's folder, its crate's folder, or the repository root. Citations of the
//! background notes the project started from (`SPEC §3`) fail too: cite `docs/mssante.md`.
//! Decision records cited by number (`ADR 0029`) must be in `docs/adr/`.

use std::path::{Path, PathBuf};

/// Cited on purpose although outside the repository, with the reason.
const OUTSIDE: &[(&str, &str)] = &[(
    "scripted_test.md",
    "describes the script format inside Dovecot's imaptest corpus, which is not \
         distributed with the repository (README.md, \"Test it\")",
)];

/// Words that look like citations and are not, with the file they stand in and why.
const NOT_CITATIONS: &[(&str, &str, &str)] = &[(
    "Cargo.toml",
    "usr/share/doc/mssante/README.md",
    "where the Debian package installs README.md",
)];

/// Applied migrations never change (sqlx refuses a database whose applied migrations were
/// edited): their comments keep citing `SPEC.md §N`, which docs/mssante.md §N replaces with
/// the same numbers. Only that old name is tolerated there; new migrations cite docs/.
const FROZEN_MIGRATIONS: &[&str] = &[
    "migrations/sqlite/0001_init.sql",
    "migrations/sqlite/0002_directory.sql",
    "migrations/sqlite/0006_relay.sql",
    "migrations/postgres/0001_init.sql",
    "migrations/postgres/0002_directory.sql",
    "migrations/postgres/0006_relay.sql",
];
const FROZEN_CITATION: &str = "SPEC.md";

/// Folders that hold no sources: build output, version control, copied test data.
const NOT_SOURCES: &[&str] = &["target", ".git", "fixtures", "results"];
/// Folders whose paths are outputs, never citations (`target/imaptest.md`).
const NOT_CITED: &[&str] = &["target", ".git"];

/// Files read for citations: sources, documentation, migrations, scripts.
const SOURCE_EXTENSIONS: &[&str] = &["rs", "md", "toml", "sql", "py", "sh"];
/// Extension-less scripts live here.
const SCRIPT_DIRS: &[&str] = &["scripts", ".ci"];

/// This file names missing documents on purpose (the list above, the message below).
const THIS_FILE: &str = "tests/doc_links.rs";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_source(path: &Path, root: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    if relative == Path::new(THIS_FILE) {
        return false;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => SOURCE_EXTENSIONS.contains(&ext),
        None => relative
            .components()
            .next()
            .is_some_and(|c| SCRIPT_DIRS.contains(&c.as_os_str().to_str().unwrap_or(""))),
    }
}

fn source_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !NOT_SOURCES.contains(&name) {
                source_files(&path, root, out);
            }
        } else if is_source(&path, root) {
            out.push(path);
        }
    }
}

/// A path-looking word of a text and the character after it.
struct Word<'a> {
    text: &'a str,
    next: Option<char>,
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./-".contains(c)
}

fn words(line: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (is_path_char(c) && i < line.len(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(Word {
                    text: &line[s..i],
                    next: line[i..].chars().next(),
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The citation a word makes, if any: a `*.md` file, or a path starting with one of the
/// repository's folders.
fn citation<'a>(word: &Word<'a>, top_folders: &[String]) -> Option<&'a str> {
    // `docs/x.md.` at the end of a sentence; a trailing `/` names a folder and stays.
    let text = word.text.trim_end_matches('.');
    let text = text.strip_prefix("./").unwrap_or(text);
    // Absolute paths and URLs are not in the repository; `cmd_*.rs`, `<hash>` and
    // `{dir}` are patterns, not paths.
    if text.is_empty() || text.starts_with('/') || matches!(word.next, Some('*' | '<' | '{' | '$'))
    {
        return None;
    }
    let first = text.split('/').next().unwrap_or("");
    if NOT_CITED.contains(&first) {
        return None;
    }
    let is_doc = text.ends_with(".md");
    // A file (`store/src/lib.rs`) or a folder written as one (`docs/adr/`); `auth/token` is
    // prose. `../x` is checked when it names a document: elsewhere it is test data
    // (`../../etc/passwd`) or a place beside the repository.
    let last = text.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let names_file_or_folder = text.ends_with('/') || last.contains('.');
    let is_repo_path =
        text.contains('/') && names_file_or_folder && top_folders.iter().any(|f| f == first);
    (is_doc || is_repo_path).then_some(text)
}

/// The nearest folder above `file` holding a `Cargo.toml`: the citing crate.
fn crate_dir(file: &Path, root: &Path) -> PathBuf {
    file.ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(root))
        .find(|d| d.join("Cargo.toml").is_file())
        .unwrap_or(root)
        .to_path_buf()
}

/// Where a cited path may start: the citing file's folder, its crate, the repository root,
/// then any crate of the workspace (code joins `tests/fixtures` to a crate's folder).
fn bases(file: &Path, root: &Path) -> Vec<PathBuf> {
    let mut bases = vec![
        file.parent().unwrap_or(root).to_path_buf(),
        crate_dir(file, root),
        root.to_path_buf(),
    ];
    let crates = std::fs::read_dir(root).expect("repository root");
    bases.extend(
        crates
            .map(|e| e.expect("entry").path())
            .filter(|d| d.join("Cargo.toml").is_file()),
    );
    bases
}

fn resolves(cited: &str, file: &Path, root: &Path) -> bool {
    let bases = bases(file, root);
    let root = root.canonicalize().expect("repository root");
    bases.iter().any(|base| {
        base.join(cited)
            .canonicalize()
            .is_ok_and(|found| found.starts_with(&root))
    })
}

/// The ADR numbers a line cites (`ADR 0029`, `ADRs 0016 and 0020` cite only the first).
fn adr_numbers(line: &str) -> Vec<&str> {
    line.match_indices("ADR ")
        .filter_map(|(i, _)| line.get(i + 4..i + 8))
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// Whether `docs/adr/` holds the record numbered `number` (`0029-….md`).
fn adr_exists(number: &str, root: &Path) -> bool {
    std::fs::read_dir(root.join("docs/adr"))
        .expect("docs/adr")
        .filter_map(|e| e.ok())
        .any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&format!("{number}-")) && name.ends_with(".md")
        })
}

fn outside_on_purpose(cited: &str) -> bool {
    OUTSIDE
        .iter()
        .any(|(name, _)| cited == *name || (name.ends_with('/') && cited.starts_with(name)))
}

/// Every broken citation of the repository, as `file:line: what`.
fn broken_citations() -> Vec<String> {
    let root = root();
    let top_folders: Vec<String> = std::fs::read_dir(&root)
        .expect("repository root")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    let mut files = Vec::new();
    source_files(&root, &root, &mut files);
    assert!(
        files.len() > 50,
        "only {} files found under {}",
        files.len(),
        root.display()
    );
    let mut broken = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let relative = file.strip_prefix(&root).unwrap_or(file);
        let frozen = FROZEN_MIGRATIONS.iter().any(|m| relative == Path::new(m));
        let shown = relative.display();
        for (n, line) in text.lines().enumerate() {
            for note in ["SPEC §", "ARCHITECTURE §"] {
                if line.contains(note) {
                    broken.push(format!(
                        "{shown}:{}: cites `{note}…`, which is not in the repository",
                        n + 1
                    ));
                }
            }
            for number in adr_numbers(line) {
                if !adr_exists(number, &root) {
                    broken.push(format!(
                        "{shown}:{}: cites ADR {number}, which docs/adr/ does not hold",
                        n + 1
                    ));
                }
            }
            for word in words(line) {
                let Some(cited) = citation(&word, &top_folders) else {
                    continue;
                };
                let tolerated = (frozen && cited == FROZEN_CITATION)
                    || NOT_CITATIONS
                        .iter()
                        .any(|(f, word, _)| relative == Path::new(f) && cited == *word);
                if !tolerated && !outside_on_purpose(cited) && !resolves(cited, file, &root) {
                    broken.push(format!("{shown}:{}: `{cited}` does not exist", n + 1));
                }
            }
        }
    }
    broken
}

#[test]
fn every_cited_document_and_path_exists() {
    let broken = broken_citations();
    assert!(
        broken.is_empty(),
        "{} citation(s) of documents or paths missing from the repository \
         (MSSanté facts: docs/mssante.md §1–§10; code layout: docs/architecture.md):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn citations_are_found_in_prose_code_and_links() {
    let top = ["docs", "store", "imap", "auth"].map(String::from);
    let cited = |line: &'static str| -> Vec<&'static str> {
        words(line)
            .iter()
            .filter_map(|w| citation(w, &top))
            .collect()
    };
    assert_eq!(cited("// see docs/mssante.md §3."), vec!["docs/mssante.md"]);
    assert_eq!(
        cited("[x](../BENCHMARKS.md), `SPEC.md`"),
        vec!["../BENCHMARKS.md", "SPEC.md"]
    );
    assert_eq!(
        cited("store/src/delivery.rs::deliver"),
        vec!["store/src/delivery.rs"]
    );
    assert_eq!(cited("in `docs/adr/`"), vec!["docs/adr/"]);
    // Patterns, URLs, absolute and unrelated paths are not citations.
    assert!(cited("imap/src/cmd_*.rs, blobs/ab/cd/<hash>").is_empty());
    assert!(
        cited("https://listeblanche.mssante.fr/schema /tmp/x.md target/imaptest.md").is_empty()
    );
    assert!(cited("store/src/{name}.rs, data/mssante.db").is_empty());
    assert!(
        cited("the auth/token URLs, docs/adr").is_empty(),
        "prose, not files"
    );
}

#[test]
fn a_missing_document_is_reported() {
    let root = root();
    let here = root.join(THIS_FILE);
    assert!(resolves("docs/architecture.md", &here, &root));
    assert!(resolves(
        "mssante.md",
        &root.join("docs/architecture.md"),
        &root
    ));
    assert!(resolves(
        "tests/fixtures/",
        &root.join("trust/src/lib.rs"),
        &root
    ));
    assert!(!resolves("SPEC.md", &here, &root));
    assert_eq!(adr_numbers("// ADR 0029 and ADR 12"), vec!["0029"]);
    assert!(adr_exists("0029", &root));
    assert!(!adr_exists("9999", &root), "no ADR numbered 9999");
    assert!(!resolves("docs/no-such-page.md", &here, &root));
    assert!(
        !resolves("../../etc/passwd", &here, &root),
        "outside the repository"
    );
}
