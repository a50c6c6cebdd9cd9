//! `MemoryLevel`: the reference implementation, a sorted map under a lock. Everything is native;
//! nothing outlives the process. Edge-ready.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use couchkv_adapters::range::ByteRange;

use super::iter::narrowed;
use super::{BatchOp, Level, Result, Resume, ScanPage, ScanRequest, Supports};

#[derive(Default)]
pub struct MemoryLevel {
    map: Mutex<BTreeMap<Vec<u8>, Bytes>>,
}

impl MemoryLevel {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Bytes>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
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
            match op {
                BatchOp::Put { key, value } => {
                    map.insert(key, value);
                }
                BatchOp::Del { key } => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
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
