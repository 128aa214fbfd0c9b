//! Who the session is and what it may do where (ADR 0016): its own BAL (all rights, or a
//! delegation's when it logged in *as* a delegated BAL), and the BALs delegated to it, shown
//! under the other-users namespace `Other Users/<address>/…` (RFC 2342 §5, RFC 4314 §4).
//!
//! Revocation is immediate at a cost of one atomic load per command: the store's access
//! generation moves whenever a grant changes (on any node), and only then is the access
//! read again; an end date is compared to the clock.

use mssante_store::{
    AuditAction, AuditEvent, Bal, Folder, Grantee, Rights, TraceState, WriteAudit, now,
};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::{Command, FetchItem};
use crate::session::{Flow, Session};

/// What the per-command check found.
pub(crate) enum AccessCheck {
    Unchanged,
    /// The session logged in as a BAL it may no longer open.
    LostLogin,
    /// The selected mailbox belongs to a BAL the session may no longer read.
    LostSelected,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// After a login: who the session is, and which BALs are delegated to it. `login` is
    /// the BAL whose password was given, `identity` a PSC identity; `as_delegate` when
    /// `self.bal` was opened on a delegation (PLAIN with an authorization id, a PSC token
    /// naming a delegated BAL). `Ok(false)`: no delegation opens `self.bal` to them.
    pub(crate) async fn start_access(
        &mut self,
        login: Option<&Bal>,
        identity: Option<&str>,
        as_delegate: bool,
    ) -> mssante_store::Result<bool> {
        let store = self.ctx.store.clone();
        let generation = store.access_generation();
        let opened = self.bal.clone().expect("authenticated");
        let login = login.unwrap_or(&opened);
        let mut principals = store.principals(login, identity).await?;
        if as_delegate {
            // The delegated BAL's own grants are not the delegate's.
            principals.retain(|p| p != &Grantee::Bal(opened.address.as_str().to_string()));
        }
        let (own, delegated): (Vec<_>, Vec<_>) = store
            .delegations_to(&principals)
            .await?
            .into_iter()
            .partition(|d| d.bal_id == opened.id);
        let own = match as_delegate {
            true => match own.into_iter().next() {
                Some(d) => Some(d),
                None => return Ok(false),
            },
            false => None,
        };
        self.access.author = identity
            .map(str::to_string)
            .unwrap_or_else(|| login.address.as_str().to_string());
        self.access.principals = principals;
        self.access.set(own, delegated, generation);
        if self.access.own.is_some() {
            self.audit(opened.id, AuditAction::Login, "", Vec::new(), "ok")
                .await;
        }
        Ok(true)
    }

    /// The cheap check each command starts with: re-read the access only when a grant
    /// changed somewhere or one of ours reached its end date.
    pub(crate) async fn check_access(&mut self) -> AccessCheck {
        let generation = self.ctx.store.access_generation();
        let ended = self.access.next_end.is_some_and(|end| end <= now());
        if generation == self.access.generation && !ended {
            return AccessCheck::Unchanged;
        }
        let Some(own_bal) = self.bal.as_ref().map(|b| b.id) else {
            return AccessCheck::Unchanged;
        };
        let Ok(fresh) = self.ctx.store.delegations_to(&self.access.principals).await else {
            // Storage trouble: keep what we know and look again at the next command.
            return AccessCheck::Unchanged;
        };
        let (own, delegated): (Vec<_>, Vec<_>) =
            fresh.into_iter().partition(|d| d.bal_id == own_bal);
        let own = match self.access.own.is_some() {
            true => match own.into_iter().next() {
                Some(d) => Some(d),
                None => return AccessCheck::LostLogin,
            },
            false => None,
        };
        self.access.set(own, delegated, generation);
        if let Some(folder) = self.selected.as_ref().map(|s| s.folder.clone())
            && !self.access.rights_on(own_bal, &folder).has('r')
        {
            self.deselect();
            return AccessCheck::LostSelected;
        }
        AccessCheck::Unchanged
    }

