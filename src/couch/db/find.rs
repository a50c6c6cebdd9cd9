//! Mango on a database: `_find` a page at a time, json indexes kept in the database's `x`
//! sublevel and brought up to date from `_changes` before a query reads them (as CouchDB
//! updates its indexes), and `_index` kept in design documents.
//!
//! An index's storage, under its definition's signature: `s` → the sequence it is up to date
//! with; `e` ‖ key ‖ document key → the document id (one entry per document); `b` ‖ document key
//! → the document's entry key, to remove it when the document changes.

use super::*;
use crate::couch::mango::query::{key_range, Plan};
use crate::couch::mango::selector::project;
use crate::couch::mango::{FindRequest, IndexDef, IndexRequest, SortDir};

/// The most index entries or documents one page of `_find` examines: a page costs a bounded
/// amount whatever the query, and the caller streams pages.
pub const FIND_PAGE: usize = 200;

/// Changes folded into an index per commit while bringing it up to date.
const INDEX_BATCH: usize = 1_000;

/// The most design documents a database's index list is read from.
pub const MAX_DESIGN_DOCS: usize = 1_000;

/// One page of `_find`.
#[derive(Debug, Clone, Default)]
pub struct FindPage {
    pub docs: Vec<Value>,
    /// Where the next page starts (after this key); `None` after the last.
    pub next: Option<Vec<u8>>,
    /// The key of the last document returned: the request's bookmark.
    pub last_returned: Option<Vec<u8>>,
    pub skipped: usize,
    pub keys_examined: u64,
    pub docs_examined: u64,
}

impl Db {
    /// The design documents, id and winning body, in id order.
    pub async fn design_docs(&self) -> Result<Vec<(String, Value)>> {
        self.check_live()?;
        let range = RangeOptions {
            gte: Some(doc_key("_design/")),
            lt: Some(doc_key("_design0")),
            limit: Some(MAX_DESIGN_DOCS),
            ..RangeOptions::default()
        };
        let mut it = self.inner.meta.iterator(range)?;
        let mut out = Vec::new();
        while let Some((k, raw)) = it.next().await? {
            let meta = Meta::from_bytes(&raw)?;
            let id = meta.id(&k);
            if let Some((rev, false)) = meta.tree.winner() {
                if let Some(body) = self.body(&id, &rev).await? {
                    out.push((id, body));
                }
            }
        }
        Ok(out)
    }

    /// The database's json indexes.
    pub async fn mango_indexes(&self) -> Result<Vec<IndexDef>> {
        Ok(self
            .design_docs()
            .await?
            .iter()
            .flat_map(|(id, doc)| IndexDef::of_design_doc(id, doc))
            .collect())
    }

