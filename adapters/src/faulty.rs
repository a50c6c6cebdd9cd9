//! A fault-injecting wrapper for reliability tests: once armed with `k`, it lets `k` more
//! batches through and fails every batch after them with [`StoreError::Backend`], as a process
//! that crashed mid-way would have stopped writing. Reads always pass.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::{
    Batch, Capabilities, EventStream, ListOptions, ListPage, Record, Result, Store, StoreError,
    Wraps,
};

pub struct FailingStore<S> {
    inner: S,
    /// Batches still allowed; negative means unarmed (no failures).
    budget: Arc<AtomicI64>,
}

impl<S: Store> FailingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            budget: Arc::new(AtomicI64::new(-1)),
        }
    }

    /// From now on, let `writes` batches through and fail the rest.
    pub fn fail_after(&self, writes: u32) {
        self.budget.store(i64::from(writes), Ordering::SeqCst);
    }

    /// Stop failing.
    pub fn heal(&self) {
        self.budget.store(-1, Ordering::SeqCst);
    }
}

impl<S: Store> Wraps for FailingStore<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait::async_trait]
impl<S: Store> Store for FailingStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        self.inner.get(ns, key).await
    }
    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        self.inner.get_many(ns, keys).await
    }
    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        self.inner.list(ns, opts).await
    }
    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        let allowed = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| match b {
                b if b < 0 => Some(b),
                0 => None,
                b => Some(b - 1),
            })
            .is_ok();
        if !allowed {
            return Err(StoreError::Backend("injected failure".into()));
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
