//! The level conformance suite on every implementation and store: MemoryLevel, and KvLevel on
//! the memory store, on redb, and on a plain Workers KV namespace (every native capability
//! hidden). `run_all` runs each again through a sublevel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::kv::Kv;
use couchkv::level::conformance::run_all;
use couchkv::level::{KvLevel, LevelDb, MemoryLevel};
use couchkv_adapters::{DynStore, MemoryStore, PlainKvStore, RedbStore};

async fn kv_level(store: DynStore, root: &str) -> LevelDb {
    let kv = Kv::new(
        store,
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    );
    let ns = kv.create_namespace("level").await.unwrap();
    LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), root))
        .await
        .unwrap()
}

#[tokio::test]
async fn memory_level() {
    run_all(|| async { LevelDb::opened(MemoryLevel::new()).await.unwrap() }).await;
}

#[tokio::test]
async fn kv_level_on_memory_store() {
    run_all(|| kv_level(Arc::new(MemoryStore::new()), "")).await;
}

#[tokio::test]
async fn kv_level_on_memory_store_with_root() {
    run_all(|| kv_level(Arc::new(MemoryStore::new()), "app/")).await;
}

#[tokio::test]
async fn kv_level_on_plain_kv() {
    run_all(|| kv_level(Arc::new(PlainKvStore::new(MemoryStore::new())), "")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_level_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    run_all(|| {
        let path = dir
            .path()
            .join(format!("level-{}.redb", n.fetch_add(1, Ordering::Relaxed)));
        async move { kv_level(Arc::new(RedbStore::open(path).unwrap()), "").await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_level_on_postgres() {
    use couchkv_adapters::conformance::{postgres_store, postgres_url};
    let Some(url) = postgres_url() else { return };
    run_all(|| async { kv_level(Arc::new(postgres_store(&url, "level").await), "").await }).await;
}
