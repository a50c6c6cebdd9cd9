//! The conformance suite against every backend, directly, through `Arc<dyn Store>` and through
//! the prefix wrapper. A new backend is one more test here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use couchkv_adapters::conformance::run_all;
use couchkv_adapters::{
    DynStore, MemoryStore, Namespaces, PlainKvStore, PrefixStore, RedbStore, StoreExt,
};

#[tokio::test]
async fn memory() {
    run_all(|| async { MemoryStore::new() }).await;
}

#[tokio::test]
async fn memory_dyn() {
    run_all(|| async { Arc::new(MemoryStore::new()) as DynStore }).await;
}

#[tokio::test]
async fn memory_prefixed() {
    run_all(|| async { PrefixStore::new(MemoryStore::new(), "sub/é/") }).await;
}

#[tokio::test]
async fn plain_kv_over_memory() {
    run_all(|| async { PlainKvStore::new(MemoryStore::new()) }).await;
}

/// A fresh redb file per case, all under one temporary directory.
fn redb_factory() -> (tempfile::TempDir, impl Fn() -> RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let n = AtomicUsize::new(0);
    let make = move || {
        let i = n.fetch_add(1, Ordering::Relaxed);
        RedbStore::open(path.join(format!("case-{i}.redb"))).unwrap()
    };
    (dir, make)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb() {
    let (_dir, make) = redb_factory();
    run_all(|| async { make() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_dyn() {
    let (_dir, make) = redb_factory();
    run_all(|| async { Arc::new(make()) as DynStore }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_prefixed() {
    let (_dir, make) = redb_factory();
    run_all(|| async { PrefixStore::new(make(), "p\u{0}") }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_reopen_keeps_data_and_versions() {
    use couchkv_adapters::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let store = RedbStore::open(&path).unwrap();
    store.create_namespace("ns", "t").await.unwrap();
    let v = store.put("ns", "k", "v".into()).await.unwrap();
    store.close().await.unwrap();
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.get("ns", "k").await.unwrap().unwrap().value, "v");
    let v2 = store.put("ns", "k2", "v".into()).await.unwrap();
    assert!(v2 > v, "versions keep growing across a reopen");
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    use couchkv_adapters::conformance::{postgres_store, postgres_url};
    let Some(url) = postgres_url() else { return };
    run_all(|| postgres_store(&url, "conf")).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_prefixed() {
    use couchkv_adapters::conformance::{postgres_store, postgres_url};
    let Some(url) = postgres_url() else { return };
    run_all(|| async { PrefixStore::new(postgres_store(&url, "pref").await, "p\u{0}") }).await;
}
