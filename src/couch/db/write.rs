//! The write path: staging a request's documents against their revision trees, attachments,
//! and committing them in one guarded batch.

use super::*;

/// State of one request's writes, so a later document in the same request sees the earlier.
/// A document's metadata is taken out while it is staged and put back after, never copied,
/// and written once per request (stemmed then): the work of a request is linear in what it
/// sends, however often it names one document.
#[derive(Default)]
pub(super) struct Staging {
    /// Metadata read for the whole request in one go before it is staged.
    pub(super) prefetched: HashMap<String, Option<Meta>>,
    pub(super) metas: HashMap<String, Meta>,
    /// Documents whose metadata this request changed (to be written at the end).
    pub(super) changed: BTreeSet<String>,
    pub(super) bodies: HashMap<(String, Rev), Value>,
    pub(super) ops: Vec<BatchOp>,
    /// The `validate_doc_update` rules documents are checked with (none for couchkv's own
    /// writes).
    pub(super) validation: Option<validate::Validation>,
}

impl Staging {
    /// Writes each changed document's metadata, stemmed to `revs_limit` (the bodies of the
    /// revisions stemming forgets go with them).
    pub(super) fn finish(&mut self, keys: &KeyLayout, revs_limit: usize, counters: &mut Counters) {
        for id in std::mem::take(&mut self.changed) {
            if let Some(meta) = self.metas.get_mut(&id) {
                let forgotten = meta.tree.stem(revs_limit);
                let dropped = meta.drop_bodies(keys, &id, &forgotten, &mut self.ops);
                counters.garbage = counters.garbage.saturating_sub(dropped.bodies);
                counters.grow(-i128::from(dropped.bytes));
                self.ops.push(BatchOp::put(keys.meta(&id), meta.to_bytes()));
            }
        }
    }
}

impl Db {
    /// A document's metadata, taken out of the staging area (put it back with
    /// `staging.metas.insert`) or read.
    pub(super) async fn take_meta(&self, staging: &mut Staging, id: &str) -> Result<Option<Meta>> {
        if let Some(m) = staging.metas.remove(id) {
            return Ok(Some(m));
        }
        if let Some(m) = staging.prefetched.remove(id) {
            return Ok(m);
        }
        self.meta(id).await
    }

    pub(super) async fn load_body(
        &self,
        staging: &Staging,
        id: &str,
        rev: &Rev,
    ) -> Result<Option<Value>> {
        if let Some(b) = staging.bodies.get(&(id.to_owned(), rev.clone())) {
            return Ok(Some(b.clone()));
        }
        self.body(id, rev).await
    }

    /// couchkv's own writes (index definitions): [`Db::bulk_docs_as`] without validation.
    pub async fn bulk_docs(&self, docs: Vec<Value>, new_edits: bool) -> Result<Vec<WriteResult>> {
        self.bulk_docs_as(docs, new_edits, None).await
    }

    /// Writes documents. With `new_edits` each gets a new revision (a stale or missing `_rev`
    /// is a conflict); without, revisions are taken as given (`_revisions`), as replication
    /// writes them. Each is checked by the database's `validate_doc_update` functions as `ctx`
    /// (a refused one is an error row and writes nothing). All accepted documents are committed
    /// in one atomic batch.
    pub async fn bulk_docs_as(
        &self,
        docs: Vec<Value>,
        new_edits: bool,
        ctx: Option<&WriteCtx>,
    ) -> Result<Vec<WriteResult>> {
        let mut writer = self.inner.writer.lock().await;
        self.check_live()?;
        let ids: Vec<String> = docs
            .iter()
            .filter_map(|d| d.get("_id").and_then(Value::as_str))
            .filter(|id| !id.starts_with("_local/"))
            .map(str::to_owned)
            .collect();
        for _ in 0..WRITE_ATTEMPTS {
            let mut next = writer.counters;
            let validation = match ctx {
                Some(ctx) => self.validation(next.design_seq, ctx).await?,
                None => None,
            };
            let mut staging = Staging {
                prefetched: self.metas(&ids).await?,
                validation,
                ..Staging::default()
            };
            let mut results = Vec::with_capacity(docs.len());
            for doc in &docs {
                let hinted = doc.get("_id").and_then(Value::as_str).map(str::to_owned);
                match self
                    .stage(doc.clone(), new_edits, &mut staging, &mut next)
                    .await
                {
                    Ok(r) => results.push(r),
                    Err(error) => results.push(WriteResult::Err {
                        id: hinted.unwrap_or_default(),
                        error,
                    }),
                }
            }
            staging.finish(&self.inner.keys, DEFAULT_REVS_LIMIT, &mut next);
            if staging.ops.is_empty() {
                return Ok(results);
            }
            let design = staging.metas.keys().any(|id| is_design_doc(id));
            if design {
                next.design_seq += 1;
            }
            let mut ops = std::mem::take(&mut staging.ops);
            self.index_upkeep(
                &staging,
                writer.counters.update_seq,
                next.update_seq,
                &mut ops,
            )
            .await?;
            if self.commit(&mut writer, next, ops).await? {
                if design {
                    self.design_written();
                }
                return Ok(results);
            }
            // Another node committed in between: start over from what it left.
        }
        Err(CouchError::unavailable(
            "the database is too busy: other nodes kept committing in between",
        ))
    }

