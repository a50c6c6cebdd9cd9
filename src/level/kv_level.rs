//! `KvLevel`: the Level over a Workers KV namespace, through sorted key prefixes.
//!
//! Every level key `k` is stored as the KV key `root ‖ "d" ‖ encode(k)` (see [`keycode`]: the
//! encoding keeps byte order, so KV's list order is the level's key order). With a KV key limit
//! of 512 bytes, the longest level key is `floor((511 - root.len()) * 6 / 8)` bytes: 383 with an
//! empty root, sublevel prefixes included (less on a store that holds shorter keys: 376 on a
//! Worker's KV binding).
//!
//! It asks the store below what it does ([`Capabilities`]) and takes the fast path where there
//! is one:
//! - **ranges**: bounds, reverse and values in one list call; otherwise a forward list by the
//!   range's common prefix with a cursor, skipping keys below the range, one get per value, and
//!   reverse by reading the range's keys forward first.
//! - **atomic batch**: one store batch; otherwise a **journal**: the whole batch is first written
//!   as one KV value under `root ‖ "j" ‖ id`, then each write is applied, then the journal entry
//!   is deleted. [`Level::open`] replays any entry left by a crash, so after a crash a batch is
//!   there whole or not at all. While it is being applied, readers can see part of it.
//!
//! [`keycode`]: super::keycode

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use couchkv_adapters::range::{contains, ByteRange};
use couchkv_adapters::{Capabilities, Durability, ListOptions as StoreList};
use futures::{StreamExt, TryStreamExt};

use super::iter::narrowed;
use super::keycode;
use super::{
    boxed_keys, common_prefix, BatchOp, ErrorCode, KeyStream, Level, LevelError, Result, Resume,
    ScanPage, ScanRequest, Supports,
};
use crate::kv::{self, KvError, KvNamespace, PutOptions, Write};

/// Workers KV's key limit (a store may hold less: its `max_key_bytes`).
const KV_KEY_BYTES: usize = 512;
/// Writes of a journaled batch applied at once.
const APPLY_CONCURRENCY: usize = 16;

pub struct KvLevel {
    ns: KvNamespace,
    data: String,
    journal: String,
    caps: Capabilities,
    next_journal: AtomicU64,
}

impl KvLevel {
    /// A level over `ns`, keeping its keys under `root` (which may be empty).
    pub fn new(ns: KvNamespace, root: &str) -> Self {
        let caps = ns.capabilities();
        Self {
            ns,
            data: format!("{root}d"),
            journal: format!("{root}j"),
            caps,
            next_journal: AtomicU64::new(0),
        }
    }

    fn kv_key(&self, key: &[u8]) -> String {
        let mut s = String::with_capacity(self.data.len() + keycode::encoded_len(key.len()));
        s.push_str(&self.data);
        keycode::encode_into(key, &mut s);
        s
    }

    fn writes(&self, ops: Vec<BatchOp>) -> Vec<Write> {
        ops.into_iter()
            .map(|op| match op {
                BatchOp::Put { key, value } => Write::Put {
                    key: self.kv_key(&key),
                    value,
                },
                BatchOp::Del { key } => Write::Delete {
                    key: self.kv_key(&key),
                },
            })
            .collect()
    }

    fn level_key(&self, kv_key: &str) -> Result<Vec<u8>> {
        kv_key
            .strip_prefix(&self.data)
            .and_then(keycode::decode)
            .ok_or_else(|| {
                LevelError::new(
                    ErrorCode::Corruption,
                    format!("{kv_key:?} is not a level key"),
                )
            })
    }

    fn kv_bound(&self, b: &Bound<Vec<u8>>) -> Bound<String> {
        match b {
            Bound::Included(k) => Bound::Included(self.kv_key(k)),
            Bound::Excluded(k) => Bound::Excluded(self.kv_key(k)),
            Bound::Unbounded => Bound::Unbounded,
        }
    }

