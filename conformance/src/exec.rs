//! Running one script against a server, following imaptest's test-exec.c: set up the wanted
//! state, then send each command group on its connection and read only that connection until
//! every tagged reply arrived (other connections' input waits in their sockets, so their
//! untagged events are matched against their own next group, as imaptest does).

use crate::args::{self, Arg};
use crate::conn::{Conn, IoError, Resp, TlsMode, is_status};
use crate::matcher::{FULL, Vars};
use crate::mbox;
use crate::script::{Existence, Group, Messages, Script, State};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub struct Config {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: String,
    pub password: String,
    pub user2: Option<String>,
    pub password2: Option<String>,
    pub mailbox: String,
    pub timeout: Duration,
    pub verbose: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
    /// The script itself could not be read: a corpus or runner problem, not the server's.
    Error,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    /// 1-based command group number and the group count (imaptest's "command i/n").
    pub group: usize,
    pub groups: usize,
    /// Script line of the group's first command (0: the runner's own setup or LOGOUT).
    pub line: usize,
    /// The group's commands as sent (variables expanded).
    pub commands: Vec<String>,
    pub reason: String,
    pub expected: Option<String>,
    pub got: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub status: Status,
    /// Commands counted as extension commands (the test has a `capabilities:` header).
    pub extension: bool,
    pub capabilities: Vec<String>,
    pub skip_reason: Option<String>,
    pub commands_total: usize,
    pub commands_failed: usize,
    /// Groups never sent because the test was aborted (disconnection, timeout).
    pub commands_not_run: usize,
    pub failures: Vec<Failure>,
}

impl TestResult {
    pub fn new(script_name: &str, extension: bool, capabilities: Vec<String>) -> Self {
        TestResult {
            name: script_name.to_string(),
            status: Status::Passed,
            extension,
            capabilities,
            skip_reason: None,
            commands_total: 0,
            commands_failed: 0,
            commands_not_run: 0,
            failures: Vec::new(),
        }
    }
}

/// Why a test stopped before its last group.
enum Abort {
    Skip(String),
    Fail,
}

/// Per-group matching state (imaptest's cur_* fields).
#[derive(Default)]
struct GroupState {
    found: Vec<bool>,
    best: Vec<(usize, String)>,
    mismatches: usize,
    first_extra: Option<String>,
    failures: Vec<(String, Option<String>, Option<String>)>,
    sent: Vec<String>,
    tags: Vec<String>,
}

struct Pending {
    tag: String,
    cmd: usize,
    done: bool,
}

pub struct Exec<'a> {
    cfg: &'a Config,
    script: &'a Script,
    conns: Vec<Conn>,
    vars: Vars,
    source: Option<mbox::Source>,
    result: TestResult,
    gs: GroupState,
    group_idx: usize,
    in_group: bool,
}

/// Run one script. `next_id` numbers connections across the run, like imaptest's client ids.
pub async fn run(cfg: &Config, script: &Script, next_id: &mut u32) -> TestResult {
    let mut ex = Exec {
        cfg,
        script,
        conns: Vec::new(),
        vars: Vars::default(),
        source: None,
        result: TestResult::new(
            &script.name,
            script.is_extension(),
            script.capabilities.clone(),
        ),
        gs: GroupState::default(),
        group_idx: 0,
        in_group: false,
    };
    match ex.setup(next_id).await {
        Ok(()) => ex.run_groups().await,
        Err(Abort::Skip(reason)) => {
            ex.result.status = Status::Skipped;
            ex.result.skip_reason = Some(reason);
            ex.logout_all().await;
        }
        Err(Abort::Fail) => ex.result.commands_not_run = script.groups.len(),
    }
    if ex.result.status != Status::Skipped && ex.result.commands_failed > 0 {
        ex.result.status = Status::Failed;
    }
    ex.result
}

