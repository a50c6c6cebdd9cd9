//! JavaScript views on a database: each design document's views indexed together in the `v`
//! sublevel under the group's signature, brought up to date from `_changes` before a query
//! reads them (CouchDB's behaviour), and read a page at a time ([`ViewCursor`]).
//!
//! A group's storage: `s` → the sequence it is up to date with; `e` ‖ view number (2 bytes) ‖
//! key's sort key (cut at [`MAX_VIEW_KEY_BYTES`]) ‖ document key ‖ 0 ‖ emit number (4 bytes) →
//! `[id, key, value]`; `b` ‖ document key → the document's entry keys (to remove them when it
//! changes); `n` ‖ view number → the view's row count.
//!
//! Keys whose sort keys agree on their first [`MAX_VIEW_KEY_BYTES`] bytes (strings sharing
//! about their first 40 characters) sort among themselves by document id; every row read is
//! checked against the query's exact bounds, so such a key only ever changes that order.

use super::*;
use crate::couch::js;
use crate::couch::mango::collate::{self, sort_key};
use crate::couch::views::{Fold, Reducer, ViewGroup, ViewQuery};

/// Changes folded into a view index per commit while bringing it up to date.
const VIEW_BATCH: usize = 1_000;

/// Documents handed to the map functions per engine call.
const MAP_CHUNK: usize = 100;

/// The most index entries one page of a view query reads.
pub const VIEW_PAGE: usize = 200;

/// The most bytes of a key's sort key in an entry's key (level keys are bounded).
pub const MAX_VIEW_KEY_BYTES: usize = 128;

/// The most rows one document may emit into one view: what one document costs to index is
/// bounded.
pub const MAX_EMITS_PER_DOC: usize = 10_000;

/// What `GET /{db}/_design/{ddoc}/_info` says of a view group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewInfo {
    pub signature: String,
    pub update_seq: u64,
    pub rows: u64,
}

fn entry_prefix(view: u16) -> Vec<u8> {
    let [hi, lo] = view.to_be_bytes();
    vec![b'e', hi, lo]
}

/// `key`'s sort key, cut at [`MAX_VIEW_KEY_BYTES`], and whether it was cut.
fn key_part(key: &Value) -> (Vec<u8>, bool) {
    let mut sk = Vec::new();
    sort_key(key, &mut sk);
    let cut = sk.len() > MAX_VIEW_KEY_BYTES;
    sk.truncate(MAX_VIEW_KEY_BYTES);
    (sk, cut)
}

fn entry_key(view: u16, key: &Value, id: &str, n: u32) -> Vec<u8> {
    let mut k = entry_prefix(view);
    k.extend(key_part(key).0);
    k.extend(doc_key(id));
    k.push(0);
    k.extend(n.to_be_bytes());
    k
}

/// A key range's end at `key` (and `docid`): (the bytes, whether `docid` is in them).
fn bound(view: u16, key: &Value, docid: Option<&str>) -> (Vec<u8>, bool) {
    let (sk, cut) = key_part(key);
    let mut b = entry_prefix(view);
    b.extend(sk);
    match docid {
        Some(d) if !cut => {
            b.extend(doc_key(d));
            (b, true)
        }
        _ => (b, false),
    }
}

/// Just past every entry of `b` (a bound without a document id: every document of the key;
/// with one: every row of that document).
fn past(mut b: Vec<u8>, with_doc: bool) -> Vec<u8> {
    b.push(if with_doc { 1 } else { 0xff });
    b
}

/// The index range (a superset of) a query's rows in one view.
fn view_range(view: u16, q: &ViewQuery) -> RangeOptions {
    let start_of_view = entry_prefix(view);
    let end_of_view = past(entry_prefix(view), false);
    let mut r = RangeOptions {
        reverse: q.descending,
        ..RangeOptions::default()
    };
    // The low and high ends in byte order.
    let (low, high) = if q.descending {
        ((&q.end, &q.end_docid), (&q.start, &q.start_docid))
    } else {
        ((&q.start, &q.start_docid), (&q.end, &q.end_docid))
    };
    r.gte = Some(match low.0 {
        Some(k) => bound(view, k, low.1.as_deref()).0,
        None => start_of_view,
    });
    r.lt = Some(match high.0 {
        Some(k) => {
            let (b, with_doc) = bound(view, k, high.1.as_deref());
            past(b, with_doc)
        }
        None => end_of_view,
    });
    r
}

