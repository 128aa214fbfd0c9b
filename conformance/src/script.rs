//! Parser for imaptest's scripted test format (`scripted_test.md`), following the semantics of
//! imaptest's `test-parser.c`: header, command groups (methods 1–3, pipelining with `tagN`),
//! untagged expectations `*` / `!` / `?`, `{{{ }}}` multi-line literals (`~{{{` for literal8),
//! `!ifenv`/`!ifnenv`/`!else`/`!endif`, `!ordered`, `!sleep`, and the default list directives.

use crate::args::{self, Arg};
use std::path::{Path, PathBuf};

const MAX_CONNECTIONS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    NonAuth,
    Auth,
    Created,
    Appended,
    Selected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existence {
    MustExist,
    MustNotExist,
    MayExist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Messages {
    Count(usize),
    /// `messages: all`: every message of the mbox once.
    All,
}

#[derive(Clone, Debug)]
pub struct Untagged {
    pub args: Vec<Arg>,
    pub existence: Existence,
}

#[derive(Clone, Debug)]
pub struct Command {
    /// Command text without tag, still unexpanded (`$vars`), literals embedded.
    pub text: String,
    /// Script line (0 for the LOGOUT the runner appends).
    pub line: usize,
    /// Script tag (`tag1` → 1), 0 when not pipelined.
    pub tag: u32,
    /// Expected tagged reply: `ok`, `no`, `bad` or `""` (anything), plus an optional prefix.
    pub reply: Option<Vec<Arg>>,
}

#[derive(Clone, Debug, Default)]
pub struct Group {
    /// Connection index, 0-based.
    pub conn: usize,
    pub commands: Vec<Command>,
    pub untagged: Vec<Untagged>,
    pub ordered: bool,
    pub have_bye: bool,
    pub sleep_ms: u64,
    replies_pending: usize,
}

#[derive(Clone, Debug)]
pub struct Script {
    pub name: String,
    pub mbox: PathBuf,
    pub capabilities: Vec<String>,
    pub connections: usize,
    pub ignore_extra_untagged: bool,
    pub messages: Messages,
    pub state: State,
    /// Per-connection user from `user N:` headers (`None`: the default user).
    pub users: Vec<Option<String>>,
    pub require_user2: bool,
    pub groups: Vec<Group>,
}

impl Script {
    /// imaptest counts a test's commands as "extension" commands exactly when the test has a
    /// `capabilities:` header (test-exec.c: `required_capabilities == NULL` → base).
    pub fn is_extension(&self) -> bool {
        !self.capabilities.is_empty()
    }
}

/// Load `<dir>/<name>`, with `<name>.mbox` or else `default.mbox` as its message source.
pub fn load(path: &Path, env: &dyn Fn(&str) -> bool) -> Result<Script, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let own = PathBuf::from(format!("{}.mbox", path.display()));
    let mbox = if own.exists() {
        own
    } else {
        path.with_file_name("default.mbox")
    };
    parse(&name, mbox, &args::latin1(&bytes), env)
}

/// Parse a script. `env` answers `!ifenv NAME` (true when the variable exists).
pub fn parse(
    name: &str,
    mbox: PathBuf,
    text: &str,
    env: &dyn Fn(&str) -> bool,
) -> Result<Script, String> {
    let mut p = ScriptParser {
        script: Script {
            name: name.to_string(),
            mbox,
            capabilities: Vec::new(),
            connections: 1,
            ignore_extra_untagged: true,
            messages: Messages::Count(0),
            state: State::Selected,
            users: Vec::new(),
            require_user2: false,
            groups: Vec::new(),
        },
        ifenv: Vec::new(),
        skip: false,
        env,
    };
    p.parse_text(text)?;
    p.finish()
}

struct IfEnv {
    line: usize,
    else_seen: bool,
    outer_skip: bool,
}

struct ScriptParser<'a> {
    script: Script,
    ifenv: Vec<IfEnv>,
    skip: bool,
    env: &'a dyn Fn(&str) -> bool,
}

/// Joins `{{{ … }}}` blocks into single logical lines with an embedded `{n}\r\n` literal.
struct Multiline {
    buf: String,
    start_pos: usize,
    last_line_end: usize,
    binary: bool,
}

