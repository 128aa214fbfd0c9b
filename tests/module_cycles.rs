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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The tokens of a Rust source that matter for paths: identifiers, `::` and punctuation;
/// comments, string, char and number literals and lifetimes are dropped.
fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&chars, i, &mut line),
            '\'' => i = skip_char_or_lifetime(&chars, i),
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match (word.as_str(), at(i)) {
                    ("r" | "br" | "cr", '"' | '#') if is_raw_string(&chars, i) => {
                        i = skip_raw_string(&chars, i, &mut line);
                    }
                    ("r", '#') => {} // a raw identifier: `r#type` reads as `type`
                    ("b" | "c", '"') => i = skip_string(&chars, i, &mut line),
                    ("b", '\'') => i = skip_char_or_lifetime(&chars, i),
                    _ => out.push(Token {
                        tok: Tok::Ident(word),
                        line,
                    }),
                }
            }
            ':' if at(i + 1) == ':' => {
                out.push(Token {
                    tok: Tok::PathSep,
                    line,
                });
                i += 2;
            }
            c => {
                out.push(Token {
                    tok: Tok::Punct(c),
                    line,
                });
                i += 1;
            }
        }
    }
    out
}

/// Skips `"…"` starting at `i` (the quote); returns the index after the closing quote.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

fn is_raw_string(chars: &[char], mut i: usize) -> bool {
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"')
}

/// Skips `#…#"…"#…#` starting at `i` (after the `r`).
fn skip_raw_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < chars.len() {
        if chars[i] == '\n' {
            *line += 1;
        }
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// Skips a char literal (`'a'`, `'\n'`, `'\u{e9}'`) or a lifetime (`'a`) at `i`.
fn skip_char_or_lifetime(chars: &[char], i: usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let mut j = i + 2;
        while j < chars.len() && chars[j] != '\'' {
            j += 1;
        }
        return j + 1;
    }
    if chars.get(i + 2) == Some(&'\'') {
        return i + 3;
    }
    let mut j = i + 1;
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    j
}

fn ident(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn is_punct(t: Option<&Token>, c: char) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::Punct(p)) if *p == c)
}

fn is_sep(t: Option<&Token>) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::PathSep))
}

// ---------------------------------------------------------------------------------------
// Modules of one crate

type ModId = usize;

struct Module {
    /// `["session"]` for `crate::session`; empty for the crate root.
    path: Vec<String>,
    parent: Option<ModId>,
    children: BTreeMap<String, ModId>,
    /// The module with its own file this one belongs to (itself, unless inline).
    file_module: ModId,
    /// Where `mod x;` inside this module looks for `x.rs` and `x/mod.rs`.
    child_dir: PathBuf,
    /// `pub use` items: the name they are known by here, and the path they re-export.
    reexports: BTreeMap<String, Vec<String>>,
    /// Declared under `#[cfg(test)]`: unit tests, left out of the graph.
    test: bool,
}

struct FileSource {
    module: ModId,
    file: PathBuf,
    tokens: Vec<Token>,
}

/// Why an edge exists: the first place that made it.
#[derive(Clone, Debug)]
struct Cause {
    line: usize,
    path: String,
}

struct CrateGraph {
    modules: Vec<Module>,
    files: Vec<FileSource>,
    /// Edges between file modules, with the first place each comes from.
    edges: BTreeMap<(ModId, ModId), Cause>,
}

/// A path written in a file, with the module it is written in.
struct Written {
    context: ModId,
    segments: Vec<String>,
    line: usize,
    /// `pub use`: a re-export.
    reexport: bool,
    /// The name a `use` binds (`as` alias or last segment); `None` outside `use`.
    binds: Option<String>,
}

