//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): a SEARCH or SORT with `RETURN (UPDATE)`
//! stays alive and the client is told, in ESEARCH responses tagged with the command's tag,
//! which messages join (ADDTO) or leave (REMOVEFROM) its result as the mailbox changes;
//! CANCELUPDATE ends it. Results are kept as UIDs and computed again after each command.

use std::collections::HashSet;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::parse::{SearchKey, SortKey, compact};
use crate::session::Session;
use crate::state::SearchContext;

/// The positions (1-based) in `list` of the members of `part`, and those members in list
/// order.
fn positions(list: &[u32], part: &HashSet<u32>) -> Vec<(usize, u32)> {
    list.iter()
        .enumerate()
        .filter(|(_, u)| part.contains(u))
        .map(|(i, &u)| (i + 1, u))
        .collect()
}

/// Runs of consecutive positions: a sorted result may gain messages in several places.
fn runs(found: &[(usize, u32)]) -> Vec<&[(usize, u32)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=found.len() {
        if i == found.len() || found[i].0 != found[i - 1].0 + 1 {
            if start < i {
                out.push(&found[start..i]);
            }
            start = i;
        }
    }
    out
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Session<T> {
    pub(crate) fn keep_context(
        &mut self,
        tag: &str,
        uid: bool,
        key: SearchKey,
        sort: Option<Vec<SortKey>>,
        result: Vec<u32>,
    ) {
        // RFC 5267 §4.2: a new UPDATE with the tag of a live one replaces it.
        self.contexts.retain(|c| c.tag != tag);
        self.contexts.push(SearchContext {
            tag: tag.to_string(),
            uid,
            key,
            sort,
            result,
        });
    }

    /// CANCELUPDATE (RFC 5267 §4.3).
    pub(crate) fn cancel_update(&mut self, tag: &str, tags: &[String]) {
        let before = self.contexts.len();
        self.contexts.retain(|c| !tags.contains(&c.tag));
        if self.contexts.len() + tags.len() != before {
            return self.tagged(tag, "NO", "Unknown search context");
        }
        self.tagged(tag, "OK", "CANCELUPDATE completed");
    }

    /// `* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (position set)`, the set given as
    /// sequence numbers (from the current view) or UIDs.
    fn context_line(&mut self, i: usize, what: &str, found: &[(usize, u32)]) {
        let (ctx, sel) = (&self.contexts[i], self.selected.as_ref().expect("selected"));
        let ids: Vec<u32> = found
            .iter()
            .filter_map(|&(_, u)| if ctx.uid { Some(u) } else { sel.seq_of(u) })
            .collect();
        if ids.is_empty() {
            return;
        }
        let uid = if ctx.uid { " UID" } else { "" };
        let line = format!(
            "ESEARCH (TAG \"{}\"){uid} {what} ({} {})",
            ctx.tag,
            found[0].0,
            compact(&ids)
        );
        self.untagged(line);
    }

    /// Before the view drops `expunged` (RFC 5267 §4.3): REMOVEFROM with the numbers the
    /// client still knows, ahead of the EXPUNGE responses that renumber.
    pub(crate) fn contexts_lose(&mut self, expunged: &[u32]) {
        for i in 0..self.contexts.len() {
            let expunged: HashSet<u32> = expunged.iter().copied().collect();
            let gone = positions(&self.contexts[i].result, &expunged);
            if gone.is_empty() {
                continue;
            }
            self.context_line(i, "REMOVEFROM", &gone);
            self.contexts[i].result.retain(|u| !expunged.contains(u));
        }
    }

    /// After a command: live contexts end with the mailbox they searched (RFC 5267 §4.2),
    /// the others are brought up to date.
    pub(crate) async fn after_command_contexts(&mut self, folder_before: Option<i64>) {
        if self.contexts.is_empty() {
            return;
        }
        if self.selected.as_ref().map(|s| s.folder.id) != folder_before {
            self.contexts.clear();
        } else {
            self.report_context_updates().await;
        }
    }

    /// Each live context computed again, differences reported.
    pub(crate) async fn report_context_updates(&mut self) {
        for i in 0..self.contexts.len() {
            let (key, sort) = (self.contexts[i].key.clone(), self.contexts[i].sort.clone());
            let hits = match &sort {
                Some(keys) => self.sorted_hits(keys, &key).await,
                None => self.matching(&key).await,
            };
            let Ok(hits) = hits else {
                continue;
            };
            let now: Vec<u32> = hits.iter().map(|h| h.1).collect();
            let before = std::mem::take(&mut self.contexts[i].result);
            let (now_set, before_set): (HashSet<u32>, HashSet<u32>) = (
                now.iter().copied().collect(),
                before.iter().copied().collect(),
            );
            let removed: HashSet<u32> = before_set.difference(&now_set).copied().collect();
            let added: HashSet<u32> = now_set.difference(&before_set).copied().collect();
            if !removed.is_empty() {
                self.context_line(i, "REMOVEFROM", &positions(&before, &removed));
            }
            let added = positions(&now, &added);
            match sort {
                // A sorted result gains messages in places: one ADDTO per run.
                Some(_) => {
                    for run in runs(&added) {
                        self.context_line(i, "ADDTO", run);
                    }
                }
                None if !added.is_empty() => self.context_line(i, "ADDTO", &added),
                None => {}
            }
            self.contexts[i].result = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_runs() {
        let found = positions(&[7, 3, 9, 4, 5], &HashSet::from([3, 4, 5]));
        assert_eq!(found, vec![(2, 3), (4, 4), (5, 5)]);
        let r = runs(&found);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], &[(2, 3)]);
        assert_eq!(r[1], &[(4, 4), (5, 5)]);
        assert!(runs(&[]).is_empty());
    }
}