    /// One document into the staging area; nothing is staged unless it all succeeds.
    pub(super) async fn stage(
        &self,
        doc: Value,
        new_edits: bool,
        staging: &mut Staging,
        counters: &mut Counters,
    ) -> Result<WriteResult> {
        let ids = self.inner.ids.clone();
        let inc = take_incoming(doc, new_edits, || ids.new_id())?;
        if let Some(local) = inc.id.strip_prefix("_local/") {
            // Local documents have no revision tree and no sequence.
            let rev = self
                .put_local_in(staging, local, inc.rev_raw.clone(), inc.body, inc.deleted)
                .await?;
            return Ok(WriteResult::Ok {
                id: inc.id.clone(),
                rev,
            });
        }
        check_doc_id(&inc.id)?;
        let inc_rev = inc.rev()?;
        let id = inc.id.clone();
        let old = self.take_meta(staging, &id).await?;
        let existed = old.is_some();
        let mut meta = old.unwrap_or_default();
        let result = self
            .stage_into(&mut meta, inc, inc_rev, new_edits, staging, counters)
            .await;
        // The metadata goes back whatever happened: a failed document left it as it was.
        if existed || result.is_ok() {
            staging.metas.insert(id, meta);
        }
        result
    }

    /// `stage` on a document's metadata. Nothing is changed unless it all succeeds.
    pub(super) async fn stage_into(
        &self,
        meta: &mut Meta,
        inc: Incoming,
        inc_rev: Option<Rev>,
        new_edits: bool,
        staging: &mut Staging,
        counters: &mut Counters,
    ) -> Result<WriteResult> {
        let id = inc.id.clone();
        if id.len() > INLINE_ID_BYTES {
            meta.long_id = Some(id.clone());
        }
        let old_leaves: BTreeSet<Rev> = meta.tree.leaves().into_iter().map(|(r, _)| r).collect();
        let old_winner = meta.tree.winner();

        let (new_leaf, path, mut att_ops): (Rev, Vec<Rev>, Vec<BatchOp>) = if new_edits {
            let parent = match (&inc_rev, &old_winner) {
                (Some(r), _) if meta.tree.is_leaf(r) => Some(r.clone()),
                (Some(_), _) => return Err(CouchError::conflict()),
                (None, Some((w, true))) => Some(w.clone()),
                (None, Some((_, false))) => return Err(CouchError::conflict()),
                (None, None) => None,
            };
            let rev_body = Value::Object(inc.body.clone());
            let (atts, digests, att_ops) = self
                .resolve_attachments(
                    staging,
                    &id,
                    inc.attachments.as_ref(),
                    parent.as_ref(),
                    None,
                    meta,
                )
                .await?;
            let rev = new_rev(parent.as_ref(), inc.deleted, &rev_body, &digests)
                .ok_or_else(|| CouchError::bad_request("The revision position is at its limit"))?;
            if meta.tree.contains(&rev) {
                // The same edit again (same parent, same content): CouchDB calls it a conflict.
                return Err(CouchError::conflict());
            }
            let mut body = rev_body;
            if let Some(a) = atts {
                body["_attachments"] = Value::Object(a);
            }
            self.check_write(staging, &id, &rev, &body, inc.deleted, meta)
                .await?;
            let mut path = vec![rev.clone()];
            path.extend(parent);
            staging.bodies.insert((id.clone(), rev.clone()), body);
            (rev, path, att_ops)
        } else {
            let path = match (&inc.revisions, &inc_rev) {
                (Some(r), _) => r
                    .path(DEFAULT_REVS_LIMIT)
                    .ok_or_else(|| CouchError::bad_request("Invalid _revisions"))?,
                (None, Some(r)) => vec![r.clone()],
                (None, None) => {
                    return Err(CouchError::bad_request(
                        "new_edits=false needs _rev or _revisions",
                    ))
                }
            };
            // When `_rev` and `_revisions` disagree, `_revisions` is the history (as CouchDB
            // takes it; PouchDB's replicator sends such documents).
            let Some(leaf) = path.first().cloned() else {
                return Err(CouchError::bad_request("Invalid _revisions"));
            };
            if meta.tree.contains(&leaf) {
                // Already here: nothing to write, as CouchDB.
                return Ok(WriteResult::Ok {
                    id,
                    rev: leaf.to_string(),
                });
            }
            let (atts, _, att_ops) = self
                .resolve_attachments(
                    staging,
                    &id,
                    inc.attachments.as_ref(),
                    None,
                    Some(&path),
                    meta,
                )
                .await?;
            let mut body = Value::Object(inc.body);
            if let Some(a) = atts {
                body["_attachments"] = Value::Object(a);
            }
            self.check_write(staging, &id, &leaf, &body, inc.deleted, meta)
                .await?;
            staging.bodies.insert((id.clone(), leaf.clone()), body);
            (leaf, path, att_ops)
        };

        // A document's branches are bounded, so what one document costs to read or write is.
        let leaves_after = meta.tree.leaves_after(&path);
        if leaves_after > MAX_LEAVES && leaves_after > meta.tree.leaf_count() {
            staging.bodies.remove(&(id.clone(), new_leaf));
            return Err(CouchError::too_many_leaves(MAX_LEAVES, MAX_TREE_REVS));
        }
        let new_revs = path.iter().filter(|r| !meta.tree.contains(r)).count();
        if meta.tree.len() + new_revs > MAX_TREE_REVS {
            // Near the bound: see what stemming leaves before taking the write.
            let mut trial = meta.tree.clone();
            trial.merge(&path, inc.deleted);
            trial.stem(DEFAULT_REVS_LIMIT);
            if trial.len() > MAX_TREE_REVS {
                staging.bodies.remove(&(id.clone(), new_leaf));
                return Err(CouchError::too_many_leaves(MAX_LEAVES, MAX_TREE_REVS));
            }
            meta.tree = trial;
        } else {
            meta.tree.merge(&path, inc.deleted);
        }

        // Bodies and attachments follow the leaves.
        let mut ops = std::mem::take(&mut att_ops);
        if meta.tree.is_leaf(&new_leaf) {
            let body = staging
                .bodies
                .get(&(id.clone(), new_leaf.clone()))
                .cloned()
                .unwrap_or(Value::Null);
            let stored = json_bytes(&body);
            let grew = meta.record_sizes(&new_leaf, stored.len() as u64, attachment_sizes(&body));
            counters.grow(grew);
            ops.push(BatchOp::put(self.inner.keys.body(&id, &new_leaf), stored));
            meta.atts.insert(new_leaf.to_string(), digests_of(&body));
        }
        // A leaf that stops being one keeps its body until compaction, as in CouchDB: old
        // revisions can be read and replicated meanwhile.
        let superseded = old_leaves
            .iter()
            .filter(|r| !meta.tree.is_leaf(r) && meta.has_body(r))
            .count();
        counters.garbage += superseded as u64;

        // The change row moves to the new sequence.
        counters.update_seq += 1;
        if meta.seq > 0 {
            ops.push(BatchOp::del(self.inner.keys.seq(meta.seq)));
        }
        meta.seq = counters.update_seq;
        let (winner, winner_deleted) = meta
            .tree
            .winner()
            .unwrap_or((new_leaf.clone(), inc.deleted));
        ops.push(BatchOp::put(
            self.inner.keys.seq(meta.seq),
            meta.change_row(&id, &winner, winner_deleted),
        ));

        match old_winner {
            None => {}
            Some((_, true)) => counters.doc_del_count -= 1,
            Some((_, false)) => counters.doc_count -= 1,
        }
        if winner_deleted {
            counters.doc_del_count += 1;
        } else {
            counters.doc_count += 1;
        }
        staging.ops.append(&mut ops);
        staging.changed.insert(id.clone());
        Ok(WriteResult::Ok {
            id,
            rev: new_leaf.to_string(),
        })
    }

