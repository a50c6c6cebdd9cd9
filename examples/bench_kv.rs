//! The kv layer on redb against raw redb doing the same work, side by side.
//!
//! `cargo run --release --example bench_kv [-- KEYS]` (default 100,000 keys of 100-byte values).
//!
//! - batched durable puts: batches of 1,000 keys, one fsync'd commit each;
//! - random gets: every key once in random order. Raw redb opens a read transaction per get, as
//!   a server answering independent requests would; couchkv is measured with one get in flight
//!   (latency-bound: each get crosses to a reader thread and back) and with 64 in flight (how a
//!   server sees it: the reader threads answer queued gets from one transaction);
//! - a full ordered list: every key in pages of 1,000 with a cursor (kv layer `list`), against
//!   raw redb reading the same pages, one read transaction per page;
//! - a reverse prefix list: the keys under a prefix newest-first in pages of 1,000, through the
//!   `Store` trait (Workers KV's own API has no reverse listing), against raw redb `.rev()`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::kv::{BulkPutItem, GetOptions, Kv, ListOptions, PutOptions};
use couchkv_adapters::{DynStore, ListOptions as StoreList, RedbStore};
use futures::StreamExt;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use redb::{ReadableDatabase, TableDefinition};

const RAW: TableDefinition<&str, &[u8]> = TableDefinition::new("raw");
const BATCH: usize = 1000;
const PAGE: usize = 1000;

fn key(i: usize) -> String {
    format!("user/{:04}/item/{i:08}", i % 1000)
}

struct Row {
    name: &'static str,
    ops: usize,
    raw: Duration,
    ours: Duration,
}

