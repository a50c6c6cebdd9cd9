//! The revision tree as pure functions: no I/O, no clock.
//!
//! A tree maps each known revision to its parent (when known) and whether it is a deletion.
//! Leaves are revisions nobody names as parent. The winner is CouchDB's deterministic pick: a
//! live leaf beats a deleted one, then the longer path (higher `pos`), then the greater hash.
//! Stemming keeps each leaf's `limit` nearest revisions and forgets older ones; a kept revision
//! whose parent was forgotten becomes a root.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// The highest revision position accepted: the largest integer a JavaScript client holds
/// exactly. A new edit of a revision at this position is refused rather than wrapped.
pub const MAX_REV_POS: u64 = (1 << 53) - 1;

/// A revision id, `pos-hash`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rev {
    pub pos: u64,
    pub hash: String,
}

impl Rev {
    /// Parses `N-hash` with 1 ≤ N ≤ [`MAX_REV_POS`] and a hash of at most 128 printable ASCII
    /// characters (CouchDB takes any hash; ours are hex, a client's may be
    /// `totally_fake`, which is then simply a revision nobody has).
    pub fn parse(s: &str) -> Option<Rev> {
        let (pos, hash) = s.split_once('-')?;
        let pos: u64 = pos.parse().ok()?;
        // An empty hash (`1-`) is a revision too: CouchDB takes it, and PouchDB sends it.
        if pos == 0
            || pos > MAX_REV_POS
            || hash.len() > 128
            || !hash.bytes().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        Some(Rev {
            pos,
            hash: hash.to_owned(),
        })
    }

    /// The revision one step up with the given hash; `None` at position 1.
    fn parent_with(&self, hash: String) -> Option<Rev> {
        Some(Rev {
            pos: self.pos.checked_sub(1).filter(|p| *p > 0)?,
            hash,
        })
    }
}

impl fmt::Display for Rev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.pos, self.hash)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// The parent's hash (its pos is one less), when known. A parent named here is always in
    /// the tree.
    parent: Option<String>,
    deleted: bool,
    /// How many revisions in the tree name this one as parent.
    children: u32,
}

/// A document's revision tree. The leaves are kept as a set beside the nodes, so asking for
/// leaves, the winner or whether a revision is a leaf costs the number of leaves (or a
/// lookup), not the size of the tree: a request's work stays linear in what it sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevTree {
    nodes: BTreeMap<Rev, Node>,
    leaves: BTreeSet<Rev>,
}

/// What merging a path did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The path's leaf is new.
    Added,
    /// The tree knew the path's leaf already.
    Known,
}

/// `_revisions` as CouchDB writes it: the newest pos, and hashes newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revisions {
    pub start: u64,
    pub ids: Vec<String>,
}

impl Revisions {
    /// The path it names, newest first, at most `limit` revisions (older ones are what stemming
    /// would forget anyway); `None` when it is malformed.
    pub fn path(&self, limit: usize) -> Option<Vec<Rev>> {
        if self.ids.is_empty() || (self.ids.len() as u64) > self.start || self.start > MAX_REV_POS {
            return None;
        }
        self.ids
            .iter()
            .take(limit.max(1))
            .enumerate()
            .map(|(i, h)| Rev::parse(&format!("{}-{h}", self.start - i as u64)))
            .collect()
    }
}

impl RevTree {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many revisions the tree holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn contains(&self, rev: &Rev) -> bool {
        self.nodes.contains_key(rev)
    }

    pub fn is_deleted(&self, rev: &Rev) -> Option<bool> {
        self.nodes.get(rev).map(|n| n.deleted)
    }

    fn parent_of(&self, rev: &Rev) -> Option<Rev> {
        let hash = self.nodes.get(rev)?.parent.clone()?;
        rev.parent_with(hash)
    }

    /// Leaves with their deleted flag, in ascending revision order.
    pub fn leaves(&self) -> Vec<(Rev, bool)> {
        self.leaves
            .iter()
            .map(|r| (r.clone(), self.is_deleted(r).unwrap_or(false)))
            .collect()
    }

