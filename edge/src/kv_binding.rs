//! A [`Store`] over a Workers KV binding (`worker::kv::KvStore`) — the seed's
//! "workers-kv-down": with `couchkv::level::KvLevel` on top, a LevelDB-style database on a
//! plain KV namespace, usable from any Rust Worker.
//!
//! # Layout in the binding
//! A binding is one Workers KV namespace; the store keeps several of its own inside it.
//! - `/ns/<id>` → an empty value, metadata `{"t": title, "g": tag}`: the directory. Listing
//!   namespaces is one listing of `/ns/`.
//! - `<tag>/<key>` → a record of namespace `id`; the tag is 8 random hex digits given when the
//!   namespace is made, so a namespace made again under an old id starts empty even if the old
//!   one's keys were not all deleted yet. Keys hold at most [`MAX_KEY_BYTES`] (512 less the tag).
//! - A record's metadata comes back byte for byte ([`crate::kv_metadata`]).
//!
//! # What it cannot promise (Workers KV's nature)
//! - Expirations up to 2038-01-19 (a binding takes them as 32-bit seconds).
//! - Eventual consistency: another location sees a write up to about 60 s later; a write to
//!   the same key more than once a second may be refused or lost. No ranges, no reverse
//!   lists, no values in lists, no atomic or conditional batches (a batch is applied key by key,
//!   and stops at the first failure). Records carry no versions.
//! - Watchers see the writes made through this store (any clone of the handle) at once, as a
//!   process sees its own; Workers KV has no change feed, so writes by other isolates are not
//!   seen (`WatchKind::InProcess`). Whoever needs them lists again.
//! - Deleting a namespace deletes its keys page by page; if that is cut short (a Worker's
//!   subrequest limit), the rest stays unreachable, under a tag no namespace has any more.
//!
//! That is why couchkv keeps CouchDB databases in Durable Objects, not here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use couchkv_adapters::paging::{plain_start, Cursors, ListedKey, ServicePage};
use couchkv_adapters::watch::WatchHub;
use couchkv_adapters::{
    Batch, Capabilities, EventStream, ListOptions, ListPage, Namespace, Namespaces, Op, Record,
    Result, Store, StoreError,
};
use serde_json::{json, Value};
use worker::kv::{KvError, KvStore};

use crate::kv_metadata::{from_binding, to_binding};
use worker::send::{SendFuture, SendWrapper};

/// Tag digits: 32 random bits, so namespaces of one binding do not share a tag.
const TAG_LEN: usize = 8;
/// The longest key a namespace holds: Workers KV's 512 bytes less `<tag>/`.
pub const MAX_KEY_BYTES: usize = 512 - TAG_LEN - 1;
const DIR: &str = "/ns/";
/// A binding takes expirations as 32-bit signed seconds (the REST API takes later ones).
const MAX_EXPIRATION: u64 = i32::MAX as u64;

/// The store; clones share the binding, the watchers and the namespace cache.
#[derive(Clone)]
pub struct KvBindingStore {
    inner: Arc<Inner>,
}

struct Inner {
    kv: SendWrapper<KvStore>,
    hub: WatchHub,
    cursors: Cursors,
    version: AtomicU64,
    closed: couchkv_adapters::OpenState,
    /// Namespaces this handle has seen: id → (title, tag).
    known: Mutex<HashMap<String, (String, String)>>,
}

fn kv_err(e: KvError) -> StoreError {
    StoreError::Backend(format!("Workers KV: {e}"))
}

fn dir_key(id: &str) -> String {
    format!("{DIR}{id}")
}

