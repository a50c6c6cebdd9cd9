//! couchkv's storage layer: the [`Store`] trait, its backends and the shared conformance suite.
//!
//! # Layout
//! - [`Store`] (this file): the contract every backend implements, with the types it speaks.
//! - [`memory`]: an in-process backend, the reference for the contract (not durable).
//! - `redb_store` (feature `redb`): the embedded durable default, one redb file, fsync on commit.
//! - `cloudflare` (feature `cloudflare`): Cloudflare's Workers KV over its REST API.
//! - `postgres` (feature `postgres`): PostgreSQL, for several couchkv nodes on one store.
//! - [`prefix`]: a wrapper that confines any store to a key prefix inside each namespace.
//! - [`plain`]: a wrapper that hides every native capability (a plain Workers KV namespace).
//! - [`faulty`]: a wrapper that fails writes on demand, for crash tests.
//! - [`range`]: byte-order range arithmetic shared by the backends.
//! - [`paging`]: listing a plain Workers KV namespace by its cursors, for the backends that speak
//!   to Workers KV.
//! - [`watch`]: the in-process change hub the local backends publish to.
//! - `conformance` (feature `conformance`): one async fn per behaviour, `run_all` runs them.
//!
//! The trait and the memory backend are kept edge-ready: no threads, timers, clocks or I/O, so they
//! compile for `wasm32-unknown-unknown`. Time enters only as arguments (`now` in
//! [`Store::sweep_expired`]); expiry is enforced by the caller (couchkv's kv layer), which knows
//! the clock.

use std::ops::Bound;

use bytes::Bytes;

pub mod faulty;
pub mod memory;
pub mod paging;
pub mod plain;
pub mod prefix;
pub mod range;
pub mod sql;
pub mod watch;

#[cfg(feature = "redb")]
mod hot_cache;
#[cfg(feature = "redb")]
pub mod redb_store;

#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(feature = "conformance")]
pub mod conformance;

#[cfg(feature = "cloudflare")]
pub use cloudflare::{CloudflareConfig, CloudflareStore};
pub use faulty::FailingStore;
pub use memory::MemoryStore;
pub use plain::PlainKvStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresStore};
pub use prefix::PrefixStore;
#[cfg(feature = "redb")]
pub use redb_store::RedbStore;
pub use sql::{SqlExec, SqlStore, SqlValue};

/// Everything a store operation can fail with. Backends map their own errors into it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The namespace id names no namespace.
    #[error("namespace not found: {0}")]
    NamespaceNotFound(String),
    /// A namespace with this title exists already (titles are unique, as in Workers KV).
    #[error("a namespace with the title {0:?} already exists")]
    NamespaceExists(String),
    /// A namespace with this id exists already.
    #[error("a namespace with the id {0:?} already exists")]
    NamespaceIdTaken(String),
    /// A precondition of a batch did not hold; nothing of the batch was applied.
    #[error("precondition failed on key {key:?}")]
    Conflict { key: String },
    /// The store was closed; no operation runs after [`Store::close`].
    #[error("the store is closed")]
    Closed,
    /// The backend cannot do this (see [`Capabilities`]).
    #[error("not supported by this store: {0}")]
    NotSupported(&'static str),
    /// A watcher fell too far behind and missed events; it must re-read and watch again.
    #[error("watch lagged behind and missed {0} events")]
    WatchLagged(u64),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The key is longer than this store holds ([`Capabilities::max_key_bytes`]).
    #[error("UTF-8 encoded length of {len} exceeds key length limit of {limit}.")]
    KeyTooLong { len: usize, limit: usize },
    /// Any other failure of the backend (I/O, the engine, the network).
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether a store handle is still open: its operations check it first, [`Store::close`] ends
/// it. One flag for every backend.
#[derive(Debug, Default)]
pub struct OpenState(std::sync::atomic::AtomicBool);

impl OpenState {
    /// [`StoreError::Closed`] once the store was closed.
    pub fn check(&self) -> Result<()> {
        if self.0.load(std::sync::atomic::Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    pub fn close(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// A namespace: an independent key space, as a Workers KV namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub id: String,
    pub title: String,
}

/// A stored value with what travels beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: Bytes,
    /// Serialized JSON, validated by the caller; the store keeps it as text.
    pub metadata: Option<String>,
    /// Absolute expiry, seconds since the Unix epoch. The store keeps it; the caller enforces it.
    pub expiration: Option<u64>,
    /// The version of the batch that last wrote the key (see [`Store::batch`]).
    pub version: u64,
}

/// One key of a [`ListPage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub metadata: Option<String>,
    pub expiration: Option<u64>,
    pub version: u64,
    /// Present exactly when [`ListOptions::values`] was set.
    pub value: Option<Bytes>,
}

/// What [`Store::list`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    /// True when keys beyond this page exist in the requested range.
    pub more: bool,
}

/// The range and shape of a [`Store::list`].
///
/// The keys listed are those that start with `prefix` and lie within `start` and `end`
/// (both in byte order, whatever the direction), in ascending byte order or, with `reverse`,
/// descending. A cursor "start after K" is `start: Excluded(K)` forward, `end: Excluded(K)` reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOptions {
    pub prefix: String,
    pub start: Bound<String>,
    pub end: Bound<String>,
    pub reverse: bool,
    /// At least 1. The store returns at most this many entries.
    pub limit: usize,
    /// Return each entry's value too.
    pub values: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            reverse: false,
            limit: 1000,
            values: false,
        }
    }
}