impl Multiline {
    /// Begin a literal for a line ending in `{{{` (or `~{{{`).
    fn open(&mut self, line: &str) {
        let mut head = &line[..line.len() - 3];
        self.binary = head.ends_with('~');
        if self.binary {
            head = &head[..head.len() - 1];
        }
        self.buf.push_str(head);
        self.start_pos = self.buf.len();
        self.last_line_end = self.buf.len();
    }

    /// A content line. imaptest joins text literal lines with CRLF; in a `~{{{` literal the
    /// line keeps its own bytes (a CR in the file stays) and gets a bare LF.
    fn push(&mut self, line: &str) {
        self.buf.push_str(line);
        self.last_line_end = self.buf.len();
        self.buf.push_str(if self.binary { "\n" } else { "\r\n" });
    }

    /// `}}}`: the line break before it is not part of the literal.
    fn close(&mut self) {
        self.buf.truncate(self.last_line_end);
        // Sizes count bytes: one char per byte in these strings, not UTF-8 length.
        let size = self.buf[self.start_pos..].chars().count();
        let prefix = format!("{}{{{size}}}\r\n", if self.binary { "~" } else { "" });
        self.buf.insert_str(self.start_pos, &prefix);
    }
}

fn is_untagged(line: &str) -> Option<Existence> {
    if line.starts_with("* ") {
        Some(Existence::MustExist)
    } else if line.starts_with("! ") {
        Some(Existence::MustNotExist)
    } else if line.starts_with("? ") {
        Some(Existence::MayExist)
    } else {
        None
    }
}

/// Split "`[tagN] ok|no|bad|"" rest`" (imaptest's `test_get_cmd_reply`): returns the tag (0 if
/// none), the expected reply word if present, and the rest of the line.
fn split_reply(line: &str) -> (u32, Option<Vec<Arg>>, &str) {
    let mut rest = line;
    let mut tag = 0;
    let first = rest.split(' ').next().unwrap_or("");
    if first.len() > 3
        && first[..3].eq_ignore_ascii_case("tag")
        && let (Ok(n), Some(sp)) = (first[3..].parse::<u32>(), rest.find(' '))
        && n > 0
    {
        tag = n;
        rest = &rest[sp + 1..];
    }
    let word = rest.split(' ').next().unwrap_or("");
    let reply = match word.to_ascii_lowercase().as_str() {
        "ok" | "no" | "bad" => Some(word.to_ascii_lowercase()),
        "\"\"" => Some(String::new()),
        _ => None,
    };
    let Some(reply) = reply else {
        return (tag, None, rest);
    };
    rest = &rest[word.len()..];
    if let Some(r) = rest.strip_prefix(' ') {
        rest = r;
    }
    (tag, Some(vec![Arg::Atom(reply)]), rest)
}

