//! A wrapper that confines a store to the keys under a fixed prefix in every namespace: callers
//! see and write only those keys, with the prefix taken off. Namespaces pass through untouched.

use std::ops::Bound;

use futures::StreamExt;

use crate::{
    Batch, Capabilities, EventStream, ListOptions, ListPage, Op, Record, Result, Store, StoreError,
    Wraps,
};

pub struct PrefixStore<S> {
    inner: S,
    prefix: String,
}

impl<S: Store> PrefixStore<S> {
    pub fn new(inner: S, prefix: impl Into<String>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
        }
    }

    fn full(&self, key: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + key.len());
        s.push_str(&self.prefix);
        s.push_str(key);
        s
    }

    fn strip(&self, key: String) -> Result<String> {
        match key.strip_prefix(&self.prefix) {
            Some(rest) => Ok(rest.to_owned()),
            None => Err(StoreError::Backend(format!(
                "key {key:?} outside the prefix {:?}",
                self.prefix
            ))),
        }
    }

    fn full_bound(&self, b: &Bound<String>) -> Bound<String> {
        match b {
            Bound::Included(k) => Bound::Included(self.full(k)),
            Bound::Excluded(k) => Bound::Excluded(self.full(k)),
            Bound::Unbounded => Bound::Unbounded,
        }
    }
}

impl<S: Store> Wraps for PrefixStore<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait::async_trait]
impl<S: Store> Store for PrefixStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        self.inner.get(ns, &self.full(key)).await
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let keys: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        self.inner.get_many(ns, &keys).await
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        let inner_opts = ListOptions {
            prefix: self.full(&opts.prefix),
            start: self.full_bound(&opts.start),
            end: self.full_bound(&opts.end),
            ..opts.clone()
        };
        let mut page = self.inner.list(ns, &inner_opts).await?;
        for e in &mut page.entries {
            e.key = self.strip(std::mem::take(&mut e.key))?;
        }
        Ok(page)
    }

    async fn batch(&self, ns: &str, mut batch: Batch) -> Result<u64> {
        for op in &mut batch.ops {
            match op {
                Op::Put { key, .. } | Op::Delete { key } | Op::Expire { key } => {
                    *key = self.full(key)
                }
            }
        }
        for pre in &mut batch.preconditions {
            pre.key = self.full(&pre.key);
        }
        match self.inner.batch(ns, batch).await {
            Err(StoreError::Conflict { key }) => Err(StoreError::Conflict {
                key: self.strip(key)?,
            }),
            other => other,
        }
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        let cut = self.prefix.len();
        let stream = self.inner.watch(ns, &self.full(prefix)).await?;
        let stream = stream.map(move |ev| {
            ev.map(|mut ev| {
                ev.key = ev.key.split_off(cut);
                ev
            })
        });
        Ok(stream.boxed())
    }

    async fn sweep_expired(&self, ns: &str, now: u64, limit: usize) -> Result<usize> {
        crate::sweep_by_listing(self, ns, now, limit).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}
