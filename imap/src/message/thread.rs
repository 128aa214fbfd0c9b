//! THREAD algorithms (RFC 5256 §2.1 ORDEREDSUBJECT, §2.2 REFERENCES) and the thread-list
//! response (§4). Pure: the caller extracts each message's keys (`sort::base_subject`,
//! `sort::thread_ids`, the sent date) and gets the response text back.

use std::collections::HashMap;

use super::sort::ThreadIds;

/// One message as threading sees it.
#[derive(Clone, Debug, Default)]
pub struct ThreadItem {
    /// What the response names it by: its sequence number, or its UID for UID THREAD.
    pub id: u32,
    /// Sequence number: breaks ties between equal sent dates (§2.2).
    pub seq: u32,
    /// Sent date (the Date header, else INTERNALDATE), seconds.
    pub date: i64,
    /// Case-mapped base subject (§2.1).
    pub subject: String,
    /// The subject carried a reply or forward marker (§2.2 step 6).
    pub reply: bool,
    pub ids: ThreadIds,
}

/// A node of the thread tree: a message, or a dummy standing for a referenced message that
/// is not in the result (or, at the top, for a subject shared by two threads).
#[derive(Default)]
struct Node {
    item: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Forest<'a> {
    items: &'a [ThreadItem],
    nodes: Vec<Node>,
}

