//! Running one script against a server, following imaptest's test-exec.c: set up the wanted
//! state, then send each command group on its connection and read only that connection until
//! every tagged reply arrived (other connections' input waits in their sockets, so their
//! untagged events are matched against their own next group, as imaptest does).

mod groups;
mod text;

use text::*;
pub use text::{quote, split_literals};

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
}
