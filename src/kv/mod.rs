//! Workers KV semantics over any [`Store`]: namespaces, every limit and validation of Workers KV,
//! expiry (enforced on read against the injected clock, swept on demand), opaque list cursors,
//! bulk reads and writes.
//!
//! Validation happens here, once; the store below validates nothing. Every write of a bulk call
//! goes to the store as one batch, so on a store with atomic batches a bulk write is whole or
//! absent, and one invalid item rejects the call before anything is written.

pub mod cursor;
mod error;
pub mod limits;
mod wire;

use couchkv_adapters::StoreExt;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use couchkv_adapters::{
    Batch, Capabilities, Durability, DynStore, EventStream, Expect, ListOptions as StoreList,
    ListPage, Namespace, Op, Precondition, Record, StoreError,
};

use crate::clock::{Clock, IdSource};
pub use error::KvError;

pub type Result<T, E = KvError> = std::result::Result<T, E>;

/// Namespaces whose ids start with this hold no key with an expiration (couch keeps a database
/// in each on some stores; there may be millions), so the expiry sweep does not visit them.
pub const UNEXPIRING_PREFIX: &str = "_couchkv_db_";

/// The KV service: namespaces over one store.
#[derive(Clone)]
pub struct Kv {
    store: DynStore,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
}

impl Kv {
    pub fn new(store: DynStore, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        Self { store, clock, ids }
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub async fn create_namespace(&self, title: &str) -> Result<Namespace> {
        if title.is_empty() {
            return Err(KvError::EmptyTitle);
        }
        Ok(self
            .store
            .create_namespace(&self.ids.new_id(), title)
            .await?)
    }

    pub async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        Ok(self.store.list_namespaces().await?)
    }

    pub async fn get_namespace(&self, id: &str) -> Result<Namespace> {
        self.store
            .get_namespace(id)
            .await?
            .ok_or(KvError::NamespaceNotFound)
    }

    pub async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        if title.is_empty() {
            return Err(KvError::EmptyTitle);
        }
        Ok(self.store.rename_namespace(id, title).await?)
    }

    pub async fn delete_namespace(&self, id: &str) -> Result<()> {
        Ok(self.store.delete_namespace(id).await?)
    }

    /// A handle on one namespace. It does not check that the namespace exists: the first
    /// operation says so with [`KvError::NamespaceNotFound`].
    pub fn namespace(&self, id: &str) -> KvNamespace {
        KvNamespace {
            store: self.store.clone(),
            clock: self.clock.clone(),
            id: id.to_owned(),
        }
    }

    /// Removes expired keys from every namespace, up to `limit` per namespace; returns how many.
    /// Namespaces named with [`UNEXPIRING_PREFIX`] are passed by.
    pub async fn sweep(&self, limit: usize) -> Result<usize> {
        let now = self.clock.now_secs();
        let mut removed = 0;
        for ns in self.store.list_namespaces().await? {
            if ns.id.starts_with(UNEXPIRING_PREFIX) {
                continue;
            }
            match self.store.sweep_expired(&ns.id, now, limit).await {
                Ok(n) => removed += n,
                // Deleted while we swept: nothing left to expire.
                Err(couchkv_adapters::StoreError::NamespaceNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }
}

/// A key written after a version a watcher resumes from (see [`KvNamespace::changed_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub version: u64,
    pub key: String,
    pub metadata: Option<String>,
    pub expiration: Option<u64>,
}

/// A value read back with what travels beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvValue {
    pub value: Bytes,
    /// Serialized JSON, as it was written.
    pub metadata: Option<String>,
    pub expiration: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Accepted for compatibility (there is one edge location: this server), but validated.
    pub cache_ttl: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Seconds since the epoch.
    pub expiration: Option<i64>,
    /// Seconds from now; wins over `expiration`.
    pub expiration_ttl: Option<i64>,
    /// Serialized JSON.
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub prefix: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub name: String,
    pub expiration: Option<u64>,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    pub keys: Vec<KeyInfo>,
    pub list_complete: bool,
    /// Present exactly when `list_complete` is false.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkGetType {
    #[default]
    Text,
    Json,
}

