//! No module import loop inside a crate: for every crate of the workspace (each library,
//! binary, test, example and bench target, as `cargo metadata` lists them), the modules
//! that name each other's paths form no cycle. A loop means neither module can be read,
//! changed or tested without the other; the fix is a leaf module both use.
//!
//! How the graph is built (from the text, no compiler):
//! - A node is a module with its own file (`foo.rs`, `foo/mod.rs`, the crate root); inline
//!   modules (`mod tests { … }`) belong to their file's node, but `super::` and `self::`
//!   inside them resolve from where they stand.
//! - An edge `A → B`: A's file names a path that resolves to B (`use crate::b::X;`,
//!   `crate::b::f()`, `super::x`, `self::c::Y`, or `c::f()` for a child `c` of A). A path
//!   resolves to the deepest module it walks through; a path through a module that re-exports
//!   the item (`pub use session::Session;` in `lib.rs`) resolves to the module that defines it.
//! - The rule for parents and children. Up is free: naming an item of an ancestor
//!   (`crate::Context` defined in `lib.rs`, `super::Check` defined in `mod.rs`) is not an
//!   edge, since a parent is its children's shared vocabulary and the place that dispatches
//!   to them. Declaring a child (`mod c;`) and re-exporting from a descendant (`pub use c::X;`,
//!   any `pub(…) use`) are not edges either. Everything else is: a parent calling into its
//!   child (`c::f()`), siblings, cousins. So a child using items DEFINED in its parent is no
//!   loop, while `cli → doctor → doctor::local → cli` (a cousin reaching back) is one, and so
//!   is a child reaching a sibling through its parent's re-export (the path resolves to the
//!   sibling that defines the item).
//!
//! - Unit tests (`#[cfg(test)] mod tests`) are left out: a test may drive its module through
//!   the crate's entry point (a command's parser tested on whole command lines).
//!
//! Not seen: items a parent uses by bare name after re-exporting them, method calls on a
//! type whose `impl` blocks are spread over modules (one file per command family adds
//! methods to the session), and paths built inside `macro_rules!` from fragments.

mod module_graph;

use std::path::PathBuf;

use module_graph::{CrateGraph, Tok, tokenize};

// ---------------------------------------------------------------------------------------
// The workspace

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every crate root of the workspace: `(package target, root file)`.
fn crate_roots() -> Vec<(String, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(root())
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let mut roots = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        for target in package["targets"].as_array().expect("targets") {
            let name = format!(
                "{} ({} {})",
                package["name"].as_str().expect("package name"),
                target["kind"][0].as_str().expect("target kind"),
                target["name"].as_str().expect("target name")
            );
            let file = PathBuf::from(target["src_path"].as_str().expect("src_path"));
            roots.push((name, file));
        }
    }
    roots
}

/// Every module loop of every crate of the workspace, described.
fn workspace_cycles() -> (usize, Vec<String>) {
    let root = root();
    let roots = crate_roots();
    let mut found = Vec::new();
    for (name, file) in &roots {
        let graph = CrateGraph::load(file);
        for component in graph.cycles() {
            found.push(format!("{name}:\n{}", graph.describe(&component, &root)));
        }
    }
    (roots.len(), found)
}

#[test]
fn no_module_import_loop_inside_a_crate() {
    let (crates, cycles) = workspace_cycles();
    assert!(crates > 20, "only {crates} crates found by cargo metadata");
    assert!(
        cycles.is_empty(),
        "{} module import loop(s) inside crates (break each with a leaf module both sides \
         use; the rule is in tests/module_cycles.rs):\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The checker finds loops, and only loops

/// A crate written to a temporary folder: `(relative path, source)`.
fn graph_of(files: &[(&str, &str)]) -> (tempfile::TempDir, CrateGraph) {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (path, source) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("folder")).expect("folder");
        std::fs::write(&file, source).expect("write");
    }
    let graph = CrateGraph::load(&dir.path().join("lib.rs"));
    (dir, graph)
}

fn loops(files: &[(&str, &str)]) -> Vec<Vec<String>> {
    let (_dir, graph) = graph_of(files);
    graph
        .cycles()
        .into_iter()
        .map(|c| c.into_iter().map(|m| graph.name(m)).collect())
        .collect()
}