/// The index range of one key's rows.
fn key_range(view: u16, key: &Value, descending: bool) -> RangeOptions {
    let (b, _) = bound(view, key, None);
    RangeOptions {
        gte: Some(b.clone()),
        lt: Some(past(b, false)),
        reverse: descending,
        ..RangeOptions::default()
    }
}

/// A document's entry keys, as its back-reference holds them.
fn encode_refs(keys: &[Vec<u8>]) -> Bytes {
    let mut out = Vec::new();
    for k in keys {
        out.extend((k.len() as u16).to_be_bytes());
        out.extend(k);
    }
    Bytes::from(out)
}

fn decode_refs(raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let len = raw
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| CouchError::internal("corrupt view back-reference"))?;
        let k = raw
            .get(at + 2..at + 2 + len)
            .ok_or_else(|| CouchError::internal("corrupt view back-reference"))?;
        out.push(k.to_vec());
        at += 2 + len;
    }
    Ok(out)
}

fn count_key(view: u16) -> Vec<u8> {
    let [hi, lo] = view.to_be_bytes();
    vec![b'n', hi, lo]
}

/// An index entry read back: document id, key, value.
fn parse_entry(raw: &[u8]) -> Result<(String, Value, Value)> {
    match parse_json(raw)? {
        Value::Array(mut a) if a.len() == 3 => {
            let v = a.pop().unwrap_or(Value::Null);
            let k = a.pop().unwrap_or(Value::Null);
            let id = a.pop().and_then(|i| i.as_str().map(str::to_owned));
            Ok((
                id.ok_or_else(|| CouchError::internal("corrupt view entry"))?,
                k,
                v,
            ))
        }
        _ => Err(CouchError::internal("corrupt view entry")),
    }
}

impl Db {
    /// The views of design document `ddoc` as it is now.
    pub async fn view_group(&self, ddoc: &str) -> Result<Arc<ViewGroup>> {
        let docs = self.current_design_docs().await?;
        let (id, doc) = docs
            .iter()
            .find(|(id, _)| id == ddoc)
            .ok_or_else(CouchError::missing)?;
        ViewGroup::of_design_doc(id, doc)
            .map(Arc::new)
            .ok_or_else(|| CouchError::not_found("missing_named_view"))
    }

    fn view_store(&self, g: &ViewGroup) -> Result<LevelDb> {
        Ok(self.inner.views.sublevel(&g.signature)?)
    }

    /// Brings a view group up to date with the database: the changes since the sequence it
    /// holds, [`VIEW_BATCH`] per commit, each commit conditional on that sequence (two
    /// processes updating one group never apply a change twice).
    pub async fn update_view(&self, g: &ViewGroup) -> Result<u64> {
        self.check_live()?;
        if self.inner.js.is_none() {
            // Surface "no engine" before reading anything.
            js::map(&self.inner.js, &g.code, &[], &[])?;
        }
        let ix = self.view_store(g)?;
        let _one = self.inner.index_lock.lock().await;
        loop {
            let stored = ix.get(b"s").await?;
            let since = parse_seq(stored.as_deref())?;
            let Some((ids, last_seq)) = self.changed_ids(since, VIEW_BATCH).await? else {
                return Ok(since);
            };
            let opts = DocOptions {
                conflicts: true,
                ..DocOptions::default()
            };
            let docs = self.live_docs(&ids, &opts).await?;
            let live: Vec<(&String, &Value)> = ids
                .iter()
                .filter(|id| !is_design_doc(id))
                .filter_map(|id| docs.get(id).map(|d| (id, d)))
                .collect();
            let funs: Vec<&str> = g.views.iter().map(|v| v.map.as_str()).collect();
            let mut emitted: HashMap<&str, Vec<Vec<js::Row>>> = HashMap::new();
            for chunk in live.chunks(MAP_CHUNK) {
                let docs: Vec<&Value> = chunk.iter().map(|(_, d)| *d).collect();
                let rows = js::map(&self.inner.js, &g.code, &funs, &docs)?;
                for ((id, _), per_view) in chunk.iter().zip(rows) {
                    if per_view.iter().any(|r| r.len() > MAX_EMITS_PER_DOC) {
                        return Err(CouchError::too_large(format!(
                            "document {id} emits more than {MAX_EMITS_PER_DOC} rows into one view"
                        )));
                    }
                    emitted.insert(id.as_str(), per_view);
                }
            }
            let ops = view_entry_ops(&ix, g.views.len(), &ids, &emitted, last_seq).await?;
            // Derived data: its commits need not wait for the disk (a crash may take back the
            // last ones, sequence and entries together, and the next query redoes them).
            ix.batch_if_relaxed(b"s", stored.as_deref(), ops).await?;
        }
    }