impl Row {
    fn print(&self) {
        let rate = |d: Duration| self.ops as f64 / d.as_secs_f64();
        println!(
            "{:<34} {:>12.0} {:>12.0} {:>8.2}",
            self.name,
            rate(self.raw),
            rate(self.ours),
            rate(self.ours) / rate(self.raw)
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let value = Bytes::from(vec![b'v'; 100]);
    let keys: Vec<String> = (0..n).map(key).collect();
    let mut shuffled = keys.clone();
    shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let mut rows = Vec::new();
    eprintln!(
        "bench_kv: {n} keys, 100-byte values, in {}",
        dir.path().display()
    );

    // --- raw redb ---
    let raw = redb::Database::create(dir.path().join("raw.redb")).unwrap();
    eprint!("raw redb: puts…");
    let t = Instant::now();
    for chunk in keys.chunks(BATCH) {
        let txn = raw.begin_write().unwrap();
        {
            let mut table = txn.open_table(RAW).unwrap();
            for k in chunk {
                table.insert(k.as_str(), value.as_ref()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let raw_put = t.elapsed();
    eprint!(" gets…");
    let t = Instant::now();
    for k in &shuffled {
        let txn = raw.begin_read().unwrap();
        let table = txn.open_table(RAW).unwrap();
        let v = table.get(k.as_str()).unwrap().unwrap();
        assert_eq!(v.value().len(), 100);
    }
    let raw_get = t.elapsed();
    eprint!(" list…");
    let t = Instant::now();
    let mut seen = 0;
    let mut after: Option<String> = None;
    loop {
        let txn = raw.begin_read().unwrap();
        let table = txn.open_table(RAW).unwrap();
        let range = match &after {
            None => table.range::<&str>(..).unwrap(),
            Some(a) => table
                .range::<&str>((
                    std::ops::Bound::Excluded(a.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .unwrap(),
        };
        let page: Vec<String> = range
            .take(PAGE)
            .map(|r| r.unwrap().0.value().to_owned())
            .collect();
        seen += page.len();
        if page.len() < PAGE {
            break;
        }
        after = page.last().cloned();
    }
    assert_eq!(seen, n);
    let raw_list = t.elapsed();
    eprint!(" reverse prefix list…");
    let prefix = "user/0";
    let t = Instant::now();
    let mut raw_rev = 0;
    let mut before: Option<String> = None;
    loop {
        let txn = raw.begin_read().unwrap();
        let table = txn.open_table(RAW).unwrap();
        let hi = before.clone().unwrap_or_else(|| "user/1".to_owned());
        let page: Vec<String> = table
            .range::<&str>(prefix..hi.as_str())
            .unwrap()
            .rev()
            .take(PAGE)
            .map(|r| r.unwrap().0.value().to_owned())
            .collect();
        raw_rev += page.len();
        if page.len() < PAGE {
            break;
        }
        before = page.last().cloned();
    }
    let raw_rev_time = t.elapsed();
    eprintln!(" done");
    drop(raw);

    // --- couchkv's kv layer on redb ---
    let store: DynStore = Arc::new(RedbStore::open(dir.path().join("couchkv.redb")).unwrap());
    let kv = Kv::new(
        store.clone(),
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    );
    let ns = kv.namespace(&kv.create_namespace("bench").await.unwrap().id);
    eprint!("couchkv: puts…");
    let t = Instant::now();
    for chunk in keys.chunks(BATCH) {
        let items = chunk
            .iter()
            .map(|k| BulkPutItem {
                key: k.clone(),
                value: value.clone(),
                options: PutOptions::default(),
            })
            .collect();
        ns.bulk_put(items).await.unwrap();
    }
    rows.push(Row {
        name: "batched durable puts (keys/s)",
        ops: n,
        raw: raw_put,
        ours: t.elapsed(),
    });
    eprint!(" gets…");
    let opts = GetOptions::default();
    let t = Instant::now();
    for k in &shuffled {
        let v = ns.get(k, &opts).await.unwrap().unwrap();
        assert_eq!(v.value.len(), 100);
    }
    rows.push(Row {
        name: "random gets, 1 in flight (gets/s)",
        ops: n,
        raw: raw_get,
        ours: t.elapsed(),
    });
    let t = Instant::now();
    let found = futures::stream::iter(shuffled.iter())
        .map(|k| {
            let ns = ns.clone();
            let opts = opts.clone();
            async move { ns.get(k, &opts).await.unwrap().unwrap().value.len() }
        })
        .buffer_unordered(64)
        .fold(0, |acc, len| async move { acc + len })
        .await;
    assert_eq!(found, n * 100);
    rows.push(Row {
        name: "random gets, 64 in flight (gets/s)",
        ops: n,
        raw: raw_get,
        ours: t.elapsed(),
    });
    eprint!(" list…");
    let t = Instant::now();
    let mut seen = 0;
    let mut cursor = None;
    loop {
        let page = ns
            .list(&ListOptions {
                prefix: None,
                limit: Some(PAGE as i64),
                cursor,
            })
            .await
            .unwrap();
        seen += page.keys.len();
        if page.list_complete {
            break;
        }
        cursor = page.cursor;
    }
    assert_eq!(seen, n);
    rows.push(Row {
        name: "full ordered list (keys/s)",
        ops: n,
        raw: raw_list,
        ours: t.elapsed(),
    });
    eprint!(" reverse prefix list…");
    let t = Instant::now();
    let mut ours_rev = 0;
    let mut o = StoreList {
        prefix: prefix.into(),
        reverse: true,
        limit: PAGE,
        ..StoreList::default()
    };
    loop {
        let page = store.list(ns.id(), &o).await.unwrap();
        ours_rev += page.entries.len();
        match page.entries.last() {
            Some(last) if page.more => o.end = std::ops::Bound::Excluded(last.key.clone()),
            _ => break,
        }
    }
    assert_eq!(ours_rev, raw_rev);
    rows.push(Row {
        name: "reverse prefix list (keys/s)",
        ops: raw_rev,
        raw: raw_rev_time,
        ours: t.elapsed(),
    });
    eprintln!(" done\n");
    store.close().await.unwrap();

    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "operation", "raw redb", "couchkv kv", "ratio"
    );
    for row in &rows {
        row.print();
    }
}