/// One write of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Bytes,
        metadata: Option<String>,
        expiration: Option<u64>,
    },
    Delete {
        key: String,
    },
    /// A delete carried out because the key expired: watchers see [`EventKind::Expire`].
    Expire {
        key: String,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } | Op::Expire { key } => key,
        }
    }

    /// What watchers see when this write is applied by the batch with `version`.
    pub fn event(&self, version: u64) -> Event {
        let kind = match self {
            Op::Put {
                metadata,
                expiration,
                ..
            } => EventKind::Put {
                metadata: metadata.clone(),
                expiration: *expiration,
            },
            Op::Delete { .. } => EventKind::Delete,
            Op::Expire { .. } => EventKind::Expire,
        };
        Event {
            key: self.key().to_owned(),
            version,
            kind,
        }
    }
}

/// What a key must look like for a batch to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The key is not stored (an expired but unswept key is still stored: compare its version).
    Absent,
    /// The key is stored with this version.
    Version(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    pub key: String,
    pub expect: Expect,
}

impl Precondition {
    /// Whether it holds for the key's current version (`None`: the key is absent); a
    /// [`StoreError::Conflict`] naming the key when not.
    pub fn check(&self, current: Option<u64>) -> Result<()> {
        let holds = match self.expect {
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        };
        if holds {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                key: self.key.clone(),
            })
        }
    }
}

/// Writes applied together: all of them or none (on a store whose capabilities say
/// `atomic_batch`). Preconditions are checked first, against the state before the batch.
/// How soon a batch must be on disk when [`Store::batch`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// On disk before the call returns (on a store that is durable at all).
    #[default]
    Immediate,
    /// May be lost in a crash shortly after (a store makes it durable with its next immediate
    /// batch, or soon on its own), never half-applied: for what a client redoes anyway, as
    /// replication checkpoints. Stores that cannot tell the two apart treat it as immediate.
    Relaxed,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    pub ops: Vec<Op>,
    pub preconditions: Vec<Precondition>,
    pub durability: Durability,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a put of `value` under `key` (no metadata, no expiration).
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
            metadata: None,
            expiration: None,
        });
        self
    }
    /// Adds a delete of `key`.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
    /// Adds a precondition on `key`, checked before any write of the batch.
    /// The batch's last write to each key, in batch order: all a store without atomic batches
    /// needs to send (the earlier writes to a key are overwritten anyway).
    pub fn last_writes(&self) -> Vec<&Op> {
        let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            last.insert(op.key(), i);
        }
        (self.ops.iter().enumerate())
            .filter(|(i, op)| last.get(op.key()) == Some(i))
            .map(|(_, op)| op)
            .collect()
    }

    pub fn expect(mut self, key: impl Into<String>, expect: Expect) -> Self {
        self.preconditions.push(Precondition {
            key: key.into(),
            expect,
        });
        self
    }
}

/// A change to one key, as watchers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: String,
    /// The version of the batch that made the change; watchers see versions in commit order.
    pub version: u64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Put {
        metadata: Option<String>,
        expiration: Option<u64>,
    },
    Delete,
    Expire,
}

/// How a backend delivers change events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// Within this process, before the write is acknowledged.
    InProcess,
    /// Across every node sharing the store.
    CrossNode,
    /// By polling the store; late and coalesced.
    Polling,
}