    /// `POST /_index`: adds the index's view to its design document. `false` when an index of
    /// that name with that definition exists already.
    pub async fn put_index(&self, req: &IndexRequest) -> Result<bool> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = match self.get(&req.ddoc, &DocOptions::default()).await {
                Ok(doc) => Some(doc),
                Err(e) if e.is(crate::couch::ErrorKind::NotFound) => None,
                Err(e) => return Err(e),
            };
            let mut doc = current
                .clone()
                .unwrap_or_else(|| json!({"_id": req.ddoc, "language": "query"}));
            if doc.get("language").and_then(Value::as_str) != Some("query") {
                return Err(CouchError::bad_request(format!(
                    "{} is a design document of another language",
                    req.ddoc
                )));
            }
            if doc.pointer(&format!(
                "/views/{}",
                req.name.replace('~', "~0").replace('/', "~1")
            )) == Some(&req.view)
            {
                return Ok(false);
            }
            if !doc.get("views").is_some_and(Value::is_object) {
                doc["views"] = json!({});
            }
            doc["views"][&req.name] = req.view.clone();
            if self.write_design_doc(doc).await? {
                return Ok(true);
            }
        }
        Err(CouchError::conflict())
    }

    /// Writes a design document read just before: `false` on a conflict (someone wrote it in
    /// between; the caller reads it again).
    async fn write_design_doc(&self, doc: Value) -> Result<bool> {
        match self.bulk_docs(vec![doc], true).await?.pop() {
            Some(WriteResult::Ok { .. }) => Ok(true),
            Some(WriteResult::Err { error, .. }) if error.is(crate::couch::ErrorKind::Conflict) => {
                Ok(false)
            }
            Some(WriteResult::Err { error, .. }) => Err(error),
            None => Err(CouchError::internal("no write result")),
        }
    }

    /// `DELETE /_index/{ddoc}/json/{name}`: takes the view out of its design document (the
    /// document goes when it has none left) and drops the index's entries.
    pub async fn delete_index(&self, ddoc: &str, name: &str) -> Result<()> {
        for _ in 0..WRITE_ATTEMPTS {
            let indexes = self.mango_indexes().await?;
            let Some(def) = indexes.iter().find(|d| d.ddoc == ddoc && d.name == name) else {
                return Err(CouchError::not_found("Index not found"));
            };
            let mut doc = self.get(ddoc, &DocOptions::default()).await?;
            if let Some(Value::Object(views)) = doc.get_mut("views") {
                views.remove(name);
                if views.is_empty() {
                    doc["_deleted"] = Value::Bool(true);
                }
            }
            if !self.write_design_doc(doc).await? {
                continue;
            }
            // Another index with the same definition shares the storage.
            if !self
                .mango_indexes()
                .await?
                .iter()
                .any(|d| d.signature == def.signature)
            {
                self.index_store(def)?
                    .clear(RangeOptions::default())
                    .await?;
            }
            return Ok(());
        }
        Err(CouchError::conflict())
    }

    fn index_store(&self, def: &IndexDef) -> Result<LevelDb> {
        Ok(self.inner.indexes.sublevel(&def.signature)?)
    }

    /// The json indexes, as this process last read them from the design documents (read again
    /// after it commits a design document: [`Db::design_written`]). Another node's new index is missed until then; the
    /// query that reads it brings it up to date anyway.
    async fn known_indexes(&self) -> Result<Arc<Vec<IndexDef>>> {
        let generation = self.inner.design_writes.load(Ordering::SeqCst);
        if let Some((g, cached)) = self.cached_indexes() {
            if g == generation {
                return Ok(cached);
            }
        }
        let fresh = Arc::new(self.mango_indexes().await?);
        *self
            .inner
            .indexes_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((generation, fresh.clone()));
        Ok(fresh)
    }

    /// Says a design document was committed: the index list is read again.
    pub(super) fn design_written(&self) {
        self.inner.design_writes.fetch_add(1, Ordering::SeqCst);
    }

    fn cached_indexes(&self) -> Option<(u64, Arc<Vec<IndexDef>>)> {
        self.inner
            .indexes_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The index entries a commit from sequence `before` to `after` changes, added to its batch,
    /// for every index that is up to date at `before`: so an index kept current stays current
    /// with each write, in the same atomic batch. An index behind (new, or missed by another
    /// node's writer) is left to [`Db::update_index`].
    pub(super) async fn index_upkeep(
        &self,
        staging: &write::Staging,
        before: u64,
        after: u64,
        ops: &mut Vec<BatchOp>,
    ) -> Result<()> {
        let indexes = self.known_indexes().await?;
        if indexes.is_empty() {
            return Ok(());
        }
        // The documents as they will be: winners' bodies from the batch or the store.
        let mut docs: Vec<(String, Option<Value>)> = Vec::new();
        for (id, meta) in &staging.metas {
            let doc = match meta.tree.winner() {
                Some((rev, false)) if !is_design_doc(id) => {
                    match self.load_body(staging, id, &rev).await? {
                        Some(body) => Some(
                            self.render(id, &rev, meta, body, &DocOptions::default())
                                .await?,
                        ),
                        None => None,
                    }
                }
                _ => None,
            };
            docs.push((id.clone(), doc));
        }
        let docs: Vec<(String, Option<&Value>)> = docs
            .iter()
            .map(|(id, d)| (id.clone(), d.as_ref()))
            .collect();
        let current = before.to_string();
        for def in indexes.iter() {
            let ix = self.index_store(def)?;
            if ix.get(b"s").await?.as_deref() != Some(current.as_bytes()) {
                continue;
            }
            let within = ix
                .prefix_within(&self.inner.store)
                .ok_or_else(|| CouchError::internal("an index outside its database"))?;
            ops.extend(entry_ops(def, &ix, &docs, within, after).await?);
        }
        Ok(())
    }

    /// Brings an index up to date with the database: the changes since the sequence it holds,
    /// [`INDEX_BATCH`] per commit. Each commit is conditional on that sequence, so two
    /// processes updating one index at once never apply a change twice.
    pub async fn update_index(&self, def: &IndexDef) -> Result<()> {
        self.check_live()?;
        let ix = self.index_store(def)?;
        let _one = self.inner.index_lock.lock().await;
        loop {
            let stored = ix.get(b"s").await?;
            let since = parse_seq(stored.as_deref())?;
            let Some((ids, last_seq)) = self.changed_ids(since, INDEX_BATCH).await? else {
                return Ok(());
            };
            let winners = self.winners(&ids).await?;
            let docs: Vec<(String, Option<&Value>)> =
                ids.iter().map(|id| (id.clone(), winners.get(id))).collect();
            let ops = entry_ops(def, &ix, &docs, &[], last_seq).await?;
            // Lost to another process: read its progress and go on from there. An index is
            // derived data: its commits need not wait for the disk (a crash may take back the
            // last ones, sequence and entries together, and the next query redoes them).
            ix.batch_if_relaxed(b"s", stored.as_deref(), ops).await?;
        }
    }

    /// The winning, live revisions of documents as clients read them (without attachments'
    /// data); deleted and missing ones are left out.
    async fn winners(&self, ids: &[String]) -> Result<HashMap<String, Value>> {
        let metas = self.metas(ids).await?;
        let metas: Vec<(String, Meta)> = metas
            .into_iter()
            .filter_map(|(id, m)| m.map(|m| (id, m)))
            .collect();
        self.render_winners(&metas, &DocOptions::default()).await
    }

    /// The winning, live revisions of documents whose metadata is at hand, rendered.
    pub(super) async fn render_winners(
        &self,
        metas: &[(String, Meta)],
        opts: &DocOptions,
    ) -> Result<HashMap<String, Value>> {
        let mut wanted = Vec::new();
        for (id, meta) in metas {
            if let Some((rev, false)) = meta.tree.winner() {
                wanted.push((id.clone(), rev));
            }
        }
        let mut bodies = self.bodies(&wanted).await?;
        let mut out = HashMap::new();
        for ((id, meta), (_, rev)) in metas
            .iter()
            .filter(|(_, m)| matches!(m.tree.winner(), Some((_, false))))
            .zip(wanted)
        {
            let Some(body) = bodies.remove(&(id.clone(), rev.clone())) else {
                continue;
            };
            let doc = self.render(id, &rev, meta, body, opts).await?;
            out.insert(id.clone(), doc);
        }
        Ok(out)
    }

    /// One page of `_find` with `plan`: after `after` (a key of the plan's order), skipping
    /// `skip` matches, at most `max_rows` documents, examining at most [`FIND_PAGE`] keys.
    pub async fn find_page(
        &self,
        plan: &Plan,
        req: &FindRequest,
        after: Option<&[u8]>,
        skip: usize,
        max_rows: usize,
    ) -> Result<FindPage> {
        self.check_live()?;
        let descending = req.dir == SortDir::Desc;
        let mut range = RangeOptions {
            reverse: descending,
            limit: Some(FIND_PAGE),
            ..RangeOptions::default()
        };
        let source = match plan {
            Plan::AllDocs => {
                let r = req.selector.range_of(&["_id".to_owned()]);
                if let Some((Value::String(low), _)) = &r.low {
                    range.gte = Some(doc_key(low));
                }
                if let Some((Value::String(high), _)) = &r.high {
                    range.lte = Some([doc_key(high).as_slice(), &[0xff]].concat());
                }
                self.inner.meta.clone()
            }
            Plan::Json(def) => {
                let (low, high) = key_range(def, req);
                range.gte = Some([b"e".as_slice(), &low].concat());
                range.lt = Some(match high {
                    Some(h) => [b"e".as_slice(), &h].concat(),
                    None => b"f".to_vec(),
                });
                self.index_store(def)?
            }
        };
        if let Some(after) = after {
            if descending {
                range.lt = Some(after.to_vec());
                range.lte = None;
            } else {
                range.gt = Some(after.to_vec());
                range.gte = None;
            }
        }
        // One read of the page's keys (and, by id, the documents' metadata), then one of the
        // documents.
        let mut entries = Vec::new();
        let mut metas = Vec::new();
        let mut it = source.iterator(range)?;
        while let Some((k, v)) = it.next().await? {
            let id = match plan {
                Plan::AllDocs => {
                    let meta = Meta::from_bytes(&v)?;
                    let id = meta.id(&k);
                    if !is_design_doc(&id) {
                        metas.push((id.clone(), meta));
                    }
                    id
                }
                Plan::Json(_) => String::from_utf8(v.to_vec())
                    .map_err(|_| CouchError::internal("corrupt index entry"))?,
            };
            entries.push((k, id));
        }
        let mut page = FindPage {
            keys_examined: entries.len() as u64,
            next: (entries.len() >= FIND_PAGE)
                .then(|| entries.last().map(|(k, _)| k.clone()))
                .flatten(),
            ..FindPage::default()
        };
        if let Plan::Json(_) = plan {
            let ids: Vec<String> = entries
                .iter()
                .filter(|(_, id)| !is_design_doc(id))
                .map(|(_, id)| id.clone())
                .collect();
            metas = self
                .metas(&ids)
                .await?
                .into_iter()
                .filter_map(|(id, m)| m.map(|m| (id, m)))
                .collect();
        }
        let opts = DocOptions {
            conflicts: req.conflicts,
            ..DocOptions::default()
        };
        let docs = self.render_winners(&metas, &opts).await?;
        for (k, id) in entries {
            if page.docs.len() >= max_rows {
                // Stopped by the page's row budget: resume right after the last one returned.
                page.next = page.last_returned.clone();
                break;
            }
            if is_design_doc(&id) {
                continue;
            }
            let Some(doc) = docs.get(&id) else { continue };
            page.docs_examined += 1;
            if !req.selector.matches(doc) {
                continue;
            }
            if page.skipped < skip {
                page.skipped += 1;
                page.last_returned = Some(k);
                continue;
            }
            page.docs.push(match &req.fields {
                Some(fields) => project(doc, fields),
                None => doc.clone(),
            });
            page.last_returned = Some(k);
        }
        Ok(page)
    }
}

