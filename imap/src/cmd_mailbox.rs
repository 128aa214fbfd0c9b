//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS (RFC 9051 §6.3),
//! LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154).

use std::collections::BTreeSet;

use mssante_store::Folder;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::message::encode::write_string;
use crate::message::utf7::{decode_mutf7, encode_mutf7};
use crate::parse::ListArgs;
use crate::session::Session;

pub(crate) const DELIMITER: char = '/';

/// Special-use attributes a client may ask for at CREATE (RFC 6154 §5.2).
const SPECIAL_USES: [&str; 7] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

/// Checks a mailbox name as stored (UTF-8, `/` hierarchy).
fn valid_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("Mailbox name must be 1 to 255 bytes");
    }
    if name.starts_with(DELIMITER) || name.ends_with(DELIMITER) || name.contains("//") {
        return Err("Invalid hierarchy in mailbox name");
    }
    if name.chars().any(|c| c == '%' || c == '*' || c.is_control()) {
        return Err("Mailbox name contains invalid characters");
    }
    Ok(())
}

/// IMAP wildcard match (RFC 9051 §6.3.9): `*` matches anything, `%` anything but `/`.
pub(crate) fn wildcard_match(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|i| wildcard_match(rest, &name[i..])),
        Some(('%', rest)) => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != DELIMITER)
            .any(|i| wildcard_match(rest, &name[i..])),
        Some((c, rest)) => name.first() == Some(c) && wildcard_match(rest, &name[1..]),
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    /// Client form → stored form: modified UTF-7 unless UTF8=ACCEPT is on (RFC 6855 §3),
    /// and INBOX in any case is INBOX (RFC 9051 §5.1).
    pub(crate) fn mailbox_name(&self, raw: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(raw).ok()?;
        let decoded = if self.enabled.utf8 {
            text.to_string()
        } else {
            decode_mutf7(text)?
        };
        Some(normalise_inbox(&decoded))
    }

    /// Stored form → the IMAP string the client sees.
    pub(crate) fn wire_name(&self, name: &str) -> Vec<u8> {
        let shown = if self.enabled.utf8 {
            name.to_string()
        } else {
            encode_mutf7(name)
        };
        let mut out = Vec::new();
        write_string(&mut out, shown.as_bytes());
        out
    }

    fn bal_id(&self) -> i64 {
        self.bal.as_ref().expect("authenticated").id
    }

    /// Resolves a mailbox argument to an existing folder, or answers NO.
    pub(crate) async fn existing_folder(&mut self, tag: &str, raw: &[u8]) -> Option<Folder> {
        let Some(name) = self.mailbox_name(raw) else {
            self.tagged(tag, "NO", "Invalid mailbox name encoding");
            return None;
        };
        match self.ctx.store.folder(self.bal_id(), &name).await {
            Ok(Some(f)) => Some(f),
            Ok(None) => {
                self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
                None
            }
            Err(e) => {
                self.store_failed(tag, e);
                None
            }
        }
    }

    pub(crate) async fn create(&mut self, tag: &str, raw: &[u8], special_use: &[String]) {
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
            Ok(_) => self.tagged(tag, "OK", "CREATE completed"),
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(crate) async fn delete(&mut self, tag: &str, raw: &[u8]) {
        let Some(folder) = self.existing_folder(tag, raw).await else {
            return;
        };
        if folder.name == "INBOX" {
            return self.tagged(tag, "NO", "[CANNOT] INBOX cannot be deleted");
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.folder.id == folder.id)
        {
            self.selected = None;
        }
        match self
            .ctx
            .store
            .delete_folder(self.bal_id(), &folder.name)
            .await
        {
            Ok(()) => self.tagged(tag, "OK", "DELETE completed"),
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(crate) async fn rename(&mut self, tag: &str, from: &[u8], to: &[u8]) {
        let Some(folder) = self.existing_folder(tag, from).await else {
            return;
        };
        let Some(to) = self.mailbox_name(to) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        if let Err(why) = valid_name(&to) {
            return self.tagged(tag, "NO", &format!("[CANNOT] {why}"));
        }
        if to == "INBOX" || to.starts_with(&format!("{}{DELIMITER}", folder.name)) {
            return self.tagged(tag, "NO", "[CANNOT] Cannot rename to that name");
        }
        match self
            .ctx
            .store
            .rename_folder(self.bal_id(), &folder.name, &to, DELIMITER)
            .await
        {
            Ok(()) => self.tagged(tag, "OK", "RENAME completed"),
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(crate) async fn subscribe(&mut self, tag: &str, raw: &[u8], on: bool) {
        let Some(name) = self.mailbox_name(raw) else {
            return self.tagged(tag, "NO", "Invalid mailbox name encoding");
        };
        match self
            .ctx
            .store
            .set_subscription(self.bal_id(), &name, on)
            .await
        {
            Ok(()) => self.tagged(
                tag,
                "OK",
                if on {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.store_failed(tag, e),
        }
    }

    pub(crate) async fn list(&mut self, tag: &str, args: ListArgs) {
        self.list_as(tag, args, false).await;
    }

    /// LIST, or LSUB (RFC 3501 §6.3.9: the subscribed names, with only \Noselect for those
    /// that do not exist) when `lsub`. LIST-EXTENDED per RFC 5258.
    async fn list_as(&mut self, tag: &str, args: ListArgs, lsub: bool) {
        let response = if lsub { "LSUB" } else { "LIST" };
        // RFC 5258 §3: unknown options are errors; RECURSIVEMATCH needs another selection
        // option that is not REMOTE.
        const SELECTION: [&str; 4] = ["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"];
        const RETURNS: [&str; 4] = ["SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"];
        if let Some(bad) = args
            .selection
            .iter()
            .find(|o| !SELECTION.contains(&o.as_str()))
        {
            return self.tagged(tag, "BAD", &format!("Unknown selection option {bad}"));
        }
        if let Some(bad) = args.returns.iter().find(|o| !RETURNS.contains(&o.as_str())) {
            return self.tagged(tag, "BAD", &format!("Unknown return option {bad}"));
        }
        let has = |opts: &[String], o: &str| opts.iter().any(|x| x == o);
        let recursive = has(&args.selection, "RECURSIVEMATCH");
        if recursive
            && !args
                .selection
                .iter()
                .any(|o| o != "RECURSIVEMATCH" && o != "REMOTE")
        {
            return self.tagged(tag, "BAD", "RECURSIVEMATCH needs another selection option");
        }
        // RFC 9051 §6.3.9: LIST "" "" asks for the delimiter.
        if args.patterns.len() == 1 && args.patterns[0].is_empty() && args.selection.is_empty() {
            self.untagged(format!("{response} (\\Noselect) \"/\" \"\""));
            return self.tagged(tag, "OK", &format!("{response} completed"));
        }
        let Some(reference) = std::str::from_utf8(&args.reference)
            .ok()
            .and_then(|r| self.decode_client_name(r))
        else {
            return self.tagged(tag, "BAD", "Invalid reference");
        };
        let extended =
            !args.selection.is_empty() || !args.returns.is_empty() || args.patterns.len() > 1;
        let subscribed_only = has(&args.selection, "SUBSCRIBED");
        let special_only = has(&args.selection, "SPECIAL-USE");
        let show_children = !extended || has(&args.returns, "CHILDREN");
        let show_subscribed = subscribed_only || has(&args.returns, "SUBSCRIBED");
        let (folders, subscriptions) = match self.folders_and_subscriptions().await {
            Ok(v) => v,
            Err(e) => return self.store_failed(tag, e),
        };
        let names: BTreeSet<String> = folders.iter().map(|f| f.name.clone()).collect();
        let patterns: Vec<Vec<char>> = args
            .patterns
            .iter()
            .filter_map(|p| std::str::from_utf8(p).ok())
            .filter_map(|p| self.decode_client_name(p))
            .map(|p| {
                normalise_inbox(&format!("{reference}{p}"))
                    .chars()
                    .collect()
            })
            .collect();
        let matches = |name: &str| {
            let chars: Vec<char> = name.chars().collect();
            patterns.iter().any(|p| wildcard_match(p, &chars))
        };
        let mut candidates: BTreeSet<String> = if subscribed_only || lsub {
            subscriptions.clone()
        } else {
            names.clone()
        };
        // LSUB lists the parents of subscribed names as \Noselect when `%` stops above them
        // (RFC 3501 §6.3.9).
        let with_parents = recursive || lsub;
        if with_parents {
            // Parents of subscribed names, reported with CHILDINFO when those children do
            // not match the pattern themselves (RFC 5258 §3.5).
            for sub in &subscriptions {
                let mut parent = sub.as_str();
                while let Some((p, _)) = parent.rsplit_once(DELIMITER) {
                    candidates.insert(p.to_string());
                    parent = p;
                }
            }
        }
        let mut lines = Vec::new();
        for name in candidates.iter().filter(|n| matches(n)) {
            let folder = folders.iter().find(|f| &f.name == name);
            if special_only && folder.and_then(|f| f.special_use.as_ref()).is_none() {
                continue;
            }
            let prefix = format!("{name}{DELIMITER}");
            let childinfo = with_parents
                && subscriptions
                    .iter()
                    .any(|s| s.starts_with(&prefix) && !matches(s));
            let subscribed = subscriptions.contains(name);
            if (subscribed_only || lsub) && !subscribed && !childinfo {
                continue;
            }
            let mut attrs = Vec::new();
            if lsub {
                if folder.is_none() || !subscribed {
                    attrs.push("\\Noselect".to_string());
                }
            } else {
                if folder.is_none() {
                    attrs.push("\\NonExistent".to_string());
                }
                if show_children {
                    attrs.push(
                        if names.iter().any(|n| n.starts_with(&prefix)) {
                            "\\HasChildren"
                        } else {
                            "\\HasNoChildren"
                        }
                        .to_string(),
                    );
                }
                if show_subscribed && subscribed {
                    attrs.push("\\Subscribed".into());
                }
                if let Some(su) = folder.and_then(|f| f.special_use.clone()) {
                    attrs.push(su);
                }
            }
            lines.push((name.clone(), attrs, childinfo, folder.cloned()));
        }
        for (name, attrs, childinfo, folder) in lines {
            let mut line = format!("{response} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            line.extend(self.wire_name(&name));
            if childinfo && !lsub {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            self.untagged_bytes(&line);
            if let (Some(f), false) = (folder, args.status_items.is_empty() || lsub) {
                self.status_line(&f, &args.status_items).await;
            }
        }
        self.tagged(tag, "OK", &format!("{response} completed"));
    }

    fn decode_client_name(&self, raw: &str) -> Option<String> {
        if self.enabled.utf8 {
            Some(raw.to_string())
        } else {
            decode_mutf7(raw)
        }
    }

    async fn folders_and_subscriptions(
        &self,
    ) -> mssante_store::Result<(Vec<Folder>, BTreeSet<String>)> {
        let bal_id = self.bal_id();
        let folders = self.ctx.store.folders(bal_id).await?;
        let subs = self
            .ctx
            .store
            .subscriptions(bal_id)
            .await?
            .into_iter()
            .collect();
        Ok((folders, subs))
    }

    pub(crate) async fn lsub(&mut self, tag: &str, reference: &[u8], pattern: &[u8]) {
        let args = ListArgs {
            selection: vec!["SUBSCRIBED".into()],
            reference: reference.to_vec(),
            patterns: vec![pattern.to_vec()],
            ..ListArgs::default()
        };
        self.list_as(tag, args, true).await;
    }

    pub(crate) async fn status(&mut self, tag: &str, raw: &[u8], items: &[String]) {
        let Some(folder) = self.existing_folder(tag, raw).await else {
            return;
        };
        if let Some(bad) = items.iter().find(|i| {
            !matches!(
                i.as_str(),
                "MESSAGES"
                    | "UIDNEXT"
                    | "UIDVALIDITY"
                    | "UNSEEN"
                    | "SIZE"
                    | "HIGHESTMODSEQ"
                    | "RECENT"
                    | "DELETED"
            )
        }) {
            return self.tagged(tag, "BAD", &format!("Unknown STATUS item {bad}"));
        }
        self.status_line(&folder, items).await;
        self.tagged(tag, "OK", "STATUS completed");
    }

    async fn status_line(&mut self, folder: &Folder, items: &[String]) {
        let Ok(st) = self.ctx.store.folder_status(folder.id).await else {
            return;
        };
        let values: Vec<String> = items
            .iter()
            .map(|i| {
                let v = match i.as_str() {
                    "MESSAGES" => st.messages as u64,
                    "UIDNEXT" => st.uidnext as u64,
                    "UIDVALIDITY" => st.uidvalidity as u64,
                    "UNSEEN" => st.unseen as u64,
                    "SIZE" => st.size,
                    "HIGHESTMODSEQ" => st.highestmodseq,
                    "DELETED" => st.deleted as u64,
                    "RECENT" => st.recent as u64,
                    _ => 0,
                };
                format!("{i} {v}")
            })
            .collect();
        let mut line = b"STATUS ".to_vec();
        line.extend(self.wire_name(&folder.name));
        line.extend(format!(" ({})", values.join(" ")).as_bytes());
        self.untagged_bytes(&line);
    }
}

fn normalise_inbox(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else if name.len() > 6 && name[..6].eq_ignore_ascii_case("INBOX/") {
        format!("INBOX/{}", &name[6..])
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        wildcard_match(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn wildcards() {
        assert!(m("*", "a/b/c"));
        assert!(m("%", "a") && !m("%", "a/b"));
        assert!(m("a/%", "a/b") && !m("a/%", "a/b/c"));
        assert!(m("a*c", "a/b/c"));
        assert!(m("INBOX", "INBOX") && !m("INBOX", "INBOXX"));
    }

    #[test]
    fn names() {
        assert!(valid_name("Archive/2026").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a*", "a%b", "a\u{1}"] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalise_inbox("inbox"), "INBOX");
        assert_eq!(normalise_inbox("Inbox/x"), "INBOX/x");
    }
}