    async fn write_one(&self, op: BatchOp) -> Result<()> {
        match op {
            BatchOp::Put { key, value } => {
                self.ns
                    .put(&self.kv_key(&key), value, PutOptions::default())
                    .await?
            }
            BatchOp::Del { key } => self.ns.delete(&self.kv_key(&key)).await?,
        }
        Ok(())
    }

    /// Applies writes one by one (several at a time); safe to repeat.
    async fn apply_each(&self, ops: Vec<BatchOp>) -> Result<()> {
        futures::stream::iter(ops.into_iter().map(|op| self.write_one(op)))
            .buffer_unordered(APPLY_CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    async fn journaled_batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        // The last write to a key is the one that counts; the rest can be applied in any order.
        let mut last = std::collections::HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            last.insert(op.key().to_vec(), i);
        }
        let ops: Vec<BatchOp> = ops
            .into_iter()
            .enumerate()
            .filter(|(i, op)| last.get(op.key()) == Some(i))
            .map(|(_, op)| op)
            .collect();
        let id = self.next_journal.fetch_add(1, Ordering::SeqCst);
        let entry = format!("{}{id:016x}", self.journal);
        match self
            .ns
            .put(&entry, encode_journal(&ops), PutOptions::default())
            .await
        {
            Err(KvError::ValueTooLarge(n)) => {
                return Err(LevelError::new(
                    ErrorCode::NotSupported,
                    format!("a batch of {n} bytes is too large for one journal entry (25 MiB) on a store without atomic batches"),
                ))
            }
            other => other?,
        }
        self.apply_each(ops).await?;
        self.ns.delete(&entry).await?;
        Ok(())
    }

