//! One database: its writer lock and counters, document updates, reads, changes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::{CouchError, Result};
use super::revs::{new_rev, Rev, RevTree, Revisions};
use super::DEFAULT_REVS_LIMIT;
use crate::clock::IdSource;
use crate::level::{BatchOp, KeyStream, LevelDb, RangeOptions};

/// Fields starting with `_` that CouchDB keeps in a document's body as they are (the
/// replicator's bookkeeping).
const KEPT_SPECIAL: &[&str] = &[
    "_replication_id",
    "_replication_state",
    "_replication_state_time",
    "_replication_state_reason",
    "_replication_stats",
];

/// Fields a document may carry that start with `_`.
const SPECIAL: &[&str] = &[
    "_id",
    "_rev",
    "_deleted",
    "_revisions",
    "_attachments",
    "_conflicts",
    "_deleted_conflicts",
    "_local_seq",
    "_revs_info",
];

/// How often a write is retried after another node committed to the database in between.
const WRITE_ATTEMPTS: usize = 20;

/// The most leaf revisions (live or deleted branches) one document may have, and the most
/// revisions its tree may hold. CouchDB bounds a branch's depth by `revs_limit` but neither
/// the number of branches nor the tree; without bounds a client could make every read and
/// write of a document arbitrarily expensive (PouchDB's own suite makes 200 conflicts).
pub const MAX_LEAVES: usize = 1_000;
pub const MAX_TREE_REVS: usize = 20_000;

/// The counters as this process last saw them stored. Every commit rewrites the counters key
/// (its `update_seq` only grows) and is applied only while that key still holds `stored`, so a
/// commit by another node in between makes this one start over from fresh counters and
/// metadata: sequence numbers never repeat and no update is lost.
#[derive(Debug, Clone, Default)]
struct Writer {
    counters: Counters,
    stored: Option<Bytes>,
}

impl Writer {
    async fn reload(&mut self, store: &LevelDb) -> Result<()> {
        self.stored = store.get(COUNTERS).await?;
        self.counters = parse_counters(self.stored.as_deref())?;
        Ok(())
    }
}