impl<'a> Forest<'a> {
    fn new_node(&mut self, item: Option<usize>) -> usize {
        self.nodes.push(Node {
            item,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// True when `ancestor` is `node` or above it.
    fn is_ancestor(&self, ancestor: usize, node: usize) -> bool {
        let mut at = Some(node);
        while let Some(n) = at {
            if n == ancestor {
                return true;
            }
            at = self.nodes[n].parent;
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    /// Makes `child` a child of `parent` unless that would make a loop.
    fn link(&mut self, parent: usize, child: usize) {
        if self.is_ancestor(child, parent) {
            return;
        }
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The message that stands for a node when sorting: itself, or a dummy's first child.
    fn representative(&self, node: usize) -> Option<&'a ThreadItem> {
        let items = self.items;
        match self.nodes[node].item {
            Some(i) => Some(&items[i]),
            None => self.nodes[node]
                .children
                .first()
                .and_then(|&c| self.representative(c)),
        }
    }

    fn sort_key(&self, node: usize) -> (i64, u32) {
        self.representative(node)
            .map(|m| (m.date, m.seq))
            .unwrap_or((i64::MAX, u32::MAX))
    }

    fn sort_siblings(&self, list: &mut [usize]) {
        list.sort_by_key(|&n| self.sort_key(n));
    }

    /// §2.2 step 4: dummies without children go; a dummy's children take its place, at the
    /// top only when it had a single child.
    fn prune(&mut self, list: Vec<usize>, parent: Option<usize>) -> Vec<usize> {
        let mut out = Vec::with_capacity(list.len());
        for node in list {
            let children = std::mem::take(&mut self.nodes[node].children);
            let children = self.prune(children, Some(node));
            let dummy = self.nodes[node].item.is_none();
            if dummy && (children.is_empty() || parent.is_some() || children.len() == 1) {
                for &c in &children {
                    self.nodes[c].parent = parent;
                }
                out.extend(children);
            } else {
                self.nodes[node].children = children;
                out.push(node);
            }
        }
        out
    }

    /// §2.2 step 7: siblings by sent date, the deepest first so that a dummy's first child
    /// is known when the dummy is sorted.
    fn sort_tree(&mut self, list: &mut [usize]) {
        for &n in list.iter() {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            self.sort_tree(&mut children);
            self.nodes[n].children = children;
        }
        self.sort_siblings(list);
    }

    /// §2.2 step 6: threads whose first messages share a base subject are merged.
    fn merge_subjects(&mut self, roots: Vec<usize>) -> Vec<usize> {
        let subject_of = |f: &Self, n: usize| {
            f.representative(n)
                .map(|m| m.subject.clone())
                .unwrap_or_default()
        };
        let is_reply = |f: &Self, n: usize| f.nodes[n].item.is_some_and(|i| f.items[i].reply);
        let is_dummy = |f: &Self, n: usize| f.nodes[n].item.is_none();
        let mut table: HashMap<String, usize> = HashMap::new();
        for &r in &roots {
            let subject = subject_of(self, r);
            if subject.is_empty() {
                continue;
            }
            match table.get(&subject) {
                None => {
                    table.insert(subject, r);
                }
                Some(&old) => {
                    let replace = (is_dummy(self, r) && !is_dummy(self, old))
                        || (is_reply(self, old) && !is_dummy(self, r) && !is_reply(self, r));
                    if replace {
                        table.insert(subject, r);
                    }
                }
            }
        }
        let mut out: Vec<usize> = roots.clone();
        for &r in &roots {
            let subject = subject_of(self, r);
            let Some(&t) = table.get(&subject).filter(|_| !subject.is_empty()) else {
                continue;
            };
            if t == r {
                continue;
            }
            match (is_dummy(self, t), is_dummy(self, r)) {
                (true, true) => {
                    for c in std::mem::take(&mut self.nodes[r].children) {
                        self.nodes[c].parent = Some(t);
                        self.nodes[t].children.push(c);
                    }
                    out.retain(|&n| n != r);
                }
                (true, false) => {
                    self.link(t, r);
                    out.retain(|&n| n != r);
                }
                (false, true) => {
                    self.link(r, t);
                    out.retain(|&n| n != t);
                    table.insert(subject, r);
                }
                (false, false) if is_reply(self, r) && !is_reply(self, t) => {
                    self.link(t, r);
                    out.retain(|&n| n != r);
                }
                (false, false) => {
                    let dummy = self.new_node(None);
                    let at = out.iter().position(|&n| n == t).expect("t is a root");
                    out[at] = dummy;
                    self.link(dummy, t);
                    self.link(dummy, r);
                    out.retain(|&n| n != r);
                    table.insert(subject, dummy);
                }
            }
        }
        out
    }

    /// §4: `(a b (c)(d))`; a dummy at the top is `((a)(b))`.
    fn render(&self, node: usize, out: &mut String) {
        let n = &self.nodes[node];
        if let Some(i) = n.item {
            out.push_str(&self.items[i].id.to_string());
            match n.children.as_slice() {
                [] => return,
                [only] => {
                    out.push(' ');
                    return self.render(*only, out);
                }
                _ => out.push(' '),
            }
        }
        if n.item.is_none() && n.children.len() == 1 {
            return self.render(n.children[0], out);
        }
        for &c in &n.children {
            out.push('(');
            self.render(c, out);
            out.push(')');
        }
    }

    fn render_all(&self, roots: &[usize]) -> String {
        let mut out = String::new();
        for &r in roots {
            out.push('(');
            self.render(r, &mut out);
            out.push(')');
        }
        out
    }
}

/// RFC 5256 §2.2 THREAD=REFERENCES: the thread list for `items`.
pub fn references(items: &[ThreadItem]) -> String {
    let mut f = Forest {
        items,
        nodes: Vec::with_capacity(items.len() * 2),
    };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    // Step 1: containers for every message and every id it references. A missing or
    // duplicate Message-ID gets a container of its own (step 1 note).
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| items[i].seq);
    for i in order {
        let own = match items[i].ids.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&n) if f.nodes[n].item.is_none() => {
                    f.nodes[n].item = Some(i);
                    n
                }
                Some(_) => f.new_node(Some(i)),
                None => {
                    let n = f.new_node(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => f.new_node(Some(i)),
        };
        // Step 1A: each reference is the parent of the next, unless already linked.
        let mut previous: Option<usize> = None;
        for r in &items[i].ids.references {
            let node = match by_id.get(r.as_str()) {
                Some(&n) => n,
                None => {
                    let n = f.new_node(None);
                    by_id.insert(r, n);
                    n
                }
            };
            if let Some(p) = previous
                && f.nodes[node].parent.is_none()
            {
                f.link(p, node);
            }
            previous = Some(node);
        }
        // Step 1B: the last reference is the message's parent, whatever it had before: the
        // old link goes even when the new one would make a loop (as Dovecot does).
        f.unlink(own);
        if let Some(p) = previous {
            f.link(p, own);
        }
    }
    // Steps 2–5: the root set, pruned, sorted by date.
    let roots: Vec<usize> = (0..f.nodes.len())
        .filter(|&n| f.nodes[n].parent.is_none())
        .collect();
    let mut roots = f.prune(roots, None);
    f.sort_tree(&mut roots);
    // Steps 6–7.
    let mut roots = f.merge_subjects(roots);
    f.sort_tree(&mut roots);
    f.render_all(&roots)
}

/// RFC 5256 §2.1 THREAD=ORDEREDSUBJECT: messages grouped by base subject, each group sorted
/// by sent date; the first of a group is the parent of the others, groups in the order of
/// their first message.
pub fn ordered_subject(items: &[ThreadItem]) -> String {
    let mut sorted: Vec<&ThreadItem> = items.iter().collect();
    sorted.sort_by(|a, b| (&a.subject, a.date, a.seq).cmp(&(&b.subject, b.date, b.seq)));
    let mut groups: Vec<Vec<&ThreadItem>> = Vec::new();
    for item in sorted {
        match groups.last_mut() {
            Some(g) if g[0].subject == item.subject => g.push(item),
            _ => groups.push(vec![item]),
        }
    }
    groups.sort_by_key(|g| (g[0].date, g[0].seq));
    let mut out = String::new();
    for group in groups {
        out.push('(');
        out.push_str(&group[0].id.to_string());
        match &group[1..] {
            [] => {}
            [only] => out.push_str(&format!(" {}", only.id)),
            children => {
                out.push(' ');
                for c in children {
                    out.push_str(&format!("({})", c.id));
                }
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u32, date: i64, subject: &str, id: Option<&str>, refs: &[&str]) -> ThreadItem {
        ThreadItem {
            id: seq,
            seq,
            date,
            subject: subject.into(),
            reply: false,
            ids: ThreadIds {
                message_id: id.map(String::from),
                references: refs.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    #[test]
    fn ordered_subject_groups_by_subject_and_date() {
        let items = [
            item(1, 5, "B", None, &[]),
            item(2, 1, "A", None, &[]),
            item(3, 3, "A", None, &[]),
            item(4, 2, "C", None, &[]),
            item(5, 2, "A", None, &[]),
            item(6, 9, "B", None, &[]),
        ];
        assert_eq!(ordered_subject(&items), "(2 (5)(3))(4)(1 6)");
    }

    #[test]
    fn references_follow_parents_and_dates() {
        // 1 <- 2 <- 3, and 4 answers 1 as well: (1 (2 3)(4)).
        let items = [
            item(1, 1, "X", Some("<1>"), &[]),
            item(2, 2, "X", Some("<2>"), &["<1>"]),
            item(3, 3, "X", Some("<3>"), &["<1>", "<2>"]),
            item(4, 4, "X", Some("<4>"), &["<1>"]),
            item(5, 0, "Y", Some("<5>"), &[]),
        ];
        assert_eq!(references(&items), "(5)(1 (2 3)(4))");
    }

    #[test]
    fn missing_parents_become_dummies_then_go() {
        // Two answers to a message we do not have: a dummy at the top keeps them together.
        let items = [
            item(1, 2, "A", Some("<a>"), &["<gone>"]),
            item(2, 1, "B", Some("<b>"), &["<gone>"]),
            item(3, 3, "C", Some("<c>"), &["<lost>"]),
        ];
        assert_eq!(references(&items), "((2)(1))(3)");
    }

    #[test]
    fn same_subject_threads_merge() {
        let mut reply = item(2, 2, "S", Some("<r>"), &[]);
        reply.reply = true;
        let items = [item(1, 1, "S", Some("<o>"), &[]), reply];
        assert_eq!(references(&items), "(1 2)");
        // Neither a reply: both go under a dummy.
        let items = [
            item(1, 1, "S", Some("<o>"), &[]),
            item(2, 2, "S", Some("<p>"), &[]),
        ];
        assert_eq!(references(&items), "((1)(2))");
    }

    #[test]
    fn own_references_override_earlier_guesses() {
        // imaptest `thread`: 2 says a <- c <- 2; then 3 (c) says its parent is 2, a loop:
        // 3 leaves 1 and 2 stays under it.
        let items = [
            item(1, 3, "", Some("<a@b>"), &[]),
            item(2, 1, "", Some("<b@b>"), &["<a@b>", "<c@b>"]),
            item(3, 2, "", Some("<c@b>"), &["<b@b>"]),
        ];
        assert_eq!(references(&items), "(3 2)(1)");
        assert_eq!(references(&items[1..]), "(3 2)");
    }

    #[test]
    fn loops_and_duplicates_are_harmless() {
        let items = [
            item(1, 1, "", Some("<a>"), &["<b>"]),
            item(2, 2, "", Some("<b>"), &["<a>"]),
            item(3, 3, "", Some("<a>"), &[]),
        ];
        let out = references(&items);
        assert!(
            out.contains('1') && out.contains('2') && out.contains('3'),
            "{out}"
        );
    }
}
