//! `_local` documents: no revision tree, no sequence.

use super::*;

impl Db {
    pub async fn get_local(&self, id: &str) -> Result<Value> {
        self.check_live()?;
        let raw = self
            .inner
            .locals
            .get(id)
            .await?
            .ok_or_else(CouchError::missing)?;
        let mut doc = parse_json(&raw)?;
        doc["_id"] = Value::String(format!("_local/{id}"));
        Ok(doc)
    }

    /// Writes (or, with `deleted`, removes) a local document; returns its new `0-N` revision.
    pub async fn put_local(&self, id: &str, mut doc: Value) -> Result<String> {
        if let Value::Object(map) = &mut doc {
            map.insert("_id".into(), Value::String(format!("_local/{id}")));
        }
        let inc = take_incoming(doc, true, String::new)?;
        let _w = self.inner.writer.lock().await;
        self.check_live()?;
        // Guarded by the document itself: a node that wrote it in between makes this one
        // start over (and meet its revision check).
        let key = self.inner.keys.local(id);
        for _ in 0..WRITE_ATTEMPTS {
            let before = self.inner.store.get(&key).await?;
            let mut staging = Staging::default();
            let rev = self
                .put_local_in(
                    &mut staging,
                    id,
                    inc.rev_raw.clone(),
                    inc.body.clone(),
                    inc.deleted,
                )
                .await?;
            // Relaxed: a local document (a replication checkpoint) lost in a crash only makes
            // the replicator redo a batch it already wrote; documents stay durable.
            if self
                .inner
                .store
                .batch_if_relaxed(&key, before.as_deref(), staging.ops)
                .await?
            {
                return Ok(rev);
            }
        }
        Err(CouchError::unavailable(
            "the document is too busy: other nodes kept writing it in between",
        ))
    }

    pub(super) async fn put_local_in(
        &self,
        staging: &mut Staging,
        id: &str,
        rev: Option<String>,
        body: Map<String, Value>,
        deleted: bool,
    ) -> Result<String> {
        if id.is_empty() {
            return Err(CouchError::bad_request("Document id must not be empty"));
        }
        let current = match self.inner.locals.get(local_sub(id)).await? {
            Some(raw) => parse_json(&raw)?["_rev"].as_str().map(str::to_owned),
            None => None,
        };
        // A revision for a missing document, or the wrong one for an existing: a conflict.
        if rev != current {
            return Err(CouchError::conflict());
        }
        if deleted {
            if current.is_none() {
                return Err(CouchError::missing());
            }
            staging.ops.push(BatchOp::del(self.inner.keys.local(id)));
            return Ok("0-0".into());
        }
        let n = current
            .as_deref()
            .and_then(|r| r.strip_prefix("0-"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let new_rev = format!("0-{}", n + 1);
        let mut stored = Value::Object(body);
        stored["_rev"] = Value::String(new_rev.clone());
        staging
            .ops
            .push(BatchOp::put(self.inner.keys.local(id), json_bytes(&stored)));
        Ok(new_rev)
    }
}