fn parse_counters(raw: Option<&[u8]>) -> Result<Counters> {
    match raw {
        Some(raw) => serde_json::from_slice(raw)
            .map_err(|_| CouchError::internal("corrupt database counters")),
        None => Ok(Counters::default()),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    update_seq: u64,
    doc_count: u64,
    doc_del_count: u64,
    /// Bodies kept of revisions that are no longer leaves: what compaction would drop.
    #[serde(default)]
    garbage: u64,
    /// How many purges the database has had.
    #[serde(default)]
    purge_seq: u64,
}

/// A document's stored metadata.
#[derive(Debug, Clone, Default)]
struct Meta {
    /// The document's id when it is too long to be its own key (see [`doc_key`]).
    long_id: Option<String>,
    tree: RevTree,
    seq: u64,
    /// Each leaf's attachment digests.
    atts: BTreeMap<String, Vec<String>>,
}

impl Meta {
    /// Drops the stored bodies of `revs` (those that have one) and the attachments no kept
    /// body refers to any more, staging the deletes in `ops`; returns how many bodies went.
    fn drop_bodies<'a>(
        &mut self,
        id: &str,
        revs: impl IntoIterator<Item = &'a Rev>,
        ops: &mut Vec<BatchOp>,
    ) -> u64 {
        let before: BTreeSet<String> = self.atts.values().flatten().cloned().collect();
        let mut dropped = 0;
        for rev in revs {
            if self.atts.remove(&rev.to_string()).is_some() {
                ops.push(BatchOp::del(body_key(id, rev)));
                dropped += 1;
            }
        }
        if dropped > 0 {
            let after: BTreeSet<&String> = self.atts.values().flatten().collect();
            for d in before.iter().filter(|d| !after.contains(d)) {
                ops.push(BatchOp::del(att_key(id, d)));
            }
        }
        dropped
    }

    /// Revisions with a stored body that are not leaves (kept until compaction).
    fn old_bodies(&self) -> Vec<Rev> {
        self.atts
            .keys()
            .filter_map(|r| Rev::parse(r))
            .filter(|r| !self.tree.is_leaf(r))
            .collect()
    }

    /// The row `_changes` reads for this document: its winner and every leaf.
    fn change_row(&self, id: &str, winner: &Rev, deleted: bool) -> Bytes {
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

    fn has_body(&self, rev: &Rev) -> bool {
        self.atts.contains_key(&rev.to_string())
    }

    fn to_bytes(&self) -> Bytes {
        let mut v = json!({"tree": self.tree.to_json(), "seq": self.seq, "atts": self.atts});
        if let Some(id) = &self.long_id {
            v["id"] = Value::String(id.clone());
        }
        Bytes::from(v.to_string())
    }

    /// The document's id, given the key its metadata was found under.
    fn id(&self, key: &[u8]) -> String {
        self.long_id
            .clone()
            .unwrap_or_else(|| String::from_utf8_lossy(key).into_owned())
    }
    fn from_bytes(raw: &[u8]) -> Result<Meta> {
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

/// The result of one document write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    Ok { id: String, rev: String },
    Err { id: String, error: CouchError },
}

#[derive(Debug, Clone, Default)]
pub struct DocOptions {
    pub rev: Option<Rev>,
    pub revs: bool,
    pub revs_info: bool,
    pub conflicts: bool,
    pub deleted_conflicts: bool,
    pub latest: bool,
    /// Inline every attachment's data.
    pub attachments: bool,
    /// Inline the data of attachments newer than the newest of these revisions the document has.
    pub atts_since: Vec<Rev>,
    /// couchkv's own reads of `_users` (password checks): keep the password hash, which every
    /// other read of `_users` leaves out.
    pub with_password_hash: bool,
}

/// Which revisions `open_revs` asks for.
#[derive(Debug, Clone)]
pub enum OpenRevs {
    All,
    Some(Vec<Rev>),
}

/// One document of a `_bulk_get`.
#[derive(Debug, Clone)]
pub struct BulkGetItem {
    pub id: String,
    pub rev: Option<Rev>,
    pub atts_since: Vec<Rev>,
}

#[derive(Debug, Clone, Default)]
pub struct AllDocsOptions {
    pub start: Option<String>,
    pub end: Option<String>,
    pub inclusive_end: bool,
    pub descending: bool,
    pub limit: Option<usize>,
    pub skip: usize,
    pub include_docs: bool,
    pub conflicts: bool,
    /// Inline attachments' data in included documents.
    pub attachments: bool,
    /// Say the database's `update_seq` too.
    pub update_seq: bool,
    pub keys: Option<Vec<String>>,
}

/// Where a page of `_all_docs` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllDocsCursor {
    Start,
    /// At this key (inclusive), in the direction of iteration.
    Before(Vec<u8>),
    /// With `keys`: at this index of them.
    KeyIndex(usize),
}

/// One page of `_all_docs`.
#[derive(Debug, Clone, PartialEq)]
pub struct AllDocsPage {
    pub rows: Vec<Value>,
    /// How many rows this page skipped for `skip`.
    pub skipped: usize,
    /// Where the next page starts; `None` after the last.
    pub next: Option<AllDocsCursor>,
}

/// Documents compacted per commit.
const COMPACT_PAGE: usize = 100;

/// The most documents one page of `_all_docs` examines.
pub const ALL_DOCS_PAGE: usize = 100;

#[derive(Debug, Clone, Default)]
pub struct ChangesOptions {
    /// Rows with a sequence above this one.
    pub since: u64,
    pub limit: Option<usize>,
    pub descending: bool,
    pub include_docs: bool,
    /// `style=all_docs`: every leaf, not just the winner.
    pub all_docs: bool,
    pub conflicts: bool,
    /// Inline attachments' data in included documents.
    pub attachments: bool,
    pub doc_ids: Option<HashSet<String>>,
    /// Rows with a sequence below this one (paging a descending feed).
    pub before: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    pub results: Vec<Value>,
    /// The last sequence examined (the next `since`).
    pub last_seq: u64,
    /// At most this many changes remain after `last_seq`.
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    pub name: String,
    pub update_seq: u64,
    pub doc_count: u64,
    pub doc_del_count: u64,
    pub purge_seq: u64,
    /// Bodies of old revisions kept until compaction.
    pub old_revisions: u64,
    pub compact_running: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentData {
    pub content_type: String,
    pub digest: String,
    pub data: Bytes,
}

/// A handle on one database; clones share it.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    store: LevelDb,
    meta: LevelDb,
    bodies: LevelDb,
    seqs: LevelDb,
    locals: LevelDb,
    atts: LevelDb,
    /// Serializes this process's writers; other nodes are kept out by the guard on the
    /// counters key (see [`Writer`]).
    writer: tokio::sync::Mutex<Writer>,
    deleted: AtomicBool,
    /// A compaction is under way.
    compacting: AtomicBool,
    ids: Arc<dyn IdSource>,
}

/// Ids up to this many bytes are their own key.
const INLINE_ID_BYTES: usize = 150;
/// A longer id's key: its first this many bytes, then 0xFF and a digest of the whole id.
const LONG_ID_PREFIX: usize = 120;
/// The longest document id accepted (CouchDB sets none; a bound keeps what one id costs in
/// every change row and metadata record bounded).
pub const MAX_DOC_ID_BYTES: usize = 16 * 1024;

/// A document's part of every key of it. Keys are bounded in length, ids are not: an id
/// longer than [`INLINE_ID_BYTES`] is keyed by its first [`LONG_ID_PREFIX`] bytes, 0xFF (which
/// no UTF-8 text holds) and 16 bytes of its SHA-256, and its metadata records the whole id.
/// Byte order of keys is the ids' order except among ids sharing their first 120 bytes.
fn doc_key(id: &str) -> Vec<u8> {
    let bytes = id.as_bytes();
    if bytes.len() <= INLINE_ID_BYTES {
        return bytes.to_vec();
    }
    let digest = sha2::Sha256::digest(bytes);
    let mut key = bytes[..LONG_ID_PREFIX].to_vec();
    key.push(0xff);
    key.extend(
        digest
            .iter()
            .take(16)
            .flat_map(|b| format!("{b:02x}").into_bytes()),
    );
    key
}

/// Keys within the database's sublevels (`m`, `r`, `a`, `l`), and the same keys as the
/// database's own level sees them, for batches: one place for the layout.
fn meta_sub(id: &str) -> Vec<u8> {
    doc_key(id)
}
fn body_sub(id: &str, rev: &Rev) -> Vec<u8> {
    [doc_key(id).as_slice(), &[0], rev.to_string().as_bytes()].concat()
}
fn att_sub(id: &str, digest: &str) -> Vec<u8> {
    [doc_key(id).as_slice(), &[0], digest.as_bytes()].concat()
}
fn local_sub(id: &str) -> Vec<u8> {
    doc_key(id)
}
fn meta_key(id: &str) -> Vec<u8> {
    [b"!m!".as_slice(), &meta_sub(id)].concat()
}
fn body_key(id: &str, rev: &Rev) -> Vec<u8> {
    [b"!r!".as_slice(), &body_sub(id, rev)].concat()
}
fn seq_key(seq: u64) -> Vec<u8> {
    [b"!s!".as_slice(), &seq.to_be_bytes()].concat()
}
fn att_key(id: &str, digest: &str) -> Vec<u8> {
    [b"!a!".as_slice(), &att_sub(id, digest)].concat()
}
fn local_key(id: &str) -> Vec<u8> {
    [b"!l!".as_slice(), &local_sub(id)].concat()
}
const COUNTERS: &[u8] = b"c";
const SECURITY: &[u8] = b"sec";

fn md5_digest(data: &[u8]) -> String {
    format!("md5-{}", B64.encode(Md5::digest(data)))
}

fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(v.to_string())
}

fn parse_json(raw: &[u8]) -> Result<Value> {
    serde_json::from_slice(raw).map_err(|_| CouchError::internal("corrupt stored JSON"))
}

