//! One database: its writer lock and counters, and the handle every operation goes through.
//! The operations are in rooms of their own, one `impl Db` each: `write` (the write path),
//! `read` (documents), `query` (`_all_docs`, `_changes`), `attachments`, `local`,
//! `maintenance` (compaction, purge); `keys` holds the key layout, `meta` a document's
//! metadata, `incoming` the checks on what clients send.

mod attachments;
mod find;
mod incoming;
mod keys;
mod local;
mod maintenance;
mod meta;
mod query;
mod read;
mod validate;
mod view_offsets;
mod views;
mod write;

use attachments::*;
pub use find::{FindPage, FIND_PAGE, MAX_DESIGN_DOCS};
use incoming::*;
pub use incoming::{check_attachment_name, check_doc_id, check_document, validate_document};
pub use keys::MAX_DOC_ID_BYTES;
use keys::*;
use meta::Meta;
pub use validate::WriteCtx;
pub use views::{ViewCursor, ViewInfo};
use write::Staging;

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
use super::{is_design_doc, DEFAULT_REVS_LIMIT};
use crate::clock::IdSource;
use crate::level::{BatchOp, KeyStream, LevelDb, RangeOptions};

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
    /// How many commits changed a design document: what a cached list of them is checked
    /// against (a commit guarded by the counters sees exactly the design documents it must
    /// validate with, whichever node wrote them).
    #[serde(default)]
    design_seq: u64,
    /// Bytes of the bodies kept (every revision until compaction) and of the attachments
    /// stored: the database's `sizes`.
    #[serde(default)]
    bytes: u64,
}

impl Counters {
    fn grow(&mut self, delta: i128) {
        let next = i128::from(self.bytes).saturating_add(delta);
        self.bytes = u64::try_from(next.max(0)).unwrap_or(u64::MAX);
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
    /// `filter=_selector`, `filter=ddoc/name`, `filter=_view`: only changes whose winning
    /// revision passes.
    pub filter: Option<Arc<dyn crate::couch::views::ChangeFilter>>,
}

/// The most change rows one page examines when a filter may leave most of them out: a page
/// costs a bounded amount, and says there is [`ChangesPage::more`] to read.
pub const CHANGES_EXAMINE: usize = 1_000;

#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    pub results: Vec<Value>,
    /// The last sequence examined (the next `since`).
    pub last_seq: u64,
    /// At most this many changes remain after `last_seq`.
    pub pending: u64,
    /// The page stopped at [`CHANGES_EXAMINE`] rows examined, not at the end of the feed.
    pub more: bool,
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
    /// Bytes of the kept bodies and stored attachments.
    pub bytes: u64,
    pub compact_running: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentData {
    pub content_type: String,
    pub digest: String,
    pub data: Bytes,
}

/// A database's design documents, id and winning body, in id order.
pub type DesignDocs = Arc<Vec<(String, Value)>>;

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
    /// Mango's json indexes, a sublevel each (see `find`).
    indexes: LevelDb,
    /// One index update at a time in this process (others wait, then find it current).
    index_lock: tokio::sync::Mutex<()>,
    /// Design documents this process wrote (the index list is read again after one).
    design_writes: std::sync::atomic::AtomicU64,
    /// The json indexes as last read, with the `design_writes` they were read at.
    indexes_seen: std::sync::Mutex<Option<(u64, Arc<Vec<crate::couch::mango::IndexDef>>)>>,
    /// JavaScript views, a sublevel per design document's signature (see `views`).
    views: LevelDb,
    /// Where `offset` counting may start in each view (see `view_offsets`).
    offsets: view_offsets::OffsetCache,
    /// The design documents as last read, with the counters' `design_seq` they were read at.
    design_seen: std::sync::Mutex<Option<(u64, DesignDocs)>>,
    /// The host's JavaScript engine (views, filters, `validate_doc_update`).
    js: crate::couch::js::Engine,
    /// The sublevels' keys as `store` sees them, for batches.
    keys: KeyLayout,
    /// Serializes this process's writers; other nodes are kept out by the guard on the
    /// counters key (see [`Writer`]).
    writer: tokio::sync::Mutex<Writer>,
    deleted: AtomicBool,
    /// A compaction is under way.
    compacting: AtomicBool,
    ids: Arc<dyn IdSource>,
    /// Told of every commit (`_db_updates`).
    updates: Arc<super::updates::DbUpdates>,
}

impl Db {
    pub(super) async fn load(
        name: &str,
        store: LevelDb,
        ids: Arc<dyn IdSource>,
        updates: Arc<super::updates::DbUpdates>,
        js: crate::couch::js::Engine,
    ) -> Result<Db> {
        let mut writer = Writer::default();
        writer.reload(&store).await?;
        let (meta, bodies, seqs, atts, locals) = (
            store.sublevel("m")?,
            store.sublevel("r")?,
            store.sublevel("s")?,
            store.sublevel("a")?,
            store.sublevel("l")?,
        );
        let keys = KeyLayout::new(&store, [&meta, &bodies, &seqs, &atts, &locals])?;
        let indexes = store.sublevel("x")?;
        let views = store.sublevel("v")?;
        Ok(Db {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                meta,
                bodies,
                seqs,
                locals,
                atts,
                indexes,
                index_lock: tokio::sync::Mutex::new(()),
                design_writes: std::sync::atomic::AtomicU64::new(0),
                indexes_seen: std::sync::Mutex::new(None),
                views,
                design_seen: std::sync::Mutex::new(None),
                offsets: view_offsets::OffsetCache::default(),
                js,
                keys,
                store,
                writer: tokio::sync::Mutex::new(writer),
                deleted: AtomicBool::new(false),
                compacting: AtomicBool::new(false),
                ids,
                updates,
            }),
        })
    }

    /// Whether a handle other than this one is alive (a request or feed is using the database).
    pub(super) fn in_use(&self) -> bool {
        Arc::strong_count(&self.inner) > 1
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
            bytes: c.bytes,
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
            self.inner.updates.touch(&self.inner.name);
            return Ok(true);
        }
        writer.reload(&self.inner.store).await?;
        Ok(false)
    }

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
}
