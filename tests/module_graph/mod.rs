//! The module graph of one crate, built from its sources' text, and its loops. The rule
//! deciding what is an edge is in `tests/module_cycles.rs`.

mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use tokens::{Tok, tokenize};
use tokens::{Token, ident, is_punct, is_sep};

pub type ModId = usize;

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

pub struct CrateGraph {
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
    pub fn load(root_file: &Path) -> CrateGraph {
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
        let mut nesting = Nesting::new(module);
        let mut declared = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            if nesting.brace(&tokens[i].tok) {
                i += 1;
                continue;
            }
            match &tokens[i].tok {
                Tok::Ident(w) if w == "mod" => {
                    if let Some(name) = ident(tokens.get(i + 1)) {
                        let current = nesting.current();
                        let child = self.add_module(current, name);
                        self.modules[child].test = is_cfg_test_before(&tokens, i);
                        if is_punct(tokens.get(i + 2), '{') {
                            self.modules[child].file_module = self.modules[current].file_module;
                            nesting.enter(child);
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
        let mut nesting = Nesting::new(source.module);
        let mut i = 0;
        while i < tokens.len() {
            if nesting.brace(&tokens[i].tok) {
                i += 1;
                continue;
            }
            let context = nesting.current();
            match &tokens[i].tok {
                Tok::Ident(w) if w == "mod" && is_punct(tokens.get(i + 2), '{') => {
                    let name = ident(tokens.get(i + 1)).expect("module name");
                    nesting.enter(self.modules[context].children[name]);
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

    pub fn name(&self, module: ModId) -> String {
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
    pub fn cycles(&self) -> Vec<Vec<ModId>> {
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
    pub fn describe(&self, component: &[ModId], root: &Path) -> String {
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

/// Which inline module the tokens being read stand in, followed by brace depth.
struct Nesting {
    /// Each open module with the depth inside its `{`; the file's module first.
    stack: Vec<(ModId, usize)>,
    depth: usize,
}

impl Nesting {
    fn new(file_module: ModId) -> Self {
        Nesting {
            stack: vec![(file_module, 0)],
            depth: 0,
        }
    }

    fn current(&self) -> ModId {
        self.stack.last().expect("the file's module").0
    }

    /// Follows `{` and `}`, leaving an inline module at its closing brace; `false` for any
    /// other token.
    fn brace(&mut self, tok: &Tok) -> bool {
        match tok {
            Tok::Punct('{') => self.depth += 1,
            Tok::Punct('}') => {
                self.depth = self.depth.saturating_sub(1);
                if self.stack.len() > 1 && self.stack.last().is_some_and(|(_, d)| *d > self.depth) {
                    self.stack.pop();
                }
            }
            _ => return false,
        }
        true
    }

    /// Enters inline module `child`, whose `{` is the token after its name.
    fn enter(&mut self, child: ModId) {
        self.depth += 1;
        self.stack.push((child, self.depth));
    }
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
