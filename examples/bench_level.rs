//! The level layer (`KvLevel` on redb, through `LevelDb`) against the raw store doing the same
//! work through the `Store` trait, side by side.
//!
//! `cargo run --release --example bench_level [-- KEYS]` (default 100,000 keys, 100-byte values):
//! - writes in batches of 1,000 (one durable commit each);
//! - a forward iteration over a range holding every key, and the same in reverse. The raw store
//!   lists the same keys in pages of 1,000 with values.

use couchkv_adapters::Namespaces;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::kv::Kv;
use couchkv::level::{BatchOp, KvLevel, LevelDb, RangeOptions};
use couchkv_adapters::{Batch, DynStore, ListOptions, RedbStore, Store};

const BATCH: usize = 1000;

fn key(i: usize) -> String {
    format!("doc/{i:08}")
}

fn row(name: &str, n: usize, raw: Duration, ours: Duration) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{name:<32} {:>12.0} {:>12.0} {:>8.2}",
        rate(raw),
        rate(ours),
        rate(ours) / rate(raw)
    );
}

async fn raw_scan(store: &RedbStore, ns: &str, reverse: bool, n: usize) -> Duration {
    let t = Instant::now();
    let mut o = ListOptions {
        prefix: "doc/".into(),
        reverse,
        limit: 1000,
        values: true,
        ..ListOptions::default()
    };
    let mut seen = 0;
    loop {
        let page = store.list(ns, &o).await.unwrap();
        seen += page.entries.len();
        let Some(last) = page.entries.last() else {
            break;
        };
        if !page.more {
            break;
        }
        if reverse {
            o.end = Bound::Excluded(last.key.clone());
        } else {
            o.start = Bound::Excluded(last.key.clone());
        }
    }
    assert_eq!(seen, n);
    t.elapsed()
}

async fn level_scan(db: &LevelDb, reverse: bool, n: usize) -> Duration {
    let t = Instant::now();
    let mut opts = RangeOptions::all().gte("doc/").lt("doc0");
    opts.reverse = reverse;
    let mut it = db.iterator(opts).unwrap();
    let mut seen = 0;
    while let Some((_, v)) = it.next().await.unwrap() {
        assert_eq!(v.len(), 100);
        seen += 1;
    }
    assert_eq!(seen, n);
    t.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let value = Bytes::from(vec![b'v'; 100]);
    eprintln!("bench_level: {n} keys, 100-byte values");

    eprint!("raw store: writes…");
    let raw = RedbStore::open(dir.path().join("raw.redb")).unwrap();
    raw.create_namespace("raw", "raw").await.unwrap();
    let t = Instant::now();
    for start in (0..n).step_by(BATCH) {
        let mut b = Batch::new();
        for i in start..(start + BATCH).min(n) {
            b = b.put(key(i), value.clone());
        }
        raw.batch("raw", b).await.unwrap();
    }
    let raw_write = t.elapsed();
    eprint!(" forward…");
    let raw_fwd = raw_scan(&raw, "raw", false, n).await;
    eprint!(" reverse…");
    let raw_rev = raw_scan(&raw, "raw", true, n).await;
    eprintln!(" done");
    raw.close().await.unwrap();

    eprint!("level: writes…");
    let store: DynStore = Arc::new(RedbStore::open(dir.path().join("level.redb")).unwrap());
    let kv = Kv::new(
        store.clone(),
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    );
    let ns = kv.create_namespace("level").await.unwrap();
    let db = LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), ""))
        .await
        .unwrap();
    let t = Instant::now();
    for start in (0..n).step_by(BATCH) {
        let ops = (start..(start + BATCH).min(n))
            .map(|i| BatchOp::put(key(i), value.clone()))
            .collect();
        db.batch(ops).await.unwrap();
    }
    let level_write = t.elapsed();
    eprint!(" forward…");
    let level_fwd = level_scan(&db, false, n).await;
    eprint!(" reverse…");
    let level_rev = level_scan(&db, true, n).await;
    eprintln!(" done\n");
    store.close().await.unwrap();

    println!(
        "{:<32} {:>12} {:>12} {:>8}",
        "operation (per second)", "raw store", "KvLevel", "ratio"
    );
    row("writes, batches of 1,000", n, raw_write, level_write);
    row("forward range iteration", n, raw_fwd, level_fwd);
    row("reverse range iteration", n, raw_rev, level_rev);
}
