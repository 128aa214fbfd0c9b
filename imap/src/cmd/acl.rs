//! ACL (RFC 4314): GETACL, SETACL, DELETEACL, LISTRIGHTS, MYRIGHTS, on the delegations of
//! the access model (ADR 0016). Identifiers are BAL addresses (an account, or the members of
//! an ORG/CAB BAL) and PSC national ids; the BAL's own address is its holder, with every
//! right, and cannot be changed. SETACL on a folder sets the grantee's rights there (and on
//! its subfolders that have none of their own).

use mssante_store::{Bal, Delegation, Folder, Grantee, KNOWN_RIGHTS, Rights, delegation_limits};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::encode::write_string;
use crate::parse::AclCommand;
use crate::session::Session;

/// An identifier as an atom when it is one (addresses and national ids are), else a string
/// (RFC 4314 §3.6: `identifier = astring`).
fn write_identifier(out: &mut Vec<u8>, id: &str) {
    let atom = !id.is_empty()
        && id
            .bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b));
    if atom {
        out.extend_from_slice(id.as_bytes());
    } else {
        write_string(out, id.as_bytes());
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn acl(&mut self, tag: &str, command: AclCommand) {
        let Some(name) = self.mailbox_name(command.mailbox()) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        let Some(folder) = self.existing_folder(tag, command.mailbox()).await else {
            return;
        };
        let wire = self.wire_name(&name);
        if let AclCommand::MyRights { .. } = command {
            // RFC 4314 §3.5: any right on the mailbox lets one ask.
            let rights = self.rights_on(&folder);
            let mut line = b"MYRIGHTS ".to_vec();
            line.extend(&wire);
            line.extend(format!(" {rights}").as_bytes());
            self.untagged_bytes(&line);
            return self.tagged(tag, "OK", "MYRIGHTS completed");
        }
        // RFC 4314 §4: the other ACL commands need `a`.
        if !self.require(tag, &folder, "a").await {
            return;
        }
        let bal = match self.bal_of(&folder).await {
            Ok(bal) => bal,
            Err(e) => return self.store_failed(tag, e),
        };
        match command {
            AclCommand::Get { .. } => self.get_acl(tag, &bal, &folder, wire).await,
            AclCommand::ListRights { identifier, .. } => {
                // RFC 4314 §3.7: rights that are always granted, then each one grantable.
                let mut line = b"LISTRIGHTS ".to_vec();
                line.extend(&wire);
                line.push(b' ');
                write_identifier(&mut line, &identifier);
                if identifier.eq_ignore_ascii_case(bal.address.as_str()) {
                    line.extend(format!(" {KNOWN_RIGHTS}").as_bytes());
                } else {
                    line.extend(b" \"\"");
                    for c in KNOWN_RIGHTS.chars() {
                        line.extend(format!(" {c}").as_bytes());
                    }
                }
                self.untagged_bytes(&line);
                self.tagged(tag, "OK", "LISTRIGHTS completed");
            }
            AclCommand::Set {
                identifier, rights, ..
            } => {
                self.set_acl(tag, &bal, &folder, &identifier, Some(&rights))
                    .await
            }
            AclCommand::Delete { identifier, .. } => {
                self.set_acl(tag, &bal, &folder, &identifier, None).await
            }
            AclCommand::MyRights { .. } => unreachable!("answered above"),
        }
    }

    /// The BAL a folder belongs to (the own one, or a delegated one).
    async fn bal_of(&self, folder: &Folder) -> mssante_store::Result<Bal> {
        let own = self.bal.clone().expect("authenticated");
        if folder.bal_id == own.id {
            return Ok(own);
        }
        let address = self
            .access
            .delegated
            .iter()
            .find(|d| d.bal_id == folder.bal_id)
            .map(|d| d.bal.clone())
            .unwrap_or_default();
        self.ctx.store.bal(&address).await
    }

    /// RFC 4314 §3.6: `* ACL mailbox identifier rights …`, the holder first.
    async fn get_acl(&mut self, tag: &str, bal: &Bal, folder: &Folder, wire: Vec<u8>) {
        let delegations = match self
            .ctx
            .store
            .delegations(Some(bal.address.as_str()), None)
            .await
        {
            Ok(d) => d,
            Err(e) => return self.store_failed(tag, e),
        };
        let mut line = b"ACL ".to_vec();
        line.extend(&wire);
        line.push(b' ');
        write_identifier(&mut line, bal.address.as_str());
        line.extend(format!(" {KNOWN_RIGHTS}").as_bytes());
        let now = mssante_store::now();
        for d in delegations.iter().filter(|d| d.is_active(now)) {
            let rights = d.rights_on(&folder.name);
            if rights.is_empty() {
                continue;
            }
            line.push(b' ');
            write_identifier(&mut line, d.grantee.id());
            line.extend(format!(" {rights}").as_bytes());
        }
        self.untagged_bytes(&line);
        self.tagged(tag, "OK", "GETACL completed");
    }

    /// SETACL (`rights` with an optional `+`/`-`, RFC 4314 §3.1) or DELETEACL (`None`).
    async fn set_acl(
        &mut self,
        tag: &str,
        bal: &Bal,
        folder: &Folder,
        identifier: &str,
        rights: Option<&str>,
    ) {
        let grantee = match Grantee::parse(identifier) {
            Ok(g) => g,
            Err(e) => return self.tagged(tag, "BAD", &format!("Invalid identifier: {e}")),
        };
        if grantee == Grantee::Bal(bal.address.as_str().to_string()) {
            return self.tagged(tag, "NO", "[CANNOT] The holder's rights cannot be changed");
        }
        let new = match rights {
            None => None,
            Some(text) => match self.new_rights(bal, folder, &grantee, text).await {
                Ok(r) => Some(r).filter(|r| !r.is_empty()),
                Err(e) => return self.tagged(tag, "BAD", &format!("Invalid rights: {e}")),
            },
        };
        if let Err(why) = self.manager_may_set(bal, &folder.name, &grantee, new).await {
            // The rule the HTTP API applies to a manager too (`delegation_limits`).
            return self.tagged(tag, "NO", &format!("[NOPERM] {why}"));
        }
        let client = self.peer.to_string();
        let author = self.access.author.clone();
        match self
            .ctx
            .store
            .set_delegation_folder(bal, &grantee, &folder.name, new, &author, &client)
            .await
        {
            Ok(_) => self.tagged(tag, "OK", "ACL updated"),
            Err(e) => self.store_failed(tag, e),
        }
    }

    /// A delegate holding `a` (a manager) sets rights only within its own: `Ok` for the
    /// BAL's holder, else `delegation_limits::may_set_folder` on the delegations it holds.
    async fn manager_may_set(
        &self,
        bal: &Bal,
        folder: &str,
        grantee: &Grantee,
        rights: Option<Rights>,
    ) -> Result<(), String> {
        let Some(held) = self.held_on(bal.id) else {
            return Ok(());
        };
        let existing = self
            .ctx
            .store
            .delegations(Some(bal.address.as_str()), Some(grantee))
            .await
            .map_err(|e| format!("the delegations could not be read: {e}"))?;
        delegation_limits::may_set_folder(&held, existing.first(), folder, rights)
    }

    /// The delegations this session acts on `bal_id` through; `None` when it is its holder.
    fn held_on(&self, bal_id: i64) -> Option<Vec<Delegation>> {
        let own_bal = self.bal.as_ref().map(|b| b.id);
        if own_bal == Some(bal_id) {
            return self.access.own.clone().map(|d| vec![d]);
        }
        let at = mssante_store::now();
        let held = self
            .access
            .delegated
            .iter()
            .filter(|d| d.bal_id == bal_id && d.is_active(at));
        Some(held.cloned().collect())
    }

    /// The rights SETACL leaves: as given, or added to / taken from the current ones.
    async fn new_rights(
        &self,
        bal: &Bal,
        folder: &Folder,
        grantee: &Grantee,
        text: &str,
    ) -> mssante_store::Result<Rights> {
        let (op, letters) = match text.as_bytes().first() {
            Some(b'+') => (Some(true), &text[1..]),
            Some(b'-') => (Some(false), &text[1..]),
            _ => (None, text),
        };
        let given = Rights::parse(letters)?;
        let Some(add) = op else { return Ok(given) };
        let current = self
            .ctx
            .store
            .delegations(Some(bal.address.as_str()), Some(grantee))
            .await?
            .first()
            .map_or(Rights::NONE, |d| d.rights_on(&folder.name));
        Ok(if add {
            current.union(given)
        } else {
            current.without(given)
        })
    }
}
