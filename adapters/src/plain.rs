//! A wrapper that makes any store behave like a plain Workers KV namespace as a Worker's binding
//! sees it: get, put, delete, and a forward list by prefix with a cursor. No bounds, no reverse,
//! no values in lists, no multi-key or conditional batches. Layers above must fall back to what
//! they would do on the real thing; tests use it to prove they do.

use std::ops::Bound;

use crate::{
    Batch, Capabilities, EventStream, ListOptions, ListPage, Record, Result, Store, StoreError,
    Wraps,
};

pub struct PlainKvStore<S> {
    inner: S,
}

impl<S: Store> PlainKvStore<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: Store> Wraps for PlainKvStore<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait::async_trait]
impl<S: Store> Store for PlainKvStore<S> {
    fn capabilities(&self) -> Capabilities {
        let inner = self.inner.capabilities();
        Capabilities {
            durable: inner.durable,
            versions: inner.versions,
            native_expiry: inner.native_expiry,
            ..Capabilities::PLAIN
        }
    }
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        self.inner.get(ns, key).await
    }
    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        // One get per key, as a binding does.
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.inner.get(ns, k).await?);
        }
        Ok(out)
    }
    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        if opts.reverse || opts.values || !matches!(opts.end, Bound::Unbounded) {
            return Err(StoreError::NotSupported(
                "a plain KV namespace lists forward by prefix only",
            ));
        }
        if matches!(opts.start, Bound::Included(_)) {
            return Err(StoreError::NotSupported(
                "a plain KV namespace resumes only after a cursor",
            ));
        }
        self.inner.list(ns, opts).await
    }
    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        if batch.ops.len() > 1 || !batch.preconditions.is_empty() {
            return Err(StoreError::NotSupported(
                "a plain KV namespace writes one key at a time, unconditionally",
            ));
        }
        self.inner.batch(ns, batch).await
    }
    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        self.inner.watch(ns, prefix).await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}