impl KvBindingStore {
    pub fn new(kv: KvStore) -> Self {
        Self {
            inner: Arc::new(Inner {
                kv: SendWrapper::new(kv),
                hub: WatchHub::default(),
                cursors: Cursors::default(),
                version: AtomicU64::new(0),
                closed: couchkv_adapters::OpenState::default(),
                known: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// A directory entry's (title, tag).
fn dir_entry(meta: Option<Value>) -> Option<(String, String)> {
    let meta = meta?;
    Some((
        meta["t"].as_str()?.to_owned(),
        meta["g"].as_str()?.to_owned(),
    ))
}

impl Inner {
    fn open(&self) -> Result<()> {
        self.closed.check()
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One page of the binding's list of keys starting with `prefix`.
    async fn page(
        &self,
        prefix: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<ServicePage> {
        // workerd's binding lists nothing for a prefix with a NUL in it: such a prefix is
        // listed up to the NUL and the rest filtered here (the page may come back short; its
        // cursor still leads on).
        let (sent, filter) = match prefix.find('\0') {
            Some(at) => (&prefix[..at], Some(prefix)),
            None => (prefix, None),
        };
        let mut list = self.kv.list().prefix(sent.to_owned()).limit(limit as u64);
        if let Some(c) = cursor {
            list = list.cursor(c);
        }
        let resp = list.execute().await.map_err(kv_err)?;
        let keys = resp
            .keys
            .into_iter()
            .filter(|k| filter.is_none_or(|p| k.name.starts_with(p)))
            .map(|k| ListedKey {
                name: k.name,
                metadata: k.metadata.map(from_binding),
                expiration: k.expiration,
            })
            .collect();
        let next = resp.cursor.filter(|c| !resp.list_complete && !c.is_empty());
        Ok((keys, next))
    }

    /// Every namespace: id → (title, tag), by id.
    async fn directory(&self) -> Result<Vec<(String, (String, String))>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let resp = {
                let mut list = self.kv.list().prefix(DIR.to_owned()).limit(1000);
                if let Some(c) = cursor.take() {
                    list = list.cursor(c);
                }
                list.execute().await.map_err(kv_err)?
            };
            for k in resp.keys {
                if let (Some(id), Some(entry)) = (k.name.strip_prefix(DIR), dir_entry(k.metadata)) {
                    out.push((id.to_owned(), entry));
                }
            }
            match resp.cursor.filter(|c| !resp.list_complete && !c.is_empty()) {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// The namespace's (title, tag), or `NamespaceNotFound`.
    async fn lookup(&self, id: &str) -> Result<(String, String)> {
        self.open()?;
        if let Some(e) = self.known().get(id) {
            return Ok(e.clone());
        }
        let (_, meta) = (self.kv.get(&dir_key(id)).bytes_with_metadata::<Value>())
            .await
            .map_err(kv_err)?;
        let entry = dir_entry(meta).ok_or_else(|| StoreError::NamespaceNotFound(id.to_owned()))?;
        self.known().insert(id.to_owned(), entry.clone());
        Ok(entry)
    }

    async fn write_dir(&self, id: &str, title: &str, tag: &str) -> Result<()> {
        (self.kv.put(&dir_key(id), "").map_err(kv_err)?)
            .metadata(json!({"t": title, "g": tag}))
            .map_err(kv_err)?
            .execute()
            .await
            .map_err(kv_err)?;
        self.known()
            .insert(id.to_owned(), (title.to_owned(), tag.to_owned()));
        Ok(())
    }

    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        self.open()?;
        if id.is_empty() {
            return Err(StoreError::Backend(
                "a namespace id may not be empty".into(),
            ));
        }
        let dir = self.directory().await?;
        if dir.iter().any(|(i, _)| i == id) {
            return Err(StoreError::NamespaceIdTaken(id.to_owned()));
        }
        if dir.iter().any(|(_, (t, _))| t == title) {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        let tag = loop {
            let bytes = couchkv::auth::crypto::random_bytes::<4>();
            let tag: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if !dir.iter().any(|(_, (_, g))| *g == tag) {
                break tag;
            }
        };
        self.write_dir(id, title, &tag).await?;
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }

    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        self.open()?;
        let dir = self.directory().await?;
        let Some((_, (_, tag))) = dir.iter().find(|(i, _)| i == id) else {
            return Err(StoreError::NamespaceNotFound(id.to_owned()));
        };
        if dir.iter().any(|(i, (t, _))| t == title && i != id) {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        self.write_dir(id, title, tag).await?;
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }

    async fn delete_namespace(&self, id: &str) -> Result<()> {
        let (_, tag) = self.lookup(id).await?;
        self.kv.delete(&dir_key(id)).await.map_err(kv_err)?;
        self.known().remove(id);
        self.hub.close(Some(id));
        // The namespace is gone with its directory entry; its keys go now, page by page.
        let prefix = format!("{tag}/");
        loop {
            let (keys, _) = self.page(&prefix, 1000, None).await?;
            if keys.is_empty() {
                return Ok(());
            }
            for k in keys {
                self.kv.delete(&k.name).await.map_err(kv_err)?;
            }
        }
    }

    /// The binding's key for `key` of the namespace tagged `tag`.
    fn full_key(tag: &str, key: &str) -> Result<String> {
        if key.len() > MAX_KEY_BYTES {
            return Err(StoreError::KeyTooLong {
                len: key.len(),
                limit: MAX_KEY_BYTES,
            });
        }
        Ok(format!("{tag}/{key}"))
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let (_, tag) = self.lookup(ns).await?;
        let full = Self::full_key(&tag, key)?;
        // The expiration is only in a listing: the key itself sorts first among the keys it
        // prefixes. Both reads run at once; they are not one read.
        let value = self.kv.get(&full).bytes_with_metadata::<Value>();
        let about = self.page(&full, 10, None);
        let (value, about) = futures::future::join(value, about).await;
        let (Some(value), meta) = value.map_err(kv_err)? else {
            return Ok(None);
        };
        let (keys, _) = about?;
        let listed = keys.into_iter().find(|k| k.name == full);
        Ok(Some(Record {
            value: value.into(),
            metadata: meta.map(from_binding),
            expiration: listed.and_then(|k| k.expiration),
            version: 0,
        }))
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        plain_start(opts)?;
        let (_, tag) = self.lookup(ns).await?;
        if opts.prefix.len() > MAX_KEY_BYTES {
            return Ok(ListPage::default());
        }
        let head = format!("{tag}/");
        let prefix = format!("{head}{}", opts.prefix);
        self.cursors
            .list(&tag, opts, |limit, cursor| {
                let (head, prefix) = (&head, &prefix);
                async move {
                    let (keys, next) = self.page(prefix, limit, cursor).await?;
                    let keys = keys
                        .into_iter()
                        .filter_map(|mut k| {
                            k.name = k.name.strip_prefix(head.as_str())?.to_owned();
                            Some(k)
                        })
                        .collect();
                    Ok((keys, next))
                }
            })
            .await
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        if !batch.preconditions.is_empty() {
            return Err(StoreError::NotSupported(
                "Workers KV has no conditional writes",
            ));
        }
        let (_, tag) = self.lookup(ns).await?;
        let writes = batch.last_writes();
        // Every key and expiration is checked before anything is written.
        let keys = (writes.iter())
            .map(|op| Self::full_key(&tag, op.key()))
            .collect::<Result<Vec<_>>>()?;
        for op in &writes {
            if let Op::Put {
                expiration: Some(e),
                ..
            } = op
            {
                if *e > MAX_EXPIRATION {
                    return Err(StoreError::Backend(format!(
                        "a Workers KV binding takes expirations up to {MAX_EXPIRATION} \
                         (2038-01-19), not {e}"
                    )));
                }
            }
        }
        let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        for (op, full) in writes.iter().zip(&keys) {
            match op {
                Op::Put {
                    value,
                    metadata,
                    expiration,
                    ..
                } => {
                    let mut put = self.kv.put_bytes(full, value).map_err(kv_err)?;
                    if let Some(m) = metadata {
                        put = put.metadata(to_binding(m)).map_err(kv_err)?;
                    }
                    if let Some(e) = expiration {
                        put = put.expiration(*e);
                    }
                    put.execute().await.map_err(kv_err)?;
                }
                Op::Delete { .. } | Op::Expire { .. } => {
                    self.kv.delete(full).await.map_err(kv_err)?;
                }
            }
        }
        self.hub
            .publish(ns, batch.ops.iter().map(|op| op.event(version)));
        Ok(version)
    }
}

#[async_trait::async_trait]
impl Namespaces for KvBindingStore {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        SendFuture::new(self.inner.create_namespace(id, title)).await
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        SendFuture::new(async {
            self.inner.open()?;
            let dir = self.inner.directory().await?;
            Ok(dir
                .into_iter()
                .map(|(id, (title, _))| Namespace { id, title })
                .collect())
        })
        .await
    }

    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>> {
        SendFuture::new(async {
            match self.inner.lookup(id).await {
                Ok((title, _)) => Ok(Some(Namespace {
                    id: id.to_owned(),
                    title,
                })),
                Err(StoreError::NamespaceNotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        SendFuture::new(self.inner.rename_namespace(id, title)).await
    }

    async fn delete_namespace(&self, id: &str) -> Result<()> {
        SendFuture::new(self.inner.delete_namespace(id)).await
    }
}

#[async_trait::async_trait]
impl Store for KvBindingStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            native_expiry: true,
            watch: couchkv_adapters::WatchKind::InProcess,
            max_key_bytes: MAX_KEY_BYTES,
            ..Capabilities::PLAIN
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        SendFuture::new(self.inner.get(ns, key)).await
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        SendFuture::new(async {
            // A binding's bulk get returns text only: values one by one, a few at a time.
            let mut out = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(8) {
                let got =
                    futures::future::join_all(chunk.iter().map(|k| self.inner.get(ns, k))).await;
                for g in got {
                    out.push(g?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        SendFuture::new(self.inner.list(ns, opts)).await
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        SendFuture::new(self.inner.batch(ns, batch)).await
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        SendFuture::new(async {
            self.inner.lookup(ns).await?;
            Ok(self.inner.hub.subscribe(ns, prefix))
        })
        .await
    }

    /// Workers KV removes expired keys itself.
    async fn sweep_expired(&self, _ns: &str, _now: u64, _limit: usize) -> Result<usize> {
        self.inner.open()?;
        Ok(0)
    }

    async fn close(&self) -> Result<()> {
        let inner = &self.inner;
        inner.closed.close();
        inner.hub.close(None);
        // Nothing is read any more: the namespaces it knew go too.
        inner.known().clear();
        Ok(())
    }
}
