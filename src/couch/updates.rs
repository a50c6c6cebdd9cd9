//! `_db_updates`: a feed of databases created, updated and deleted, one row per database (its
//! latest event), kept in the registry's level database under `!u!`:
//! - `c` → the feed's last sequence;
//! - `s` ‖ sequence (8 bytes big-endian) → `{"db_name", "type"}`;
//! - `n` ‖ name → the sequence of the database's row (the older row goes when a newer comes).
//!
//! Creations and deletions are recorded as they happen. A commit to a database only marks it in
//! memory; [`DbUpdates::flush`] records the marked ones together, a few times a second (the
//! host's timer), so document writes to different databases keep sharing no key. The price: a
//! process killed within that interval loses the `updated` rows of its last writes (never a
//! write itself), and a follower sees an update up to one interval late.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use serde_json::{json, Value};

use super::error::{CouchError, Result};
use crate::level::{BatchOp, KeyStream, LevelDb, RangeOptions};

/// How often the host should call [`DbUpdates::flush`].
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Conditional appends retried when other nodes keep appending.
const APPEND_ATTEMPTS: usize = 50;

/// One page of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatesPage {
    pub results: Vec<Value>,
    pub last_seq: u64,
}

/// The feed, and the databases updated since the last flush.
pub struct DbUpdates {
    log: LevelDb,
    marked: Mutex<HashMap<String, &'static str>>,
}

const COUNTER: &[u8] = b"c";

fn seq_key(seq: u64) -> Vec<u8> {
    [b"s".as_slice(), &seq.to_be_bytes()].concat()
}

fn name_key(name: &str) -> Vec<u8> {
    [b"n".as_slice(), name.as_bytes()].concat()
}

impl DbUpdates {
    pub fn new(log: LevelDb) -> Self {
        Self {
            log,
            marked: Mutex::new(HashMap::new()),
        }
    }

    fn marked(&self) -> std::sync::MutexGuard<'_, HashMap<String, &'static str>> {
        self.marked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a database written to; recorded at the next flush.
    pub fn touch(&self, name: &str) {
        let mut m = self.marked();
        if !m.contains_key(name) {
            m.insert(name.to_owned(), "updated");
        }
    }

    /// Takes the marked databases out, for a host that records them elsewhere (the edge: a
    /// database's object reports them to the registry, which holds the feed).
    pub fn take_marked(&self) -> Vec<(String, &'static str)> {
        self.marked().drain().collect()
    }

    /// Records a creation or deletion now (with any marked updates).
    pub async fn record(&self, name: &str, kind: &'static str) -> Result<()> {
        self.marked().insert(name.to_owned(), kind);
        self.flush().await
    }

    /// Records the marked databases, one row each, in one conditional append.
    pub async fn flush(&self) -> Result<()> {
        let batch: Vec<(String, &'static str)> = self.marked().drain().collect();
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.append(&batch).await;
        if result.is_err() {
            // Not recorded: keep them for the next flush (a newer mark wins).
            let mut m = self.marked();
            for (name, kind) in batch {
                m.entry(name).or_insert(kind);
            }
        }
        result
    }

    async fn append(&self, batch: &[(String, &'static str)]) -> Result<()> {
        for _ in 0..APPEND_ATTEMPTS {
            let stored = self.log.get(COUNTER).await?;
            let mut seq = parse_seq(stored.as_deref())?;
            let names: Vec<Vec<u8>> = batch.iter().map(|(n, _)| name_key(n)).collect();
            let olds = self.log.get_many(&names).await?;
            let mut ops = Vec::new();
            for (((name, kind), key), old) in batch.iter().zip(names).zip(olds) {
                if let Some(old) = old {
                    ops.push(BatchOp::del(seq_key(parse_seq(Some(&old))?)));
                }
                seq += 1;
                ops.push(BatchOp::put(
                    seq_key(seq),
                    Bytes::from(json!({"db_name": name, "type": kind}).to_string()),
                ));
                ops.push(BatchOp::put(key, Bytes::from(seq.to_string())));
            }
            ops.push(BatchOp::put(COUNTER.to_vec(), Bytes::from(seq.to_string())));
            if self.log.batch_if(COUNTER, stored.as_deref(), ops).await? {
                return Ok(());
            }
        }
        Err(CouchError::unavailable(
            "other nodes kept recording database updates in between",
        ))
    }

    /// The feed's last sequence (`since=now`).
    pub async fn last_seq(&self) -> Result<u64> {
        parse_seq(self.log.get(COUNTER).await?.as_deref())
    }

    /// Rows after `since` (before `before`, newest first, with `descending`), at most `limit`.
    pub async fn page(
        &self,
        since: u64,
        before: Option<u64>,
        limit: Option<usize>,
        descending: bool,
    ) -> Result<UpdatesPage> {
        let mut range = RangeOptions {
            gt: Some(seq_key(since)),
            lt: Some(match before {
                Some(b) => seq_key(b),
                None => b"t".to_vec(),
            }),
            reverse: descending,
            limit,
            ..RangeOptions::default()
        };
        if descending && since == 0 {
            range.gt = Some(b"s".to_vec());
        }
        let mut it = self.log.iterator(range)?;
        let mut out = UpdatesPage {
            results: Vec::new(),
            last_seq: since,
        };
        while let Some((k, v)) = it.next().await? {
            let seq = k
                .get(1..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| CouchError::internal("corrupt database update key"))?;
            let mut row: Value = serde_json::from_slice(&v)
                .map_err(|_| CouchError::internal("corrupt database update"))?;
            row["seq"] = json!(seq);
            out.results.push(row);
            out.last_seq = seq;
        }
        Ok(out)
    }

    /// Wakes on every append, from the moment of the call.
    pub async fn watch(&self) -> Result<KeyStream> {
        Ok(self.log.watch(COUNTER).await?)
    }
}

fn parse_seq(raw: Option<&[u8]>) -> Result<u64> {
    match raw {
        None => Ok(0),
        Some(raw) => std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CouchError::internal("corrupt database updates counter")),
    }
}
