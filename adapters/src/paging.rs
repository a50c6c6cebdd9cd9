//! Listing a plain Workers KV namespace — forward by prefix, in pages joined by opaque cursors —
//! as [`Store::list`](crate::Store::list) asks: a page of at most `limit` keys after a given key.
//! Shared by the backends that speak to Workers KV (its REST API, a Worker's binding).
//!
//! The service cannot start a list after a key, only at a cursor it handed out. So each handle
//! remembers, for the last key of every page it returned, the cursor of the service's page that
//! key came from: resuming there and skipping what is not after the key finds every later key.
//! A key it has no cursor for (another handle's page, a forgotten one) is found by paging from
//! the prefix's start and skipping.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::sync::Mutex;

use crate::{ListEntry, ListOptions, ListPage, Result, StoreError};

/// A key as the service lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedKey {
    pub name: String,
    /// The metadata as JSON text.
    pub metadata: Option<String>,
    pub expiration: Option<u64>,
}

/// One page from the service: its keys and the cursor of the next page, if any.
pub type ServicePage = (Vec<ListedKey>, Option<String>);

/// (scope, prefix, last key of a page) → the cursor to resume from.
type CursorKey = (String, String, String);

/// Cursors remembered before the cache starts over.
const CURSOR_CACHE: usize = 4096;

/// The cursors a handle was given, by the last key of the page they lead past.
#[derive(Default)]
pub struct Cursors {
    map: Mutex<HashMap<CursorKey, String>>,
}

/// Refuses what a plain namespace cannot list: bounds, reverse, values, a start that is not a
/// cursor. Returns the key to list after, if any.
pub fn plain_start(opts: &ListOptions) -> Result<Option<&str>> {
    if opts.reverse || opts.values || !matches!(opts.end, Bound::Unbounded) {
        return Err(StoreError::NotSupported(
            "Workers KV lists forward by prefix only, without values",
        ));
    }
    match &opts.start {
        Bound::Unbounded => Ok(None),
        Bound::Excluded(k) => Ok(Some(k.as_str())),
        Bound::Included(_) => Err(StoreError::NotSupported(
            "Workers KV resumes a list only after a cursor",
        )),
    }
}

impl Cursors {
    /// A page of `opts` in namespace `scope`, from `fetch(limit, cursor)` pages of the service.
    /// A cursor the service no longer takes (an error on the first request) is dropped and the
    /// list pages from the prefix's start instead.
    pub async fn list<F, Fut>(&self, scope: &str, opts: &ListOptions, fetch: F) -> Result<ListPage>
    where
        F: Fn(usize, Option<String>) -> Fut,
        Fut: Future<Output = Result<ServicePage>>,
    {
        let after = plain_start(opts)?;
        let limit = opts.limit.max(1);
        let cache_key = |last: &str| (scope.to_owned(), opts.prefix.clone(), last.to_owned());
        let mut cursor = after.and_then(|k| {
            let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&cache_key(k)).cloned()
        });
        let mut entries = Vec::new();
        let mut more = false;
        // Where the page the last entry came from started: resuming there and skipping finds
        // every key after it.
        let mut page_start: Option<String>;
        loop {
            page_start = cursor.clone();
            // One more than asked makes `more` exact; the service lists at least 10.
            let want = (limit - entries.len() + 1).clamp(10, 1000);
            let (keys, next) = match fetch(want, cursor.clone()).await {
                Err(StoreError::Backend(_)) if cursor.is_some() && entries.is_empty() => {
                    cursor = None;
                    continue;
                }
                r => r?,
            };
            let mut fresh = keys
                .into_iter()
                .filter(|k| after.is_none_or(|a| k.name.as_str() > a));
            for k in fresh.by_ref() {
                if entries.len() == limit {
                    more = true;
                    break;
                }
                entries.push(ListEntry {
                    key: k.name,
                    metadata: k.metadata,
                    expiration: k.expiration,
                    version: 0,
                    value: None,
                });
            }
            if more {
                break;
            }
            match next {
                Some(c) if entries.len() == limit => {
                    // Full, and the service says more may follow: resume from its cursor.
                    more = true;
                    page_start = Some(c);
                    break;
                }
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        if let (true, Some(last), Some(start)) = (more, entries.last(), page_start) {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= CURSOR_CACHE {
                map.clear();
            }
            map.insert(cache_key(&last.key), start);
        }
        Ok(ListPage { entries, more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service of `n` keys `k000`… listing `limit` at a time, cursors being offsets.
    fn service(
        n: usize,
    ) -> impl Fn(usize, Option<String>) -> std::future::Ready<Result<ServicePage>> {
        move |limit, cursor| {
            let from: usize = cursor.map_or(0, |c| c.parse().unwrap());
            let to = (from + limit).min(n);
            let keys = (from..to)
                .map(|i| ListedKey {
                    name: format!("k{i:03}"),
                    metadata: None,
                    expiration: None,
                })
                .collect();
            std::future::ready(Ok((keys, (to < n).then(|| to.to_string()))))
        }
    }

    #[tokio::test]
    async fn pages_resume_after_their_last_key_with_or_without_a_cursor() {
        {
            let cursors = Cursors::default();
            let mut opts = ListOptions {
                limit: 7,
                ..ListOptions::default()
            };
            let mut seen = Vec::new();
            loop {
                let page = cursors.list("ns", &opts, service(30)).await.unwrap();
                seen.extend(page.entries.iter().map(|e| e.key.clone()));
                match page.entries.last() {
                    Some(last) if page.more => opts.start = Bound::Excluded(last.key.clone()),
                    _ => break,
                }
            }
            let want: Vec<String> = (0..30).map(|i| format!("k{i:03}")).collect();
            assert_eq!(seen, want);
            // Another handle, without the cursors, finds the same page.
            opts.start = Bound::Excluded("k013".into());
            let page = Cursors::default()
                .list("ns", &opts, service(30))
                .await
                .unwrap();
            assert_eq!(page.entries[0].key, "k014");
            assert!(page.more);
        }
    }
}