/// The batch that moves `def`'s entries for `docs` (each document as it now is; `None` when it
/// is deleted, gone or a design document) from what their back-references say to what they are
/// now, and sets the index's sequence to `seq`. Keys are prefixed with `within`: the index's
/// place in the level the batch goes to (empty for the index's own level). Shared by the catch-up
/// of [`Db::update_index`] and the upkeep in a write's batch.
async fn entry_ops(
    def: &IndexDef,
    ix: &LevelDb,
    docs: &[(String, Option<&Value>)],
    within: &[u8],
    seq: u64,
) -> Result<Vec<BatchOp>> {
    let back_keys: Vec<Vec<u8>> = docs
        .iter()
        .map(|(id, _)| [b"b".as_slice(), &doc_key(id)].concat())
        .collect();
    let olds = ix.get_many(&back_keys).await?;
    let at = |k: &[u8]| [within, k].concat();
    let mut ops = Vec::new();
    for (((id, doc), back), old) in docs.iter().zip(back_keys).zip(olds) {
        let new = doc
            .filter(|_| !is_design_doc(id))
            .and_then(|d| def.key_of(d))
            .map(|k| [b"e".as_slice(), &k, &doc_key(id)].concat());
        if old.as_deref() == new.as_deref() {
            continue;
        }
        if let Some(old) = old {
            ops.push(BatchOp::del(at(&old)));
        }
        match new {
            Some(k) => {
                ops.push(BatchOp::put(at(&k), Bytes::from(id.clone())));
                ops.push(BatchOp::put(at(&back), Bytes::from(k)));
            }
            None => ops.push(BatchOp::del(at(&back))),
        }
    }
    ops.push(BatchOp::put(at(b"s"), Bytes::from(seq.to_string())));
    Ok(ops)
}