    /// Whose `\Seen` this session reads and writes in the folders of `bal_id`: its own when
    /// it acts there as a delegate, under `Other Users/` or logged in as the BAL (RFC 4314
    /// §4 lets `\Seen` be per user; ADR 0034); `None`, the shared one, for the holder.
    pub(crate) fn delegate_seen(&self, bal_id: i64) -> Option<String> {
        let own_bal = self.bal.as_ref()?.id;
        self.access
            .is_delegated(own_bal, bal_id)
            .then(|| self.access.author.clone())
    }

    /// Rights on `folder` for this session.
    pub(crate) fn rights_on(&self, folder: &Folder) -> Rights {
        self.access.rights_on(self.bal_id(), folder)
    }

    /// Answers NO [NOPERM] (audited for a delegate) unless every right in `need` is held
    /// on `folder`. RFC 4314 §4 lists which command needs which right.
    pub(crate) async fn require(&mut self, tag: &str, folder: &Folder, need: &str) -> bool {
        let rights = self.rights_on(folder);
        let Some(missing) = need.chars().find(|&c| !rights.has(c)) else {
            return true;
        };
        let why = format!("refused: right {missing:?} needed");
        self.audit(
            folder.bal_id,
            AuditAction::Refused,
            &folder.name,
            Vec::new(),
            &why,
        )
        .await;
        self.tagged(
            tag,
            "NO",
            &format!("[NOPERM] Permission denied: right '{missing}' needed (RFC 4314)"),
        );
        false
    }

    /// An audit entry for what a delegate did on `bal_id` (nothing for a holder on their
    /// own BAL): a read's, queued for the next commit without waiting for it (ADR 0035);
    /// [`Session::check_traces`] ends the session if it then fails.
    pub(crate) async fn audit(
        &mut self,
        bal_id: i64,
        action: AuditAction,
        folder: &str,
        message_ids: Vec<String>,
        result: &str,
    ) {
        let Some(event) = self.audit_event(bal_id, action, folder) else {
            return;
        };
        let event = AuditEvent {
            message_ids,
            result: result.to_string(),
            ..event
        };
        let trace = self.ctx.store.queue_audit(&event);
        self.traces.push(trace);
    }

    /// A delegate's write the store refused or could not make (a full quota, a folder
    /// gone, a storage failure) in this command: its transaction rolled back with the
    /// entries it carried, so they are recorded now as a read's trace is, with the result
    /// `failed: <response code>` and, on the BAL acted in, `uids` (the messages the
    /// command named) when the entry does not name any yet. Nothing when no write failed or no entry was due.
    pub(crate) fn audit_failed_write(&mut self, attempted: WriteAudit, uids: &[u32]) {
        let Some(code) = self.write_failure.take() else {
            return;
        };
        let result = format!("failed: {code}");
        let at_source = attempted.at_source.map(|mut event| {
            if event.message_ids.is_empty() {
                event.message_ids = uids.iter().map(|u| format!("uid:{u}")).collect();
            }
            event
        });
        for event in [at_source, attempted.at_target].into_iter().flatten() {
            let event = AuditEvent {
                result: result.clone(),
                ..event
            };
            let trace = self.ctx.store.queue_audit(&event);
            self.traces.push(trace);
        }
    }