fn conn_prefix(line: &str) -> Option<(usize, &str)> {
    let (first, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    first
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .map(|n| (n, rest))
}

impl ScriptParser<'_> {
    fn parse_text(&mut self, text: &str) -> Result<(), String> {
        let mut header = true;
        let mut ml: Option<Multiline> = None;
        let mut start_line = 0;
        let mut lines: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            lines.pop();
        } else if !text.is_empty() {
            return Err("last line doesn't end with LF".into());
        }
        for (i, raw) in lines.into_iter().enumerate() {
            let linenum = i + 1;
            let logical: String = if let Some(m) = ml.as_mut() {
                let Some(after) = raw.strip_prefix("}}}") else {
                    m.push(raw);
                    continue;
                };
                m.close();
                if after.ends_with("{{{") {
                    m.open(after);
                    continue;
                }
                m.buf.push_str(after);
                ml.take().map(|m| m.buf).unwrap_or_default()
            } else {
                start_line = linenum;
                if raw.is_empty() {
                    header = false;
                    continue;
                }
                if raw.starts_with('#') {
                    continue;
                }
                if raw.ends_with("{{{") {
                    let mut m = Multiline {
                        buf: String::new(),
                        start_pos: 0,
                        last_line_end: 0,
                        binary: false,
                    };
                    m.open(raw);
                    ml = Some(m);
                    continue;
                }
                raw.to_string()
            };
            let res = if header {
                self.header_line(&logical)
            } else {
                self.command_line(start_line, &logical)
            };
            res.map_err(|e| format!("line {linenum}: {e}"))?;
        }
        if ml.is_some() {
            return Err(format!("multiline literal at line {start_line} not ended"));
        }
        Ok(())
    }

    fn header_line(&mut self, line: &str) -> Result<(), String> {
        let (key, value) = line.split_once(':').ok_or("missing ':' in header")?;
        let key = key.trim_end_matches(' ').to_ascii_lowercase();
        let value = value.trim_start_matches(' ');
        let s = &mut self.script;
        match key.as_str() {
            "capabilities" => {
                s.capabilities = value.split_whitespace().map(str::to_string).collect()
            }
            "connections" => {
                s.connections = value.trim().parse().unwrap_or(0);
                if s.connections == 0 || s.connections > MAX_CONNECTIONS {
                    return Err("invalid connection count".into());
                }
            }
            "ignore_extra_untagged" => s.ignore_extra_untagged = value.starts_with('y'),
            "messages" => {
                s.messages = if value.trim() == "all" {
                    Messages::All
                } else {
                    Messages::Count(value.trim().parse().unwrap_or(0))
                }
            }
            "state" => {
                s.state = match value.trim().to_ascii_lowercase().as_str() {
                    "nonauth" => State::NonAuth,
                    "auth" => State::Auth,
                    "created" => State::Created,
                    "appended" => State::Appended,
                    "selected" => State::Selected,
                    _ => return Err("unknown state value".into()),
                }
            }
            k if k.starts_with("user ") => {
                let idx: usize = k[5..].trim().parse().map_err(|_| "bad user index")?;
                if idx == 0 || idx > MAX_CONNECTIONS {
                    return Err("bad user index".into());
                }
                if s.users.len() < idx {
                    s.users.resize(idx, None);
                }
                // imaptest only knows `$user2` here: the second configured user.
                s.users[idx - 1] = Some(if value == "$user2" || value == "${user2}" {
                    s.require_user2 = true;
                    "$user2".to_string()
                } else {
                    value.to_string()
                });
            }
            _ => return Err(format!("unknown setting {key:?}")),
        }
        Ok(())
    }

    /// Returns true when the line was a preprocessor directive.
    fn preprocess(&mut self, line: &str) -> Result<bool, String> {
        let neg = line.starts_with("!ifnenv ");
        if neg || line.starts_with("!ifenv ") {
            let var = line.split_once(' ').map(|x| x.1).unwrap_or("");
            let have = (self.env)(var.trim());
            self.ifenv.push(IfEnv {
                line: 0,
                else_seen: false,
                outer_skip: self.skip,
            });
            if have == neg {
                self.skip = true;
            }
            return Ok(true);
        }
        if line == "!else" {
            let top = self.ifenv.last_mut().ok_or("!else without !ifenv")?;
            if top.else_seen {
                return Err("!else already seen".into());
            }
            top.else_seen = true;
            if !top.outer_skip {
                self.skip = !self.skip;
            }
            return Ok(true);
        }
        if line == "!endif" {
            let top = self.ifenv.pop().ok_or("!endif without !ifenv")?;
            self.skip = top.outer_skip;
            return Ok(true);
        }
        Ok(false)
    }

    /// Group-level directives and continuation lines (untagged expectations, tagged replies of
    /// method 2/3). Returns true when the line was consumed.
    fn continue_group(&mut self, line: &str) -> Result<bool, String> {
        let multi = self.script.connections > 1;
        let Some(group) = self.script.groups.last_mut() else {
            return Ok(false);
        };
        if let Some(v) = line.strip_prefix("!sleep ") {
            group.sleep_ms = parse_interval_ms(v)?;
            return Ok(true);
        }
        if line.starts_with("!output ") {
            return Ok(true);
        }
        if line == "!ordered" {
            group.ordered = true;
            return Ok(true);
        }
        if let Some(existence) = is_untagged(line) {
            let ut = parse_untagged(&line[2..], existence)?;
            if existence == Existence::MustExist && reply_name(&ut.args).starts_with("bye") {
                group.have_bye = true;
            }
            group.untagged.push(ut);
            return Ok(true);
        }
        if group.replies_pending == 0 {
            return Ok(false);
        }
        let mut rest = line;
        let mut conn = 0;
        if multi && let Some((n, r)) = conn_prefix(line) {
            conn = n;
            rest = r;
        }
        let (tag, reply, _) = split_reply(rest);
        if reply.is_none() {
            return Ok(false);
        }
        if multi {
            if conn == 0 {
                return Err("missing client index".into());
            }
            if conn - 1 != group.conn {
                return Err("reply for wrong connection".into());
            }
        }
        let cmd = group
            .commands
            .iter_mut()
            .find(|c| c.tag == tag)
            .ok_or("reply for unknown tag")?;
        if cmd.reply.is_some() {
            return Err("command already has a reply".into());
        }
        let mut parsed = args::parse(rest)?;
        if tag != 0 {
            parsed.remove(0);
        }
        cmd.reply = Some(parsed);
        group.replies_pending -= 1;
        Ok(true)
    }

    fn command_line(&mut self, linenum: usize, line: &str) -> Result<(), String> {
        if self.preprocess(line)? || self.skip {
            return Ok(());
        }
        if self.continue_group(line)? {
            return Ok(());
        }
        let mut line = line;
        let mut conn = 0;
        if self.script.connections > 1 {
            let (n, rest) = conn_prefix(line).ok_or("missing client index")?;
            if n > MAX_CONNECTIONS {
                return Err("too many connections".into());
            }
            conn = n - 1;
            self.script.connections = self.script.connections.max(n);
            line = rest;
        }
        let (tag, reply, rest) = split_reply(line);
        let start_new = self
            .script
            .groups
            .last()
            .is_none_or(|g| g.replies_pending == 0);
        if start_new {
            self.script.groups.push(Group {
                conn,
                ..Group::default()
            });
        }
        let group = self.script.groups.last_mut().expect("group pushed above");
        if !group.commands.is_empty() && group.conn != conn {
            return Err("all pipelined commands must use the same connection".into());
        }
        if tag == 0 && !group.commands.is_empty() {
            return Err("missing reply from previous command group".into());
        }
        if tag != 0 && group.commands.iter().any(|c| c.tag == tag) {
            return Err("tag reused within command group".into());
        }
        if group.commands.is_empty()
            && let Some(existence) = is_untagged(rest)
        {
            // A group without commands checks the server's greeting.
            group.untagged.push(parse_untagged(&rest[2..], existence)?);
            return Ok(());
        }
        if reply.is_none() {
            group.replies_pending += 1;
        }
        group.commands.push(Command {
            text: rest.to_string(),
            line: linenum,
            tag,
            reply,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Script, String> {
        if let Some(top) = self.ifenv.first() {
            return Err(format!("!ifenv at line {} not closed", top.line));
        }
        let Some(last) = self.script.groups.last() else {
            return Err("no commands in file".into());
        };
        if last.replies_pending > 0 {
            return Err("missing reply for the last command".into());
        }
        // Like imaptest, log out on connection 1 unless the script does it itself.
        let has_logout = self.script.groups.iter().any(|g| {
            g.have_bye
                || g.commands
                    .iter()
                    .any(|c| c.text.eq_ignore_ascii_case("logout"))
        });
        if !has_logout {
            self.script.groups.push(Group {
                conn: 0,
                commands: vec![Command {
                    text: "logout".into(),
                    line: 0,
                    tag: 0,
                    reply: Some(vec![Arg::Atom("ok".into())]),
                }],
                ..Group::default()
            });
        }
        Ok(self.script)
    }
}

fn parse_interval_ms(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else {
        (v, 1000)
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("invalid !sleep value {v}"))
}

/// The reply name of an untagged line: `LIST`, or `FETCH` in `1 FETCH (…)`.
fn reply_name(args: &[Arg]) -> String {
    let Some(first) = args.first().and_then(Arg::atom) else {
        return String::new();
    };
    let name = if first.starts_with('$') || first.starts_with(|c: char| c.is_ascii_digit()) {
        args.get(1).and_then(Arg::atom).unwrap_or("")
    } else {
        first
    };
    name.to_ascii_lowercase()
}

fn parse_untagged(line: &str, existence: Existence) -> Result<Untagged, String> {
    let mut args = args::parse(line)?;
    let name = reply_name(&args);
    if name.starts_with("bye") && existence == Existence::MayExist {
        return Err("? BYE not supported".into());
    }
    add_directives(&mut args, &name, &mut Vec::new())?;
    Ok(Untagged { args, existence })
}

/// Position of a list while walking the expectation tree: its index in the parent list and
/// the atom that precedes it (`FLAGS` in `FETCH (FLAGS (…))`).
#[derive(Clone)]
struct ListPos {
    index: usize,
    prev_atom: Option<String>,
}

/// Validate explicit `$!` directives and insert imaptest's defaults where a list has none:
/// `LIST (flags)` / `LSUB (flags)` → `$!unordered`, `STATUS box (…)` → `$!unordered=2`,
/// `n FETCH (…)` → `$!unordered=2`, and FETCH's `FLAGS (…)` → `$!unordered $!noextra
/// $!ignore=\recent $!ignore=$HasAttachment $!ignore=$HasNoAttachment`.
fn add_directives(list: &mut Vec<Arg>, name: &str, path: &mut Vec<ListPos>) -> Result<(), String> {
    let mut chain = 1usize;
    let mut explicit = 0;
    for a in list.iter() {
        let Some(d) = a.atom().and_then(|s| s.strip_prefix("$!")) else {
            break;
        };
        if let Some(n) = d.strip_prefix("unordered=") {
            chain = n.parse().map_err(|_| "broken $!unordered directive")?;
        } else if !(d == "unordered"
            || d == "ordered"
            || d == "noextra"
            || d == "extra"
            || d.starts_with("ignore=")
            || d.starts_with("ban="))
        {
            return Err(format!("unknown directive: $!{d}"));
        }
        explicit += 1;
    }
    if explicit == 0 {
        for d in default_directives(name, path) {
            list.insert(0, Arg::Atom(d.to_string()));
        }
    }
    let directives = list
        .iter()
        .take_while(|a| a.atom().is_some_and(|s| s.starts_with("$!")))
        .count();
    if chain == 0 || !(list.len() - directives).is_multiple_of(chain) {
        return Err(format!("invalid list argument count, chain size={chain}"));
    }
    let mut prev_atom: Option<String> = None;
    for (i, a) in list.iter_mut().enumerate() {
        if let Some(s) = a.atom() {
            prev_atom = Some(s.to_ascii_lowercase());
        }
        if let Arg::List(sub) = a {
            path.push(ListPos {
                index: if chain == 1 { i } else { i % chain },
                prev_atom: prev_atom.clone(),
            });
            add_directives(sub, name, path)?;
            path.pop();
        }
    }
    Ok(())
}

fn default_directives(name: &str, path: &[ListPos]) -> &'static [&'static str] {
    match (name, path) {
        ("list" | "lsub", [p]) if p.index == 1 => &["$!unordered"],
        ("status" | "fetch", [p]) if p.index == 2 => &["$!unordered=2"],
        ("fetch", [outer, inner])
            if outer.index == 2 && inner.prev_atom.as_deref() == Some("flags") =>
        {
            &[
                "$!ignore=$HasNoAttachment",
                "$!ignore=$HasAttachment",
                "$!ignore=\\recent",
                "$!noextra",
                "$!unordered",
            ]
        }
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Script, String> {
        parse("t", PathBuf::from("t.mbox"), text, &|v| v == "HAVE_FOO")
    }

    #[test]
    fn header_and_methods() {
        let s = parse_str(
            "capabilities: X Y\nconnections: 2\nstate: auth\nmessages: all\n\n\
             1 ok select $mailbox\n* 0 exists\n2 fetch 1 uid\n2 ok [read-write]\n",
        )
        .unwrap();
        assert_eq!(s.capabilities, vec!["X", "Y"]);
        assert_eq!(
            (s.connections, s.state, s.messages),
            (2, State::Auth, Messages::All)
        );
        assert!(s.is_extension());
        assert_eq!(s.groups.len(), 3, "two groups plus the appended logout");
        assert_eq!(s.groups[0].untagged.len(), 1);
        let c = &s.groups[1].commands[0];
        assert_eq!((s.groups[1].conn, c.text.as_str()), (1, "fetch 1 uid"));
        assert_eq!(
            args::to_string(c.reply.as_ref().unwrap()),
            "ok [read-write]"
        );
        assert_eq!(s.groups[2].commands[0].text, "logout");
    }

    #[test]
    fn pipelined_tags() {
        let s = parse_str("state: auth\n\ntag1 status a (messages)\ntag2 noop\n* status a (messages 0)\ntag2 ok\ntag1 no\nok logout\n").unwrap();
        let g = &s.groups[0];
        assert_eq!(g.commands.len(), 2);
        assert_eq!(args::to_string(g.commands[0].reply.as_ref().unwrap()), "no");
        assert_eq!(g.untagged.len(), 1);
        assert_eq!(s.groups.len(), 2, "explicit logout: nothing appended");
    }

    #[test]
    fn literal_blocks() {
        let s =
            parse_str("\nok append box {{{\nab\ncd\n}}} x\n* 1 fetch (body[] ~{{{\n3\r\n\n}}})\n")
                .unwrap();
        assert_eq!(s.groups[0].commands[0].text, "append box {6}\r\nab\r\ncd x");
        let Arg::List(l) = &s.groups[0].untagged[0].args[2] else {
            panic!()
        };
        assert_eq!(l.last(), Some(&Arg::Literal("3\r\n".into())));
        // 8-bit bytes count once each in the literal size.
        let s = parse_str(&args::latin1(
            b"\nok x\n* 1 fetch (body[1] ~{{{\n\0\xe4\n\n}}})\n",
        ))
        .unwrap();
        let Arg::List(l) = &s.groups[0].untagged[0].args[2] else {
            panic!()
        };
        assert_eq!(l.last(), Some(&Arg::Literal(args::latin1(b"\0\xe4\n"))));
    }

    #[test]
    fn default_directives_inserted() {
        let s =
            parse_str("\nok fetch 1 flags\n* 1 fetch (flags (\\seen) envelope ($!ordered a))\n")
                .unwrap();
        let shown = args::to_string(&s.groups[0].untagged[0].args);
        assert_eq!(
            shown,
            "1 fetch ($!unordered=2 flags ($!unordered $!noextra $!ignore=\\recent \
             $!ignore=$HasAttachment $!ignore=$HasNoAttachment \\seen) envelope ($!ordered a))"
        );
        let s = parse_str("\nok list \"\" *\n* list () \"/\" x\n").unwrap();
        assert_eq!(
            args::to_string(&s.groups[0].untagged[0].args),
            "list ($!unordered) \"/\" x"
        );
        assert!(parse_str("\nok x\n* 1 fetch ($!unordered=2 uid)\n").is_err());
        assert!(parse_str("\nok x\n* x ($!bogus)\n").is_err());
    }

    #[test]
    fn ifenv_and_errors() {
        let s = parse_str(
            "\n!ifenv HAVE_FOO\nok a\n!else\nok b\n!endif\n!ifnenv HAVE_FOO\nok c\n!endif\n",
        )
        .unwrap();
        let texts: Vec<_> = s
            .groups
            .iter()
            .map(|g| g.commands[0].text.as_str())
            .collect();
        assert_eq!(texts, vec!["a", "logout"]);
        assert!(
            parse_str("\nfetch 1 uid\n").is_err(),
            "missing tagged reply"
        );
        assert!(
            parse_str("connections: 2\n\nok noop\n").is_err(),
            "missing connection number"
        );
        assert!(
            parse_str("\nok a {{{\nx\n").is_err(),
            "unterminated literal"
        );
        assert!(parse_str("bogus: 1\n\nok a\n").is_err());
    }

    #[test]
    fn bye_group_suppresses_auto_logout() {
        let s = parse_str("state: nonauth\n\nok logout\n* bye\n").unwrap();
        assert!(s.groups[0].have_bye);
        assert_eq!(s.groups.len(), 1);
    }
}
