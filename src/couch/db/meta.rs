//! A document's stored metadata: its revision tree, change sequence and each kept body's
//! attachment digests.

use super::*;

/// A document's stored metadata.
#[derive(Debug, Clone, Default)]
pub(super) struct Meta {
    /// The document's id when it is too long to be its own key (see [`doc_key`]).
    pub(super) long_id: Option<String>,
    pub(super) tree: RevTree,
    pub(super) seq: u64,
    /// Each leaf's attachment digests.
    pub(super) atts: BTreeMap<String, Vec<String>>,
}

impl Meta {
    /// Drops the stored bodies of `revs` (those that have one) and the attachments no kept
    /// body refers to any more, staging the deletes in `ops`; returns how many bodies went.
    pub(super) fn drop_bodies<'a>(
        &mut self,
        keys: &KeyLayout,
        id: &str,
        revs: impl IntoIterator<Item = &'a Rev>,
        ops: &mut Vec<BatchOp>,
    ) -> u64 {
        let before: BTreeSet<String> = self.atts.values().flatten().cloned().collect();
        let mut dropped = 0;
        for rev in revs {
            if self.atts.remove(&rev.to_string()).is_some() {
                ops.push(BatchOp::del(keys.body(id, rev)));
                dropped += 1;
            }
        }
        if dropped > 0 {
            let after: BTreeSet<&String> = self.atts.values().flatten().collect();
            for d in before.iter().filter(|d| !after.contains(d)) {
                ops.push(BatchOp::del(keys.att(id, d)));
            }
        }
        dropped
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
        })
    }
}