impl Exec<'_> {
    fn setup_fail(&mut self, reason: String) -> Abort {
        self.result.commands_total += 1;
        self.result.commands_failed += 1;
        self.result.failures.push(Failure {
            group: 0,
            groups: self.script.groups.len(),
            line: 0,
            commands: Vec::new(),
            reason: format!("test initialization failed: {reason}"),
            expected: None,
            got: None,
        });
        Abort::Fail
    }

    fn user_of(&self, i: usize) -> Option<(String, String)> {
        let pw2 = || {
            self.cfg
                .password2
                .clone()
                .unwrap_or_else(|| self.cfg.password.clone())
        };
        match self.script.users.get(i).cloned().flatten() {
            Some(u) if u == "$user2" => self.cfg.user2.clone().map(|u| (u, pw2())),
            Some(u) => Some((u, self.cfg.password.clone())),
            None => Some((self.cfg.user.clone(), self.cfg.password.clone())),
        }
    }

    async fn setup(&mut self, next_id: &mut u32) -> Result<(), Abort> {
        if self.script.require_user2 && self.cfg.user2.is_none() {
            return Err(Abort::Skip("needs a second user (--user2)".into()));
        }
        match mbox::Source::load(&self.script.mbox) {
            Ok(s) => self.source = Some(s),
            Err(e) if self.script.state >= State::Created => return Err(self.setup_fail(e)),
            Err(_) => {}
        }
        self.set_predefined_vars();
        for i in 0..self.script.connections {
            *next_id += 1;
            let c = Conn::open(
                &self.cfg.host,
                self.cfg.port,
                self.cfg.tls,
                *next_id,
                self.cfg.timeout,
                &self.cfg.mailbox,
            )
            .await
            .map_err(|e| self.setup_fail(format!("connection {}: {e}", i + 1)))?;
            self.conns.push(c);
            if self.conns[i].caps.is_empty() {
                self.simple(i, "CAPABILITY").await?;
            }
        }
        if self.script.state == State::NonAuth {
            return self.check_caps(0);
        }
        for i in 0..self.script.connections {
            self.login(i).await?;
        }
        self.check_caps(0)?;
        self.cleanup().await?;
        if self.script.state >= State::Created && !self.cfg.mailbox.eq_ignore_ascii_case("INBOX") {
            let cmd = format!("CREATE {}", quote(&self.cfg.mailbox));
            self.expect_ok(0, &cmd).await?;
        }
        if self.script.state >= State::Appended {
            self.append_initial().await?;
        }
        if self.script.state == State::Selected {
            for i in 0..self.script.connections {
                let cmd = format!("SELECT {}", quote(&self.cfg.mailbox));
                self.expect_ok(i, &cmd).await?;
            }
        }
        Ok(())
    }

    fn set_predefined_vars(&mut self) {
        for i in 0..self.script.connections {
            let Some((user, pw)) = self.user_of(i) else {
                continue;
            };
            let suffix = if i == 0 {
                String::new()
            } else {
                (i + 1).to_string()
            };
            let (name, domain) = match user.split_once('@') {
                Some((n, d)) => (n.to_string(), d.to_string()),
                None => (user.clone(), self.cfg.host.clone()),
            };
            self.vars.set(&format!("user{suffix}"), &user);
            self.vars.set(&format!("username{suffix}"), &name);
            self.vars.set(&format!("domain{suffix}"), &domain);
            self.vars.set(&format!("password{suffix}"), &pw);
        }
        self.vars.set("mailbox", &self.cfg.mailbox);
        self.vars
            .set("mailbox_url", &mailbox_url(&self.cfg.mailbox));
    }

    fn check_caps(&self, i: usize) -> Result<(), Abort> {
        let missing: Vec<&str> = self
            .script
            .capabilities
            .iter()
            .filter(|c| !self.conns[i].has_cap(c))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Abort::Skip(format!(
                "missing capabilities: {}",
                missing.join(" ")
            )))
        }
    }

    async fn login(&mut self, i: usize) -> Result<(), Abort> {
        if self.conns[i]
            .banner
            .as_ref()
            .is_some_and(|b| is_status(b, &["PREAUTH"]))
        {
            return Ok(());
        }
        let (user, pw) = self.user_of(i).unwrap_or_default();
        let cmd = format!("LOGIN {} {}", quote(&user), quote(&pw));
        self.conns[i].caps.clear();
        let (status, _) = self.simple(i, &cmd).await?;
        if !is_status(&status, &["OK"]) {
            let msg = format!("LOGIN as {user} failed: {}", args::to_string(&status));
            return Err(self.setup_fail(msg));
        }
        // The post-login capabilities decide whether the test runs.
        if self.conns[i].caps.is_empty() {
            self.simple(i, "CAPABILITY").await?;
        }
        Ok(())
    }

    /// State `auth` and beyond start from scratch: delete every `<mailbox>*` mailbox and
    /// subscription (children first, failures ignored: it may be a \Noselect parent).
    async fn cleanup(&mut self) -> Result<(), Abort> {
        let pattern = quote(&format!("{}*", self.cfg.mailbox));
        let mut deletes = self.listed(&format!("LIST \"\" {pattern}"), "LIST").await?;
        let mut unsubs = self.listed(&format!("LSUB \"\" {pattern}"), "LSUB").await?;
        let rev = |a: &String, b: &String| b.to_ascii_lowercase().cmp(&a.to_ascii_lowercase());
        deletes.sort_by(rev);
        unsubs.sort_by(rev);
        for (verb, names) in [("DELETE", deletes), ("UNSUBSCRIBE", unsubs)] {
            for name in names {
                let (status, _) = self.simple(0, &format!("{verb} {}", quote(&name))).await?;
                if is_status(&status, &["BAD"]) {
                    let msg = format!("{verb} {name}: {}", args::to_string(&status));
                    return Err(self.setup_fail(msg));
                }
            }
        }
        Ok(())
    }

    async fn listed(&mut self, cmd: &str, reply: &str) -> Result<Vec<String>, Abort> {
        let (status, untagged) = self.simple(0, cmd).await?;
        if !is_status(&status, &["OK"]) {
            let msg = format!("{cmd}: {}", args::to_string(&status));
            return Err(self.setup_fail(msg));
        }
        let mut names: Vec<String> = untagged
            .iter()
            .filter(|a| {
                a.first()
                    .and_then(Arg::atom)
                    .is_some_and(|w| w.eq_ignore_ascii_case(reply))
            })
            .filter_map(|a| a.get(3).and_then(Arg::astring).map(str::to_string))
            .collect();
        names.dedup();
        Ok(names)
    }

    async fn append_initial(&mut self) -> Result<(), Abort> {
        let mut left = match self.script.messages {
            Messages::Count(n) => n,
            Messages::All => usize::MAX,
        };
        while left > 0 {
            let Some(src) = self.source.as_mut() else {
                break;
            };
            if self.script.messages == Messages::All && src.eof() {
                break;
            }
            left -= 1;
            let m = src.next_message();
            let cmd = format!(
                "APPEND {} \"{}\" {{{}}}\r\n{}",
                quote(&self.cfg.mailbox),
                m.internal_date,
                m.body.chars().count(),
                m.body
            );
            self.expect_ok(0, &cmd).await?;
        }
        Ok(())
    }

    async fn expect_ok(&mut self, i: usize, cmd: &str) -> Result<(), Abort> {
        let (status, _) = self.simple(i, cmd).await?;
        if is_status(&status, &["OK"]) {
            return Ok(());
        }
        let shown = cmd.lines().next().unwrap_or(cmd).to_string();
        Err(self.setup_fail(format!("{shown}: {}", args::to_string(&status))))
    }

    /// Send one setup command and collect its untagged replies and tagged status.
    async fn simple(&mut self, i: usize, cmd: &str) -> Result<(Vec<Arg>, Vec<Vec<Arg>>), Abort> {
        let tag = self.conns[i].new_tag();
        let mut pending = vec![Pending {
            tag: tag.clone(),
            cmd: 0,
            done: false,
        }];
        let mut untagged = Vec::new();
        let mut status = None;
        let r = self
            .send_with_literals(
                i,
                &tag,
                cmd,
                &mut |_, r| match r {
                    Resp::Untagged(a) => untagged.push(a.clone()),
                    Resp::Tagged { args, .. } => status = Some(args.clone()),
                    Resp::Continuation => {}
                },
                &mut pending,
            )
            .await;
        let shown = cmd.lines().next().unwrap_or(cmd).to_string();
        if let Err(e) = r {
            return Err(self.setup_fail(format!("{shown}: {e}")));
        }
        while status.is_none() {
            match self.conns[i].read().await {
                Ok(resp) => {
                    self.track(i, &resp.resp);
                    match resp.resp {
                        Resp::Untagged(a) => untagged.push(a),
                        Resp::Tagged { tag: t, args } if t == tag => status = Some(args),
                        _ => {}
                    }
                }
                Err(e) => return Err(self.setup_fail(format!("{shown}: {e}"))),
            }
        }
        Ok((status.unwrap_or_default(), untagged))
    }

    /// Send a command whose text may embed `{n}\r\n` literals. With LITERAL+ (or LITERAL- for
    /// small ones) they go non-synchronising, as imaptest does; otherwise each waits for the
    /// server's `+`. Responses read while waiting go to `on_resp`.
    async fn send_with_literals(
        &mut self,
        i: usize,
        tag: &str,
        text: &str,
        on_resp: &mut dyn FnMut(&mut Self, &Resp),
        pending: &mut [Pending],
    ) -> Result<(), IoError> {
        let pieces = split_literals(text);
        let mut out = format!("{tag} ");
        for (head, lit) in pieces {
            let Some(lit) = lit else {
                out.push_str(&head);
                continue;
            };
            let plus = head.ends_with("+}");
            let base = head
                .strip_suffix("+}")
                .map(|h| format!("{h}}}"))
                .unwrap_or(head);
            let nonsync = plus
                || self.conns[i].has_cap("LITERAL+")
                || (self.conns[i].has_cap("LITERAL-") && lit.chars().count() <= 4096);
            if nonsync {
                out.push_str(base.strip_suffix('}').unwrap_or(&base));
                out.push_str("+}\r\n");
                out.push_str(&lit);
                continue;
            }
            out.push_str(&base);
            out.push_str("\r\n");
            self.conns[i].write(&args::to_bytes(&out)).await?;
            out.clear();
            if !self.wait_continuation(i, tag, on_resp, pending).await? {
                // The server answered the command instead of accepting the literal.
                return Ok(());
            }
            out.push_str(&lit);
        }
        out.push_str("\r\n");
        self.conns[i].write(&args::to_bytes(&out)).await
    }

    /// Read until `+` (true) or the tagged reply of `tag` (false).
    async fn wait_continuation(
        &mut self,
        i: usize,
        tag: &str,
        on_resp: &mut dyn FnMut(&mut Self, &Resp),
        pending: &mut [Pending],
    ) -> Result<bool, IoError> {
        loop {
            let r = self.conns[i].read().await?;
            self.track(i, &r.resp);
            if matches!(r.resp, Resp::Continuation) {
                return Ok(true);
            }
            on_resp(self, &r.resp);
            if let Resp::Tagged { tag: t, .. } = &r.resp {
                if let Some(p) = pending.iter_mut().find(|p| p.tag == *t) {
                    p.done = true;
                }
                if t == tag {
                    return Ok(false);
                }
            }
        }
    }

    /// Keep the connection's view of the mailbox: EXISTS, EXPUNGE, BYE, capabilities.
    fn track(&mut self, i: usize, resp: &Resp) {
        let Resp::Untagged(a) = resp else {
            if let Resp::Tagged { args, .. } = resp {
                self.conns[i].note_capabilities(args);
            }
            return;
        };
        self.conns[i].note_capabilities(a);
        if is_status(a, &["BYE"]) {
            self.conns[i].seen_bye = true;
        }
        let num = a
            .first()
            .and_then(Arg::atom)
            .and_then(|s| s.parse::<u32>().ok());
        let what = a.get(1).and_then(Arg::atom).map(str::to_ascii_uppercase);
        match (num, what.as_deref()) {
            (Some(n), Some("EXISTS")) => self.conns[i].msg_count = n,
            (Some(_), Some("EXPUNGE")) => {
                self.conns[i].msg_count = self.conns[i].msg_count.saturating_sub(1)
            }
            _ => {}
        }
    }

    async fn logout_all(&mut self) {
        for c in &mut self.conns {
            let tag = c.new_tag();
            let _ = c.write(format!("{tag} LOGOUT\r\n").as_bytes()).await;
        }
    }

    async fn run_groups(&mut self) {
        self.in_group = true;
        let total = self.script.groups.len();
        for gi in 0..total {
            self.group_idx = gi;
            let group = &self.script.groups[gi];
            let ok = self.run_group(group).await;
            self.finish_group(group);
            if !ok {
                self.result.commands_not_run = total - gi - 1;
                break;
            }
            if group.sleep_ms > 0 {
                tokio::time::sleep(Duration::from_millis(group.sleep_ms)).await;
            }
        }
    }

    fn fail(&mut self, reason: String, expected: Option<String>, got: Option<String>) {
        if self.cfg.verbose {
            eprintln!(
                "*** {} group {}: {reason}",
                self.script.name,
                self.group_idx + 1
            );
        }
        self.gs.failures.push((reason, expected, got));
    }

    /// Send the group and read its connection until every tagged reply is in. Returns false
    /// when the test cannot go on (disconnection, timeout).
    async fn run_group(&mut self, group: &Group) -> bool {
        let ci = group.conn;
        self.gs = GroupState {
            found: vec![false; group.untagged.len()],
            best: vec![(0, String::new()); group.untagged.len()],
            ..GroupState::default()
        };
        if ci >= self.conns.len() {
            self.fail(format!("connection {} does not exist", ci + 1), None, None);
            return false;
        }
        self.vars.reset_seqmap(self.conns[ci].msg_count);
        if group.commands.is_empty() {
            if let Some(banner) = self.conns[ci].banner.clone() {
                self.match_untagged(group, ci, &banner);
            }
            return true;
        }
        if self.conns[ci].closed {
            self.fail("connection already closed".into(), None, None);
            return false;
        }
        let mut pending = Vec::new();
        for (k, cmd) in group.commands.iter().enumerate() {
            let text = match self.vars.expand_all(&cmd.text, false) {
                Ok(t) => t,
                Err(e) => {
                    self.gs.sent.push(first_line(&cmd.text));
                    self.fail(format!("command not sent: {e}"), None, None);
                    continue;
                }
            };
            if cmd.line == 0 || text.eq_ignore_ascii_case("logout") || group.have_bye {
                self.conns[ci].logout_sent = true;
            }
            let text = self.prepare_command(ci, &text);
            self.gs.sent.push(first_line(&text));
            let tag = self.conns[ci].new_tag();
            self.gs.tags.push(tag.clone());
            pending.push(Pending {
                tag: tag.clone(),
                cmd: k,
                done: false,
            });
            let mut handler = |ex: &mut Self, r: &Resp| ex.on_response(group, ci, r, None);
            if let Err(e) = self
                .send_with_literals(ci, &tag, &text, &mut handler, &mut pending)
                .await
            {
                return self.io_failed(group, ci, e);
            }
        }
        while pending.iter().any(|p| !p.done) {
            let resp = match self.conns[ci].read().await {
                Ok(r) => r,
                Err(e) => return self.io_failed(group, ci, e),
            };
            if let Some(err) = &resp.parse_error {
                self.fail(
                    format!("malformed response ({err})"),
                    None,
                    Some(resp.raw.clone()),
                );
            }
            self.track(ci, &resp.resp);
            self.on_response(group, ci, &resp.resp, Some(&mut pending));
        }
        true
    }

    /// `append` and `append <mailbox> [flags] [date]` without a message take the next mbox
    /// message, like imaptest; a bare `append` also gets the mbox date as INTERNALDATE.
    fn prepare_command(&mut self, ci: usize, text: &str) -> String {
        let lower = text.to_ascii_lowercase();
        if (lower.starts_with("select ") || lower.starts_with("examine "))
            && let Some(name) = args::parse(&text[text.find(' ').unwrap_or(0)..])
                .ok()
                .and_then(|a| a.first().and_then(Arg::astring).map(str::to_string))
        {
            self.conns[ci].storage = name;
            self.conns[ci].msg_count = 0;
        }
        let bare = lower == "append";
        if !(bare || (lower.starts_with("append ") && !append_has_body(&text[7..]))) {
            return text.to_string();
        }
        let Some(m) = self.source.as_mut().map(|s| s.next_message()) else {
            return text.to_string();
        };
        let head = if bare {
            format!(
                "APPEND {} \"{}\"",
                quote(&self.conns[ci].storage),
                m.internal_date
            )
        } else {
            text.to_string()
        };
        format!("{head} {{{}}}\r\n{}", m.body.chars().count(), m.body)
    }

    fn io_failed(&mut self, group: &Group, ci: usize, e: IoError) -> bool {
        if matches!(e, IoError::Closed) && group.have_bye && self.conns[ci].seen_bye {
            // A BYE group: the only acceptable tagged expectation is "".
            for c in &group.commands {
                let any = c
                    .reply
                    .as_ref()
                    .is_some_and(|r| r.len() == 1 && r[0].astring() == Some(""));
                if !any {
                    let exp = c.reply.as_deref().map(args::to_string);
                    self.fail(
                        "connection closed after BYE: only \"\" allowed as tagged reply".into(),
                        exp,
                        None,
                    );
                }
            }
            return true;
        }
        let reason = match e {
            IoError::Closed => "unexpected disconnection".to_string(),
            IoError::Timeout => format!(
                "timeout: no tagged reply within {}s",
                self.cfg.timeout.as_secs()
            ),
            IoError::Other(e) => e,
        };
        self.fail(reason, None, None);
        false
    }

    fn on_response(
        &mut self,
        group: &Group,
        ci: usize,
        resp: &Resp,
        pending: Option<&mut Vec<Pending>>,
    ) {
        match resp {
            Resp::Untagged(a) => {
                self.match_untagged(group, ci, a);
                if let (Some(n), true) = (
                    a.first()
                        .and_then(Arg::atom)
                        .and_then(|s| s.parse::<u32>().ok()),
                    a.get(1)
                        .and_then(Arg::atom)
                        .is_some_and(|w| w.eq_ignore_ascii_case("EXPUNGE")),
                ) {
                    self.vars.expunge(n);
                }
            }
            Resp::Continuation => self.fail("unexpected continuation request".into(), None, None),
            Resp::Tagged { tag, args } => {
                let Some(pending) = pending else {
                    // Reply to an earlier command of this group while a literal waits:
                    // wait_continuation marks it done; match it here.
                    self.match_tagged(group, tag, args, None);
                    return;
                };
                self.match_tagged(group, tag, args, Some(pending));
            }
        }
    }

    fn match_tagged(
        &mut self,
        group: &Group,
        tag: &str,
        args: &[Arg],
        pending: Option<&mut Vec<Pending>>,
    ) {
        // Find the command by its tag: our tags encode the connection and the counter.
        let cmd_idx = match pending {
            Some(p) => match p.iter_mut().find(|p| p.tag == tag && !p.done) {
                Some(p) => {
                    p.done = true;
                    Some(p.cmd)
                }
                None => None,
            },
            None => self.tag_to_cmd(tag),
        };
        let Some(k) = cmd_idx else {
            self.fail(
                format!("unexpected tagged reply for tag {tag}"),
                None,
                Some(args::to_string(args)),
            );
            return;
        };
        let pat = group.commands[k].reply.clone().unwrap_or_default();
        self.vars.set("tag", tag);
        let m = self.vars.match_args(&pat, args, FULL, true);
        self.vars.remove("tag");
        if m == FULL {
            self.vars.commit();
        } else {
            self.vars.commit();
            let exp = args::to_string(&pat);
            let got = args::to_string(args);
            self.fail(
                format!("expected tagged reply '{exp}', got '{got}'"),
                Some(exp),
                Some(got),
            );
        }
    }

    /// While a literal waits, earlier pipelined commands may complete: map the tag back.
    fn tag_to_cmd(&self, tag: &str) -> Option<usize> {
        self.gs.tags.iter().position(|t| t == tag)
    }

    /// imaptest's `test_handle_untagged_match`.
    fn match_untagged(&mut self, group: &Group, ci: usize, args: &[Arg]) {
        if group.untagged.is_empty()
            && (self.script.ignore_extra_untagged || self.conns[ci].logout_sent)
        {
            return;
        }
        let prefix = is_status(args, &["OK", "NO", "BAD", "BYE"]);
        // `$tag` is the tag of the group's first command (none while checking the banner).
        let tag = self.gs.tags.first().cloned();
        let mut found_some = false;
        for (i, ut) in group.untagged.iter().enumerate() {
            if self.gs.found[i] {
                continue;
            }
            if let Some(t) = &tag {
                self.vars.set("tag", t);
            }
            let m = self.vars.match_args(&ut.args, args, FULL, prefix);
            if tag.is_some() {
                self.vars.remove("tag");
            }
            if m == FULL {
                if ut.existence == Existence::MustNotExist {
                    self.vars.rollback();
                    let pat = args::to_string(&args::without_directives(&ut.args));
                    let got = args::to_string(args);
                    self.fail(
                        "unexpected untagged match".into(),
                        Some(format!("no reply matching: {pat}")),
                        Some(got),
                    );
                    return;
                }
                self.gs.found[i] = true;
                found_some = true;
                self.vars.commit();
                if group.ordered {
                    break;
                }
                continue;
            }
            if self.gs.best[i].0 < m {
                self.gs.best[i] = (m, args::to_string(args));
            }
            self.vars.rollback();
            if group.ordered && ut.existence == Existence::MustExist {
                break;
            }
        }
        if !found_some {
            self.gs.mismatches += 1;
            if !self.script.ignore_extra_untagged && self.gs.first_extra.is_none() {
                self.gs.first_extra = Some(args::to_string(args));
            }
        }
    }

    /// Missing and extra untagged replies, then the score.
    fn finish_group(&mut self, group: &Group) {
        let missing: Vec<usize> = group
            .untagged
            .iter()
            .enumerate()
            .filter(|(i, u)| u.existence == Existence::MustExist && !self.gs.found[*i])
            .map(|(i, _)| i)
            .collect();
        if let Some(&first) = missing.first() {
            // Directives are matching instructions, not text the server should send.
            let unexpanded =
                args::to_string(&args::without_directives(&group.untagged[first].args));
            let expanded = self
                .vars
                .expand_all(&unexpanded, true)
                .unwrap_or_else(|_| unexpanded.clone());
            let best = self.gs.best[first].1.clone();
            self.fail(
                format!(
                    "missing {} untagged replies ({} mismatches); first unexpanded: {unexpanded}",
                    missing.len(),
                    self.gs.mismatches
                ),
                Some(expanded),
                Some(if best.is_empty() {
                    "(no similar reply)".into()
                } else {
                    best
                }),
            );
        }
        if let Some(extra) = self.gs.first_extra.take() {
            let n = self.gs.mismatches;
            self.fail(
                format!("{n} unexpected untagged replies"),
                None,
                Some(extra),
            );
        }
        self.result.commands_total += 1;
        if self.gs.failures.is_empty() {
            return;
        }
        self.result.commands_failed += 1;
        let line = group.commands.first().map_or(0, |c| c.line);
        for (reason, expected, got) in std::mem::take(&mut self.gs.failures) {
            self.result.failures.push(Failure {
                group: self.group_idx + 1,
                groups: self.script.groups.len(),
                line,
                commands: self.gs.sent.clone(),
                reason,
                expected: expected.map(|s| truncate(&args::printable(&s), 2000)),
                got: got.map(|s| truncate(&args::printable(&s), 2000)),
            });
        }
    }
}