/// Checks a document id a client chose.
pub fn check_doc_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(CouchError::bad_request("Document id must not be empty"));
    }
    if id.len() > MAX_DOC_ID_BYTES {
        return Err(CouchError::bad_request(format!(
            "Document id is longer than {MAX_DOC_ID_BYTES} bytes"
        )));
    }
    if id.starts_with('_') && !id.starts_with("_design/") {
        return Err(CouchError::bad_request(
            "Only reserved document ids may start with underscore.",
        ));
    }
    Ok(())
}

/// A document as a client sent it, taken apart.
struct Incoming {
    id: String,
    /// As sent: local documents have `0-N` revisions, which are not tree revisions.
    rev_raw: Option<String>,
    deleted: bool,
    revisions: Option<Revisions>,
    attachments: Option<Map<String, Value>>,
    body: Map<String, Value>,
}

/// Checks a document as a write would, without writing: the special fields, the id, `_rev`,
/// `_revisions` and `_attachments` (what the fuzz target `document` drives).
pub fn check_document(doc: Value) -> Result<()> {
    validate_document(&doc, true)
}

/// Everything about a document that can be known wrong without the database: a request with
/// one such document is refused whole, as CouchDB refuses it, before anything is written.
pub fn validate_document(doc: &Value, new_edits: bool) -> Result<()> {
    let Value::Object(map) = doc else {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    };
    for k in map.keys() {
        if k.starts_with('_')
            && !SPECIAL.contains(&k.as_str())
            && !KEPT_SPECIAL.contains(&k.as_str())
        {
            return Err(CouchError::doc_validation(format!(
                "Bad special document member: {k}"
            )));
        }
    }
    let id = match map.get("_id") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(CouchError::bad_request("Document id must be a string")),
        None => None,
    };
    let local = id.is_some_and(|i| i.starts_with("_local/"));
    if let Some(id) = id.filter(|_| !local) {
        check_doc_id(id)?;
    }
    let has_rev = match map.get("_rev") {
        Some(Value::String(s)) if !local => {
            Rev::parse(s).ok_or_else(|| CouchError::bad_request("Invalid rev format"))?;
            true
        }
        Some(Value::String(_)) => true,
        Some(Value::Null) | None => false,
        Some(_) => return Err(CouchError::bad_request("Invalid rev format")),
    };
    if !matches!(
        map.get("_deleted"),
        None | Some(Value::Null | Value::Bool(_))
    ) {
        return Err(CouchError::bad_request("_deleted must be a boolean"));
    }
    let has_revisions = match map.get("_revisions") {
        // A local document has no history: its `_revisions` is dropped, whatever it says.
        Some(_) if local => false,
        Some(v) => {
            Revisions::deserialize(v)
                .ok()
                .and_then(|r| r.path(DEFAULT_REVS_LIMIT))
                .ok_or_else(|| CouchError::bad_request("Invalid _revisions"))?;
            true
        }
        None => false,
    };
    match map.get("_attachments") {
        Some(Value::Object(atts)) => {
            for (name, att) in atts {
                check_attachment_name(name)?;
                if !att.is_object() {
                    return Err(CouchError::bad_request(format!(
                        "attachment {name:?} must be an object"
                    )));
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err(CouchError::bad_request("_attachments must be an object")),
    }
    if !new_edits && !local && !has_rev && !has_revisions {
        return Err(CouchError::bad_request(
            "new_edits=false needs _rev or _revisions",
        ));
    }
    Ok(())
}

/// CouchDB's rule for attachment names: not empty, not starting with `_`.
pub fn check_attachment_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('_') {
        return Err(CouchError::bad_request(
            "Attachment name can't start with '_'",
        ));
    }
    Ok(())
}

fn take_incoming(
    doc: Value,
    new_edits: bool,
    generated_id: impl FnOnce() -> String,
) -> Result<Incoming> {
    validate_document(&doc, new_edits)?;
    let Value::Object(mut map) = doc else {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    };
    let id = match map.remove("_id") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(CouchError::bad_request("Document id must be a string")),
        None => generated_id(),
    };
    let rev_raw = match map.remove("_rev") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(_) => return Err(CouchError::bad_request("Invalid rev format")),
    };
    let deleted = match map.remove("_deleted") {
        Some(Value::Bool(b)) => b,
        Some(Value::Null) | None => false,
        Some(_) => return Err(CouchError::bad_request("_deleted must be a boolean")),
    };
    let revisions = match map.remove("_revisions") {
        Some(v) => Some(
            serde_json::from_value::<Revisions>(v)
                .map_err(|_| CouchError::bad_request("Invalid _revisions"))?,
        ),
        None => None,
    };
    let attachments = match map.remove("_attachments") {
        Some(Value::Object(a)) => Some(a),
        Some(Value::Null) | None => None,
        Some(_) => return Err(CouchError::bad_request("_attachments must be an object")),
    };
    for k in [
        "_conflicts",
        "_deleted_conflicts",
        "_local_seq",
        "_revs_info",
    ] {
        map.remove(k);
    }
    Ok(Incoming {
        id,
        rev_raw,
        deleted,
        revisions,
        attachments,
        body: map,
    })
}

/// State of one request's writes, so a later document in the same request sees the earlier.
/// A document's metadata is taken out while it is staged and put back after, never copied,
/// and written once per request (stemmed then): the work of a request is linear in what it
/// sends, however often it names one document.
#[derive(Default)]
struct Staging {
    /// Metadata read for the whole request in one go before it is staged.
    prefetched: HashMap<String, Option<Meta>>,
    metas: HashMap<String, Meta>,
    /// Documents whose metadata this request changed (to be written at the end).
    changed: BTreeSet<String>,
    bodies: HashMap<(String, Rev), Value>,
    ops: Vec<BatchOp>,
}

impl Staging {
    /// Writes each changed document's metadata, stemmed to `revs_limit` (the bodies of the
    /// revisions stemming forgets go with them).
    fn finish(&mut self, revs_limit: usize, counters: &mut Counters) {
        for id in std::mem::take(&mut self.changed) {
            if let Some(meta) = self.metas.get_mut(&id) {
                let forgotten = meta.tree.stem(revs_limit);
                let dropped = meta.drop_bodies(&id, &forgotten, &mut self.ops);
                counters.garbage = counters.garbage.saturating_sub(dropped);
                self.ops.push(BatchOp::put(meta_key(&id), meta.to_bytes()));
            }
        }
    }
}

