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
mod tests;
