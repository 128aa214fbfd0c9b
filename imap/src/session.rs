//! The IMAP session: connection I/O (lines and literals), states (RFC 9051 §3), dispatch to
//! one file per command family, and untagged updates about the selected mailbox.

use std::net::SocketAddr;

use mssante_net::Conn;
use mssante_store::{Bal, FolderChanged};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::parse::{Command, Request, parse_request};
use crate::view::{Changes, SelectedMailbox};
use crate::{Context, ListenerKind};

pub(crate) use mssante_net::ReadStop;
use mssante_net::{Line, READ_CHUNK, take_line};

/// Buffers larger than this are released once empty.
const MAX_KEPT_BUFFER: usize = 64 * 1024;

/// What reading a command gave.
pub(crate) enum Incoming {
    Command(Vec<u8>),
    /// A line longer than the limit (read and dropped).
    LineTooLong,
    /// A synchronising literal over the limit: refused before it is sent.
    LiteralTooBig(Vec<u8>),
    /// A non-synchronising literal over the limit: the client sends it anyway, so the
    /// connection is closed (RFC 7888 §4).
    NonSyncTooBig,
}

/// Extensions the client turned on with ENABLE (RFC 5161).
#[derive(Default)]
pub(crate) struct Enabled {
    pub condstore: bool,
    pub qresync: bool,
    pub utf8: bool,
    pub rev2: bool,
}

pub(crate) enum Flow {
    Continue,
    Close,
}

pub struct Session<T> {
    pub(crate) conn: Conn<T>,
    pub(crate) rbuf: Vec<u8>,
    pub(crate) wbuf: Vec<u8>,
    pub(crate) ctx: Context,
    /// Which listener accepted the connection (for logs).
    pub(crate) kind: ListenerKind,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    /// The client certificate of this TLS connection, checked against `[tls]
    /// client_ca_file`: what AUTHENTICATE EXTERNAL logs in with.
    pub(crate) client_cert: Option<mssante_auth::ClientCertificate>,
    pub(crate) bal: Option<Bal>,
    /// Who the session acts as and what is delegated to it (`access.rs`).
    pub(crate) access: crate::state::SessionAccess,
    pub(crate) selected: Option<SelectedMailbox>,
    pub(crate) enabled: Enabled,
    /// Searches kept alive with RETURN (UPDATE) (RFC 5267 §4).
    pub(crate) contexts: Vec<crate::state::SearchContext>,
    /// COMPRESS=DEFLATE once the client turned it on (RFC 4978).
    pub(crate) deflate: Option<Box<crate::state::Deflate>>,
    /// The NOTIFY set in force (RFC 5465), if any.
    pub(crate) notify: Option<crate::cmd::notify_state::NotifyState>,
    /// A delegate's read traces queued and not yet known durable (ADR 0035).
    pub(crate) traces: Vec<mssante_store::QueuedTrace>,
    /// Changes to the selected folder, grants, and (with NOTIFY) every folder (ADR 0057).
    pub(crate) changes: mssante_store::ChangeFeed,
    /// A change to the selected folder arrived and was not reported yet.
    pending_change: bool,
    /// The tagged completion of the command being answered: written after the untagged
    /// updates that belong to the command (RFC 9051 §7), or by the next flush.
    pub(crate) completion: Option<Vec<u8>>,
    /// The response code of the write the store refused or failed in this command (set by
    /// [`Session::store_failed`]): a delegate's trail records the failure with it.
    pub(crate) write_failure: Option<&'static str>,
}

/// The response code (RFC 5530) a command answers a failed write with: fixed words, which
/// a delegate's trail may also record, never the error's text.
fn failure_code(e: &mssante_store::StoreError) -> &'static str {
    use mssante_store::StoreError;
    match e {
        StoreError::NotFound(_) => "NONEXISTENT",
        StoreError::Duplicate(_) => "ALREADYEXISTS",
        StoreError::Invalid(_) => "CANNOT",
        StoreError::OverQuota => "OVERQUOTA",
        _ => "UNAVAILABLE",
    }
}