    /// The winning, live revisions of `ids` rendered with `opts` (deleted and missing ones
    /// left out).
    async fn live_docs(&self, ids: &[String], opts: &DocOptions) -> Result<HashMap<String, Value>> {
        let metas: Vec<(String, Meta)> = self
            .metas(ids)
            .await?
            .into_iter()
            .filter_map(|(id, m)| m.map(|m| (id, m)))
            .collect();
        self.render_winners(&metas, opts).await
    }

    pub async fn view_info(&self, g: &ViewGroup) -> Result<ViewInfo> {
        self.check_live()?;
        let ix = self.view_store(g)?;
        let mut rows = 0u64;
        for i in 0..g.views.len() {
            let view = u16::try_from(i).map_err(|_| CouchError::internal("too many views"))?;
            rows += parse_seq(ix.get(count_key(view)).await?.as_deref())?;
        }
        Ok(ViewInfo {
            signature: g.signature.clone(),
            update_seq: parse_seq(ix.get(b"s").await?.as_deref())?,
            rows,
        })
    }

    /// The filter `filter=ddoc/name` (or `_view` with `view`) names, with CouchDB's request
    /// object `req` for filter functions.
    pub async fn design_filter(
        &self,
        filter: &str,
        view: Option<&str>,
        req: Value,
    ) -> Result<Arc<dyn crate::couch::views::ChangeFilter>> {
        let ddocs = self.current_design_docs().await?;
        crate::couch::views::filter::design_filter(&self.inner.js, &ddocs, filter, view, req)
    }

    /// `_view_cleanup`: drops the indexes of view groups no design document has any more.
    pub async fn view_cleanup(&self) -> Result<()> {
        let live: HashSet<String> = self
            .current_design_docs()
            .await?
            .iter()
            .filter_map(|(id, d)| ViewGroup::of_design_doc(id, d))
            .map(|g| g.signature)
            .collect();
        // The groups stored: one key read per group, skipping over each group's entries.
        let mut from: Vec<u8> = vec![b'!'];
        loop {
            let mut it = self.inner.views.keys(RangeOptions {
                gte: Some(from.clone()),
                limit: Some(1),
                ..RangeOptions::default()
            })?;
            let Some(k) = it.next().await? else {
                return Ok(());
            };
            let name_end = k[1..]
                .iter()
                .position(|b| *b == b'!')
                .map(|p| p + 1)
                .ok_or_else(|| CouchError::internal("corrupt view storage"))?;
            let sig = String::from_utf8_lossy(&k[1..name_end]).into_owned();
            if !live.contains(&sig) {
                self.inner
                    .views
                    .sublevel(&sig)?
                    .clear(RangeOptions::default())
                    .await?;
            }
            from = [&k[..name_end], b"\"".as_slice()].concat();
        }
    }

    /// A view query: its rows (or reductions) are read a page at a time from the cursor.
    pub async fn view_query(
        &self,
        g: Arc<ViewGroup>,
        view_name: &str,
        q: ViewQuery,
    ) -> Result<ViewCursor> {
        self.check_live()?;
        let (view, def) = g.view(view_name)?;
        let reduce = if q.reduces(def.reduce.as_ref())? {
            def.reduce.clone()
        } else {
            None
        };
        let ix = self.view_store(&g)?;
        let update_seq = parse_seq(ix.get(b"s").await?.as_deref())?;
        let ranges: Vec<RangeOptions> = match &q.keys {
            Some(keys) => keys
                .iter()
                .map(|k| key_range(view, k, q.descending))
                .collect(),
            None => vec![view_range(view, &q)],
        };
        let (total_rows, offset) = if reduce.is_none() {
            let total = parse_seq(ix.get(count_key(view)).await?.as_deref())?;
            let offset = self
                .view_offset(
                    &ix,
                    &g.signature,
                    view,
                    update_seq,
                    total,
                    &q,
                    ranges.first(),
                )
                .await?;
            (total, offset)
        } else {
            (0, 0)
        };
        Ok(ViewCursor {
            db: self.clone(),
            ix,
            group: g,
            reduce,
            ranges,
            at: 0,
            after: None,
            skip: q.skip,
            left: q.limit.unwrap_or(usize::MAX),
            current: None,
            total_rows,
            offset,
            update_seq,
            done: false,
            q,
        })
    }