    /// Before each command: the read traces this session queued (ADR 0035). A failed one
    /// is logged and ends the session (`Err`, after `* BYE`): no delegate goes on reading
    /// unrecorded. Before a command that writes, on an engine where the session's writes do
    /// not follow the traces' queue, waits for them, so that the BAL's chain keeps the order
    /// things happened.
    pub(crate) async fn check_traces(&mut self, writes: bool) -> Result<(), Flow> {
        let mut failed = None;
        let mut kept = Vec::new();
        for mut trace in std::mem::take(&mut self.traces) {
            if writes && trace.orders_writes() {
                if let Err(e) = trace.settled().await {
                    failed.get_or_insert(e);
                }
                continue;
            }
            match trace.state() {
                TraceState::Pending => kept.push(trace),
                TraceState::Committed => {}
                TraceState::Failed(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        self.traces = kept;
        let Some(e) = failed else {
            return Ok(());
        };
        tracing::error!(peer = %self.peer, "audit trail write failed: {e}");
        self.untagged("BYE [UNAVAILABLE] The audit trail could not record a read; closing");
        Err(Flow::Close)
    }

    /// At the end of the session: waits for the traces still queued, logging a failure.
    pub(crate) async fn settle_traces(&mut self) {
        for trace in std::mem::take(&mut self.traces) {
            if let Err(e) = trace.settled().await {
                tracing::error!(peer = %self.peer, "audit trail write failed: {e}");
            }
        }
    }

    /// The event a delegate's action on `bal_id` is recorded as; `None` for a holder.
    pub(crate) fn audit_event(
        &self,
        bal_id: i64,
        action: AuditAction,
        folder: &str,
    ) -> Option<AuditEvent> {
        let own_bal = self.bal.as_ref()?.id;
        if !self.access.is_delegated(own_bal, bal_id) {
            return None;
        }
        let mut event = AuditEvent::new(bal_id, &self.access.author, action);
        event.folder = folder.to_string();
        event.client = self.peer.to_string();
        Some(event)
    }
}

/// The rights a command on the selected mailbox needs (RFC 4314 §4); the mailbox arguments
/// of SELECT, STATUS, APPEND, COPY and the mailbox commands are checked by their handlers.
fn selected_needs(command: &Command) -> String {
    match command {
        Command::Fetch(_) | Command::Search(_) | Command::Sort(_) | Command::Thread(_) => {
            "r".into()
        }
        Command::Expunge(_) => "e".into(),
        Command::Move(_) => "te".into(),
        // RFC 8508 §4.1: REPLACE expunges the old message, which needs the rights of a
        // STORE of \Deleted and of an EXPUNGE; the target's `i` is checked as APPEND's.
        Command::Replace(_) => "te".into(),
        Command::Store(args) => {
            let mut need = String::new();
            for flag in &args.flags {
                let right = match flag.to_ascii_lowercase().as_str() {
                    "\\seen" => 's',
                    "\\deleted" => 't',
                    _ => 'w',
                };
                if !need.contains(right) {
                    need.push(right);
                }
            }
            need
        }
        _ => String::new(),
    }
}

/// Whether FETCH items read message content (the audit's `fetch-body`).
fn reads_body(items: &[FetchItem]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchItem::Section { .. }
                | FetchItem::Binary { .. }
                | FetchItem::Rfc822
                | FetchItem::Rfc822Text
        )
    })
}