    /// Finishes every batch a crash interrupted.
    async fn replay(&self) -> Result<()> {
        let mut cursor = None;
        let mut entries = Vec::new();
        loop {
            let page = self
                .ns
                .list(&kv::ListOptions {
                    prefix: Some(self.journal.clone()),
                    limit: None,
                    cursor,
                })
                .await?;
            entries.extend(page.keys.into_iter().map(|k| k.name));
            if page.list_complete {
                break;
            }
            cursor = page.cursor;
        }
        let mut next = 0;
        for entry in entries {
            if let Some(id) = entry
                .strip_prefix(&self.journal)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                next = next.max(id + 1);
            }
            let Some(value) = self.ns.get(&entry, &kv::GetOptions::default()).await? else {
                continue;
            };
            let ops = decode_journal(&value.value).ok_or_else(|| {
                LevelError::new(
                    ErrorCode::Corruption,
                    format!("journal entry {entry:?} cannot be read"),
                )
            })?;
            self.apply_each(ops).await?;
            self.ns.delete(&entry).await?;
        }
        self.next_journal.fetch_max(next, Ordering::SeqCst);
        Ok(())
    }

    async fn scan_native(&self, req: &ScanRequest) -> Result<ScanPage> {
        let Some((lo, hi)) = narrowed(req) else {
            return Ok(ScanPage::default());
        };
        let page = self
            .ns
            .scan(&StoreList {
                prefix: self.data.clone(),
                start: self.kv_bound(&lo),
                end: self.kv_bound(&hi),
                reverse: req.reverse,
                limit: req.limit,
                values: req.values,
            })
            .await?;
        let entries = page
            .entries
            .into_iter()
            .map(|e| Ok((self.level_key(&e.key)?, e.value)))
            .collect::<Result<Vec<_>>>()?;
        let resume = match entries.last() {
            Some((k, _)) if page.more => Some(Resume {
                after: k.clone(),
                ..Resume::default()
            }),
            _ => None,
        };
        Ok(ScanPage { entries, resume })
    }

    /// The KV prefix every key of the range shares: the whole characters of the encoding of
    /// the range's common byte prefix.
    fn list_prefix(&self, range: &ByteRange) -> String {
        let common = common_prefix(range);
        let mut p = self.data.clone();
        let whole = common.len() * 8 / 6;
        let enc = keycode::encode(&common);
        p.push_str(&enc[..whole]);
        p
    }

    /// One forward KV page of the range: the keys in it, and the cursor if the range goes on.
    async fn plain_page(
        &self,
        range: &ByteRange,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<Vec<u8>>, Option<String>)> {
        let page = self
            .ns
            .list(&kv::ListOptions {
                prefix: Some(self.list_prefix(range)),
                limit: Some(limit.min(1000) as i64),
                cursor,
            })
            .await?;
        let mut keys = Vec::with_capacity(page.keys.len());
        for k in &page.keys {
            let key = self.level_key(&k.name)?;
            if contains(&range.0, &range.1, &key) {
                keys.push(key);
            } else if !contains(&Bound::Unbounded, &range.1, &key) {
                // Past the upper bound: nothing further can be in range.
                return Ok((keys, None));
            }
        }
        let next = if page.list_complete {
            None
        } else {
            page.cursor
        };
        Ok((keys, next))
    }

    async fn with_values(
        &self,
        keys: Vec<Vec<u8>>,
        values: bool,
    ) -> Result<Vec<(Vec<u8>, Option<Bytes>)>> {
        if !values {
            return Ok(keys.into_iter().map(|k| (k, None)).collect());
        }
        let got = self.get_many(&keys).await?;
        Ok(keys.into_iter().zip(got).collect())
    }

    async fn scan_plain(&self, req: &ScanRequest) -> Result<ScanPage> {
        if !req.reverse {
            let cursor = req.resume.as_ref().and_then(|r| r.cursor.clone());
            let (keys, cursor) = self.plain_page(&req.range, req.limit, cursor).await?;
            let resume = cursor.map(|c| Resume {
                after: keys.last().cloned().unwrap_or_default(),
                cursor: Some(c),
                pending: Vec::new(),
            });
            let entries = self.with_values(keys, req.values).await?;
            return Ok(ScanPage { entries, resume });
        }
        // Reverse without native support: read the range's keys forward once, then hand them
        // out from the end, a page at a time.
        let mut pending = match &req.resume {
            Some(r) => r.pending.clone(),
            None => {
                let mut all = Vec::new();
                let mut cursor = None;
                loop {
                    let (keys, next) = self.plain_page(&req.range, 1000, cursor).await?;
                    all.extend(keys);
                    match next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                all.reverse();
                all
            }
        };
        let rest = pending.split_off(req.limit.min(pending.len()));
        let resume = (!rest.is_empty()).then(|| Resume {
            after: pending.last().cloned().unwrap_or_default(),
            cursor: None,
            pending: rest,
        });
        let entries = self.with_values(pending, req.values).await?;
        Ok(ScanPage { entries, resume })
    }
}

#[async_trait::async_trait]
impl Level for KvLevel {
    fn supports(&self) -> Supports {
        Supports {
            snapshots: false,
            permanence: self.caps.durable,
            seek: true,
            clear: true,
            get_many: true,
            atomic_batch: self.caps.atomic_batch,
            native_ranges: self.caps.ranges,
            max_key_bytes: Some(keycode::max_key_len(
                self.caps.max_key_bytes.min(KV_KEY_BYTES) - self.data.len(),
            )),
        }
    }

    async fn open(&self) -> Result<()> {
        if self.caps.atomic_batch {
            Ok(())
        } else {
            self.replay().await
        }
    }

    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>> {
        let kv_keys: Vec<String> = keys.iter().map(|k| self.kv_key(k)).collect();
        let got = self.ns.get_many(&kv_keys).await?;
        Ok(got.into_iter().map(|v| v.map(|v| v.value)).collect())
    }

