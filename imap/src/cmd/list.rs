//! LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and
//! SPECIAL-USE (RFC 6154); LSUB (`lsub.rs`) is a LIST of subscribed names.

use std::collections::BTreeSet;

use mssante_store::Folder;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::mailbox_names::{DELIMITER, normalise_inbox, wildcard_match};
use crate::parse::ListArgs;
use crate::session::Session;

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) async fn list(&mut self, tag: &str, args: ListArgs) {
        self.list_as(tag, args, false).await;
    }

    /// LIST, or LSUB (RFC 3501 §6.3.9: the subscribed names, with only \Noselect for those
    /// that do not exist) when `lsub`. LIST-EXTENDED per RFC 5258.
    pub(crate) async fn list_as(&mut self, tag: &str, args: ListArgs, lsub: bool) {
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
                // Delegated folders already carry their `Other Users/…` name here.
                self.status_line(&f, &f.name, &args.status_items).await;
            }
        }
        self.tagged(tag, "OK", &format!("{response} completed"));
    }

    async fn folders_and_subscriptions(
        &self,
    ) -> mssante_store::Result<(Vec<Folder>, BTreeSet<String>)> {
        let bal_id = self.bal_id();
        let mut folders: Vec<Folder> = self
            .ctx
            .store
            .folders(bal_id)
            .await?
            .into_iter()
            .filter(|f| self.rights_on(f).has('l'))
            .collect();
        let mut subs: BTreeSet<String> = self
            .ctx
            .store
            .subscriptions(bal_id)
            .await?
            .into_iter()
            .collect();
        // Delegated BALs under the other-users namespace (RFC 2342 §5), the folders with the
        // `l` right (RFC 4314 §4), shown as subscribed so that LSUB clients see them too.
        let mut bals: Vec<i64> = self.access.delegated.iter().map(|d| d.bal_id).collect();
        bals.dedup();
        for other in bals {
            for mut f in self.ctx.store.folders(other).await? {
                let shared = self.access.shared_name(other, &f.name);
                if let (true, Some(shared)) = (self.rights_on(&f).has('l'), shared) {
                    subs.insert(shared.clone());
                    f.name = shared;
                    folders.push(f);
                }
            }
        }
        Ok((folders, subs))
    }
}