/// What a backend does natively. Layers above emulate what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `start`/`end` bounds and `reverse` in [`Store::list`]. Without it a backend lists only
    /// forward by prefix, and `start` may only be `Excluded` (a cursor) or `Unbounded`.
    pub ranges: bool,
    /// [`Store::batch`] applies all of its writes or none, even across a crash.
    pub atomic_batch: bool,
    /// [`Store::batch`] honours preconditions (compare-and-set).
    pub preconditions: bool,
    /// [`ListOptions::values`] is honoured; without it a store may refuse it (`NotSupported`).
    pub list_values: bool,
    /// How [`Store::watch`] learns of changes (and so how late and how complete they are).
    pub watch: WatchKind,
    /// An acknowledged write survives a crash of the process.
    pub durable: bool,
    /// Records carry the version of the batch that wrote them. Without it they carry 0 (batches
    /// still return increasing versions, which their watch events carry).
    pub versions: bool,
    /// The backend removes expired records itself and refuses expirations less than 60 s
    /// ahead (Workers KV); [`Store::sweep_expired`] does nothing there.
    pub native_expiry: bool,
    /// The longest key (UTF-8 bytes) the store holds: Workers KV's 512, less where a backend
    /// adds a prefix of its own (namespaces inside one Worker binding).
    pub max_key_bytes: usize,
    /// Writes to different namespaces never wait on each other (no lock, row or writer in
    /// common) and a namespace costs little (a row), so a layer above may give each of its
    /// databases a namespace of its own (couch does).
    pub independent_namespaces: bool,
}

impl Capabilities {
    /// An ordered, transactional store: ranges, atomic conditional batches, values in lists,
    /// versions, watched in process, not durable (the memory backend; others adjust it).
    pub const ORDERED: Capabilities = Capabilities {
        ranges: true,
        atomic_batch: true,
        preconditions: true,
        list_values: true,
        watch: WatchKind::InProcess,
        durable: false,
        versions: true,
        native_expiry: false,
        max_key_bytes: 512,
        independent_namespaces: false,
    };
    /// A plain Workers KV namespace: get, put, delete and a forward list by prefix, no versions,
    /// watched by polling (durability and expiry are the service's, set by each backend).
    pub const PLAIN: Capabilities = Capabilities {
        ranges: false,
        atomic_batch: false,
        preconditions: false,
        list_values: false,
        watch: WatchKind::Polling,
        durable: false,
        versions: false,
        native_expiry: false,
        max_key_bytes: 512,
        independent_namespaces: false,
    };
}

/// A stream of change events. It ends when the store closes; a watcher that falls behind gets
/// [`StoreError::WatchLagged`] and then the end of the stream.
pub type EventStream = futures::stream::BoxStream<'static, Result<Event>>;

/// A namespaced, ordered key-value store.
///
/// The contract every backend keeps (the conformance suite checks it):
/// - Keys are UTF-8 strings, compared and listed in the byte order of their UTF-8 encoding.
/// - A missing key is `Ok(None)`, never an error; an unknown namespace is
///   [`StoreError::NamespaceNotFound`].
/// - The store validates nothing about sizes or names: the kv layer above does, once.
/// - Expiration is stored, not enforced: an expired record is returned until swept. The caller
///   compares it with its own clock, and calls [`Store::sweep_expired`] to remove it.
/// - A batch gets a version greater than every version before it; all its writes carry it.
///   With `atomic_batch` it applies whole or not at all; with `preconditions` a failed one
///   returns [`StoreError::Conflict`] and applies nothing.
/// - Watchers of a namespace see every change under their prefix in commit order.
/// - Clones of a store handle share the same data.
/// - After [`Store::close`], every operation returns [`StoreError::Closed`].
#[async_trait::async_trait]
pub trait Store: Namespaces {
    /// What this backend does natively; the layers above emulate the rest.
    fn capabilities(&self) -> Capabilities;

    /// The record under `key`, or `Ok(None)` when there is none (expired records included:
    /// expiry is the caller's to enforce).
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>>;
    /// One read for many keys; the answer is in the order of `keys`. The default reads them one
    /// by one; backends with a multi-get override it.
    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(ns, key).await?);
        }
        Ok(out)
    }
    /// One page of records in key byte order, within the options' prefix and bounds.
    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage>;
    /// Applies a batch; returns its version (greater than every version before it).
    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64>;
    /// Changes in `ns` to keys starting with `prefix`, from the moment of the call.
    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream>;

    /// Removes up to `limit` records whose expiration is at or before `now`; watchers see
    /// [`EventKind::Expire`]. Returns how many were removed. The default lists and deletes
    /// conditionally ([`sweep_by_listing`]).
    async fn sweep_expired(&self, ns: &str, now: u64, limit: usize) -> Result<usize> {
        sweep_by_listing(self, ns, now, limit).await
    }

    /// Stops the store: later calls fail with [`StoreError::Closed`]; pending writes finish.
    async fn close(&self) -> Result<()>;
}

/// Namespace administration: what a store's namespaces are and how they come and go. Separate
/// from [`Store`]'s data methods so a wrapper that changes only data passes it through
/// ([`Wraps`]) instead of forwarding it by hand.
#[async_trait::async_trait]
pub trait Namespaces: Send + Sync {
    /// Creates a namespace with a caller-chosen id (randomness stays with the caller);
    /// [`StoreError::NamespaceIdTaken`] or [`StoreError::NamespaceExists`] (the title) when taken.
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace>;
    /// All namespaces, ordered by id.
    async fn list_namespaces(&self) -> Result<Vec<Namespace>>;
    /// The namespace `id`, or `Ok(None)`.
    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>>;
    /// Gives namespace `id` a new title.
    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace>;
    /// Removes the namespace and every key in it.
    async fn delete_namespace(&self, id: &str) -> Result<()>;
}

