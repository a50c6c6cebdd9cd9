//! The shared conformance suite: every backend, and every wrapper around one, runs it.
//!
//! A factory hands out a fresh, empty store per case; [`run_all`] runs every case and says which
//! one it is on. Cases panic (assert) on the first broken promise of the [`Store`] contract.
//! Cases skip what the store's [`Capabilities`] say it does not do natively.
//!
//! ```ignore
//! couchkv_adapters::conformance::run_all(|| async { MemoryStore::new() }).await;
//! ```

use crate::StoreExt;
use std::future::Future;
use std::ops::Bound;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Batch, EventKind, EventStream, Expect, ListOptions, Op, Store, StoreError};

mod reads;
mod writes;

pub use reads::*;
pub use writes::*;

const NS: &str = "0123456789abcdef0123456789abcdef";

/// Runs every case, each on a fresh store from `factory`; returns how many ran (each panics on
/// a broken promise).
pub async fn run_all<S, F, Fut>(factory: F) -> usize
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let mut ran = 0;
    macro_rules! case {
        ($name:ident) => {{
            eprintln!("conformance: {}", stringify!($name));
            let store = factory().await;
            $name(&store).await;
            let _ = store.close().await;
            ran += 1;
        }};
    }
    case!(namespaces);
    case!(namespace_isolation);
    case!(put_get_delete);
    case!(get_many);
    case!(byte_order);
    case!(list_paging);
    case!(list_ranges);
    case!(list_values);
    case!(atomic_batch);
    case!(preconditions);
    case!(watch);
    case!(expiry);
    case!(large_items);
    case!(closed);
    ran
}

async fn fresh<S: Store + ?Sized>(store: &S) {
    store
        .create_namespace(NS, "conformance")
        .await
        .expect("create the case's namespace");
}

fn keys(page: &crate::ListPage) -> Vec<&str> {
    page.entries.iter().map(|e| e.key.as_str()).collect()
}

fn opts(prefix: &str, limit: usize) -> ListOptions {
    ListOptions {
        prefix: prefix.into(),
        limit,
        ..ListOptions::default()
    }
}

/// Resolves to `None` when `fut` takes longer than `ms` (a thread-backed timer, so the suite
/// needs no particular executor). Inside a Worker there are no threads: there it waits for the
/// future (a hang ends the request instead).
pub async fn within<T>(ms: u64, fut: impl Future<Output = T>) -> Option<T> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = ms;
        Some(fut.await)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use futures::channel::oneshot;
        use futures::future::{select, Either};
        let (tx, rx) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            let _ = tx.send(());
        });
        match select(std::pin::pin!(fut), rx).await {
            Either::Left((v, _)) => Some(v),
            Either::Right(_) => None,
        }
    }
}

/// Applies `ops` as one batch where the store has atomic batches, else one batch per op; returns
/// the version of each op.
async fn apply<S: Store + ?Sized>(store: &S, ops: Vec<Op>) -> Vec<u64> {
    if store.capabilities().atomic_batch {
        let n = ops.len();
        let v = store
            .batch(
                NS,
                Batch {
                    ops,
                    preconditions: vec![],
                    durability: Default::default(),
                },
            )
            .await
            .unwrap();
        vec![v; n]
    } else {
        let mut versions = Vec::new();
        for op in ops {
            let batch = Batch {
                ops: vec![op],
                preconditions: vec![],
                durability: Default::default(),
            };
            versions.push(store.batch(NS, batch).await.unwrap());
        }
        versions
    }
}

async fn next_event(stream: &mut EventStream) -> crate::Event {
    within(5000, stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream is still open")
        .expect("no watch error")
}

/// The throwaway PostgreSQL the tests run against: `COUCHKV_TEST_POSTGRES` (set by
/// `scripts/postgres.sh`, which the test command runs). Without it the PostgreSQL tests are
/// skipped with a message, unless `COUCHKV_REQUIRE_POSTGRES` is set (as the test command does),
/// which makes its absence a failure.
#[cfg(feature = "postgres")]
pub fn postgres_url() -> Option<String> {
    match std::env::var("COUCHKV_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("COUCHKV_REQUIRE_POSTGRES").is_none(),
                "COUCHKV_TEST_POSTGRES is not set: run the tests through scripts/test.sh"
            );
            eprintln!("COUCHKV_TEST_POSTGRES is not set: skipping the PostgreSQL tests");
            None
        }
    }
}

/// A store on a schema of its own (so each case starts empty), named `prefix_<pid>_<n>`.
#[cfg(feature = "postgres")]
pub async fn postgres_store(url: &str, prefix: &str) -> crate::PostgresStore {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut config = crate::PostgresConfig::new(url);
    config.schema = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    config.pool_size = 4;
    crate::PostgresStore::open(config)
        .await
        .expect("open the PostgreSQL store")
}
