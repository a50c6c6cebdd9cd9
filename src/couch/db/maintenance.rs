//! Compaction and `_purge`: what removes revisions and their bodies.

use super::*;

impl Db {
    /// How many bodies of old (non-leaf) revisions the database keeps: what compaction drops.
    pub async fn garbage(&self) -> u64 {
        self.inner.writer.lock().await.counters.garbage
    }

    /// `_purge`: removes the given leaf revisions (and the history only they had) for good.
    /// A document left without leaves is gone from the database: no change row, no
    /// `_all_docs` row, no counted document. Returns, per id, the revisions purged.
    pub async fn purge(&self, req: &[(String, Vec<Rev>)]) -> Result<Map<String, Value>> {
        let ids: Vec<String> = req.iter().map(|(id, _)| id.clone()).collect();
        let mut writer = self.inner.writer.lock().await;
        for _ in 0..WRITE_ATTEMPTS {
            self.check_live()?;
            let mut metas = self.metas(&ids).await?;
            let mut next = writer.counters;
            let mut ops = Vec::new();
            let mut purged = Map::new();
            for (id, revs) in req {
                let mut gone = Vec::new();
                let Some(Some(mut meta)) = metas.remove(id) else {
                    purged.insert(id.clone(), json!([]));
                    continue;
                };
                let old_winner = meta.tree.winner();
                let mut removed = Vec::new();
                for rev in revs {
                    let branch = meta.tree.purge(rev);
                    if !branch.is_empty() {
                        gone.push(Value::String(rev.to_string()));
                        // Bodies of the branch's inner revisions were garbage; the leaf's was not.
                        let old = branch.iter().skip(1).filter(|r| meta.has_body(r)).count();
                        next.garbage = next.garbage.saturating_sub(old as u64);
                        removed.extend(branch);
                    }
                }
                purged.insert(id.clone(), Value::Array(gone));
                if removed.is_empty() {
                    continue;
                }
                let freed = meta.drop_bodies(&self.inner.keys, id, &removed, &mut ops);
                next.grow(-i128::from(freed.bytes));
                match old_winner {
                    Some((_, true)) => next.doc_del_count = next.doc_del_count.saturating_sub(1),
                    Some((_, false)) => next.doc_count = next.doc_count.saturating_sub(1),
                    None => {}
                }
                if meta.seq > 0 {
                    ops.push(BatchOp::del(self.inner.keys.seq(meta.seq)));
                }
                let Some((winner, deleted)) = meta.tree.winner() else {
                    // Nothing left: the document is gone without a trace.
                    let leftover: Vec<Rev> =
                        meta.atts.keys().filter_map(|r| Rev::parse(r)).collect();
                    let freed = meta.drop_bodies(&self.inner.keys, id, &leftover, &mut ops);
                    next.grow(-i128::from(freed.bytes));
                    ops.push(BatchOp::del(self.inner.keys.meta(id)));
                    continue;
                };
                // What is left gets a change row at a new sequence, so replicas learn the
                // new winner.
                next.update_seq += 1;
                meta.seq = next.update_seq;
                if deleted {
                    next.doc_del_count += 1;
                } else {
                    next.doc_count += 1;
                }
                ops.push(BatchOp::put(
                    self.inner.keys.seq(meta.seq),
                    meta.change_row(id, &winner, deleted),
                ));
                ops.push(BatchOp::put(self.inner.keys.meta(id), meta.to_bytes()));
            }
            next.purge_seq += 1;
            if self.commit(&mut writer, next, ops).await? {
                return Ok(purged);
            }
        }
        Err(CouchError::unavailable(
            "the database is too busy: other nodes kept committing in between",
        ))
    }

    /// Marks a compaction as under way (so `info` says so from now on); `false` when one
    /// already is. Follow a `true` with [`Db::compact`].
    pub fn begin_compaction(&self) -> bool {
        !self.inner.compacting.swap(true, Ordering::SeqCst)
    }

    /// Compaction: drops the bodies of revisions that are no longer leaves and the attachments
    /// only they referred to, one page of documents per commit, so writes go on in between.
    /// Idempotent. Returns how many bodies it dropped.
    pub async fn compact(&self) -> Result<u64> {
        /// Clears the flag however compaction ends.
        struct Running<'a>(&'a AtomicBool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        self.inner.compacting.store(true, Ordering::SeqCst);
        let _running = Running(&self.inner.compacting);
        let mut after: Option<Vec<u8>> = None;
        let mut total = 0;
        loop {
            self.check_live()?;
            let range = RangeOptions {
                gt: after.clone(),
                limit: Some(COMPACT_PAGE),
                ..RangeOptions::default()
            };
            let mut entries = self.inner.meta.iterator(range)?;
            let mut ids = Vec::new();
            let mut last = None;
            while let Some((k, raw)) = entries.next().await? {
                let meta = Meta::from_bytes(&raw)?;
                if !meta.old_bodies().is_empty() {
                    ids.push(meta.id(&k));
                }
                last = Some(k);
            }
            let Some(last) = last else {
                return Ok(total);
            };
            after = Some(last);
            if ids.is_empty() {
                continue;
            }
            for _ in 0..WRITE_ATTEMPTS {
                let mut writer = self.inner.writer.lock().await;
                self.check_live()?;
                let mut ops = Vec::new();
                let mut dropped = 0;
                let mut freed = 0u64;
                for (id, meta) in self.metas(&ids).await? {
                    let Some(mut meta) = meta else { continue };
                    let old = meta.old_bodies();
                    if old.is_empty() {
                        continue;
                    }
                    let went = meta.drop_bodies(&self.inner.keys, &id, &old, &mut ops);
                    dropped += went.bodies;
                    freed = freed.saturating_add(went.bytes);
                    ops.push(BatchOp::put(self.inner.keys.meta(&id), meta.to_bytes()));
                }
                if ops.is_empty() {
                    break;
                }
                let mut next = writer.counters;
                next.garbage = next.garbage.saturating_sub(dropped);
                next.grow(-i128::from(freed));
                if self.commit(&mut writer, next, ops).await? {
                    total += dropped;
                    break;
                }
            }
        }
    }
}
