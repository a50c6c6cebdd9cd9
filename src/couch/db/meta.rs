//! A document's stored metadata: its revision tree, change sequence and each kept body's
//! attachment digests.

use super::*;

/// What dropping bodies freed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Dropped {
    pub(super) bodies: u64,
    pub(super) bytes: u64,
}

/// A stored size map; absent (metadata written before sizes were counted) is empty.
fn sizes(v: &Value) -> Option<BTreeMap<String, u64>> {
    if v.is_null() {
        return Some(BTreeMap::new());
    }
    serde_json::from_value(v.clone()).ok()
}

/// A document's stored metadata.
#[derive(Debug, Clone, Default)]
pub(super) struct Meta {
    /// The document's id when it is too long to be its own key (see [`doc_key`]).
    pub(super) long_id: Option<String>,
    pub(super) tree: RevTree,
    pub(super) seq: u64,
    /// Each leaf's attachment digests.
    pub(super) atts: BTreeMap<String, Vec<String>>,
    /// The bytes of each kept body, by revision, and of each stored attachment, by digest:
    /// what the database's `sizes` count (written since couchkv counted them).
    pub(super) body_sizes: BTreeMap<String, u64>,
    pub(super) att_sizes: BTreeMap<String, u64>,
}

impl Meta {
    /// Drops the stored bodies of `revs` (those that have one) and the attachments no kept
    /// body refers to any more, staging the deletes in `ops`; returns how many bodies went
    /// and how many bytes they and those attachments held.
    pub(super) fn drop_bodies<'a>(
        &mut self,
        keys: &KeyLayout,
        id: &str,
        revs: impl IntoIterator<Item = &'a Rev>,
        ops: &mut Vec<BatchOp>,
    ) -> Dropped {
        let before: BTreeSet<String> = self.atts.values().flatten().cloned().collect();
        let mut out = Dropped::default();
        for rev in revs {
            let name = rev.to_string();
            if self.atts.remove(&name).is_some() {
                ops.push(BatchOp::del(keys.body(id, rev)));
                out.bodies += 1;
                out.bytes += self.body_sizes.remove(&name).unwrap_or(0);
            }
        }
        if out.bodies > 0 {
            let after: BTreeSet<&String> = self.atts.values().flatten().collect();
            for d in before.iter().filter(|d| !after.contains(d)) {
                ops.push(BatchOp::del(keys.att(id, d)));
                out.bytes += self.att_sizes.remove(d).unwrap_or(0);
            }
        }
        out
    }

    /// Records a body stored for `rev` and the attachments it refers to (`(digest, length)`),
    /// returning by how many bytes the database grew.
    pub(super) fn record_sizes(
        &mut self,
        rev: &Rev,
        body_len: u64,
        atts: impl IntoIterator<Item = (String, u64)>,
    ) -> i128 {
        let mut delta = i128::from(body_len);
        if let Some(old) = self.body_sizes.insert(rev.to_string(), body_len) {
            delta -= i128::from(old);
        }
        for (digest, len) in atts {
            if let std::collections::btree_map::Entry::Vacant(e) = self.att_sizes.entry(digest) {
                e.insert(len);
                delta += i128::from(len);
            }
        }
        delta
    }

    /// Revisions with a stored body that are not leaves (kept until compaction).
    pub(super) fn old_bodies(&self) -> Vec<Rev> {
        self.atts
            .keys()
            .filter_map(|r| Rev::parse(r))
            .filter(|r| !self.tree.is_leaf(r))
            .collect()
    }

    /// The row `_changes` reads for this document: its winner and every leaf.
    pub(super) fn change_row(&self, id: &str, winner: &Rev, deleted: bool) -> Bytes {
        let leaves: Vec<Value> = self
            .tree
            .leaves()
            .into_iter()
            .map(|(r, d)| json!([r.to_string(), d]))
            .collect();
        json_bytes(
            &json!({"id": id, "rev": winner.to_string(), "deleted": deleted, "leaves": leaves}),
        )
    }

    pub(super) fn has_body(&self, rev: &Rev) -> bool {
        self.atts.contains_key(&rev.to_string())
    }

    pub(super) fn to_bytes(&self) -> Bytes {
        let mut v = json!({"tree": self.tree.to_json(), "seq": self.seq, "atts": self.atts});
        if let Some(id) = &self.long_id {
            v["id"] = Value::String(id.clone());
        }
        if !self.body_sizes.is_empty() {
            v["sz"] = json!(self.body_sizes);
        }
        if !self.att_sizes.is_empty() {
            v["asz"] = json!(self.att_sizes);
        }
        Bytes::from(v.to_string())
    }

    /// The document's id, given the key its metadata was found under.
    pub(super) fn id(&self, key: &[u8]) -> String {
        self.long_id
            .clone()
            .unwrap_or_else(|| String::from_utf8_lossy(key).into_owned())
    }
    pub(super) fn from_bytes(raw: &[u8]) -> Result<Meta> {
        let corrupt = || CouchError::internal("corrupt document metadata");
        let v: Value = serde_json::from_slice(raw).map_err(|_| corrupt())?;
        Ok(Meta {
            long_id: v["id"].as_str().map(str::to_owned),
            tree: RevTree::from_json(&v["tree"]).ok_or_else(corrupt)?,
            seq: v["seq"].as_u64().ok_or_else(corrupt)?,
            atts: serde_json::from_value(v["atts"].clone()).map_err(|_| corrupt())?,
            body_sizes: sizes(&v["sz"]).ok_or_else(corrupt)?,
            att_sizes: sizes(&v["asz"]).ok_or_else(corrupt)?,
        })
    }
}
