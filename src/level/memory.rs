//! `MemoryLevel`: the reference implementation, a sorted map under a lock. Everything is native;
//! nothing outlives the process. Edge-ready.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use couchkv_adapters::range::ByteRange;

use tokio::sync::broadcast;

use super::iter::narrowed;
use super::{
    boxed_keys, BatchOp, ErrorCode, KeyStream, Level, LevelError, Result, Resume, ScanPage,
    ScanRequest, Supports,
};

pub struct MemoryLevel {
    map: Mutex<BTreeMap<Vec<u8>, Bytes>>,
    /// Changed keys, sent under the map's lock so watchers see commit order.
    changes: broadcast::Sender<Vec<u8>>,
}

impl Default for MemoryLevel {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
            changes: broadcast::channel(4096).0,
        }
    }
}

impl MemoryLevel {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Bytes>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Level for MemoryLevel {
    fn supports(&self) -> Supports {
        Supports {
            snapshots: false,
            permanence: false,
            seek: true,
            clear: true,
            get_many: true,
            atomic_batch: true,
            native_ranges: true,
            max_key_bytes: None,
        }
    }

    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>> {
        let map = self.map();
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        let mut map = self.map();
        for op in ops {
            let key = match op {
                BatchOp::Put { key, value } => {
                    map.insert(key.clone(), value);
                    key
                }
                BatchOp::Del { key } => {
                    map.remove(&key);
                    key
                }
            };
            // An error only means nobody watches.
            let _ = self.changes.send(key);
        }
        Ok(())
    }

    async fn watch(&self, prefix: &[u8]) -> Result<KeyStream> {
        let rx = self.changes.subscribe();
        let prefix = prefix.to_vec();
        let stream = futures::stream::unfold(Some(rx), move |rx| {
            let prefix = prefix.clone();
            async move {
                let mut rx = rx?;
                loop {
                    match rx.recv().await {
                        Ok(k) if k.starts_with(&prefix) => return Some((Ok(k), Some(rx))),
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let e = LevelError::new(
                                ErrorCode::IoError,
                                format!("watch lagged behind by {n} changes"),
                            );
                            return Some((Err(e), None));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(boxed_keys(stream))
    }

    async fn scan(&self, req: &ScanRequest) -> Result<ScanPage> {
        let Some(range) = narrowed(req) else {
            return Ok(ScanPage::default());
        };
        let map = self.map();
        let iter = map.range::<Vec<u8>, ByteRange>(range);
        let mut entries = Vec::new();
        let mut more = false;
        let mut push = |(k, v): (&Vec<u8>, &Bytes)| {
            if entries.len() == req.limit {
                more = true;
                return false;
            }
            entries.push((k.clone(), req.values.then(|| v.clone())));
            true
        };
        if req.reverse {
            for e in iter.rev() {
                if !push(e) {
                    break;
                }
            }
        } else {
            for e in iter {
                if !push(e) {
                    break;
                }
            }
        }
        let resume = match entries.last() {
            Some((k, _)) if more => Some(Resume {
                after: k.clone(),
                ..Resume::default()
            }),
            _ => None,
        };
        Ok(ScanPage { entries, resume })
    }

    async fn clear(&self, range: &ByteRange) -> Result<()> {
        let mut map = self.map();
        let doomed: Vec<Vec<u8>> = map
            .range::<Vec<u8>, ByteRange>(range.clone())
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            map.remove(&k);
        }
        Ok(())
    }
}