impl CrateGraph {
    fn load(root_file: &Path) -> CrateGraph {
        let mut graph = CrateGraph {
            modules: vec![Module {
                path: Vec::new(),
                parent: None,
                children: BTreeMap::new(),
                file_module: 0,
                child_dir: root_file.parent().expect("crate root folder").to_path_buf(),
                reexports: BTreeMap::new(),
                test: false,
            }],
            files: Vec::new(),
            edges: BTreeMap::new(),
        };
        graph.load_file(0, root_file);
        let written: Vec<Written> = (0..graph.files.len())
            .flat_map(|f| graph.paths_written(f))
            .collect();
        for w in written.iter().filter(|w| w.reexport) {
            if let Some(name) = &w.binds {
                graph.modules[w.context]
                    .reexports
                    .insert(name.clone(), w.segments.clone());
            }
        }
        for w in &written {
            graph.add_edge(w);
        }
        graph
    }

    fn load_file(&mut self, module: ModId, file: &Path) {
        let src = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let tokens = tokenize(&src);
        // `mod x;` and `mod x { … }`, with the inline module each stands in.
        let mut stack: Vec<(ModId, usize)> = vec![(module, 0)];
        let mut depth = 0;
        let mut declared = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i].tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if stack.len() > 1 && stack.last().is_some_and(|(_, d)| *d == depth + 1) {
                        stack.pop();
                    }
                }
                Tok::Ident(w) if w == "mod" => {
                    if let Some(name) = ident(tokens.get(i + 1)) {
                        let current = stack.last().expect("module").0;
                        let child = self.add_module(current, name);
                        self.modules[child].test = is_cfg_test_before(&tokens, i);
                        if is_punct(tokens.get(i + 2), '{') {
                            self.modules[child].file_module = self.modules[current].file_module;
                            depth += 1;
                            stack.push((child, depth));
                            i += 3;
                            continue;
                        }
                        if is_punct(tokens.get(i + 2), ';') {
                            declared.push(child);
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.files.push(FileSource {
            module,
            file: file.to_path_buf(),
            tokens,
        });
        for child in declared {
            let name = self.modules[child].path.last().expect("named").clone();
            let parent = self.modules[child].parent.expect("parent");
            let dir = self.modules[parent].child_dir.clone();
            let flat = dir.join(format!("{name}.rs"));
            let nested = dir.join(&name).join("mod.rs");
            let found = if flat.is_file() { flat } else { nested };
            self.modules[child].child_dir = dir.join(&name);
            self.modules[child].file_module = child;
            if found.is_file() {
                self.load_file(child, &found);
            }
        }
    }

    fn add_module(&mut self, parent: ModId, name: &str) -> ModId {
        let id = self.modules.len();
        let mut path = self.modules[parent].path.clone();
        path.push(name.to_string());
        let child_dir = self.modules[parent].child_dir.join(name);
        self.modules.push(Module {
            path,
            parent: Some(parent),
            children: BTreeMap::new(),
            file_module: id,
            child_dir,
            reexports: BTreeMap::new(),
            test: false,
        });
        self.modules[parent].children.insert(name.to_string(), id);
        id
    }

    /// Every path of file `f` that may name a module of the crate.
    fn paths_written(&self, f: usize) -> Vec<Written> {
        let source = &self.files[f];
        let tokens = &source.tokens;
        let mut out = Vec::new();
        let mut stack: Vec<(ModId, usize)> = vec![(source.module, 0)];
        let mut depth = 0;
        let mut i = 0;
        while i < tokens.len() {
            let context = stack.last().expect("module").0;
            match &tokens[i].tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if stack.len() > 1 && stack.last().is_some_and(|(_, d)| *d == depth + 1) {
                        stack.pop();
                    }
                }
                Tok::Ident(w) if w == "mod" && is_punct(tokens.get(i + 2), '{') => {
                    let name = ident(tokens.get(i + 1)).expect("module name");
                    let child = self.modules[context].children[name];
                    depth += 1;
                    stack.push((child, depth));
                    i += 3;
                    continue;
                }
                Tok::Ident(w) if w == "use" => {
                    let reexport = is_pub_before(tokens, i);
                    let line = tokens[i].line;
                    i += 1;
                    let mut trees = Vec::new();
                    parse_use_tree(tokens, &mut i, Vec::new(), &mut trees);
                    for (segments, binds) in trees {
                        out.push(Written {
                            context,
                            segments,
                            line,
                            reexport,
                            binds: Some(binds),
                        });
                    }
                    continue;
                }
                Tok::Ident(w)
                    if is_sep(tokens.get(i + 1)) && !is_sep(tokens.get(i.wrapping_sub(1))) =>
                {
                    let starts_path = matches!(w.as_str(), "crate" | "super" | "self")
                        || self.modules[context].children.contains_key(w);
                    if starts_path && !is_punct(tokens.get(i.wrapping_sub(1)), '.') {
                        let line = tokens[i].line;
                        let mut segments = vec![w.clone()];
                        i += 1;
                        while is_sep(tokens.get(i)) {
                            match ident(tokens.get(i + 1)) {
                                Some(s) => segments.push(s.to_string()),
                                None => break,
                            }
                            i += 2;
                        }
                        out.push(Written {
                            context,
                            segments,
                            line,
                            reexport: false,
                            binds: None,
                        });
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        out
    }

    /// The module a path leads to from `context`: the deepest module it walks through, or
    /// the module defining an item re-exported where the path ends. `None`: outside the crate.
    fn resolve(&self, context: ModId, segments: &[String], hops: usize) -> Option<ModId> {
        let (first, rest) = segments.split_first()?;
        let mut module = match first.as_str() {
            "crate" => 0,
            "self" => context,
            "super" => self.modules[context].parent?,
            name => *self.modules[context].children.get(name)?,
        };
        for (k, segment) in rest.iter().enumerate() {
            match segment.as_str() {
                "super" => module = self.modules[module].parent?,
                "self" | "*" => {}
                name => {
                    if let Some(child) = self.modules[module].children.get(name) {
                        module = *child;
                        continue;
                    }
                    let last = k + 1 == rest.len();
                    if let Some(target) = self.modules[module].reexports.get(name)
                        && hops < 8
                    {
                        let mut followed = target.clone();
                        if !last {
                            followed.extend(rest[k + 1..].iter().cloned());
                        }
                        return self.resolve(module, &followed, hops + 1);
                    }
                    return Some(module);
                }
            }
        }
        Some(module)
    }

    fn is_descendant(&self, mut module: ModId, of: ModId) -> bool {
        while let Some(parent) = self.modules[module].parent {
            if parent == of {
                return true;
            }
            module = parent;
        }
        false
    }

    fn is_test(&self, module: ModId) -> bool {
        self.modules[module].test
            || self.modules[module]
                .parent
                .is_some_and(|parent| self.is_test(parent))
    }

    fn add_edge(&mut self, w: &Written) {
        if self.is_test(w.context) {
            return;
        }
        let Some(target) = self.resolve(w.context, &w.segments, 0) else {
            return;
        };
        // The rule for parents: re-exporting from a descendant, and naming an ancestor's
        // items, are not edges.
        if (w.reexport && self.is_descendant(target, w.context))
            || self.is_descendant(w.context, target)
        {
            return;
        }
        let from = self.modules[w.context].file_module;
        let to = self.modules[target].file_module;
        if from != to {
            self.edges.entry((from, to)).or_insert_with(|| Cause {
                line: w.line,
                path: w.segments.join("::"),
            });
        }
    }

    fn name(&self, module: ModId) -> String {
        match self.modules[module].path.as_slice() {
            [] => "crate".to_string(),
            path => format!("crate::{}", path.join("::")),
        }
    }

    fn file_of(&self, module: ModId) -> &Path {
        &self
            .files
            .iter()
            .find(|f| f.module == module)
            .expect("file module")
            .file
    }

    /// Strongly connected components of more than one module (Tarjan).
    fn cycles(&self) -> Vec<Vec<ModId>> {
        let nodes: Vec<ModId> = self.files.iter().map(|f| f.module).collect();
        let mut next: BTreeMap<ModId, Vec<ModId>> = BTreeMap::new();
        for (from, to) in self.edges.keys() {
            next.entry(*from).or_default().push(*to);
        }
        let mut tarjan = Tarjan {
            next: &next,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            counter: 0,
            found: Vec::new(),
        };
        for n in nodes {
            if !tarjan.index.contains_key(&n) {
                tarjan.visit(n);
            }
        }
        tarjan.found.retain(|c| c.len() > 1);
        tarjan.found
    }

    /// One cycle, written as the edges that close it with the place each comes from.
    fn describe(&self, component: &[ModId], root: &Path) -> String {
        let shown = |m: ModId| {
            let file = self.file_of(m);
            file.strip_prefix(root)
                .unwrap_or(file)
                .display()
                .to_string()
        };
        let mut lines = vec![format!(
            "  loop between {}:",
            component
                .iter()
                .map(|m| self.name(*m))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        for ((from, to), cause) in &self.edges {
            if component.contains(from) && component.contains(to) {
                lines.push(format!(
                    "    {} → {}: `{}` at {}:{}",
                    self.name(*from),
                    self.name(*to),
                    cause.path,
                    shown(*from),
                    cause.line
                ));
            }
        }
        lines.join("\n")
    }
}

/// `#[cfg(test)]` right before the `mod` at token `i` (a `pub` between them allowed).
fn is_cfg_test_before(tokens: &[Token], mut i: usize) -> bool {
    if i > 0 && ident(tokens.get(i - 1)) == Some("pub") {
        i -= 1;
    }
    let Some(start) = i.checked_sub(7) else {
        return false;
    };
    let words: Vec<String> = tokens[start..i]
        .iter()
        .map(|t| match &t.tok {
            Tok::Ident(w) => w.clone(),
            Tok::Punct(c) => c.to_string(),
            Tok::PathSep => "::".to_string(),
        })
        .collect();
    words == ["#", "[", "cfg", "(", "test", ")", "]"]
}

/// `pub use`, `pub(crate) use`, `pub(super) use` before token `i`.
fn is_pub_before(tokens: &[Token], i: usize) -> bool {
    if i == 0 {
        return false;
    }
    if ident(tokens.get(i - 1)) == Some("pub") {
        return true;
    }
    if is_punct(tokens.get(i - 1), ')') {
        let mut j = i - 1;
        while j > 0 && !is_punct(tokens.get(j), '(') {
            j -= 1;
        }
        return j > 0 && ident(tokens.get(j - 1)) == Some("pub");
    }
    false
}

/// Parses a use tree at `*i` (after `use`, or inside braces) into full paths with the name
/// each binds; stops after the tree (at `,`, `}` or past `;`).
fn parse_use_tree(
    tokens: &[Token],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    let mut segments = prefix;
    if is_sep(tokens.get(*i)) {
        *i += 1;
    }
    loop {
        match tokens.get(*i).map(|t| &t.tok) {
            Some(Tok::Punct('{')) => {
                *i += 1;
                while *i < tokens.len() && !is_punct(tokens.get(*i), '}') {
                    parse_use_tree(tokens, i, segments.clone(), out);
                    if is_punct(tokens.get(*i), ',') {
                        *i += 1;
                    }
                }
                *i += 1;
                break;
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                segments.push("*".to_string());
                out.push((segments, "*".to_string()));
                break;
            }
            Some(Tok::Ident(name)) => {
                *i += 1;
                if name == "self" && !segments.is_empty() {
                    // `use crate::reply::{self}`: the module itself, bound by its own name.
                } else {
                    segments.push(name.clone());
                }
                if is_sep(tokens.get(*i)) {
                    *i += 1;
                    continue;
                }
                let mut binds = segments.last().cloned().unwrap_or_default();
                if ident(tokens.get(*i)) == Some("as") {
                    binds = ident(tokens.get(*i + 1)).unwrap_or("_").to_string();
                    *i += 2;
                }
                out.push((segments, binds));
                break;
            }
            _ => break,
        }
    }
    if is_punct(tokens.get(*i), ';') {
        *i += 1;
    }
}

struct Tarjan<'a> {
    next: &'a BTreeMap<ModId, Vec<ModId>>,
    index: BTreeMap<ModId, usize>,
    low: BTreeMap<ModId, usize>,
    stack: Vec<ModId>,
    on_stack: BTreeSet<ModId>,
    counter: usize,
    found: Vec<Vec<ModId>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: ModId) {
        self.index.insert(v, self.counter);
        self.low.insert(v, self.counter);
        self.counter += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        for &w in self.next.get(&v).map(Vec::as_slice).unwrap_or(&[]) {
            if !self.index.contains_key(&w) {
                self.visit(w);
                let low = self.low[&v].min(self.low[&w]);
                self.low.insert(v, low);
            } else if self.on_stack.contains(&w) {
                let low = self.low[&v].min(self.index[&w]);
                self.low.insert(v, low);
            }
        }
        if self.low[&v] == self.index[&v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(&w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort();
            self.found.push(component);
        }
    }
}

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
    let graph = CrateGraph::load(&dir.path().join("src/lib.rs"));
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
        ("src/lib.rs", "mod a;\nmod b;\n"),
        ("src/a.rs", "use crate::b::B;\npub struct A;\n"),
        (
            "src/b.rs",
            "pub struct B;\nfn f() { let _ = crate::a::A; }\n",
        ),
    ]);
    assert_eq!(found, vec![vec!["crate::a", "crate::b"]]);
}

#[test]
fn a_loop_through_a_parent_re_export_and_super_is_found() {
    // `a` reaches `b` through the root's re-export, `b` reaches `a` with `super::`.
    let found = loops(&[
        ("src/lib.rs", "mod a;\nmod b;\npub use b::B;\n"),
        ("src/a.rs", "use crate::B;\npub struct A;\n"),
        ("src/b.rs", "pub struct B;\nuse super::a::{self, A};\n"),
    ]);
    assert_eq!(found, vec![vec!["crate::a", "crate::b"]]);
}

#[test]
fn children_using_their_parent_that_only_declares_and_re_exports_them_are_no_loop() {
    let found = loops(&[
        (
            "src/lib.rs",
            "mod cmd;\npub mod session;\npub use session::Session;\n\
             pub(crate) use cmd::run as run_command;\npub struct Context;\n",
        ),
        (
            "src/session.rs",
            "use crate::Context;\npub struct Session;\n",
        ),
        (
            "src/cmd/mod.rs",
            "mod fetch;\npub use fetch::fetch;\nuse super::Context;\n\
             pub fn run() {}\nfn dispatch() { fetch::fetch(todo!(), &Context) }\n",
        ),
        (
            "src/cmd/fetch.rs",
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
        ("src/lib.rs", "mod cli;\nmod doctor;\n"),
        (
            "src/cli.rs",
            "pub fn is_initialised() {}\nfn run() { crate::doctor::run() }\n",
        ),
        (
            "src/doctor/mod.rs",
            "mod local;\npub fn run() { local::check() }\n",
        ),
        (
            "src/doctor/local.rs",
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
        ("src/lib.rs", "mod a;\nmod b;\n"),
        (
            "src/a.rs",
            "// crate::b::B\n/* crate::b::B */\nconst S: &str = \"crate::b::B\";\n\
             const R: &str = r#\"crate::b::\"B\"#;\nconst C: char = '\"';\n\
             fn f<'a>(x: &'a str) -> &'a str { x }\npub struct A;\n",
        ),
        (
            "src/b.rs",
            "use crate::a::A;\nmod tests { use super::*; }\n",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn unit_tests_driving_a_module_through_the_entry_point_are_no_loop() {
    let found = loops(&[
        ("src/lib.rs", "mod command;\nmod copy;\n"),
        (
            "src/command.rs",
            "pub fn parse() { crate::copy::parse_copy() }\n",
        ),
        (
            "src/copy.rs",
            "pub fn parse_copy() {}\n#[cfg(test)]\nmod tests {\n    use crate::command::parse;\n}\n",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
    let found = loops(&[
        ("src/lib.rs", "mod command;\nmod copy;\n"),
        (
            "src/command.rs",
            "pub fn parse() { crate::copy::parse_copy() }\n",
        ),
        (
            "src/copy.rs",
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