/// What the session records after a read a delegate made: (BAL, action, folder, ids).
pub(crate) type ReadAudit = (i64, AuditAction, String, Vec<String>);

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Before each command of an authenticated session: the access check (a revoked login
    /// ends the session with BYE, a revoked selected mailbox answers NO), then the rights
    /// the command needs on the selected mailbox. `Err` is the flow when refused.
    pub(crate) async fn access_gate(
        &mut self,
        tag: &str,
        command: Command,
    ) -> Result<Command, Flow> {
        if self.bal.is_none() {
            return Ok(command);
        }
        match self.check_access().await {
            AccessCheck::Unchanged => {}
            AccessCheck::LostLogin => {
                self.untagged("BYE [NOPERM] Access to this BAL was revoked");
                return Err(Flow::Close);
            }
            AccessCheck::LostSelected => {
                self.untagged("OK [CLOSED] Access to the selected mailbox was revoked");
                self.tagged(
                    tag,
                    "NO",
                    "[NOPERM] Access to the selected mailbox was revoked",
                );
                return Err(Flow::Continue);
            }
        }
        let Some(folder) = self.selected.as_ref().map(|s| s.folder.clone()) else {
            return Ok(command);
        };
        // RFC 4314 §4: CLOSE without the `e` right closes without expunging.
        if matches!(command, Command::Close) && !self.rights_on(&folder).has('e') {
            return Ok(Command::Unselect);
        }
        let need = selected_needs(&command);
        if !need.is_empty() && !self.require(tag, &folder, &need).await {
            return Err(Flow::Continue);
        }
        Ok(command)
    }

    /// The entry a delegate's write on the selected mailbox records in the write's own
    /// transaction (`Store::audited`).
    pub(crate) fn write_audit(&self, command: &Command) -> Option<AuditEvent> {
        let folder = &self.selected.as_ref()?.folder;
        let action = match command {
            Command::Store(_) => AuditAction::Flags,
            Command::Expunge(_) | Command::Close => AuditAction::Expunge,
            // Audited by their handler, which knows the target (`copy_audit`).
            _ => return None,
        };
        self.audit_event(folder.bal_id, action, &folder.name)
    }

    /// The entries a delegate's COPY or MOVE records in the write's transaction: on the
    /// selected mailbox's BAL (the source UIDs; for a MOVE an expunge there), and on the
    /// target's BAL when it is another (the new UIDs): a secretary filing a message of her
    /// own into the doctor's folder acts on his BAL, and his trail shows it.
    pub(crate) fn copy_audit(&self, target: &Folder, mailbox: &str, is_move: bool) -> WriteAudit {
        let Some(source) = self.selected.as_ref().map(|s| &s.folder) else {
            return WriteAudit::default();
        };
        let (out, into) = match is_move {
            true => (AuditAction::Move, AuditAction::MoveIn),
            false => (AuditAction::Copy, AuditAction::CopyIn),
        };
        let at_source = self
            .audit_event(source.bal_id, out, &source.name)
            .map(|event| AuditEvent {
                detail: format!("to {mailbox}"),
                ..event
            });
        let at_target = (target.bal_id != source.bal_id)
            .then(|| self.audit_event(target.bal_id, into, &target.name))
            .flatten()
            .map(|event| AuditEvent {
                detail: format!("from {}", self.folder_label(source)),
                ..event
            });
        WriteAudit {
            at_source,
            at_target,
        }
    }

    /// `address/folder`: a folder named with its BAL, for an entry in another BAL's trail.
    fn folder_label(&self, folder: &Folder) -> String {
        let own = self.bal.as_ref().filter(|b| b.id == folder.bal_id);
        let address = match own {
            Some(bal) => bal.address.as_str(),
            None => self
                .access
                .delegated
                .iter()
                .find(|d| d.bal_id == folder.bal_id)
                .map_or("", |d| d.bal.as_str()),
        };
        format!("{address}/{}", folder.name)
    }

    /// A delegate's read to record once the command succeeded: a body FETCH, a SELECT.
    pub(crate) fn read_audit(&self, command: &Command) -> Option<ReadAudit> {
        match command {
            Command::Fetch(args) if reads_body(&args.items) => {
                let folder = &self.selected.as_ref()?.folder;
                self.audit_event(folder.bal_id, AuditAction::FetchBody, "")?;
                let ids = self
                    .resolve(&args.set, args.uid)
                    .into_iter()
                    .map(|u| format!("uid:{u}"))
                    .collect();
                Some((
                    folder.bal_id,
                    AuditAction::FetchBody,
                    folder.name.clone(),
                    ids,
                ))
            }
            Command::Select(args) => {
                let name = self.mailbox_name(&args.mailbox)?;
                let (bal_id, folder) = match self.access.resolve(&name) {
                    Some(found) => found?,
                    None => (self.bal_id(), name.as_str()),
                };
                self.audit_event(bal_id, AuditAction::Select, folder)?;
                Some((bal_id, AuditAction::Select, folder.to_string(), Vec::new()))
            }
            _ => None,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Records a delegate's read once its command succeeded.
    pub(crate) async fn audit_read(&mut self, tag: &str, read: Option<ReadAudit>) {
        let Some((bal_id, action, folder, ids)) = read else {
            return;
        };
        let ok = format!("{tag} OK");
        if self
            .completion
            .as_ref()
            .is_some_and(|c| c.starts_with(ok.as_bytes()))
        {
            self.audit(bal_id, action, &folder, ids, "ok").await;
        }
    }
}