/// Split command text at embedded literals: `(head ending in "{n}", Some(literal))` pieces,
/// then the tail `(text, None)` (imaptest's `command_get_cmdline`).
pub fn split_literals(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut head = String::new();
    while let Some(nl) = rest.find('\n') {
        let line = &rest[..nl];
        let line_nocr = line.strip_suffix('\r').unwrap_or(line);
        match crate::conn::literal_size(&args::to_bytes(line_nocr)) {
            Some(n) if rest[nl + 1..].chars().count() >= n && preceded_by_space(line_nocr) => {
                head.push_str(line_nocr);
                let lit = rest[nl + 1..].chars().take(n).collect::<String>();
                let lit_bytes: usize = lit.chars().count();
                let skip: usize = rest[nl + 1..]
                    .chars()
                    .take(lit_bytes)
                    .map(char::len_utf8)
                    .sum();
                out.push((std::mem::take(&mut head), Some(lit)));
                rest = &rest[nl + 1 + skip..];
            }
            _ => {
                head.push_str(&rest[..=nl]);
                rest = &rest[nl + 1..];
            }
        }
    }
    head.push_str(rest);
    out.push((head, None));
    out
}

fn preceded_by_space(line: &str) -> bool {
    let Some(open) = line.rfind('{') else {
        return false;
    };
    let before = &line[..open];
    let before = before.strip_suffix('~').unwrap_or(before);
    before.ends_with(' ') || before.is_empty()
}

