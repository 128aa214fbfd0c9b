//! Running the command groups of a script: send, read that connection until the tagged
//! replies arrive, match untagged and tagged replies (imaptest's test-exec.c).

use super::*;

impl Exec<'_> {
    pub(super) async fn logout_all(&mut self) {
        for c in &mut self.conns {
            let tag = c.new_tag();
            let _ = c.write(format!("{tag} LOGOUT\r\n").as_bytes()).await;
        }
    }

    pub(super) async fn run_groups(&mut self) {
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