impl Db {
    pub(super) async fn load(name: &str, store: LevelDb, ids: Arc<dyn IdSource>) -> Result<Db> {
        let mut writer = Writer::default();
        writer.reload(&store).await?;
        Ok(Db {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                meta: store.sublevel("m")?,
                bodies: store.sublevel("r")?,
                seqs: store.sublevel("s")?,
                locals: store.sublevel("l")?,
                atts: store.sublevel("a")?,
                store,
                writer: tokio::sync::Mutex::new(writer),
                deleted: AtomicBool::new(false),
                compacting: AtomicBool::new(false),
                ids,
            }),
        })
    }

    pub(super) async fn mark_deleted(&self) {
        // Taken under the writer lock: no write is half-way when the flag flips.
        let _w = self.inner.writer.lock().await;
        self.inner.deleted.store(true, Ordering::SeqCst);
    }

    fn check_live(&self) -> Result<()> {
        if self.inner.deleted.load(Ordering::SeqCst) {
            Err(CouchError::no_db())
        } else {
            Ok(())
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub async fn info(&self) -> Result<DbInfo> {
        self.check_live()?;
        // Read from the store, not from memory: another node may have written since.
        let c = parse_counters(self.inner.store.get(COUNTERS).await?.as_deref())?;
        Ok(DbInfo {
            name: self.inner.name.clone(),
            update_seq: c.update_seq,
            doc_count: c.doc_count,
            doc_del_count: c.doc_del_count,
            purge_seq: c.purge_seq,
            old_revisions: c.garbage,
            compact_running: self.inner.compacting.load(Ordering::SeqCst),
        })
    }

    pub async fn update_seq(&self) -> Result<u64> {
        Ok(self.info().await?.update_seq)
    }

    /// Wakes on every commit to this database (the store's watch on the counters key, which
    /// every commit writes), from the moment of the call.
    pub async fn watch(&self) -> Result<KeyStream> {
        self.check_live()?;
        Ok(self.inner.store.watch(COUNTERS).await?)
    }

    /// A document's metadata, taken out of the staging area (put it back with
    /// `staging.metas.insert`) or read.
    async fn take_meta(&self, staging: &mut Staging, id: &str) -> Result<Option<Meta>> {
        if let Some(m) = staging.metas.remove(id) {
            return Ok(Some(m));
        }
        if let Some(m) = staging.prefetched.remove(id) {
            return Ok(m);
        }
        match self.inner.store.get(meta_key(id)).await? {
            Some(raw) => Ok(Some(Meta::from_bytes(&raw)?)),
            None => Ok(None),
        }
    }

    async fn load_body(&self, staging: &Staging, id: &str, rev: &Rev) -> Result<Option<Value>> {
        if let Some(b) = staging.bodies.get(&(id.to_owned(), rev.clone())) {
            return Ok(Some(b.clone()));
        }
        match self.inner.store.get(body_key(id, rev)).await? {
            Some(raw) => Ok(Some(parse_json(&raw)?)),
            None => Ok(None),
        }
    }

    /// Writes documents. With `new_edits` each gets a new revision (a stale or missing `_rev`
    /// is a conflict); without, revisions are taken as given (`_revisions`), as replication
    /// writes them. All accepted documents are committed in one atomic batch.
    pub async fn bulk_docs(&self, docs: Vec<Value>, new_edits: bool) -> Result<Vec<WriteResult>> {
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
            let mut staging = Staging {
                prefetched: self.metas(&ids).await?,
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
            staging.finish(DEFAULT_REVS_LIMIT, &mut next);
            if staging.ops.is_empty() {
                return Ok(results);
            }
            if self.commit(&mut writer, next, staging.ops).await? {
                return Ok(results);
            }
            // Another node committed in between: start over from what it left.
        }
        Err(CouchError::unavailable(
            "the database is too busy: other nodes kept committing in between",
        ))
    }

    /// Commits `ops` with the counters `next`, guarded as every write of the database is:
    /// `false` when another node committed in between (the writer then holds what it left).
    async fn commit(
        &self,
        writer: &mut Writer,
        next: Counters,
        mut ops: Vec<BatchOp>,
    ) -> Result<bool> {
        let raw = Bytes::from(serde_json::to_vec(&next).unwrap_or_default());
        ops.push(BatchOp::put(COUNTERS, raw.clone()));
        let expected = writer.stored.clone();
        if self
            .inner
            .store
            .batch_if(COUNTERS, expected.as_deref(), ops)
            .await?
        {
            writer.counters = next;
            writer.stored = Some(raw);
            return Ok(true);
        }
        writer.reload(&self.inner.store).await?;
        Ok(false)
    }

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
                meta.drop_bodies(id, &removed, &mut ops);
                match old_winner {
                    Some((_, true)) => next.doc_del_count = next.doc_del_count.saturating_sub(1),
                    Some((_, false)) => next.doc_count = next.doc_count.saturating_sub(1),
                    None => {}
                }
                if meta.seq > 0 {
                    ops.push(BatchOp::del(seq_key(meta.seq)));
                }
                let Some((winner, deleted)) = meta.tree.winner() else {
                    // Nothing left: the document is gone without a trace.
                    let leftover: Vec<Rev> =
                        meta.atts.keys().filter_map(|r| Rev::parse(r)).collect();
                    meta.drop_bodies(id, &leftover, &mut ops);
                    ops.push(BatchOp::del(meta_key(id)));
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
                    seq_key(meta.seq),
                    meta.change_row(id, &winner, deleted),
                ));
                ops.push(BatchOp::put(meta_key(id), meta.to_bytes()));
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
                for (id, meta) in self.metas(&ids).await? {
                    let Some(mut meta) = meta else { continue };
                    let old = meta.old_bodies();
                    if old.is_empty() {
                        continue;
                    }
                    dropped += meta.drop_bodies(&id, &old, &mut ops);
                    ops.push(BatchOp::put(meta_key(&id), meta.to_bytes()));
                }
                if ops.is_empty() {
                    break;
                }
                let mut next = writer.counters;
                next.garbage = next.garbage.saturating_sub(dropped);
                if self.commit(&mut writer, next, ops).await? {
                    total += dropped;
                    break;
                }
            }
        }
    }

    /// One document into the staging area; nothing is staged unless it all succeeds.
    async fn stage(
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
    async fn stage_into(
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
            ops.push(BatchOp::put(body_key(&id, &new_leaf), json_bytes(&body)));
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
            ops.push(BatchOp::del(seq_key(meta.seq)));
        }
        meta.seq = counters.update_seq;
        let (winner, winner_deleted) = meta
            .tree
            .winner()
            .unwrap_or((new_leaf.clone(), inc.deleted));
        ops.push(BatchOp::put(
            seq_key(meta.seq),
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
    async fn resolve_attachments(
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
                    att_key(id, &digest),
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

    /// Many documents' metadata in one read.
    async fn metas(&self, ids: &[String]) -> Result<HashMap<String, Option<Meta>>> {
        self.check_live()?;
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| meta_sub(id)).collect();
        let raws = self.inner.meta.get_many(&keys).await?;
        ids.iter()
            .zip(raws)
            .map(|(id, raw)| Ok((id.clone(), raw.map(|r| Meta::from_bytes(&r)).transpose()?)))
            .collect()
    }

    /// Many revision bodies in one read.
    async fn bodies(&self, wanted: &[(String, Rev)]) -> Result<HashMap<(String, Rev), Value>> {
        let keys: Vec<Vec<u8>> = wanted.iter().map(|(id, rev)| body_sub(id, rev)).collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let raws = self.inner.bodies.get_many(&keys).await?;
        let mut out = HashMap::new();
        for (key, raw) in wanted.iter().zip(raws) {
            if let Some(raw) = raw {
                out.insert(key.clone(), parse_json(&raw)?);
            }
        }
        Ok(out)
    }

    async fn meta(&self, id: &str) -> Result<Option<Meta>> {
        self.check_live()?;
        match self.inner.meta.get(meta_sub(id)).await? {
            Some(raw) => Ok(Some(Meta::from_bytes(&raw)?)),
            None => Ok(None),
        }
    }

    async fn body(&self, id: &str, rev: &Rev) -> Result<Option<Value>> {
        match self.inner.bodies.get(body_sub(id, rev)).await? {
            Some(raw) => Ok(Some(parse_json(&raw)?)),
            None => Ok(None),
        }
    }

    /// The document as a client reads it.
    async fn render(
        &self,
        id: &str,
        rev: &Rev,
        meta: &Meta,
        body: Value,
        opts: &DocOptions,
    ) -> Result<Value> {
        let deleted = meta.tree.is_deleted(rev).unwrap_or(false);
        let mut out = Map::new();
        out.insert("_id".into(), Value::String(id.to_owned()));
        out.insert("_rev".into(), Value::String(rev.to_string()));
        let Value::Object(mut body) = body else {
            return Err(CouchError::internal("corrupt body"));
        };
        let atts = body.remove("_attachments");
        out.extend(body);
        if deleted {
            out.insert("_deleted".into(), Value::Bool(true));
        }
        if let Some(Value::Object(atts)) = atts {
            let since_pos = opts
                .atts_since
                .iter()
                .filter(|r| meta.tree.contains(r))
                .map(|r| r.pos)
                .max();
            let mut rendered = Map::new();
            for (name, mut att) in atts {
                let revpos = att.get("revpos").and_then(Value::as_u64).unwrap_or(0);
                let inline = opts.attachments || since_pos.is_some_and(|p| revpos > p);
                if inline {
                    let digest = att
                        .get("digest")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let data = self
                        .inner
                        .atts
                        .get(att_sub(id, digest))
                        .await?
                        .ok_or_else(|| CouchError::internal(format!("attachment {name} lost")))?;
                    if let Value::Object(a) = &mut att {
                        // CouchDB's inline form: content_type, revpos, digest, data.
                        a.remove("stub");
                        a.remove("length");
                        a.insert("data".into(), Value::String(B64.encode(&data)));
                    }
                }
                rendered.insert(name, att);
            }
            out.insert("_attachments".into(), Value::Object(rendered));
        }
        if self.inner.name == "_users" && !opts.with_password_hash {
            for k in ["derived_key", "salt"] {
                out.remove(k);
            }
        }
        if opts.revs {
            out.insert(
                "_revisions".into(),
                serde_json::to_value(meta.tree.revisions(rev)).unwrap_or(Value::Null),
            );
        }
        if opts.revs_info {
            let mut info = Vec::new();
            for r in meta.tree.path_to(rev) {
                let status = if meta.tree.is_deleted(&r) == Some(true) {
                    "deleted"
                } else if meta.has_body(&r) {
                    "available"
                } else {
                    "missing"
                };
                info.push(json!({"rev": r.to_string(), "status": status}));
            }
            out.insert("_revs_info".into(), Value::Array(info));
        }
        if opts.conflicts {
            let c = meta.tree.conflicts();
            if !c.is_empty() {
                out.insert(
                    "_conflicts".into(),
                    json!(c.iter().map(Rev::to_string).collect::<Vec<_>>()),
                );
            }
        }
        if opts.deleted_conflicts {
            let c = meta.tree.deleted_conflicts();
            if !c.is_empty() {
                out.insert(
                    "_deleted_conflicts".into(),
                    json!(c.iter().map(Rev::to_string).collect::<Vec<_>>()),
                );
            }
        }
        Ok(Value::Object(out))
    }

    /// `GET /db/doc`: the winner, or the revision asked for.
    pub async fn get(&self, id: &str, opts: &DocOptions) -> Result<Value> {
        let meta = self.meta(id).await?.ok_or_else(CouchError::missing)?;
        let rev = match &opts.rev {
            Some(r) => {
                if !meta.tree.contains(r) {
                    return Err(CouchError::missing());
                }
                if opts.latest && !meta.tree.is_leaf(r) {
                    // The best leaf that descends from it, by CouchDB's winning rule.
                    meta.tree
                        .leaves_under(r)
                        .into_iter()
                        .map(|l| (meta.tree.is_deleted(&l) == Some(false), l))
                        .max_by(|(la, a), (lb, b)| (la, a.pos, &a.hash).cmp(&(lb, b.pos, &b.hash)))
                        .map(|(_, l)| l)
                        .unwrap_or_else(|| r.clone())
                } else {
                    r.clone()
                }
            }
            None => {
                let (w, deleted) = meta.tree.winner().ok_or_else(CouchError::missing)?;
                if deleted {
                    return Err(CouchError::deleted());
                }
                w
            }
        };
        let body = self.body(id, &rev).await?.ok_or_else(CouchError::missing)?;
        self.render(id, &rev, &meta, body, opts).await
    }

    /// `open_revs`: for each revision, `{"ok": doc}` or `{"missing": rev}`.
    pub async fn open_revs(
        &self,
        id: &str,
        which: &OpenRevs,
        opts: &DocOptions,
    ) -> Result<Vec<Value>> {
        let meta = self.meta(id).await?;
        let Some(meta) = meta else {
            return match which {
                OpenRevs::All => Err(CouchError::missing()),
                OpenRevs::Some(revs) => Ok(revs
                    .iter()
                    .map(|r| json!({"missing": r.to_string()}))
                    .collect()),
            };
        };
        let wanted: Vec<Rev> = match which {
            OpenRevs::All => meta.tree.leaves().into_iter().map(|(r, _)| r).collect(),
            OpenRevs::Some(revs) => revs.clone(),
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for rev in wanted {
            let revs = if opts.latest && meta.tree.contains(&rev) && !meta.tree.is_leaf(&rev) {
                meta.tree.leaves_under(&rev)
            } else {
                vec![rev.clone()]
            };
            for r in revs {
                if !seen.insert(r.clone()) {
                    continue;
                }
                match self.body(id, &r).await? {
                    Some(body) if meta.tree.contains(&r) => {
                        out.push(json!({"ok": self.render(id, &r, &meta, body, opts).await?}));
                    }
                    _ => out.push(json!({"missing": r.to_string()})),
                }
            }
        }
        Ok(out)
    }

    /// `_bulk_get`: one result per requested document, errors inline. All metadata is read in
    /// one go, then all bodies in one go.
    pub async fn bulk_get(&self, items: &[BulkGetItem], opts: &DocOptions) -> Result<Vec<Value>> {
        enum Want {
            Rev(Rev),
            Missing(String),
            Error(CouchError),
        }
        let ids: Vec<String> = items
            .iter()
            .map(|i| i.id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let metas = self.metas(&ids).await?;
        let mut plans = Vec::with_capacity(items.len());
        let mut wanted = Vec::new();
        for item in items {
            let meta = metas.get(&item.id).and_then(Option::as_ref);
            let mut plan = Vec::new();
            match (&item.rev, meta) {
                (Some(rev), None) => plan.push(Want::Missing(rev.to_string())),
                (Some(rev), Some(meta)) => {
                    let revs = if opts.latest && meta.tree.contains(rev) && !meta.tree.is_leaf(rev)
                    {
                        meta.tree.leaves_under(rev)
                    } else {
                        vec![rev.clone()]
                    };
                    for r in revs {
                        if meta.tree.contains(&r) {
                            wanted.push((item.id.clone(), r.clone()));
                            plan.push(Want::Rev(r));
                        } else {
                            plan.push(Want::Missing(r.to_string()));
                        }
                    }
                }
                (None, None) => plan.push(Want::Error(CouchError::missing())),
                (None, Some(meta)) => match meta.tree.winner() {
                    Some((w, false)) => {
                        wanted.push((item.id.clone(), w.clone()));
                        plan.push(Want::Rev(w));
                    }
                    Some((_, true)) => plan.push(Want::Error(CouchError::deleted())),
                    None => plan.push(Want::Error(CouchError::missing())),
                },
            }
            plans.push(plan);
        }
        let bodies = self.bodies(&wanted).await?;
        let mut results = Vec::with_capacity(items.len());
        for (item, plan) in items.iter().zip(plans) {
            let mut o = opts.clone();
            o.atts_since = item.atts_since.clone();
            let mut docs = Vec::new();
            for want in plan {
                let missing = |rev: Value| json!({"error": {"id": item.id, "rev": rev, "error": "not_found", "reason": "missing"}});
                match want {
                    Want::Rev(r) => match (bodies.get(&(item.id.clone(), r.clone())), metas.get(&item.id)) {
                        (Some(body), Some(Some(meta))) => {
                            let doc = self.render(&item.id, &r, meta, body.clone(), &o).await?;
                            docs.push(json!({"ok": doc}));
                        }
                        _ => docs.push(missing(json!(r.to_string()))),
                    },
                    Want::Missing(r) => docs.push(missing(json!(r))),
                    Want::Error(e) => docs.push(json!({"error": {"id": item.id, "rev": Value::Null, "error": e.error, "reason": e.reason}})),
                }
            }
            results.push(json!({"id": item.id, "docs": docs}));
        }
        Ok(results)
    }

    /// `_revs_diff`: per document, the revisions this database lacks.
    pub async fn revs_diff(&self, req: &Map<String, Value>) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        let ids: Vec<String> = req.keys().cloned().collect();
        let metas = self.metas(&ids).await?;
        for (id, revs) in req {
            let Some(list) = revs.as_array() else {
                return Err(CouchError::bad_request("_revs_diff takes {id: [revs]}"));
            };
            let strings: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            let meta = metas.get(id).cloned().flatten().unwrap_or_default();
            let parsed: Vec<Rev> = strings.iter().filter_map(|s| Rev::parse(s)).collect();
            let (missing, ancestors) = meta.tree.revs_diff(&parsed);
            // A revision id we cannot even parse is one we do not have.
            let mut missing: Vec<String> = missing.iter().map(Rev::to_string).collect();
            missing.extend(
                strings
                    .iter()
                    .filter(|s| Rev::parse(s).is_none())
                    .map(|s| s.to_string()),
            );
            if missing.is_empty() {
                continue;
            }
            let mut entry = Map::new();
            entry.insert("missing".into(), json!(missing));
            if !ancestors.is_empty() {
                entry.insert(
                    "possible_ancestors".into(),
                    json!(ancestors.iter().map(Rev::to_string).collect::<Vec<_>>()),
                );
            }
            out.insert(id.clone(), Value::Object(entry));
        }
        Ok(out)
    }

    /// `_all_docs`: live documents in id order (byte order), or the ones named by `keys`.
    /// `total_rows` of `_all_docs`: the live documents.
    pub async fn total_rows(&self) -> Result<u64> {
        Ok(self.info().await?.doc_count)
    }

    /// One page of `_all_docs` from `at`: at most `max_rows` rows after skipping `skip` (what
    /// is left of the request's `skip`), examining at most [`ALL_DOCS_PAGE`] documents, so a
    /// page costs a bounded amount whatever the request asks. The caller streams the pages and
    /// counts `skip` and `limit` down with what each page reports.
    pub async fn all_docs_page(
        &self,
        opts: &AllDocsOptions,
        at: &AllDocsCursor,
        skip: usize,
        max_rows: usize,
    ) -> Result<AllDocsPage> {
        self.check_live()?;
        let doc_opts = DocOptions {
            conflicts: opts.conflicts,
            attachments: opts.attachments,
            ..DocOptions::default()
        };
        let mut page = AllDocsPage {
            rows: Vec::new(),
            skipped: 0,
            next: None,
        };
        if let Some(keys) = &opts.keys {
            let from = match at {
                AllDocsCursor::KeyIndex(i) => *i,
                _ => 0,
            };
            let upto = keys.len().min(from.saturating_add(ALL_DOCS_PAGE));
            let Some(chunk) = keys.get(from..upto) else {
                return Ok(page);
            };
            let metas = self.metas(chunk).await?;
            for (i, key) in chunk.iter().enumerate() {
                if page.rows.len() >= max_rows {
                    page.next = Some(AllDocsCursor::KeyIndex(from + i));
                    return Ok(page);
                }
                let row = match metas.get(key).and_then(Option::as_ref) {
                    None => json!({"key": key, "error": "not_found"}),
                    Some(meta) => {
                        let Some((rev, deleted)) = meta.tree.winner() else {
                            continue;
                        };
                        let mut row =
                            json!({"id": key, "key": key, "value": {"rev": rev.to_string()}});
                        if deleted {
                            row["value"]["deleted"] = Value::Bool(true);
                            if opts.include_docs {
                                row["doc"] = Value::Null;
                            }
                        } else if opts.include_docs {
                            if let Some(body) = self.body(key, &rev).await? {
                                row["doc"] = self.render(key, &rev, meta, body, &doc_opts).await?;
                            }
                        }
                        row
                    }
                };
                if page.skipped < skip {
                    page.skipped += 1;
                    continue;
                }
                page.rows.push(row);
            }
            if upto < keys.len() {
                page.next = Some(AllDocsCursor::KeyIndex(upto));
            }
            return Ok(page);
        }
        let mut range = RangeOptions {
            reverse: opts.descending,
            ..RangeOptions::default()
        };
        // startkey/endkey follow the direction of iteration.
        let (low, high) = if opts.descending {
            (opts.end.clone(), opts.start.clone())
        } else {
            (opts.start.clone(), opts.end.clone())
        };
        let end_inclusive = opts.inclusive_end;
        if let Some(l) = low {
            if opts.descending && !end_inclusive {
                range.gt = Some(doc_key(&l));
            } else {
                range.gte = Some(doc_key(&l));
            }
        }
        if let Some(h) = high {
            if !opts.descending && !end_inclusive {
                range.lt = Some(doc_key(&h));
            } else {
                range.lte = Some(doc_key(&h));
            }
        }
        // Resume where the previous page stopped (the tighter bound holds).
        if let AllDocsCursor::Before(k) = at {
            if opts.descending {
                range.lte = Some(k.clone());
            } else {
                range.gte = Some(k.clone());
            }
        }
        let mut it = self.inner.meta.iterator(range)?;
        let mut examined = 0;
        while let Some((k, raw)) = it.next().await? {
            if page.rows.len() >= max_rows || examined >= ALL_DOCS_PAGE {
                // This key is the next page's first: resume just before it.
                page.next = Some(AllDocsCursor::Before(k));
                return Ok(page);
            }
            examined += 1;
            let meta = Meta::from_bytes(&raw)?;
            let id = meta.id(&k);
            let Some((rev, false)) = meta.tree.winner() else {
                continue;
            };
            if page.skipped < skip {
                page.skipped += 1;
                continue;
            }
            let mut row = json!({"id": id, "key": id, "value": {"rev": rev.to_string()}});
            if opts.include_docs {
                if let Some(body) = self.body(&id, &rev).await? {
                    row["doc"] = self.render(&id, &rev, &meta, body, &doc_opts).await?;
                }
            }
            page.rows.push(row);
        }
        Ok(page)
    }

    /// One page of `_changes`.
    pub async fn changes(&self, opts: &ChangesOptions) -> Result<ChangesPage> {
        self.check_live()?;
        let update_seq = self.update_seq().await?;
        let mut range = RangeOptions {
            reverse: opts.descending,
            ..RangeOptions::default()
        };
        if opts.since > 0 {
            range.gt = Some(opts.since.to_be_bytes().to_vec());
        }
        if let Some(before) = opts.before {
            range.lt = Some(before.to_be_bytes().to_vec());
        }
        let mut it = self.inner.seqs.iterator(range)?;
        let mut results = Vec::new();
        let mut last_seq = opts.since;
        let doc_opts = DocOptions {
            conflicts: opts.conflicts,
            attachments: opts.attachments,
            ..DocOptions::default()
        };
        while let Some((k, raw)) = it.next().await? {
            if opts.limit.is_some_and(|l| results.len() >= l) {
                break;
            }
            let seq = u64::from_be_bytes(
                k.as_slice()
                    .try_into()
                    .map_err(|_| CouchError::internal("corrupt sequence key"))?,
            );
            last_seq = seq;
            let row: Value = parse_json(&raw)?;
            let id = row["id"].as_str().unwrap_or_default().to_owned();
            if opts.doc_ids.as_ref().is_some_and(|ids| !ids.contains(&id)) {
                continue;
            }
            let winner = row["rev"].as_str().unwrap_or_default().to_owned();
            let mut changes = vec![json!({"rev": winner})];
            if opts.all_docs {
                // CouchDB's order: the winner, then the other leaves newest first.
                let mut others: Vec<Rev> = row["leaves"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l[0].as_str())
                    .filter(|r| *r != winner)
                    .filter_map(Rev::parse)
                    .collect();
                others.sort_by(|a, b| b.cmp(a));
                changes.extend(others.iter().map(|r| json!({"rev": r.to_string()})));
            }
            let mut out = json!({"seq": seq, "id": id, "changes": changes});
            let deleted = row["deleted"].as_bool().unwrap_or(false);
            if deleted {
                out["deleted"] = Value::Bool(true);
            }
            if opts.include_docs {
                let rev = Rev::parse(&winner)
                    .ok_or_else(|| CouchError::internal("corrupt change row"))?;
                out["doc"] = match (self.meta(&id).await?, self.body(&id, &rev).await?) {
                    (Some(meta), Some(body)) => {
                        self.render(&id, &rev, &meta, body, &doc_opts).await?
                    }
                    _ => Value::Null,
                };
            }
            results.push(out);
        }
        let pending = if opts.descending {
            0
        } else {
            update_seq.saturating_sub(last_seq)
        };
        Ok(ChangesPage {
            results,
            last_seq,
            pending,
        })
    }

    // ---- attachments ----

    pub async fn get_attachment(
        &self,
        id: &str,
        name: &str,
        rev: Option<&Rev>,
    ) -> Result<AttachmentData> {
        let meta = self.meta(id).await?.ok_or_else(CouchError::missing)?;
        let rev = match rev {
            Some(r) => r.clone(),
            None => match meta.tree.winner() {
                Some((w, false)) => w,
                _ => return Err(CouchError::missing()),
            },
        };
        let body = self.body(id, &rev).await?.ok_or_else(CouchError::missing)?;
        let att = body
            .get("_attachments")
            .and_then(|a| a.get(name))
            .ok_or_else(|| CouchError::not_found("Document is missing attachment"))?;
        let digest = att["digest"].as_str().unwrap_or_default().to_owned();
        let data = self
            .inner
            .atts
            .get(att_sub(id, &digest))
            .await?
            .ok_or_else(|| CouchError::internal("attachment data lost"))?;
        Ok(AttachmentData {
            content_type: att["content_type"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_owned(),
            digest,
            data,
        })
    }

    /// Adds or replaces one attachment (`data: Some`) or removes it (`None`), as a new revision.
    pub async fn update_attachment(
        &self,
        id: &str,
        name: &str,
        rev: Option<Rev>,
        data: Option<(String, Bytes)>,
    ) -> Result<WriteResult> {
        check_doc_id(id)?;
        check_attachment_name(name)?;
        let mut doc = match &rev {
            Some(r) => {
                let meta = self.meta(id).await?.ok_or_else(CouchError::conflict)?;
                if !meta.tree.is_leaf(r) {
                    return Err(CouchError::conflict());
                }
                let body = self.body(id, r).await?.ok_or_else(CouchError::conflict)?;
                let mut doc = self
                    .render(id, r, &meta, body, &DocOptions::default())
                    .await?;
                doc.as_object_mut().map(|m| m.remove("_deleted"));
                doc
            }
            None => {
                if data.is_none() {
                    return Err(CouchError::conflict());
                }
                json!({"_id": id})
            }
        };
        let atts = doc
            .as_object_mut()
            .ok_or_else(|| CouchError::internal("corrupt body"))?
            .entry("_attachments")
            .or_insert_with(|| json!({}));
        match data {
            Some((content_type, bytes)) => {
                atts[name] = json!({"content_type": content_type, "data": B64.encode(&bytes)});
            }
            None => {
                if atts.as_object_mut().and_then(|a| a.remove(name)).is_none() {
                    return Err(CouchError::not_found("Document is missing attachment"));
                }
            }
        }
        let mut res = self.bulk_docs(vec![doc], true).await?;
        match res.pop() {
            Some(WriteResult::Err { error, .. }) => Err(error),
            Some(ok) => Ok(ok),
            None => Err(CouchError::internal("no result")),
        }
    }

    // ---- _security ----

    /// The database's `_security` (empty when never set: server admins only).
    pub async fn security(&self) -> Result<super::Security> {
        self.check_live()?;
        match self.inner.store.get(SECURITY).await? {
            Some(raw) => super::Security::from_json(&parse_json(&raw)?),
            None => Ok(super::Security::default()),
        }
    }

    pub async fn put_security(&self, sec: &super::Security) -> Result<()> {
        self.check_live()?;
        self.inner
            .store
            .put(SECURITY, json_bytes(&sec.to_json()))
            .await?;
        Ok(())
    }

    // ---- _local documents ----

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
        let key = local_key(id);
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
            if self
                .inner
                .store
                .batch_if(&key, before.as_deref(), staging.ops)
                .await?
            {
                return Ok(rev);
            }
        }
        Err(CouchError::unavailable(
            "the document is too busy: other nodes kept writing it in between",
        ))
    }

    async fn put_local_in(
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
            staging.ops.push(BatchOp::del(local_key(id)));
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
            .push(BatchOp::put(local_key(id), json_bytes(&stored)));
        Ok(new_rev)
    }
}

impl Incoming {
    fn rev(&self) -> Result<Option<Rev>> {
        match &self.rev_raw {
            Some(s) => Rev::parse(s)
                .map(Some)
                .ok_or_else(|| CouchError::bad_request("Invalid rev format")),
            None => Ok(None),
        }
    }
}

/// The attachment digests a stored body refers to.
fn digests_of(body: &Value) -> Vec<String> {
    body.get("_attachments")
        .and_then(Value::as_object)
        .map(|a| {
            a.values()
                .filter_map(|v| v.get("digest").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