    /// How many rows of the view come before the query's first (CouchDB's `offset`): the
    /// entries before the first range's start, or after its end when descending, counted from
    /// the nearest remembered fence (see `view_offsets`).
    #[allow(clippy::too_many_arguments)]
    async fn view_offset(
        &self,
        ix: &LevelDb,
        sig: &str,
        view: u16,
        seq: u64,
        total: u64,
        q: &ViewQuery,
        first: Option<&RangeOptions>,
    ) -> Result<u64> {
        let Some(first) = first else { return Ok(0) };
        // Ascending: the entries before the start; descending: those from the end on.
        let bound = if q.descending { &first.lt } else { &first.gte };
        let Some(bound) = bound.clone() else {
            return Ok(0);
        };
        let before = self
            .inner
            .offsets
            .count_before(ix, sig, view, seq, entry_prefix(view), Some(bound))
            .await?;
        Ok(if q.descending {
            total.saturating_sub(before)
        } else {
            before
        })
    }
}

/// The batch that moves the entries of documents `ids` (their rows in `emitted`, per view; a
/// document not there is deleted, gone or a design document) from what their
/// back-references say to what they are now, keeps the views' row counts, and sets the
/// group's sequence to `seq`.
async fn view_entry_ops(
    ix: &LevelDb,
    views: usize,
    ids: &[String],
    emitted: &HashMap<&str, Vec<Vec<js::Row>>>,
    seq: u64,
) -> Result<Vec<BatchOp>> {
    let back_keys: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| [b"b".as_slice(), &doc_key(id)].concat())
        .collect();
    let olds = ix.get_many(&back_keys).await?;
    let views16: Vec<u16> = (0..views)
        .map(|v| u16::try_from(v).map_err(|_| CouchError::bad_request("too many views")))
        .collect::<Result<_>>()?;
    let count_keys: Vec<Vec<u8>> = views16.iter().map(|v| count_key(*v)).collect();
    let mut counts: Vec<i64> = Vec::with_capacity(views);
    for raw in ix.get_many(&count_keys).await? {
        counts.push(i64::try_from(parse_seq(raw.as_deref())?).unwrap_or(i64::MAX));
    }
    let view_of = |k: &[u8]| -> usize {
        k.get(1..3)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize)
    };
    let mut ops = Vec::new();
    for ((id, back), old) in ids.iter().zip(back_keys).zip(olds) {
        let old_keys = match old {
            Some(raw) => decode_refs(&raw)?,
            None => Vec::new(),
        };
        let mut new_keys = Vec::new();
        if let Some(per_view) = emitted.get(id.as_str()) {
            for (view, rows) in views16.iter().zip(per_view) {
                for (n, (k, v)) in rows.iter().enumerate() {
                    let key = entry_key(*view, k, id, n as u32);
                    let value = Value::Array(vec![Value::String(id.clone()), k.clone(), v.clone()]);
                    ops.push(BatchOp::put(key.clone(), json_bytes(&value)));
                    new_keys.push(key);
                }
            }
        }
        let new_set: HashSet<&Vec<u8>> = new_keys.iter().collect();
        for k in &old_keys {
            if let Some(c) = counts.get_mut(view_of(k)) {
                *c -= 1;
            }
            if !new_set.contains(k) {
                ops.push(BatchOp::del(k.clone()));
            }
        }
        for k in &new_keys {
            if let Some(c) = counts.get_mut(view_of(k)) {
                *c += 1;
            }
        }
        if new_keys.is_empty() {
            if !old_keys.is_empty() {
                ops.push(BatchOp::del(back));
            }
        } else {
            ops.push(BatchOp::put(back, encode_refs(&new_keys)));
        }
    }
    for (k, c) in count_keys.into_iter().zip(counts) {
        ops.push(BatchOp::put(k, Bytes::from(c.max(0).to_string())));
    }
    ops.push(BatchOp::put(b"s".to_vec(), Bytes::from(seq.to_string())));
    Ok(ops)
}