/// `mailbox [(flags)] ["date"]` followed by a literal or CATENATE: the command carries its
/// own message.
fn append_has_body(args_text: &str) -> bool {
    let Ok(a) = args::parse(args_text) else {
        return false;
    };
    let mut i = 0;
    if a.is_empty() {
        return false;
    }
    if matches!(a.get(i + 1), Some(Arg::List(_))) {
        i += 1;
    }
    if matches!(a.get(i + 1), Some(Arg::Str(_))) {
        i += 1;
    }
    match a.get(i + 1) {
        Some(Arg::Literal(_)) => true,
        Some(Arg::Atom(s)) => s.eq_ignore_ascii_case("catenate"),
        _ => false,
    }
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The mailbox as an IMAP URL path segment (RFC 5092), for `$mailbox_url`.
fn mailbox_url(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn first_line(text: &str) -> String {
    let line = text.split("\r\n").next().unwrap_or(text);
    let more = if line.len() < text.len() { " …" } else { "" };
    format!("{}{more}", truncate(&args::printable(line), 300))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}… ({} chars)", s.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_split_out() {
        let p = split_literals("append box {3}\r\nabc (x ~{2}\r\n\0y)");
        assert_eq!(p[0], ("append box {3}".into(), Some("abc".into())));
        assert_eq!(p[1], (" (x ~{2}".into(), Some("\0y".into())));
        assert_eq!(p[2], (")".into(), None));
        assert_eq!(split_literals("noop"), vec![("noop".to_string(), None)]);
        let p = split_literals(&args::latin1(b"a {2}\r\n\xe4\xe5 b"));
        assert_eq!(p[0].1.as_deref(), Some(args::latin1(b"\xe4\xe5").as_str()));
        assert_eq!(p[1].0, " b");
    }

    #[test]
    fn append_body_detection() {
        assert!(!append_has_body("box"));
        assert!(!append_has_body(
            "box (\\seen) \"1-Jan-2020 00:00:00 +0000\""
        ));
        assert!(append_has_body("box {3}\r\nabc"));
        assert!(append_has_body("box (\\seen) {3}\r\nabc"));
        assert!(append_has_body("box catenate (text {1}\r\nx)"));
    }

    #[test]
    fn url_and_quote() {
        assert_eq!(mailbox_url("imap test"), "imap%20test");
        assert_eq!(quote("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