impl BulkGetType {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(KvError::BulkGetBadType(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkValue {
    /// A string for `text`, the parsed document for `json`.
    pub value: serde_json::Value,
    pub metadata: Option<String>,
    pub expiration: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkPutItem {
    pub key: String,
    pub value: Bytes,
    pub options: PutOptions,
}

/// One write of [`KvNamespace::write_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put { key: String, value: Bytes },
    Delete { key: String },
}

/// One namespace, with Workers KV's rules.
#[derive(Clone)]
pub struct KvNamespace {
    store: DynStore,
    clock: Arc<dyn Clock>,
    id: String,
}

impl KvNamespace {
    pub fn id(&self) -> &str {
        &self.id
    }

    fn live(&self, record: Option<Record>) -> Option<Record> {
        let now = self.clock.now_secs();
        record.filter(|r| r.expiration.is_none_or(|e| e > now))
    }

    pub async fn get(&self, key: &str, opts: &GetOptions) -> Result<Option<KvValue>> {
        limits::check_key(key)?;
        limits::check_cache_ttl(opts.cache_ttl)?;
        let record = self.store.get(&self.id, key).await?;
        Ok(self.live(record).map(|r| KvValue {
            value: r.value,
            metadata: r.metadata,
            expiration: r.expiration,
        }))
    }

    /// Validates one write and turns it into a store operation.
    fn put_op(&self, key: String, value: Bytes, opts: PutOptions) -> Result<Op> {
        limits::check_key(&key)?;
        let expiration = limits::resolve_expiration(
            self.clock.now_secs(),
            opts.expiration,
            opts.expiration_ttl,
        )?;
        limits::check_metadata(opts.metadata.as_deref())?;
        limits::check_value(value.len())?;
        Ok(Op::Put {
            key,
            value,
            metadata: opts.metadata,
            expiration,
        })
    }

    /// Sends validated writes to the store as one batch.
    async fn write_ops(&self, ops: Vec<Op>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            ops,
            preconditions: vec![],
            durability: Default::default(),
        };
        self.store.batch(&self.id, batch).await?;
        Ok(())
    }

    pub async fn put(&self, key: &str, value: Bytes, opts: PutOptions) -> Result<()> {
        let op = self.put_op(key.to_owned(), value, opts)?;
        self.write_ops(vec![op]).await
    }

    /// Deleting a missing key succeeds, as in Workers KV.
    pub async fn delete(&self, key: &str) -> Result<()> {
        limits::check_key(key)?;
        self.store.delete(&self.id, key).await?;
        Ok(())
    }

    pub async fn list(&self, opts: &ListOptions) -> Result<ListResult> {
        let limit = limits::list_limit(opts.limit)?;
        let prefix = opts.prefix.clone().unwrap_or_default();
        limits::check_key_length(&prefix)?;
        let start = match opts.cursor.as_deref() {
            None | Some("") => Bound::Unbounded,
            Some(c) => Bound::Excluded(cursor::decode(c)?),
        };
        let page = self
            .store
            .list(
                &self.id,
                &StoreList {
                    prefix,
                    start,
                    limit,
                    ..StoreList::default()
                },
            )
            .await?;
        // The cursor is the last key examined, even an expired one left out of the page: a page
        // may come back short, or empty, and still not be the last.
        let cursor = match page.entries.last() {
            Some(last) if page.more => Some(cursor::encode(&last.key)),
            _ => None,
        };
        let now = self.clock.now_secs();
        let keys = page
            .entries
            .into_iter()
            .filter(|e| e.expiration.is_none_or(|t| t > now))
            .map(|e| KeyInfo {
                name: e.key,
                expiration: e.expiration,
                metadata: e.metadata,
            })
            .collect();
        Ok(ListResult {
            keys,
            list_complete: cursor.is_none(),
            cursor,
        })
    }

    /// Reads 1–100 keys at once; a missing key reads as `None`.
    pub async fn bulk_get(
        &self,
        keys: &[String],
        kind: BulkGetType,
        opts: &GetOptions,
    ) -> Result<Vec<(String, Option<BulkValue>)>> {
        if keys.is_empty() {
            return Err(KvError::BulkGetTooFew);
        }
        if keys.len() > limits::MAX_BULK_GET_KEYS {
            return Err(KvError::BulkGetTooMany);
        }
        for k in keys {
            limits::check_key(k)?;
        }
        limits::check_cache_ttl(opts.cache_ttl)?;
        let records = self.store.get_many(&self.id, keys).await?;
        let mut total = 0usize;
        let mut out = Vec::with_capacity(keys.len());
        for (key, record) in keys.iter().zip(records) {
            let Some(r) = self.live(record) else {
                out.push((key.clone(), None));
                continue;
            };
            total += r.value.len();
            if total > limits::MAX_BULK_GET_BYTES {
                return Err(KvError::BulkGetTooLarge);
            }
            let value = match kind {
                BulkGetType::Text => {
                    serde_json::Value::String(String::from_utf8_lossy(&r.value).into_owned())
                }
                BulkGetType::Json => {
                    serde_json::from_slice(&r.value).map_err(|_| KvError::BulkGetNotJson)?
                }
            };
            out.push((
                key.clone(),
                Some(BulkValue {
                    value,
                    metadata: r.metadata,
                    expiration: r.expiration,
                }),
            ));
        }
        Ok(out)
    }

    /// Writes up to 10,000 items as one batch: every item is checked first, and one bad item
    /// rejects the call with nothing written.
    pub async fn bulk_put(&self, items: Vec<BulkPutItem>) -> Result<usize> {
        if items.len() > limits::MAX_BULK_WRITE {
            return Err(KvError::BulkTooMany(items.len()));
        }
        let n = items.len();
        let ops = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                self.put_op(item.key, item.value, item.options)
                    .map_err(|e| KvError::BulkItem {
                        index,
                        source: Box::new(e),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        self.write_ops(ops).await?;
        Ok(n)
    }

    /// Deletes up to 10,000 keys as one batch.
    pub async fn bulk_delete(&self, keys: Vec<String>) -> Result<usize> {
        if keys.len() > limits::MAX_BULK_WRITE {
            return Err(KvError::BulkTooMany(keys.len()));
        }
        for (index, k) in keys.iter().enumerate() {
            limits::check_key(k).map_err(|e| KvError::BulkItem {
                index,
                source: Box::new(e),
            })?;
        }
        let n = keys.len();
        self.write_ops(keys.into_iter().map(|key| Op::Delete { key }).collect())
            .await?;
        Ok(n)
    }

    /// What the store below does natively (layers above choose their fast paths by it).
    pub fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }

    /// Reads many keys as raw values, in the order asked (our extension; Workers KV's bulk get
    /// returns text or JSON only). Expired keys read as `None`.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<KvValue>>> {
        for k in keys {
            limits::check_key(k)?;
        }
        let records = self.store.get_many(&self.id, keys).await?;
        Ok(records
            .into_iter()
            .map(|r| {
                self.live(r).map(|r| KvValue {
                    value: r.value,
                    metadata: r.metadata,
                    expiration: r.expiration,
                })
            })
            .collect())
    }

    /// A range listing with the store's native bounds, direction and values (our extension).
    /// Only for stores whose capabilities say `ranges`; expired keys are left out, and `more`
    /// still tells whether keys beyond the page exist.
    pub async fn scan(&self, opts: &StoreList) -> Result<ListPage> {
        if !self.store.capabilities().ranges {
            return Err(KvError::NotSupported(
                "ranges: this store lists only forward by prefix",
            ));
        }
        let mut page = self.store.list(&self.id, opts).await?;
        let now = self.clock.now_secs();
        page.entries
            .retain(|e| e.expiration.is_none_or(|t| t > now));
        Ok(page)
    }

    /// The live keys under `prefix` written after `version`, oldest write first: what a watcher
    /// resuming from `version` missed (a deletion in the gap is not seen: stores keep no
    /// tombstones). Expired keys are not live, whether or not the sweep has removed them yet.
    pub async fn changed_since(&self, prefix: &str, version: u64) -> Result<Vec<Changed>> {
        let mut opts = StoreList {
            prefix: prefix.to_owned(),
            ..StoreList::default()
        };
        let now = self.clock.now_secs();
        let mut out = Vec::new();
        loop {
            let page = self.store.list(&self.id, &opts).await?;
            for e in &page.entries {
                if e.version > version && e.expiration.is_none_or(|t| t > now) {
                    out.push(Changed {
                        version: e.version,
                        key: e.key.clone(),
                        metadata: e.metadata.clone(),
                        expiration: e.expiration,
                    });
                }
            }
            match page.entries.last() {
                Some(last) if page.more => opts.start = std::ops::Bound::Excluded(last.key.clone()),
                _ => break,
            }
        }
        out.sort_by_key(|c| c.version);
        Ok(out)
    }

    /// Writes puts and deletes as one store batch: atomic on a store whose capabilities say
    /// `atomic_batch`. Every write is validated first; one bad write rejects them all.
    pub async fn write_batch(&self, writes: Vec<Write>) -> Result<()> {
        let ops = self.ops_of(writes)?;
        self.write_ops(ops).await
    }

    /// Validated store ops; the first bad write names its index.
    fn ops_of(&self, writes: Vec<Write>) -> Result<Vec<Op>> {
        writes
            .into_iter()
            .enumerate()
            .map(|(index, w)| {
                let op = match w {
                    Write::Put { key, value } => self.put_op(key, value, PutOptions::default()),
                    Write::Delete { key } => limits::check_key(&key).map(|()| Op::Delete { key }),
                };
                op.map_err(|e| KvError::BulkItem {
                    index,
                    source: Box::new(e),
                })
            })
            .collect()
    }

    /// [`KvNamespace::write_batch`] applied only while `guard` still holds `expected` (`None`:
    /// absent); returns whether it was applied. On a store with preconditions and atomic batches
    /// the check and the writes are one atomic step (other nodes included); elsewhere the check
    /// is a read before the write, right only with a single writer.
    pub async fn write_batch_if(
        &self,
        guard: &str,
        expected: Option<&[u8]>,
        writes: Vec<Write>,
    ) -> Result<bool> {
        (self.write_batch_if_with(guard, expected, writes, Durability::Immediate)).await
    }

    /// [`KvNamespace::write_batch_if`] with the durability the batch needs (see
    /// [`Durability`]; a relaxed batch is still atomic and checked, only sooner lost in a crash).
    pub async fn write_batch_if_with(
        &self,
        guard: &str,
        expected: Option<&[u8]>,
        writes: Vec<Write>,
        durability: Durability,
    ) -> Result<bool> {
        let caps = self.store.capabilities();
        let current = self.store.get(&self.id, guard).await?;
        if current.as_ref().map(|r| r.value.as_ref()) != expected {
            return Ok(false);
        }
        if !(caps.preconditions && caps.atomic_batch) {
            self.write_batch(writes).await?;
            return Ok(true);
        }
        let ops = self.ops_of(writes)?;
        let expect = match current {
            Some(r) => Expect::Version(r.version),
            None => Expect::Absent,
        };
        let batch = Batch {
            ops,
            preconditions: vec![Precondition {
                key: guard.to_owned(),
                expect,
            }],
            durability,
        };
        match self.store.batch(&self.id, batch).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every put, delete and expiry under `prefix` from now on.
    pub async fn watch(&self, prefix: &str) -> Result<EventStream> {
        limits::check_key_length(prefix)?;
        Ok(self.store.watch(&self.id, prefix).await?)
    }
}