    pub fn leaf_count(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_leaf(&self, rev: &Rev) -> bool {
        self.leaves.contains(rev)
    }

    /// CouchDB's winning revision, and whether it is deleted.
    pub fn winner(&self) -> Option<(Rev, bool)> {
        self.leaves()
            .into_iter()
            .max_by(|(a, ad), (b, bd)| (!ad, a.pos, &a.hash).cmp(&(!bd, b.pos, &b.hash)))
    }

    /// Live leaves other than the winner, newest first.
    pub fn conflicts(&self) -> Vec<Rev> {
        self.losing_leaves(false)
    }

    /// Deleted leaves other than the winner, newest first.
    pub fn deleted_conflicts(&self) -> Vec<Rev> {
        self.losing_leaves(true)
    }

    fn losing_leaves(&self, deleted: bool) -> Vec<Rev> {
        let winner = self.winner().map(|w| w.0);
        let mut out: Vec<Rev> = self
            .leaves()
            .into_iter()
            .filter(|(r, d)| *d == deleted && Some(r) != winner.as_ref())
            .map(|(r, _)| r)
            .collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// How many leaves the tree would have after merging `path` (see [`RevTree::merge`]),
    /// without merging it.
    pub fn leaves_after(&self, path: &[Rev]) -> usize {
        let Some(leaf) = path.first() else {
            return self.leaves.len();
        };
        let added = usize::from(!self.contains(leaf));
        // A leaf the path goes through becomes inner once linked below it.
        let covered = path
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(i, r)| {
                self.is_leaf(r)
                    && path.get(i - 1).is_some_and(|child| {
                        self.nodes.get(child).is_none_or(|n| n.parent.is_none())
                    })
            })
            .count();
        (self.leaves.len() + added).saturating_sub(covered)
    }

    fn link(&mut self, child: &Rev, parent_hash: &str) {
        let Some(parent) = child.parent_with(parent_hash.to_owned()) else {
            return;
        };
        let Some(node) = self.nodes.get_mut(child) else {
            return;
        };
        if node.parent.is_some() {
            return;
        }
        let Some(p) = self.nodes.get_mut(&parent) else {
            return;
        };
        p.children += 1;
        self.leaves.remove(&parent);
        if let Some(node) = self.nodes.get_mut(child) {
            node.parent = Some(parent.hash);
        }
    }

    /// Adds a path (newest first, each the parent of the one before) ending in a leaf with the
    /// given deleted flag. Known revisions stay; a root that the path shows a parent for gets
    /// it. Costs the path's length times a lookup.
    pub fn merge(&mut self, path: &[Rev], deleted: bool) -> Merge {
        let Some(leaf) = path.first() else {
            return Merge::Known;
        };
        let known = self.contains(leaf);
        for (i, rev) in path.iter().enumerate() {
            if !self.nodes.contains_key(rev) {
                self.nodes.insert(
                    rev.clone(),
                    Node {
                        parent: None,
                        deleted: i == 0 && deleted,
                        children: 0,
                    },
                );
                self.leaves.insert(rev.clone());
            }
        }
        for pair in path.windows(2) {
            if pair[1].pos.checked_add(1) == Some(pair[0].pos) {
                self.link(&pair[0], &pair[1].hash);
            }
        }
        if known {
            Merge::Known
        } else {
            Merge::Added
        }
    }

    /// Purges a leaf: removes it and every ancestor only it descends from (up to where another
    /// branch forks off). Returns the removed revisions, newest first; nothing for a revision
    /// that is not a leaf.
    pub fn purge(&mut self, rev: &Rev) -> Vec<Rev> {
        let mut removed = Vec::new();
        if !self.is_leaf(rev) {
            return removed;
        }
        let mut at = Some(rev.clone());
        while let Some(r) = at.take() {
            let Some(node) = self.nodes.remove(&r) else {
                break;
            };
            self.leaves.remove(&r);
            removed.push(r.clone());
            if let Some(parent) = node.parent.and_then(|h| r.parent_with(h)) {
                if let Some(p) = self.nodes.get_mut(&parent) {
                    p.children = p.children.saturating_sub(1);
                    if p.children == 0 {
                        at = Some(parent);
                    }
                }
            }
        }
        removed
    }

    /// Recounts children and leaves from the parent links (after loading or stemming).
    fn reindex(&mut self) {
        let parents: Vec<Rev> = self
            .nodes
            .keys()
            .filter_map(|r| self.parent_of(r))
            .collect();
        for node in self.nodes.values_mut() {
            node.children = 0;
        }
        for p in &parents {
            if let Some(n) = self.nodes.get_mut(p) {
                n.children += 1;
            }
        }
        self.leaves = self
            .nodes
            .iter()
            .filter(|(_, n)| n.children == 0)
            .map(|(r, _)| r.clone())
            .collect();
    }

    /// Forgets every revision more than `limit` steps from all leaves. Returns the forgotten.
    /// As CouchDB stems (each leaf's path cut to `limit`, the paths merged again), a link
    /// between two kept revisions survives only where one leaf's window holds both.
    pub fn stem(&mut self, limit: usize) -> Vec<Rev> {
        let limit = limit.max(1);
        let mut keep = BTreeSet::new();
        let mut links = BTreeSet::new();
        for leaf in self.leaves.clone() {
            let mut at = Some(leaf);
            for i in 0..limit {
                let Some(rev) = at else { break };
                at = self.parent_of(&rev);
                // The link to the parent is inside this window unless this is its last revision.
                if at.is_some() && i + 1 < limit {
                    links.insert(rev.clone());
                }
                keep.insert(rev);
            }
        }
        if keep.len() == self.nodes.len() && links.len() == self.nodes.len() - self.roots() {
            return Vec::new();
        }
        let forgotten: Vec<Rev> = self
            .nodes
            .keys()
            .filter(|r| !keep.contains(*r))
            .cloned()
            .collect();
        for r in &forgotten {
            self.nodes.remove(r);
        }
        for (rev, node) in self.nodes.iter_mut() {
            if !links.contains(rev) {
                node.parent = None;
            }
        }
        self.reindex();
        forgotten
    }

    fn roots(&self) -> usize {
        self.nodes.values().filter(|n| n.parent.is_none()).count()
    }

    /// The revision and its known ancestors, newest first.
    pub fn path_to(&self, rev: &Rev) -> Vec<Rev> {
        let mut out = Vec::new();
        let mut at = self.contains(rev).then(|| rev.clone());
        while let Some(r) = at {
            at = self.parent_of(&r);
            out.push(r);
        }
        out
    }

    /// `_revisions` for a revision.
    pub fn revisions(&self, rev: &Rev) -> Revisions {
        let path = self.path_to(rev);
        Revisions {
            start: rev.pos,
            ids: path.into_iter().map(|r| r.hash).collect(),
        }
    }

    /// The leaves that descend from `rev` (itself, when it is a leaf).
    pub fn leaves_under(&self, rev: &Rev) -> Vec<Rev> {
        self.leaves
            .iter()
            .filter(|leaf| leaf.pos >= rev.pos && self.path_to(leaf).contains(rev))
            .cloned()
            .collect()
    }

    /// Of `revs`, those the tree does not know, and the tree's leaves that could be their
    /// ancestors (lower pos).
    pub fn revs_diff(&self, revs: &[Rev]) -> (Vec<Rev>, Vec<Rev>) {
        let missing: Vec<Rev> = revs.iter().filter(|r| !self.contains(r)).cloned().collect();
        let max_pos = missing.iter().map(|r| r.pos).max().unwrap_or(0);
        let ancestors = self
            .leaves
            .iter()
            .filter(|r| r.pos < max_pos)
            .cloned()
            .collect();
        (missing, ancestors)
    }

    /// Compact form for storage: `[[pos, hash, parent hash or null, deleted], …]`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.nodes
                .iter()
                .map(|(r, n)| serde_json::json!([r.pos, r.hash, n.parent, n.deleted]))
                .collect(),
        )
    }

    pub fn from_json(v: &serde_json::Value) -> Option<RevTree> {
        let mut nodes = BTreeMap::new();
        for item in v.as_array()? {
            let a = item.as_array()?;
            let pos = a.first()?.as_u64()?;
            let hash = a.get(1)?.as_str()?.to_owned();
            let parent = match a.get(2)? {
                serde_json::Value::Null => None,
                p => Some(p.as_str()?.to_owned()),
            };
            let deleted = a.get(3)?.as_bool()?;
            nodes.insert(
                Rev { pos, hash },
                Node {
                    parent,
                    deleted,
                    children: 0,
                },
            );
        }
        // A parent link to a revision not in the tree is dropped: the invariant holds for
        // whatever was stored.
        let dangling: Vec<Rev> = nodes
            .iter()
            .filter(|(r, n)| {
                n.parent.as_ref().is_some_and(|h| {
                    r.parent_with(h.clone())
                        .is_none_or(|p| !nodes.contains_key(&p))
                })
            })
            .map(|(r, _)| r.clone())
            .collect();
        for r in dangling {
            if let Some(n) = nodes.get_mut(&r) {
                n.parent = None;
            }
        }
        let mut tree = RevTree {
            nodes,
            leaves: BTreeSet::new(),
        };
        tree.reindex();
        Some(tree)
    }
}