/// `{123}` or `{123+}` (or `~{123}`) at the end of a line: (size, non-synchronising).
pub fn trailing_literal(line: &[u8]) -> Option<(u64, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let mut digits = &body[open + 1..];
    let nonsync = digits.last() == Some(&b'+');
    if nonsync {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, nonsync))
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn new(
        conn: Conn<T>,
        ctx: Context,
        kind: ListenerKind,
        peer: SocketAddr,
        tls: bool,
    ) -> Self {
        let changes = ctx.store.subscribe_changes();
        let client_cert = if tls {
            mssante_auth::external::connection_certificate(
                ctx.client_ca.as_ref(),
                &conn.peer_certificates(),
                peer,
            )
        } else {
            None
        };
        Session {
            client_cert,
            conn,
            rbuf: Vec::with_capacity(1024),
            wbuf: Vec::with_capacity(1024),
            ctx,
            kind,
            peer,
            tls,
            bal: None,
            access: Default::default(),
            selected: None,
            enabled: Enabled::default(),
            contexts: Vec::new(),
            deflate: None,
            notify: None,
            traces: Vec::new(),
            changes,
            pending_change: false,
            completion: None,
            write_failure: None,
        }
    }

    pub async fn run(mut self) {
        let started = std::time::Instant::now();
        let mut commands = 0u64;
        let end = self.serve_commands(&mut commands).await;
        self.settle_traces().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        // One line per session (target `imap.session`): never a password or token, of the
        // login only the BAL's address.
        tracing::info!(
            target: "imap.session",
            listener = self.kind.name(),
            client = %self.peer,
            tls = self.tls,
            user = self.bal.as_ref().map_or("", |b| b.address.as_str()),
            commands,
            duration_ms,
            end,
            "session end"
        );
    }

    /// Reads and answers commands until the session ends; says how it ended.
    async fn serve_commands(&mut self, commands: &mut u64) -> &'static str {
        let caps = self.capabilities().join(" ");
        self.untagged(format!(
            "OK [CAPABILITY {caps}] {} IMAP4rev2 server ready",
            self.ctx.config.hostname
        ));
        loop {
            // RFC 5465 §1: with NOTIFY set, changes are told as they happen.
            let incoming = match self.deliver_until_input().await {
                Ok(()) => self.read_command().await,
                Err(stop) => Err(stop),
            };
            let incoming = match incoming {
                Ok(i) => i,
                Err(stop) => {
                    let end = match stop {
                        ReadStop::Timeout => "autologout",
                        ReadStop::Shutdown => "shutdown",
                        ReadStop::Eof => "client closed",
                        ReadStop::Io => "connection error",
                    };
                    self.say_goodbye(stop).await;
                    return end;
                }
            };
            *commands += 1;
            let flow = match incoming {
                Incoming::Command(bytes) => self.handle(&bytes).await,
                Incoming::LineTooLong => {
                    self.untagged("BAD Line too long");
                    Flow::Continue
                }
                Incoming::LiteralTooBig(line) => {
                    let tag = tag_of(&line);
                    self.tagged(&tag, "NO", "[TOOBIG] Literal too big");
                    Flow::Continue
                }
                Incoming::NonSyncTooBig => {
                    self.untagged("BYE [TOOBIG] Literal too big, closing");
                    Flow::Close
                }
            };
            if let Flow::Close = flow {
                break;
            }
        }
        let _ = self.flush().await;
        let _ = self.conn.shutdown().await;
        "closed"
    }

    async fn say_goodbye(&mut self, stop: ReadStop) {
        let text = match stop {
            ReadStop::Timeout => Some("BYE Autologout; idle for too long"),
            ReadStop::Shutdown => Some("BYE [UNAVAILABLE] Server shutting down"),
            ReadStop::Eof | ReadStop::Io => None,
        };
        if let Some(t) = text {
            self.untagged(t);
            let _ = self.flush().await;
        }
        let _ = self.conn.shutdown().await;
    }

    async fn handle(&mut self, bytes: &[u8]) -> Flow {
        let Request { tag, command } = match parse_request(bytes) {
            Ok(r) => r,
            Err((Some(tag), e)) => {
                self.tagged(&tag, "BAD", &format!("Syntax error: {}", e.0));
                return Flow::Continue;
            }
            Err((None, _)) => {
                self.untagged("BAD Missing or invalid tag");
                return Flow::Continue;
            }
        };
        if let Some(refusal) = self.state_refusal(&command) {
            self.tagged(&tag, "BAD", refusal);
            return Flow::Continue;
        }
        // ADR 0035: a read trace that failed to commit ends the session.
        let writes = self.write_audit(&command).is_some()
            || matches!(
                command,
                Command::Append(_) | Command::Replace(_) | Command::Copy(_) | Command::Move(_)
            );
        if let Err(flow) = self.check_traces(writes).await {
            return flow;
        }
        // ADR 0016: revocations and the rights the command needs (`access.rs`).
        let command = match self.access_gate(&tag, command).await {
            Ok(command) => command,
            Err(flow) => {
                self.write_completion();
                return flow;
            }
        };
        let may_expunge = !command.forbids_expunge_responses();
        let folder_before = self.selected.as_ref().map(|s| s.folder.id);
        let (write_audit, read_audit) = (self.write_audit(&command), self.read_audit(&command));
        // The entry goes with the write's transaction; kept to record a failed write's.
        let attempted = mssante_store::WriteAudit {
            at_source: write_audit.clone(),
            at_target: None,
        };
        self.write_failure = None;
        let flow = mssante_store::Store::audited(write_audit, self.dispatch(&tag, command)).await;
        self.audit_read(&tag, read_audit).await;
        self.audit_failed_write(attempted, &[]);
        if matches!(flow, Flow::Continue) && self.selected.is_some() {
            // Updates go before the tagged completion, so that a client reading up to its
            // tag sees them as part of this command's answer (RFC 9051 §7).
            self.report_selected(may_expunge).await;
        }
        if matches!(flow, Flow::Continue) {
            self.report_notify().await;
        }
        self.after_command_contexts(folder_before).await;
        self.write_completion();
        flow
    }

    /// RFC 9051 §3: which commands are valid in which state.
    fn state_refusal(&self, command: &Command) -> Option<&'static str> {
        let any_state = matches!(
            command,
            Command::Capability | Command::Noop | Command::Logout | Command::Id(_)
        );
        let not_auth_only = matches!(
            command,
            Command::Login { .. } | Command::Authenticate { .. } | Command::StartTls
        );
        let selected_only = matches!(
            command,
            Command::Check
                | Command::Close
                | Command::Unselect
                | Command::Expunge { .. }
                | Command::Search { .. }
                | Command::Sort { .. }
                | Command::Thread { .. }
                | Command::Fetch { .. }
                | Command::Store { .. }
                | Command::Copy { .. }
                | Command::Move { .. }
                | Command::CancelUpdate(_)
                | Command::Replace(_)
        );
        if any_state {
            None
        } else if self.bal.is_none() && !not_auth_only {
            Some("Not authenticated")
        } else if self.bal.is_some() && not_auth_only {
            Some("Already authenticated")
        } else if selected_only && self.selected.is_none() {
            Some("No mailbox selected")
        } else {
            None
        }
    }

    /// Hands the command to its file in `cmd/` (NOOP, CHECK and LOGOUT are answered here).
    async fn dispatch(&mut self, tag: &str, command: Command) -> Flow {
        match command {
            Command::Capability => self.capability(tag),
            Command::Noop | Command::Check => self.tagged(tag, "OK", "NOOP completed"),
            Command::Logout => {
                self.untagged("BYE Logging out");
                self.tagged(tag, "OK", "LOGOUT completed");
                return Flow::Close;
            }
            Command::StartTls => return self.starttls(tag).await,
            Command::Compress(mechanism) => return self.compress(tag, &mechanism).await,
            Command::Login(args) => self.login(tag, &args).await,
            Command::Authenticate(args) => return self.authenticate(tag, args).await,
            Command::Enable(caps) => self.enable(tag, &caps),
            Command::Id(_) => self.id(tag),
            Command::Namespace => self.namespace(tag),
            Command::Acl(acl) => self.acl(tag, acl).await,
            Command::Unauthenticate => self.unauthenticate(tag),
            Command::Select(args) => self.select(tag, args).await,
            Command::Create(args) => self.create(tag, &args).await,
            Command::Delete(mailbox) => self.delete(tag, &mailbox).await,
            Command::Rename(args) => self.rename(tag, &args).await,
            Command::Subscribe(m) => self.subscribe(tag, &m, true).await,
            Command::Unsubscribe(m) => self.subscribe(tag, &m, false).await,
            Command::List(args) => self.list(tag, args).await,
            Command::Lsub(args) => self.lsub(tag, &args).await,
            Command::Status(args) => self.status(tag, &args).await,
            Command::Append(args) => self.append(tag, args).await,
            Command::Replace(args) => self.replace(tag, args).await,
            Command::Idle => return self.idle(tag).await,
            Command::Close => self.close(tag, true).await,
            Command::Unselect => self.close(tag, false).await,
            Command::Expunge(uids) => self.expunge(tag, uids).await,
            Command::Search(args) => self.search(tag, args).await,
            Command::Thread(args) => self.thread(tag, args).await,
            Command::Sort(args) => self.sort(tag, args).await,
            Command::Fetch(args) => self.fetch(tag, args).await,
            Command::Store(args) => self.store_flags(tag, args).await,
            Command::Copy(args) => self.copy(tag, &args).await,
            Command::Move(args) => self.move_messages(tag, &args).await,
            Command::CancelUpdate(tags) => self.cancel_update(tag, &tags),
            Command::GetQuota(root) => self.get_quota(tag, &root).await,
            Command::GetQuotaRoot(mailbox) => self.get_quota_root(tag, &mailbox).await,
            Command::Notify(args) => self.notify(tag, args).await,
        }
        Flow::Continue
    }

    // --- responses ------------------------------------------------------------------------

    pub(crate) fn untagged(&mut self, text: impl AsRef<str>) {
        self.wbuf.extend_from_slice(b"* ");
        self.wbuf.extend_from_slice(text.as_ref().as_bytes());
        self.wbuf.extend_from_slice(b"\r\n");
    }

    pub(crate) fn untagged_bytes(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(b"* ");
        self.wbuf.extend_from_slice(bytes);
        self.wbuf.extend_from_slice(b"\r\n");
    }

    /// The command's tagged completion; held back until its untagged updates are written.
    pub(crate) fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        debug_assert!(self.completion.is_none(), "one completion per command");
        self.completion = Some(format!("{tag} {status} {text}\r\n").into_bytes());
    }

    fn write_completion(&mut self) {
        if let Some(line) = self.completion.take() {
            self.wbuf.extend(line);
        }
    }

    /// Maps a storage failure to a tagged NO without leaking internals, and remembers its
    /// response code for a delegate's trail ([`Session::audit_failed_write`]).
    pub(crate) fn store_failed(&mut self, tag: &str, e: mssante_store::StoreError) {
        use mssante_store::StoreError;
        self.write_failure = Some(failure_code(&e));
        match e {
            StoreError::NotFound(what) => {
                self.tagged(tag, "NO", &format!("[NONEXISTENT] {what} not found"))
            }
            StoreError::Duplicate(what) => {
                self.tagged(tag, "NO", &format!("[ALREADYEXISTS] {what} already exists"))
            }
            StoreError::Invalid(why) => self.tagged(tag, "NO", &format!("[CANNOT] {why}")),
            // RFC 9208, OVERQUOTA: APPEND, COPY refused when they would exceed the quota.
            StoreError::OverQuota => self.tagged(tag, "NO", "[OVERQUOTA] Quota exceeded"),
            other => {
                tracing::error!(peer = %self.peer, "storage failure: {other}");
                self.tagged(
                    tag,
                    "NO",
                    "[UNAVAILABLE] Temporary storage failure, try again",
                );
            }
        }
    }

    /// RFC 7162 §3.1: the first CONDSTORE-enabling command on a selected mailbox turns
    /// CONDSTORE on, and the client learns the mailbox's HIGHESTMODSEQ.
    pub(crate) fn condstore_enabling_command(&mut self) {
        if std::mem::replace(&mut self.enabled.condstore, true) {
            return;
        }
        if let Some(modseq) = self.selected.as_ref().map(|s| s.known_modseq) {
            self.untagged(format!("OK [HIGHESTMODSEQ {modseq}] Highest"));
        }
    }

    /// Writes what is pending; a completion already decided goes last (STARTTLS flushes
    /// its OK before the handshake).
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        self.write_completion();
        if !self.wbuf.is_empty() {
            match self.deflate.as_mut() {
                Some(d) => {
                    let compressed = d.deflate(&self.wbuf)?;
                    self.conn.write_all(&compressed).await?;
                }
                None => self.conn.write_all(&self.wbuf).await?,
            }
            self.wbuf.clear();
            // A big FETCH grew the buffer; an idle session should not keep it.
            if self.wbuf.capacity() > MAX_KEPT_BUFFER {
                self.wbuf = Vec::with_capacity(1024);
            }
        }
        self.conn.flush().await
    }

    /// Flushes when the pending output is large (FETCH streams instead of buffering).
    pub(crate) async fn flush_if_large(&mut self) -> std::io::Result<()> {
        if self.wbuf.len() >= 64 * 1024 {
            self.flush().await
        } else {
            Ok(())
        }
    }

    // --- input ----------------------------------------------------------------------------

    pub(crate) async fn fill(&mut self, idle: bool) -> Result<(), ReadStop> {
        self.flush().await.map_err(|_| ReadStop::Io)?;
        if self.rbuf.is_empty() && self.rbuf.capacity() > MAX_KEPT_BUFFER {
            self.rbuf = Vec::new();
        }
        let shutdown = self.ctx.shutdown.clone();
        let Some(deflate) = self.deflate.as_mut() else {
            return mssante_net::read_more(
                &mut self.conn,
                &mut self.rbuf,
                self.ctx.config.autologout,
                idle.then_some(&shutdown),
            )
            .await;
        };
        // RFC 4978: read compressed bytes until they inflate to something.
        let before = self.rbuf.len();
        while self.rbuf.len() == before {
            mssante_net::read_more(
                &mut self.conn,
                &mut deflate.input,
                self.ctx.config.autologout,
                idle.then_some(&shutdown),
            )
            .await?;
            deflate
                .inflate_into(&mut self.rbuf)
                .map_err(|_| ReadStop::Io)?;
        }
        Ok(())
    }

    /// One line without CRLF; `None` when longer than the limit (dropped to its end).
    /// Once a line has begun, all of it must arrive within `line_timeout` (a slow client
    /// sending a byte now and then cannot hold a connection for ever; docs/limits.md).
    pub(crate) async fn read_line(&mut self, idle: bool) -> Result<Option<Vec<u8>>, ReadStop> {
        let max = self.ctx.config.max_line;
        let mut dropping = false;
        let mut deadline = None;
        loop {
            match take_line(&mut self.rbuf, max, &mut dropping) {
                Line::Complete(line) => return Ok(Some(line)),
                Line::TooLong => return Ok(None),
                Line::Incomplete => {
                    if deadline.is_none() && (dropping || !self.rbuf.is_empty()) {
                        deadline = Some(tokio::time::Instant::now() + self.ctx.config.line_timeout);
                    }
                    match deadline {
                        Some(at) => tokio::time::timeout_at(at, self.fill(idle))
                            .await
                            .map_err(|_| ReadStop::Timeout)??,
                        None => self.fill(idle).await?,
                    }
                }
            }
        }
    }

    async fn read_exact_into(&mut self, out: &mut Vec<u8>, n: usize) -> Result<(), ReadStop> {
        let mut remaining = n;
        loop {
            let take = remaining.min(self.rbuf.len());
            out.extend(self.rbuf.drain(..take));
            remaining -= take;
            if remaining == 0 {
                return Ok(());
            }
            self.fill(false).await?;
        }
    }

    /// A whole command: its line(s) and literals (RFC 9051 §4.3, RFC 7888 LITERAL+).
    async fn read_command(&mut self) -> Result<Incoming, ReadStop> {
        let mut command = Vec::new();
        let mut first = true;
        loop {
            let Some(line) = self.read_line(first).await? else {
                return Ok(Incoming::LineTooLong);
            };
            first = false;
            command.extend_from_slice(&line);
            let Some((size, nonsync)) = trailing_literal(&line) else {
                return Ok(Incoming::Command(command));
            };
            if size > self.ctx.config.max_literal as u64
                || command.len() as u64 + size > self.ctx.config.max_literal as u64 + 65_536
            {
                return Ok(if nonsync {
                    Incoming::NonSyncTooBig
                } else {
                    Incoming::LiteralTooBig(command)
                });
            }
            if !nonsync {
                self.wbuf.extend_from_slice(b"+ Ready for literal data\r\n");
            }
            command.extend_from_slice(b"\r\n");
            self.read_exact_into(&mut command, size as usize).await?;
        }
    }

    // --- updates about the selected mailbox ---------------------------------------------------

    /// Leaves the selected mailbox (if any) and stops hearing its changes; returns it.
    pub(crate) fn deselect(&mut self) -> Option<SelectedMailbox> {
        self.changes.watch_folder(None);
        self.selected.take()
    }

    /// Drains change notifications into what they may concern: the selected folder
    /// (`pending_change`), a NOTIFY set (its `dirty`).
    pub(crate) fn drain_changes(&mut self) {
        let folder_id = self.selected.as_ref().map(|s| s.folder.id);
        while let Some(change) = self.changes.try_recv() {
            self.note_change(&change, folder_id);
        }
    }

    /// Records what one change notification may concern.
    fn note_change(&mut self, change: &FolderChanged, selected: Option<i64>) -> bool {
        let mut concerns = false;
        if selected.is_some_and(|id| change.concerns(id)) {
            self.pending_change = true;
            concerns = true;
        }
        if let Some(n) = self.notify.as_mut().filter(|n| n.concerns(change)) {
            n.dirty = true;
            concerns = true;
        }
        concerns
    }

    /// Drains change notifications; true when the selected folder may have changed.
    fn selected_folder_changed(&mut self) -> bool {
        if self.selected.is_none() {
            return false;
        }
        self.drain_changes();
        self.pending_change
    }

    /// Sends EXISTS / EXPUNGE (or VANISHED) / FETCH for what changed in the selected folder.
    /// Expunges are held back when `may_expunge` is false (RFC 9051 §7.5.1).
    pub(crate) async fn report_changes(&mut self, may_expunge: bool) {
        if !self.selected_folder_changed() {
            return;
        }
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        let (folder_id, since) = (sel.folder.id, sel.known_modseq);
        let delegate = self.delegate_seen(sel.folder.bal_id);
        let snapshot = self
            .ctx
            .store
            .snapshot_as(folder_id, Some(since), delegate.as_deref());
        let Ok(mut snapshot) = snapshot.await else {
            return;
        };
        // Expunges that may not be reported now stay pending: the known modseq does not
        // move past them, so the next report finds them again.
        let defer = !may_expunge && !snapshot.vanished.is_empty();
        if defer {
            snapshot.vanished.clear();
        }
        if !self.contexts.is_empty() && !snapshot.vanished.is_empty() {
            self.contexts_lose(&snapshot.vanished);
        }
        let sel = self.selected.as_mut().expect("selected");
        if defer {
            snapshot.highestmodseq = sel.known_modseq;
        }
        let changes = sel.apply(snapshot);
        self.pending_change = defer;
        let recent = match changes.exists {
            Some(_) => self.claim_new_recent().await,
            None => None,
        };
        self.send_changes(changes, recent);
    }

    /// New messages are \Recent for the first read-write session that notices them.
    async fn claim_new_recent(&mut self) -> Option<usize> {
        let sel = self.selected.as_mut()?;
        // This session's own APPEND or COPY claimed up to its last new message with its
        // write (ADR 0050): a claim of its own only for messages that came after it.
        if let Some(claim) = sel.claimed.take() {
            sel.add_recent_in(claim.first..claim.next);
            if sel.largest_uid() < claim.next {
                return Some(sel.recent.len());
            }
        }
        let claimed = match sel.read_only {
            true => self.ctx.store.first_recent_uid(sel.folder.id).await,
            false => self.ctx.store.claim_recent(sel.folder.id).await,
        };
        let sel = self.selected.as_mut()?;
        if let Ok(first) = claimed {
            sel.add_recent_from(first);
        }
        Some(sel.recent.len())
    }

    fn send_changes(&mut self, changes: Changes, recent: Option<usize>) {
        if changes.new_keywords {
            self.announce_flags();
        }
        if self.enabled.qresync && !changes.expunged_uids.is_empty() {
            let mut uids = changes.expunged_uids.clone();
            uids.sort_unstable();
            self.untagged(format!("VANISHED {}", crate::parse::compact(&uids)));
        } else {
            for seq in &changes.expunged_seqs {
                self.untagged(format!("{seq} EXPUNGE"));
            }
        }
        if let Some(n) = changes.exists {
            self.untagged(format!("{n} EXISTS"));
        }
        if let Some(n) = recent {
            self.untagged(format!("{n} RECENT"));
        }
        for (seq, m) in changes.flag_changes {
            let modseq = if self.enabled.condstore {
                format!(" MODSEQ ({})", m.modseq)
            } else {
                String::new()
            };
            let flags = self
                .selected
                .as_ref()
                .map(|s| s.flags_text(&m))
                .unwrap_or_default();
            self.untagged(format!(
                "{seq} FETCH (UID {} FLAGS ({flags}){modseq})",
                m.uid
            ));
        }
    }

    /// Untagged FLAGS and PERMANENTFLAGS for the selected mailbox's keywords.
    pub(crate) fn announce_flags(&mut self) {
        let lines = match &self.selected {
            Some(sel) => sel.flags_announcement(),
            None => return,
        };
        for line in lines {
            self.untagged(line);
        }
    }

    /// Waits for a change notification or input (IDLE, and NOTIFY between commands): true
    /// when there are changes to report, false when input came. A change to a watched
    /// mailbox is reported `[imap] idle_report_delay_ms` after it is heard, with those heard
    /// meanwhile (ADR 0058); input, a grant change and shutdown end the wait at once.
    pub(crate) async fn wait_for_change_or_input(&mut self) -> Result<bool, ReadStop> {
        self.flush().await.map_err(|_| ReadStop::Io)?;
        if self.rbuf.contains(&b'\n') {
            return Ok(false);
        }
        let shutdown = self.ctx.shutdown.clone();
        let folder_id = self.selected.as_ref().map(|s| s.folder.id);
        let mut report_at: Option<tokio::time::Instant> = None;
        loop {
            // With COMPRESS the bytes read are inflated into `rbuf` afterwards.
            let target = match self.deflate.as_mut() {
                Some(d) => &mut d.input,
                None => &mut self.rbuf,
            };
            target.reserve(READ_CHUNK);
            tokio::select! {
                r = tokio::time::timeout(self.ctx.config.autologout, self.conn.read_buf(target)) => {
                    return match r {
                        Err(_) => Err(ReadStop::Timeout),
                        Ok(Err(_)) => Err(ReadStop::Io),
                        Ok(Ok(0)) => Err(ReadStop::Eof),
                        Ok(Ok(_)) => match self.deflate.as_mut() {
                            Some(d) => d.inflate_into(&mut self.rbuf).map(|_| false).map_err(|_| ReadStop::Io),
                            None => Ok(false),
                        },
                    };
                }
                change = self.changes.recv() => {
                    // Grants changed: IDLE checks the session's access now (ADR 0016).
                    if change.access_of().is_some() {
                        self.note_change(&change, folder_id);
                        return Ok(true);
                    }
                    if self.note_change(&change, folder_id) && report_at.is_none() {
                        report_at = Some(tokio::time::Instant::now() + self.ctx.config.idle_report_delay);
                    }
                }
                _ = tokio::time::sleep_until(report_at.unwrap_or_else(tokio::time::Instant::now)),
                    if report_at.is_some() => return Ok(true),
                _ = shutdown.cancelled() => return Err(ReadStop::Shutdown),
            }
        }
    }

    pub(crate) async fn read_continuation(&mut self) -> Result<Option<Vec<u8>>, ReadStop> {
        self.read_line(false).await
    }
}

/// The tag at the start of a command line (for replies to commands we could not parse).
fn tag_of(line: &[u8]) -> String {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    String::from_utf8_lossy(&line[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_literals() {
        assert_eq!(trailing_literal(b"a APPEND x {12}"), Some((12, false)));
        assert_eq!(trailing_literal(b"a LOGIN {3+}"), Some((3, true)));
        assert_eq!(trailing_literal(b"a APPEND x ~{5}"), Some((5, false)));
        assert_eq!(trailing_literal(b"a NOOP"), None);
        assert_eq!(trailing_literal(b"a X {}"), None);
        assert_eq!(trailing_literal(b"a X {1a}"), None);
    }
}