    /// Turns a document's `_attachments` into stored stubs, staging new data. Stubs are
    /// resolved against the parent revision (new edits) or any stored revision on the path or
    /// among the leaves (replication).
    pub(super) async fn resolve_attachments(
        &self,
        staging: &mut Staging,
        id: &str,
        atts: Option<&Map<String, Value>>,
        parent: Option<&Rev>,
        path: Option<&[Rev]>,
        meta: &Meta,
    ) -> Result<(Option<Map<String, Value>>, Vec<String>, Vec<BatchOp>)> {
        let Some(atts) = atts else {
            return Ok((None, Vec::new(), Vec::new()));
        };
        let mut ops = Vec::new();
        let new_pos = match (parent, path) {
            (Some(p), _) => p.pos + 1,
            (None, Some(p)) => p.first().map_or(1, |r| r.pos),
            (None, None) => 1,
        };
        // Where stubs may come from.
        let mut sources: Vec<Rev> = Vec::new();
        sources.extend(parent.cloned());
        if let Some(p) = path {
            // Only leaves have stored bodies (and this request's own staged ones): looking up
            // every revision of a long path would cost a read each.
            sources.extend(
                p.iter()
                    .filter(|r| {
                        meta.tree.is_leaf(r)
                            || staging.bodies.contains_key(&(id.to_owned(), (*r).clone()))
                    })
                    .cloned(),
            );
        }
        sources.extend(meta.tree.leaves().into_iter().map(|(r, _)| r));
        let mut out = Map::new();
        let mut digests = Vec::new();
        for (name, att) in atts {
            let Value::Object(att) = att else {
                return Err(CouchError::bad_request(format!(
                    "attachment {name:?} must be an object"
                )));
            };
            let stored = if att.get("stub").and_then(Value::as_bool) == Some(true) {
                let mut found = None;
                for rev in &sources {
                    if let Some(body) = self.load_body(staging, id, rev).await? {
                        if let Some(a) = body.get("_attachments").and_then(|a| a.get(name)) {
                            found = Some(a.clone());
                            break;
                        }
                    }
                }
                found.ok_or_else(|| {
                    CouchError::missing_stub(format!("Invalid attachment stub in {id} for {name}"))
                })?
            } else if let Some(data) = att.get("data") {
                let data = data
                    .as_str()
                    .and_then(|s| B64.decode(s).ok())
                    .ok_or_else(|| {
                        CouchError::bad_request(format!("Invalid attachment data for {name}"))
                    })?;
                let digest = md5_digest(&data);
                let content_type = att
                    .get("content_type")
                    .and_then(Value::as_str)
                    .unwrap_or("application/octet-stream");
                let revpos = match path {
                    Some(_) => att.get("revpos").and_then(Value::as_u64).unwrap_or(new_pos),
                    None => new_pos,
                };
                ops.push(BatchOp::put(
                    self.inner.keys.att(id, &digest),
                    Bytes::from(data.clone()),
                ));
                json!({"content_type": content_type, "revpos": revpos, "digest": digest, "length": data.len(), "stub": true})
            } else if att.get("follows").and_then(Value::as_bool) == Some(true) {
                return Err(CouchError::bad_request(
                    "attachments that follow in multipart bodies are not supported; send them inline as base64",
                ));
            } else {
                return Err(CouchError::bad_request(format!(
                    "attachment {name:?} has neither data nor stub"
                )));
            };
            if let Some(d) = stored.get("digest").and_then(Value::as_str) {
                digests.push(d.to_owned());
            }
            out.insert(name.clone(), stored);
        }
        Ok((Some(out), digests, ops))
    }

    // ---- reads ----
}
