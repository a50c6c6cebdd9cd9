//! The in-process backend: sorted maps under one lock. It is the reference for the [`Store`]
//! contract, the store of tests, and edge-ready (no threads, no I/O). Not durable.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::range::{key_bounds, ByteRange};
use crate::watch::WatchHub;
use crate::{
    Batch, Capabilities, EventKind, EventStream, ListEntry, ListOptions, ListPage, Namespace,
    Namespaces, Op, Record, Result, Store, StoreError,
};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    hub: WatchHub,
    closed: crate::OpenState,
}

#[derive(Default)]
struct Inner {
    version: u64,
    namespaces: BTreeMap<String, Space>,
}

struct Space {
    title: String,
    data: BTreeMap<Vec<u8>, Record>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Open watch streams on a namespace (for tests and diagnostics).
    pub fn watchers(&self, ns: &str) -> usize {
        self.hub.watchers(ns)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.closed.check()?;
        // A panic while holding the lock leaves whole values behind (every write is applied
        // after all checks), so a poisoned lock is still consistent.
        Ok(self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn utf8(key: &[u8]) -> Result<String> {
    String::from_utf8(key.to_vec()).map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))
}

fn space<'a>(inner: &'a Inner, ns: &str) -> Result<&'a Space> {
    inner
        .namespaces
        .get(ns)
        .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))
}

#[async_trait::async_trait]
impl Namespaces for MemoryStore {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let mut inner = self.lock()?;
        if inner.namespaces.contains_key(id) {
            return Err(StoreError::NamespaceIdTaken(id.to_owned()));
        }
        if inner.namespaces.values().any(|s| s.title == title) {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        inner.namespaces.insert(
            id.to_owned(),
            Space {
                title: title.to_owned(),
                data: BTreeMap::new(),
            },
        );
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }
    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        let inner = self.lock()?;
        Ok(inner
            .namespaces
            .iter()
            .map(|(id, s)| Namespace {
                id: id.clone(),
                title: s.title.clone(),
            })
            .collect())
    }
    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>> {
        let inner = self.lock()?;
        Ok(inner.namespaces.get(id).map(|s| Namespace {
            id: id.to_owned(),
            title: s.title.clone(),
        }))
    }
    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let mut inner = self.lock()?;
        if inner
            .namespaces
            .iter()
            .any(|(other, s)| other != id && s.title == title)
        {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        let space = inner
            .namespaces
            .get_mut(id)
            .ok_or_else(|| StoreError::NamespaceNotFound(id.to_owned()))?;
        space.title = title.to_owned();
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }
    async fn delete_namespace(&self, id: &str) -> Result<()> {
        let mut inner = self.lock()?;
        inner
            .namespaces
            .remove(id)
            .ok_or_else(|| StoreError::NamespaceNotFound(id.to_owned()))?;
        self.hub.close(Some(id));
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // One lock, held for the microseconds a batch takes: nothing waits on another
            // namespace's I/O.
            independent_namespaces: true,
            ..Capabilities::ORDERED
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let inner = self.lock()?;
        Ok(space(&inner, ns)?.data.get(key.as_bytes()).cloned())
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let inner = self.lock()?;
        let space = space(&inner, ns)?;
        Ok(keys
            .iter()
            .map(|k| space.data.get(k.as_bytes()).cloned())
            .collect())
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        let inner = self.lock()?;
        let space = space(&inner, ns)?;
        let Some(bounds) = key_bounds(&opts.prefix, &opts.start, &opts.end) else {
            return Ok(ListPage::default());
        };
        let range = space.data.range::<Vec<u8>, ByteRange>(bounds);
        let iter: Box<dyn Iterator<Item = (&Vec<u8>, &Record)>> = if opts.reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let limit = opts.limit.max(1);
        let mut page = ListPage {
            entries: Vec::with_capacity(limit.min(1024)),
            more: false,
        };
        for (key, rec) in iter {
            if page.entries.len() == limit {
                page.more = true;
                break;
            }
            page.entries.push(ListEntry {
                key: utf8(key)?,
                metadata: rec.metadata.clone(),
                expiration: rec.expiration,
                version: rec.version,
                value: opts.values.then(|| rec.value.clone()),
            });
        }
        Ok(page)
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        let mut inner = self.lock()?;
        let version = inner.version + 1;
        let space = inner
            .namespaces
            .get_mut(ns)
            .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))?;
        for pre in &batch.preconditions {
            let current = space.data.get(pre.key.as_bytes()).map(|r| r.version);
            pre.check(current)?;
        }
        let mut events = Vec::with_capacity(batch.ops.len());
        for op in batch.ops {
            let event = op.event(version);
            let existed = match op {
                Op::Put {
                    key,
                    value,
                    metadata,
                    expiration,
                } => {
                    let record = Record {
                        value,
                        metadata,
                        expiration,
                        version,
                    };
                    space.data.insert(key.into_bytes(), record).is_some()
                }
                Op::Delete { key } | Op::Expire { key } => {
                    space.data.remove(key.as_bytes()).is_some()
                }
            };
            // An expiry of a key already gone is no change.
            if existed || !matches!(event.kind, EventKind::Expire) {
                events.push(event);
            }
        }
        inner.version = version;
        // Published under the lock: watchers see commits in order.
        self.hub.publish(ns, events);
        Ok(version)
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        let inner = self.lock()?;
        space(&inner, ns)?;
        Ok(self.hub.subscribe(ns, prefix))
    }

    async fn close(&self) -> Result<()> {
        self.closed.close();
        self.hub.close(None);
        Ok(())
    }
}
