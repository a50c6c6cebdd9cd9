//! A bounded cache of recently read records for a backend whose every write passes through one
//! writer in this process (redb). A hit is answered on the caller's thread, without the hop to
//! the backend's reader thread that dominates a small read.
//!
//! Staleness is ruled out with an epoch: the writer, after each commit and before acknowledging
//! it, removes the keys it wrote and bumps the epoch. A reader notes the epoch before its read
//! transaction begins and fills the cache only if no commit ended meanwhile; a read that raced a
//! commit may have seen the old value, so it is simply not cached.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Record;

/// Entries kept at most.
const MAX_ENTRIES: usize = 16 * 1024;
/// Bytes of values and metadata kept at most.
const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Larger values are not cached: copying them is not where their time goes.
const MAX_VALUE: usize = 64 * 1024;

#[derive(Default)]
pub(crate) struct HotCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Full backend key → the record, or `None` for a key known to be absent.
    map: HashMap<Box<[u8]>, Option<Record>>,
    bytes: usize,
    epoch: u64,
}

fn size(rec: &Option<Record>) -> usize {
    rec.as_ref().map_or(0, |r| {
        r.value.len() + r.metadata.as_ref().map_or(0, String::len)
    }) + 64
}

impl HotCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation below leaves the map consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(answer)` on a hit (the answer itself may be "absent").
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<Record>> {
        self.lock().map.get(key).cloned()
    }

    /// Read before the read transaction begins; hand back to [`HotCache::fill`].
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Caches what a read found, unless a commit ended since `epoch`.
    pub(crate) fn fill(&self, key: Vec<u8>, rec: &Option<Record>, epoch: u64) {
        if rec.as_ref().is_some_and(|r| r.value.len() > MAX_VALUE) {
            return;
        }
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        let add = size(rec);
        if inner.map.len() >= MAX_ENTRIES || inner.bytes + add > MAX_BYTES {
            // Drop an arbitrary eighth (hash order): cheap, and hot keys come back at once.
            let drop_n = inner.map.len() / 8 + 1;
            let victims: Vec<Box<[u8]>> = inner.map.keys().take(drop_n).cloned().collect();
            for k in victims {
                if let Some(old) = inner.map.remove(&k) {
                    inner.bytes -= size(&old);
                }
            }
        }
        if let Some(old) = inner.map.insert(key.into_boxed_slice(), rec.clone()) {
            inner.bytes -= size(&old);
        }
        inner.bytes += add;
    }

    /// Called by the writer after a commit, before acknowledging it.
    pub(crate) fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let mut inner = self.lock();
        inner.epoch += 1;
        for k in keys {
            if let Some(old) = inner.map.remove(k) {
                inner.bytes -= size(&old);
            }
        }
    }

    /// Forgets everything (a namespace went away).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.map.clear();
        inner.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(v: &'static str) -> Option<Record> {
        Some(Record {
            value: Bytes::from_static(v.as_bytes()),
            metadata: None,
            expiration: None,
            version: 1,
        })
    }

    #[test]
    fn a_read_that_raced_a_commit_is_not_cached() {
        let c = HotCache::default();
        let e = c.epoch();
        c.fill(b"k".to_vec(), &rec("old"), e);
        assert_eq!(c.get(b"k"), Some(rec("old")));
        // A read starts, a commit writes k, then the read (which saw "old") tries to fill.
        let e = c.epoch();
        c.invalidate([&b"k"[..]]);
        assert_eq!(c.get(b"k"), None);
        c.fill(b"k".to_vec(), &rec("old"), e);
        assert_eq!(c.get(b"k"), None, "a stale read stays out");
        let e = c.epoch();
        c.fill(b"k".to_vec(), &None, e);
        assert_eq!(c.get(b"k"), Some(None), "absence is cached too");
        c.clear();
        assert_eq!(c.get(b"k"), None);
    }

    #[test]
    fn stays_bounded() {
        let c = HotCache::default();
        for i in 0..(MAX_ENTRIES * 2) {
            let e = c.epoch();
            c.fill(format!("k{i}").into_bytes(), &rec("v"), e);
        }
        assert!(c.lock().map.len() <= MAX_ENTRIES);
    }
}
