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

/// A revision id, `pos-hash`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rev {
    pub pos: u64,
    pub hash: String,
}

impl Rev {
    /// Parses `N-hash` with N ≥ 1 and a non-empty hash of ASCII letters and digits.
    pub fn parse(s: &str) -> Option<Rev> {
        let (pos, hash) = s.split_once('-')?;
        let pos: u64 = pos.parse().ok()?;
        if pos == 0
            || hash.is_empty()
            || hash.len() > 128
            || !hash.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        Some(Rev {
            pos,
            hash: hash.to_owned(),
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
    /// The parent's hash (its pos is one less), when known.
    parent: Option<String>,
    deleted: bool,
}

/// A document's revision tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevTree {
    nodes: BTreeMap<Rev, Node>,
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
    /// The path it names, newest first; `None` when it is malformed.
    pub fn path(&self) -> Option<Vec<Rev>> {
        if self.ids.is_empty() || (self.ids.len() as u64) > self.start {
            return None;
        }
        self.ids
            .iter()
            .enumerate()
            .map(|(i, h)| Rev::parse(&format!("{}-{h}", self.start - i as u64)))
            .collect()
    }
}

impl RevTree {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn contains(&self, rev: &Rev) -> bool {
        self.nodes.contains_key(rev)
    }

    pub fn is_deleted(&self, rev: &Rev) -> Option<bool> {
        self.nodes.get(rev).map(|n| n.deleted)
    }

    fn parent_of(&self, rev: &Rev) -> Option<Rev> {
        let hash = self.nodes.get(rev)?.parent.clone()?;
        Some(Rev {
            pos: rev.pos - 1,
            hash,
        })
    }

    /// Every revision some other revision descends from.
    fn inner(&self) -> BTreeSet<Rev> {
        self.nodes
            .keys()
            .filter_map(|r| self.parent_of(r))
            .collect()
    }

    /// Leaves with their deleted flag, in ascending revision order.
    pub fn leaves(&self) -> Vec<(Rev, bool)> {
        let inner = self.inner();
        self.nodes
            .iter()
            .filter(|(r, _)| !inner.contains(*r))
            .map(|(r, n)| (r.clone(), n.deleted))
            .collect()
    }

    pub fn is_leaf(&self, rev: &Rev) -> bool {
        self.contains(rev)
            && !self
                .nodes
                .keys()
                .any(|r| self.parent_of(r).as_ref() == Some(rev))
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

    /// Adds a path (newest first, each the parent of the one before) ending in a leaf with the
    /// given deleted flag. Known revisions stay; a root that the path shows a parent for gets it.
    pub fn merge(&mut self, path: &[Rev], deleted: bool) -> Merge {
        let Some(leaf) = path.first() else {
            return Merge::Known;
        };
        let known = self.contains(leaf);
        for (i, rev) in path.iter().enumerate() {
            let parent = path.get(i + 1).map(|p| p.hash.clone());
            match self.nodes.get_mut(rev) {
                Some(node) => {
                    if node.parent.is_none() {
                        node.parent = parent;
                    }
                }
                None => {
                    self.nodes.insert(
                        rev.clone(),
                        Node {
                            parent,
                            deleted: i == 0 && deleted,
                        },
                    );
                }
            }
        }
        if known {
            Merge::Known
        } else {
            Merge::Added
        }
    }

    /// Forgets every revision more than `limit` steps from all leaves. Returns the forgotten.
    /// As CouchDB stems (each leaf's path cut to `limit`, the paths merged again), a link
    /// between two kept revisions survives only where one leaf's window holds both.
    pub fn stem(&mut self, limit: usize) -> Vec<Rev> {
        let limit = limit.max(1);
        let mut keep = BTreeSet::new();
        let mut links = BTreeSet::new();
        for (leaf, _) in self.leaves() {
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
        forgotten
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
        self.leaves()
            .into_iter()
            .filter(|(leaf, _)| self.path_to(leaf).contains(rev))
            .map(|(r, _)| r)
            .collect()
    }

    /// Of `revs`, those the tree does not know, and the tree's leaves that could be their
    /// ancestors (lower pos).
    pub fn revs_diff(&self, revs: &[Rev]) -> (Vec<Rev>, Vec<Rev>) {
        let missing: Vec<Rev> = revs.iter().filter(|r| !self.contains(r)).cloned().collect();
        let max_pos = missing.iter().map(|r| r.pos).max().unwrap_or(0);
        let ancestors = self
            .leaves()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.pos < max_pos)
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
            nodes.insert(Rev { pos, hash }, Node { parent, deleted });
        }
        Some(RevTree { nodes })
    }
}

/// The id of a new edit, deterministic as CouchDB's: the MD5 of what the edit is (deleted flag,
/// the revision it edits, the body as canonical JSON, the attachments' digests), so the same edit
/// made twice gets the same id.
pub fn new_rev(
    parent: Option<&Rev>,
    deleted: bool,
    body: &serde_json::Value,
    attachment_digests: &[String],
) -> Rev {
    let mut h = Md5::new();
    h.update([u8::from(deleted)]);
    if let Some(p) = parent {
        h.update(p.to_string().as_bytes());
    }
    h.update([0]);
    // serde_json writes object keys in sorted order (no preserve_order feature): canonical.
    h.update(body.to_string().as_bytes());
    for d in attachment_digests {
        h.update([0]);
        h.update(d.as_bytes());
    }
    let digest = h.finalize();
    Rev {
        pos: parent.map_or(1, |p| p.pos + 1),
        hash: digest.iter().map(|b| format!("{b:02x}")).collect(),
    }
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
        for bad in ["", "3", "0-a", "-a", "x-a", "3-", "3-a b", "3-ä"] {
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
        let a = new_rev(None, false, &body, &[]);
        let b = new_rev(None, false, &serde_json::json!({"a": [1, 2], "b": 1}), &[]);
        assert_eq!(a, b, "key order does not matter");
        assert_eq!(a.pos, 1);
        assert_eq!(a.hash.len(), 32);
        assert_ne!(a, new_rev(None, true, &body, &[]));
        let child = new_rev(Some(&a), false, &body, &[]);
        assert_eq!(child.pos, 2);
        assert_ne!(child.hash, a.hash);
        assert_ne!(new_rev(None, false, &body, &["md5-x".into()]), a);
    }
}