#[test]
fn two_siblings_importing_each_other_are_a_loop() {
    let found = loops(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        ("b.rs", "pub struct B;\nfn f() { let _ = crate::a::A; }\n"),
    ]);
    assert_eq!(found, vec![vec!["crate::a", "crate::b"]]);
}

#[test]
fn a_loop_through_a_parent_re_export_and_super_is_found() {
    // `a` reaches `b` through the root's re-export, `b` reaches `a` with `super::`.
    let found = loops(&[
        ("lib.rs", "mod a;\nmod b;\npub use b::B;\n"),
        ("a.rs", "use crate::B;\npub struct A;\n"),
        ("b.rs", "pub struct B;\nuse super::a::{self, A};\n"),
    ]);
    assert_eq!(found, vec![vec!["crate::a", "crate::b"]]);
}

#[test]
fn children_using_their_parent_that_only_declares_and_re_exports_them_are_no_loop() {
    let found = loops(&[
        (
            "lib.rs",
            "mod cmd;\npub mod session;\npub use session::Session;\n\
             pub(crate) use cmd::run as run_command;\npub struct Context;\n",
        ),
        ("session.rs", "use crate::Context;\npub struct Session;\n"),
        (
            "cmd/mod.rs",
            "mod fetch;\npub use fetch::fetch;\nuse super::Context;\n\
             pub fn run() {}\nfn dispatch() { fetch::fetch(todo!(), &Context) }\n",
        ),
        (
            "cmd/fetch.rs",
            "use super::super::session::Session;\nuse crate::Context;\n\
             pub fn fetch(_: &Session, _: &Context) { super::run() }\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::cmd::fetch;\n}\n",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_cousin_reaching_back_through_a_parent_that_calls_it_is_a_loop() {
    let found = loops(&[
        ("lib.rs", "mod cli;\nmod doctor;\n"),
        (
            "cli.rs",
            "pub fn is_initialised() {}\nfn run() { crate::doctor::run() }\n",
        ),
        (
            "doctor/mod.rs",
            "mod local;\npub fn run() { local::check() }\n",
        ),
        (
            "doctor/local.rs",
            "pub fn check() { crate::cli::is_initialised() }\n",
        ),
    ]);
    assert_eq!(
        found,
        vec![vec!["crate::cli", "crate::doctor", "crate::doctor::local"]]
    );
}

#[test]
fn paths_in_comments_strings_and_inline_test_modules_are_not_edges() {
    let found = loops(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        (
            "a.rs",
            "// crate::b::B\n/* crate::b::B */\nconst S: &str = \"crate::b::B\";\n\
             const R: &str = r#\"crate::b::\"B\"#;\nconst C: char = '\"';\n\
             fn f<'a>(x: &'a str) -> &'a str { x }\npub struct A;\n",
        ),
        ("b.rs", "use crate::a::A;\nmod tests { use super::*; }\n"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn unit_tests_driving_a_module_through_the_entry_point_are_no_loop() {
    let found = loops(&[
        ("lib.rs", "mod command;\nmod copy;\n"),
        (
            "command.rs",
            "pub fn parse() { crate::copy::parse_copy() }\n",
        ),
        (
            "copy.rs",
            "pub fn parse_copy() {}\n#[cfg(test)]\nmod tests {\n    use crate::command::parse;\n}\n",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
    let found = loops(&[
        ("lib.rs", "mod command;\nmod copy;\n"),
        (
            "command.rs",
            "pub fn parse() { crate::copy::parse_copy() }\n",
        ),
        (
            "copy.rs",
            "pub fn parse_copy() {}\nmod helpers {\n    use crate::command::parse;\n}\n",
        ),
    ]);
    assert_eq!(
        found,
        vec![vec!["crate::command", "crate::copy"]],
        "not a test module"
    );
}

#[test]
fn the_tokenizer_keeps_paths_and_drops_literals() {
    let words: Vec<String> = tokenize("use crate::x; // crate::y\nlet s = \"a::b\"; 'c'; b'\\n';")
        .into_iter()
        .filter_map(|t| match t.tok {
            Tok::Ident(w) => Some(w),
            Tok::PathSep => Some("::".into()),
            Tok::Punct(_) => None,
        })
        .collect();
    assert_eq!(words, ["use", "crate", "::", "x", "let", "s"]);
}