/// A view query in progress: each [`ViewCursor::next_page`] reads at most [`VIEW_PAGE`]
/// entries, so a query's memory is a page (and, reducing, one chunk of rows) whatever it asks.
pub struct ViewCursor {
    db: Db,
    ix: LevelDb,
    group: Arc<ViewGroup>,
    q: ViewQuery,
    /// The reducer when the query reduces.
    reduce: Option<Reducer>,
    ranges: Vec<RangeOptions>,
    /// The range being read, and the last key read in it.
    at: usize,
    after: Option<Vec<u8>>,
    skip: usize,
    left: usize,
    /// The group being reduced: its key and its fold.
    current: Option<(Option<Value>, Fold)>,
    pub total_rows: u64,
    pub offset: u64,
    /// The sequence the index was at when the query started.
    pub update_seq: u64,
    done: bool,
}

impl ViewCursor {
    pub fn reduces(&self) -> bool {
        self.reduce.is_some()
    }

    /// A reduced group's row, unless skipped or past the limit.
    fn close_group(&mut self, rows: &mut Vec<Value>) -> Result<()> {
        let Some((key, fold)) = self.current.take() else {
            return Ok(());
        };
        if fold.count == 0 {
            return Ok(());
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(());
        }
        if self.left == 0 {
            self.done = true;
            return Ok(());
        }
        let value = fold.finish(&self.db.inner.js)?;
        rows.push(json!({"key": key.unwrap_or(Value::Null), "value": value}));
        self.left -= 1;
        if self.left == 0 {
            self.done = true;
        }
        Ok(())
    }

    /// The next page of rows; `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>> {
        if self.done {
            return Ok(None);
        }
        let mut rows = Vec::new();
        let Some(base) = self.ranges.get(self.at).cloned() else {
            self.close_group(&mut rows)?;
            self.done = true;
            return Ok(Some(rows));
        };
        let mut range = RangeOptions {
            limit: Some(VIEW_PAGE),
            ..base
        };
        if let Some(after) = self.after.take() {
            if range.reverse {
                range.lt = Some(after);
            } else {
                range.gt = Some(after);
                range.gte = None;
            }
        }
        let mut it = self.ix.iterator(range)?;
        let mut read = 0;
        let mut last = None;
        let mut ids = Vec::new();
        let key_of_range = self.q.keys.as_ref().and_then(|k| k.get(self.at)).cloned();
        while let Some((k, raw)) = it.next().await? {
            read += 1;
            last = Some(k);
            let (id, key, value) = parse_entry(&raw)?;
            let inside = match &key_of_range {
                Some(want) => collate::cmp(&key, want) == std::cmp::Ordering::Equal,
                None => self.q.within(&key, &id),
            };
            if !inside {
                continue;
            }
            match self.reduce.clone() {
                Some(reducer) => {
                    let gk = self.q.group_key(&key);
                    let same = match &self.current {
                        Some((cur, _)) => match (cur, &gk) {
                            (None, None) => true,
                            (Some(a), Some(b)) => collate::cmp(a, b) == std::cmp::Ordering::Equal,
                            _ => false,
                        },
                        None => false,
                    };
                    if !same {
                        self.close_group(&mut rows)?;
                        if self.done {
                            return Ok(Some(rows));
                        }
                        self.current = Some((gk, Fold::new(reducer, self.group.code.clone())));
                    }
                    if let Some((_, fold)) = &mut self.current {
                        fold.push(&self.db.inner.js, key, id, value)?;
                    }
                }
                None => {
                    if self.skip > 0 {
                        self.skip -= 1;
                        continue;
                    }
                    if self.left == 0 {
                        self.done = true;
                        break;
                    }
                    self.left -= 1;
                    ids.push(match &value {
                        Value::Object(o) => match o.get("_id").and_then(Value::as_str) {
                            Some(linked) => linked.to_owned(),
                            None => id.clone(),
                        },
                        _ => id.clone(),
                    });
                    rows.push(json!({"id": id, "key": key, "value": value}));
                }
            }
        }
        if read < VIEW_PAGE {
            // This range is done; with `keys`, each key's rows are a group of their own.
            self.at += 1;
            if self.q.keys.is_some() {
                self.close_group(&mut rows)?;
            }
        } else {
            self.after = last;
        }
        if self.reduce.is_none() && self.left == 0 {
            self.done = true;
        }
        if self.q.include_docs && !rows.is_empty() {
            let opts = DocOptions {
                conflicts: self.q.conflicts,
                attachments: self.q.attachments,
                ..DocOptions::default()
            };
            let docs = self.db.live_docs(&ids, &opts).await?;
            for (row, id) in rows.iter_mut().zip(&ids) {
                row["doc"] = docs.get(id).cloned().unwrap_or(Value::Null);
            }
        }
        Ok(Some(rows))
    }
}
