//! CREATE (RFC 9051 §6.3.4) with CREATE-SPECIAL-USE (RFC 6154 §3).

use mssante_store::SPECIAL_USES;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::mailbox_names::{DELIMITER, valid_name};
use crate::parse::CreateArgs;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn create(&mut self, tag: &str, args: &CreateArgs) {
        let (raw, special_use) = (&args.mailbox, &args.special_use[..]);
        let Some(name) = self.mailbox_name(raw) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        // RFC 9051 §6.3.4: a trailing delimiter only says the client wants children.
        let name = name.trim_end_matches(DELIMITER).to_string();
        if let Err(why) = valid_name(&name) {
            return self.tagged(tag, "NO", &format!("[CANNOT] {why}"));
        }
        if name == "INBOX" {
            return self.tagged(tag, "NO", "[ALREADYEXISTS] INBOX always exists");
        }
        // ADR 0016: folders are created in the own BAL; a delegate logged in as the BAL
        // needs `k` there (RFC 4314 §4).
        let may_create = self
            .access
            .own
            .as_ref()
            .is_none_or(|d| d.rights_on(&name).has('k'));
        if self.access.resolve(&name).is_some() || !may_create {
            return self.tagged(tag, "NO", "[NOPERM] Permission denied: right 'k' needed");
        }
        let use_attr = match special_use {
            [] => None,
            [one] => match SPECIAL_USES.iter().find(|s| s.eq_ignore_ascii_case(one)) {
                Some(s) => Some(*s),
                None => {
                    return self.tagged(tag, "NO", "[USEATTR] Unsupported special-use attribute");
                }
            },
            _ => return self.tagged(tag, "NO", "[USEATTR] One special-use attribute per mailbox"),
        };
        // Parents are created as needed (RFC 9051 §6.3.4 lets the server do so).
        let bal_id = self.bal_id();
        let mut parent = String::new();
        for part in name
            .split(DELIMITER)
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p.to_vec())
            .unwrap_or_default()
        {
            if !parent.is_empty() {
                parent.push(DELIMITER);
            }
            parent.push_str(part);
            if let Ok(None) = self.ctx.store.folder(bal_id, &parent).await {
                let _ = self.ctx.store.create_folder(bal_id, &parent, None).await;
            }
        }
        match self.ctx.store.create_folder(bal_id, &name, use_attr).await {
            // RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
            Ok(_) => match self.ctx.store.folder(bal_id, &name).await {
                Ok(Some(f)) => self.tagged(
                    tag,
                    "OK",
                    &format!("[MAILBOXID ({})] CREATE completed", f.object_id),
                ),
                _ => self.tagged(tag, "OK", "CREATE completed"),
            },
            Err(e) => self.store_failed(tag, e),
        }
    }
}