    async fn batch(&self, mut ops: Vec<BatchOp>) -> Result<()> {
        if ops.len() == 1 {
            // One KV write is atomic by itself.
            return self.write_one(ops.remove(0)).await;
        }
        if !self.caps.atomic_batch {
            return self.journaled_batch(ops).await;
        }
        Ok(self.ns.write_batch(self.writes(ops)).await?)
    }

    async fn batch_if(
        &self,
        guard: &[u8],
        expected: Option<&[u8]>,
        ops: Vec<BatchOp>,
        durability: Durability,
    ) -> Result<bool> {
        if !self.caps.atomic_batch {
            // The journal's path: checked by a read first (one writer per namespace there).
            return super::batch_if_by_reading(self, guard, expected, ops).await;
        }
        let (guard, writes) = (self.kv_key(guard), self.writes(ops));
        Ok((self
            .ns
            .write_batch_if_with(&guard, expected, writes, durability))
        .await?)
    }

    async fn scan(&self, req: &ScanRequest) -> Result<ScanPage> {
        if self.caps.ranges {
            self.scan_native(req).await
        } else {
            self.scan_plain(req).await
        }
    }

    async fn watch(&self, prefix: &[u8]) -> Result<KeyStream> {
        // The KV prefix holds the whole characters of the encoded prefix; the partial last one
        // can let in neighbours, which the filter below drops.
        let mut kv_prefix = self.data.clone();
        let enc = keycode::encode(prefix);
        kv_prefix.push_str(&enc[..prefix.len() * 8 / 6]);
        let events = self.ns.watch(&kv_prefix).await?;
        let data = self.data.clone();
        let prefix = prefix.to_vec();
        let keys = events.filter_map(move |ev| {
            let out = match ev {
                Ok(ev) => ev
                    .key
                    .strip_prefix(&data)
                    .and_then(keycode::decode)
                    .filter(|k| k.starts_with(&prefix))
                    .map(Ok),
                Err(e) => Some(Err(LevelError::new(ErrorCode::IoError, e.to_string()))),
            };
            futures::future::ready(out)
        });
        Ok(boxed_keys(keys))
    }
}

/// A journal entry: per write, a tag (0 put, 1 delete), the key's length (u32 LE) and the key,
/// and for a put the value's length (u32 LE) and the value.
fn encode_journal(ops: &[BatchOp]) -> Bytes {
    let mut out = Vec::new();
    for op in ops {
        match op {
            BatchOp::Put { key, value } => {
                out.push(0);
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key);
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                out.extend_from_slice(value);
            }
            BatchOp::Del { key } => {
                out.push(1);
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key);
            }
        }
    }
    Bytes::from(out)
}

fn decode_journal(mut raw: &[u8]) -> Option<Vec<BatchOp>> {
    fn take<'a>(raw: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, rest) = raw.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (item, rest) = (rest.get(..len)?, rest.get(len..)?);
        *raw = rest;
        Some(item)
    }
    let mut ops = Vec::new();
    while let Some((&tag, rest)) = raw.split_first() {
        raw = rest;
        let key = take(&mut raw)?.to_vec();
        ops.push(match tag {
            0 => BatchOp::Put {
                key,
                value: Bytes::copy_from_slice(take(&mut raw)?),
            },
            1 => BatchOp::Del { key },
            _ => return None,
        });
    }
    Some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_roundtrip_and_truncation() {
        let ops = vec![
            BatchOp::put(b"a".to_vec(), Bytes::from_static(b"1")),
            BatchOp::del(b"".to_vec()),
            BatchOp::put(vec![0, 255], Bytes::new()),
        ];
        let raw = encode_journal(&ops);
        assert_eq!(decode_journal(&raw), Some(ops));
        for cut in 1..raw.len() {
            // Every cut short of the end is either a shorter valid prefix or rejected; never a
            // panic.
            let _ = decode_journal(&raw[..cut]);
        }
        assert_eq!(decode_journal(&[9, 0, 0, 0, 0]), None);
    }
}