/// JSON with every object's keys in byte order, compact: the same bytes for the same document
/// whatever order its fields came in.
pub fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing a string to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// The id of a new edit, deterministic as CouchDB's: the MD5 of what the edit is (deleted flag,
/// the revision it edits, the body as canonical JSON, the attachments' digests), so the same edit
/// made twice gets the same id. `None` when the parent is at [`MAX_REV_POS`].
pub fn new_rev(
    parent: Option<&Rev>,
    deleted: bool,
    body: &serde_json::Value,
    attachment_digests: &[String],
) -> Option<Rev> {
    let pos = match parent {
        Some(p) => p.pos.checked_add(1).filter(|p| *p <= MAX_REV_POS)?,
        None => 1,
    };
    let mut h = Md5::new();
    h.update([u8::from(deleted)]);
    if let Some(p) = parent {
        h.update(p.to_string().as_bytes());
    }
    h.update([0]);
    // Documents keep their fields in the order written; the hash sees them sorted.
    let mut canonical = Vec::new();
    write_canonical(body, &mut canonical);
    h.update(&canonical);
    for d in attachment_digests {
        h.update([0]);
        h.update(d.as_bytes());
    }
    let digest = h.finalize();
    Some(Rev {
        pos,
        hash: digest.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Rev {
        Rev::parse(s).unwrap()
    }

    fn path(revs: &[&str]) -> Vec<Rev> {
        revs.iter().map(|s| r(s)).collect()
    }

    #[test]
    fn parse_and_print() {
        assert_eq!(r("3-abc").to_string(), "3-abc");
        assert_eq!(r("3-totally_fake_rev").hash, "totally_fake_rev");
        assert_eq!(r("1-").to_string(), "1-");
        for bad in ["", "3", "0-a", "-a", "x-a", "3-a b", "3-ä", "3-a\0"] {
            assert_eq!(Rev::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn linear_history_and_winner() {
        let mut t = RevTree::default();
        assert_eq!(t.merge(&path(&["1-a"]), false), Merge::Added);
        assert_eq!(t.merge(&path(&["2-b", "1-a"]), false), Merge::Added);
        assert_eq!(t.merge(&path(&["2-b", "1-a"]), false), Merge::Known);
        assert_eq!(t.leaves(), vec![(r("2-b"), false)]);
        assert_eq!(t.winner(), Some((r("2-b"), false)));
        assert!(t.conflicts().is_empty());
        assert_eq!(
            t.revisions(&r("2-b")),
            Revisions {
                start: 2,
                ids: vec!["b".into(), "a".into()]
            }
        );
    }

    #[test]
    fn conflicts_pick_a_deterministic_winner() {
        let mut t = RevTree::default();
        t.merge(&path(&["2-b", "1-a"]), false);
        t.merge(&path(&["2-c", "1-a"]), false);
        t.merge(&path(&["3-d", "2-b", "1-a"]), true);
        // The deleted 3-d loses to the live 2-c despite its higher pos.
        assert_eq!(t.winner(), Some((r("2-c"), false)));
        assert!(t.conflicts().is_empty());
        assert_eq!(t.deleted_conflicts(), vec![r("3-d")]);
        // Among live leaves: higher pos, then greater hash.
        t.merge(&path(&["2-z", "1-a"]), false);
        assert_eq!(t.winner(), Some((r("2-z"), false)));
        assert_eq!(t.conflicts(), vec![r("2-c")]);
        // All deleted: the deleted leaf with the highest pos wins.
        let mut d = RevTree::default();
        d.merge(&path(&["2-b", "1-a"]), true);
        d.merge(&path(&["3-x", "2-c", "1-a"]), true);
        assert_eq!(d.winner(), Some((r("3-x"), true)));
        // The winner does not depend on the order of merges.
        let mut e = RevTree::default();
        e.merge(&path(&["3-x", "2-c", "1-a"]), true);
        e.merge(&path(&["2-b", "1-a"]), true);
        assert_eq!(e.winner(), d.winner());
    }

    #[test]
    fn stemming_keeps_limit_revisions_per_leaf() {
        let mut t = RevTree::default();
        let long: Vec<Rev> = (1..=10).rev().map(|i| r(&format!("{i}-h{i}"))).collect();
        t.merge(&long, false);
        let forgotten = t.stem(3);
        assert_eq!(forgotten.len(), 7);
        assert_eq!(t.path_to(&r("10-h10")), path(&["10-h10", "9-h9", "8-h8"]));
        // A stemmed tree still merges a newer path that overlaps it.
        assert_eq!(
            t.merge(&path(&["11-h11", "10-h10", "9-h9"]), false),
            Merge::Added
        );
        assert_eq!(t.winner().unwrap().0, r("11-h11"));
        // A path that brings back an ancestor reattaches the root.
        t.merge(&path(&["8-h8", "7-h7"]), false);
        assert_eq!(t.path_to(&r("11-h11")).len(), 5);
        assert_eq!(t.leaves(), vec![(r("11-h11"), false)]);
    }

    #[test]
    fn revs_diff_and_leaves_under() {
        let mut t = RevTree::default();
        t.merge(&path(&["2-b", "1-a"]), false);
        t.merge(&path(&["2-c", "1-a"]), false);
        let (missing, anc) = t.revs_diff(&path(&["2-b", "3-x", "1-a"]));
        assert_eq!(missing, path(&["3-x"]));
        assert_eq!(anc, path(&["2-b", "2-c"]));
        assert_eq!(t.leaves_under(&r("1-a")), path(&["2-b", "2-c"]));
        assert_eq!(t.leaves_under(&r("2-c")), path(&["2-c"]));
    }

    #[test]
    fn json_roundtrip() {
        let mut t = RevTree::default();
        t.merge(&path(&["3-c", "2-b", "1-a"]), true);
        t.merge(&path(&["2-x", "1-a"]), false);
        t.stem(2);
        assert_eq!(RevTree::from_json(&t.to_json()), Some(t));
    }

    #[test]
    fn new_revs_are_deterministic() {
        let body = serde_json::json!({"b": 1, "a": [1, 2]});
        let a = new_rev(None, false, &body, &[]).unwrap();
        let b = new_rev(None, false, &serde_json::json!({"a": [1, 2], "b": 1}), &[]).unwrap();
        assert_eq!(a, b, "key order does not matter");
        // The same id as before documents kept their field order (sorted keys then).
        assert_eq!(a.hash, "6218f91fd3daef55092fa53ee3179a28");
        assert_eq!(a.pos, 1);
        assert_eq!(a.hash.len(), 32);
        assert_ne!(Some(a.clone()), new_rev(None, true, &body, &[]));
        let child = new_rev(Some(&a), false, &body, &[]).unwrap();
        assert_eq!(child.pos, 2);
        assert_ne!(child.hash, a.hash);
        assert_ne!(new_rev(None, false, &body, &["md5-x".into()]), Some(a));
    }

    #[test]
    fn positions_never_wrap() {
        assert_eq!(Rev::parse("18446744073709551615-aa"), None);
        assert_eq!(Rev::parse(&format!("{}-aa", MAX_REV_POS + 1)), None);
        let top = Rev::parse(&format!("{MAX_REV_POS}-aa")).unwrap();
        assert_eq!(
            new_rev(Some(&top), false, &serde_json::json!({}), &[]),
            None
        );
        let below = Rev::parse(&format!("{}-aa", MAX_REV_POS - 1)).unwrap();
        assert_eq!(
            new_rev(Some(&below), false, &serde_json::json!({}), &[]).map(|r| r.pos),
            Some(MAX_REV_POS)
        );
        let huge = Revisions {
            start: u64::MAX,
            ids: vec!["a".into()],
        };
        assert_eq!(huge.path(1000), None);
    }

    #[test]
    fn leaves_are_kept_in_step_with_the_tree() {
        let mut t = RevTree::default();
        // A path arriving root-less first, then its ancestors: the old root is no leaf.
        t.merge(&path(&["3-c", "2-b"]), false);
        assert_eq!(t.leaves(), vec![(r("3-c"), false)]);
        assert_eq!(t.leaves_after(&path(&["4-d", "3-c"])), 1);
        assert_eq!(t.leaves_after(&path(&["2-x", "1-a"])), 2);
        assert_eq!(t.leaves_after(&path(&["3-c"])), 1);
        t.merge(&path(&["2-b", "1-a"]), false);
        assert_eq!(t.leaves(), vec![(r("3-c"), false)]);
        assert_eq!(t.path_to(&r("3-c")).len(), 3);
        t.merge(&path(&["2-x", "1-a"]), true);
        assert!(t.is_leaf(&r("2-x")) && !t.is_leaf(&r("1-a")));
        assert_eq!(t.leaf_count(), 2);
        // What is stored comes back with the same leaves.
        assert_eq!(RevTree::from_json(&t.to_json()), Some(t.clone()));
        // leaves_after agrees with merge on random-ish branching.
        let mut u = RevTree::default();
        for i in 0..50u64 {
            let p = path(&[
                &format!("{}-b{i}", i % 7 + 2),
                &format!("{}-a{}", i % 7 + 1, i % 3),
            ]);
            let predicted = u.leaves_after(&p);
            u.merge(&p, false);
            assert_eq!(u.leaf_count(), predicted, "step {i}");
            assert_eq!(
                Some(u.clone()),
                RevTree::from_json(&u.to_json()),
                "step {i}"
            );
        }
    }

    #[test]
    fn purging_removes_a_branch_up_to_its_fork() {
        let mut t = RevTree::default();
        t.merge(&path(&["3-c", "2-b", "1-a"]), false);
        t.merge(&path(&["3-x", "2-w", "1-a"]), false);
        assert!(t.purge(&r("2-b")).is_empty(), "not a leaf");
        assert_eq!(t.purge(&r("3-x")), path(&["3-x", "2-w"]));
        assert_eq!(t.leaves(), vec![(r("3-c"), false)]);
        assert_eq!(RevTree::from_json(&t.to_json()), Some(t.clone()));
        assert_eq!(t.purge(&r("3-c")), path(&["3-c", "2-b", "1-a"]));
        assert!(t.is_empty() && t.leaves().is_empty());
    }

    #[test]
    fn merging_is_linear_in_the_path() {
        // 100 disjoint branches of 1,000 revisions each: a quadratic merge or leaf scan would
        // take minutes here.
        let mut t = RevTree::default();
        for b in 0..100u64 {
            let p: Vec<Rev> = (1..=1000u64)
                .rev()
                .map(|i| Rev {
                    pos: i,
                    hash: format!("b{b}x{i}"),
                })
                .collect();
            t.merge(&p, false);
            assert_eq!(t.leaf_count() as u64, b + 1);
            assert!(t.winner().is_some());
        }
        assert_eq!(t.len(), 100_000);
        assert!(t.stem(1000).is_empty());
    }
}