/// A store that wraps another and leaves its namespaces as they are: implementing this gives
/// the wrapper [`Namespaces`], passed through to [`Wraps::inner`].
pub trait Wraps: Send + Sync {
    type Inner: Namespaces + ?Sized;
    /// The wrapped store.
    fn inner(&self) -> &Self::Inner;
}

#[async_trait::async_trait]
impl<W: Wraps> Namespaces for W {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        self.inner().create_namespace(id, title).await
    }
    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        self.inner().list_namespaces().await
    }
    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>> {
        self.inner().get_namespace(id).await
    }
    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        self.inner().rename_namespace(id, title).await
    }
    async fn delete_namespace(&self, id: &str) -> Result<()> {
        self.inner().delete_namespace(id).await
    }
}

/// Conveniences over [`Store`], for every store; implementors never write these.
#[async_trait::async_trait]
pub trait StoreExt: Store {
    /// Writes one key (a one-put batch); returns the batch's version.
    async fn put(&self, ns: &str, key: &str, value: Bytes) -> Result<u64> {
        self.batch(ns, Batch::new().put(key, value)).await
    }
    /// Deletes one key (a one-delete batch); returns the batch's version.
    async fn delete(&self, ns: &str, key: &str) -> Result<u64> {
        self.batch(ns, Batch::new().delete(key)).await
    }
    /// Writes `value` under `key` unless the key is stored; returns whether it wrote. Atomic
    /// where the store has preconditions; elsewhere a read then a write, right only with one
    /// writer (as DESIGN says of Workers KV: one couchkv node per namespace writes).
    async fn put_if_absent(&self, ns: &str, key: &str, value: Bytes) -> Result<bool> {
        let mut batch = Batch::new().put(key, value);
        if self.capabilities().preconditions {
            batch = batch.expect(key, Expect::Absent);
        } else if self.get(ns, key).await?.is_some() {
            return Ok(false);
        }
        match self.batch(ns, batch).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// The sweep any store can do with list and batch: versions as preconditions, so a key
/// rewritten meanwhile is left alone. A store without conditional batches gets one delete per
/// key (a key rewritten between the list and its delete is lost: such a store should sweep
/// natively).
pub async fn sweep_by_listing<S: Store + ?Sized>(
    store: &S,
    ns: &str,
    now: u64,
    limit: usize,
) -> Result<usize> {
    let caps = store.capabilities();
    let conditional = caps.atomic_batch && caps.preconditions;
    let mut batch = Batch::new();
    let mut opts = ListOptions::default();
    'pages: loop {
        let page = store.list(ns, &opts).await?;
        for e in &page.entries {
            if e.expiration.is_some_and(|t| t <= now) {
                batch.ops.push(Op::Expire { key: e.key.clone() });
                batch.preconditions.push(Precondition {
                    key: e.key.clone(),
                    expect: Expect::Version(e.version),
                });
                if batch.ops.len() >= limit {
                    break 'pages;
                }
            }
        }
        match page.entries.last() {
            Some(last) if page.more => opts.start = Bound::Excluded(last.key.clone()),
            _ => break,
        }
    }
    let n = batch.ops.len();
    if n == 0 {
        return Ok(0);
    }
    if !conditional {
        for op in batch.ops {
            store
                .batch(
                    ns,
                    Batch {
                        ops: vec![op],
                        preconditions: vec![],
                        durability: Default::default(),
                    },
                )
                .await?;
        }
        return Ok(n);
    }
    match store.batch(ns, batch).await {
        Ok(_) => Ok(n),
        // Someone rewrote one of them meanwhile; the next sweep picks up the rest.
        Err(StoreError::Conflict { .. }) => Ok(0),
        Err(e) => Err(e),
    }
}

/// The shared handle the layers above hold.
pub type DynStore = std::sync::Arc<dyn Store>;

impl<S: Namespaces + ?Sized> Wraps for std::sync::Arc<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        self
    }
}

#[async_trait::async_trait]
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        (**self).get(ns, key).await
    }
    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        (**self).get_many(ns, keys).await
    }
    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        (**self).list(ns, opts).await
    }
    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        (**self).batch(ns, batch).await
    }
    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        (**self).watch(ns, prefix).await
    }
    async fn sweep_expired(&self, ns: &str, now: u64, limit: usize) -> Result<usize> {
        (**self).sweep_expired(ns, now, limit).await
    }
    async fn close(&self) -> Result<()> {
        (**self).close().await
    }
}
