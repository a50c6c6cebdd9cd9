//! The `cloudflare` backend against a real server speaking Cloudflare's v4 KV API: a local
//! `couchkv serve` (in process, on 127.0.0.1:0). The store conformance suite and the level
//! conformance suite run through it, which proves the wire format from both sides; then what
//! only this backend does: watchers finding other writers' changes by polling, retries of 429 and
//! 5xx with backoff, and a token that appears in no error.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::http::HttpConfig;
use couchkv::kv::Kv;
use couchkv::level::{KvLevel, LevelDb};
use couchkv_adapters::conformance::within;
use couchkv_adapters::{
    Batch, CloudflareConfig, CloudflareStore, EventKind, Namespaces, Op, Store, StoreError,
    StoreExt,
};
use futures::StreamExt;

/// A fresh server and a backend pointed at it with an all-namespaces write token.
async fn backed() -> (common::InProcess, CloudflareStore, CloudflareConfig) {
    let server = common::start(HttpConfig::default()).await;
    let new = couchkv::auth::tokens::NewToken {
        name: "conformance".into(),
        write: true,
        ..Default::default()
    };
    let token = couchkv::server::create_token(server.store.as_ref(), &new)
        .await
        .unwrap();
    let mut config = CloudflareConfig::new("test-account", token);
    config.base_url = format!("{}/client/v4", server.base);
    config.poll_interval = Duration::from_millis(100);
    let store = CloudflareStore::new(config.clone()).unwrap();
    (server, store, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_conformance() {
    let servers = Arc::new(Mutex::new(Vec::new()));
    couchkv_adapters::conformance::run_all(|| {
        let servers = servers.clone();
        async move {
            let (server, store, _) = backed().await;
            servers.lock().unwrap().push(server);
            store
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_conformance() {
    let servers = Arc::new(Mutex::new(Vec::new()));
    couchkv::level::conformance::run_all(|| {
        let servers = servers.clone();
        async move {
            let (server, store, _) = backed().await;
            servers.lock().unwrap().push(server);
            let kv = Kv::new(
                Arc::new(store),
                Arc::new(ManualClock::at_secs(1_700_000_000)),
                Arc::new(SequentialIds::default()),
            );
            let ns = kv.create_namespace("level").await.unwrap();
            LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), ""))
                .await
                .unwrap()
        }
    })
    .await;
}

async fn next(stream: &mut couchkv_adapters::EventStream) -> couchkv_adapters::Event {
    within(5000, stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream is open")
        .expect("no watch error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_other_writers_by_polling_and_their_own_writes_once() {
    let (_server, store, config) = backed().await;
    // Another node (or wrangler) on the same account.
    let other = CloudflareStore::new(config).unwrap();
    store.create_namespace("ns", "shared").await.unwrap();
    let mut w = store.watch("ns", "p/").await.unwrap();

    // Our own write arrives at once, and polls after it do not report it again.
    let v = store
        .put("ns", "p/own", Bytes::from_static(b"1"))
        .await
        .unwrap();
    let e = next(&mut w).await;
    assert_eq!((e.key.as_str(), e.version), ("p/own", v));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The other writer's put, metadata change and delete are found by polling.
    other
        .put("ns", "p/theirs", Bytes::from_static(b"x"))
        .await
        .unwrap();
    other
        .put("ns", "outside", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let e = next(&mut w).await;
    assert_eq!(e.key, "p/theirs", "the own write was not reported twice");
    assert!(matches!(e.kind, EventKind::Put { metadata: None, .. }));
    other
        .batch(
            "ns",
            Batch {
                ops: vec![Op::Put {
                    key: "p/theirs".into(),
                    value: Bytes::from_static(b"y"),
                    metadata: Some(r#"{"n":2}"#.into()),
                    expiration: None,
                }],
                preconditions: vec![],
                durability: Default::default(),
            },
        )
        .await
        .unwrap();
    let e = next(&mut w).await;
    assert_eq!(
        (e.key.as_str(), e.kind),
        (
            "p/theirs",
            EventKind::Put {
                metadata: Some(r#"{"n":2}"#.into()),
                expiration: None
            }
        )
    );
    other.delete("ns", "p/theirs").await.unwrap();
    let e = next(&mut w).await;
    assert_eq!((e.key.as_str(), e.kind), ("p/theirs", EventKind::Delete));
    assert!(e.version > v, "polled events continue the version order");

    // A dropped watcher stops polling.
    assert_eq!(store.watchers("ns"), 1);
    drop(w);
    let stopped = within(2000, async {
        while store.watchers("ns") > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(stopped.is_some(), "the poller ended with its watcher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_bulk_requests_and_refuse_preconditions() {
    let (server, store, _) = backed().await;
    store.create_namespace("ns", "bulk").await.unwrap();
    // 2,500 puts and a delete in one batch: each key's last write wins.
    let mut batch = Batch::new();
    for i in 0..2500 {
        batch = batch.put(format!("k{i:04}"), vec![i as u8; 3]);
    }
    batch = batch.delete("k0000").put("k0001", "last");
    store.batch("ns", batch).await.unwrap();
    assert_eq!(store.get("ns", "k0000").await.unwrap(), None);
    assert_eq!(
        store.get("ns", "k0001").await.unwrap().unwrap().value,
        "last"
    );
    assert_eq!(
        store.get("ns", "k2499").await.unwrap().unwrap().value,
        vec![2499u32 as u8; 3]
    );
    // The server saw it through its own API: count the keys there.
    let mut n = 0;
    let mut opts = couchkv_adapters::ListOptions::default();
    loop {
        let page = store.list("ns", &opts).await.unwrap();
        n += page.entries.len();
        match page.entries.last() {
            Some(last) if page.more => opts.start = std::ops::Bound::Excluded(last.key.clone()),
            _ => break,
        }
    }
    assert_eq!(n, 2499);
    assert!(server.store.list_namespaces().await.unwrap().len() >= 2);
    assert!(matches!(
        store
            .batch(
                "ns",
                Batch::new()
                    .put("a", "1")
                    .expect("a", couchkv_adapters::Expect::Absent)
            )
            .await,
        Err(StoreError::NotSupported(_))
    ));
}

/// A fake API: answers the namespace list with `fail` for the first `failures` requests, then
/// an empty list; counts the requests.
async fn flaky_api(
    failures: usize,
    fail: StatusCode,
    retry_after: Option<&'static str>,
) -> (String, Arc<AtomicUsize>, tokio::sync::oneshot::Sender<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/client/v4/accounts/{account}/storage/kv/namespaces",
        axum::routing::get(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut resp = if n < failures {
                    axum::response::Response::builder()
                        .status(fail)
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(
                            r#"{"success":false,"errors":[{"code":10000,"message":"no"}],"messages":[],"result":null}"#,
                        ))
                        .unwrap()
                } else {
                    axum::response::Response::builder()
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(
                            r#"{"success":true,"errors":[],"messages":[],"result":[]}"#,
                        ))
                        .unwrap()
                };
                if let Some(ra) = retry_after {
                    resp.headers_mut().insert("retry-after", ra.parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/client/v4", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (base, hits, stop)
}

fn flaky_store(base: &str, retries: u32) -> CloudflareStore {
    let mut config = CloudflareConfig::new("acct", "tok-very-secret-123");
    config.base_url = base.to_owned();
    config.retries = retries;
    config.backoff = Duration::from_millis(10);
    CloudflareStore::new(config).unwrap()
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    for status in [
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let (base, hits, _stop) = flaky_api(2, status, Some("0")).await;
        let store = flaky_store(&base, 3);
        assert_eq!(store.list_namespaces().await.unwrap(), vec![]);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            3,
            "{status}: two failures, then success"
        );
    }
    // Out of retries: the error says what the service said.
    let (base, hits, _stop) = flaky_api(10, StatusCode::BAD_GATEWAY, None).await;
    let store = flaky_store(&base, 2);
    let err = store.list_namespaces().await.unwrap_err().to_string();
    assert!(err.contains("502"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn refusals_are_not_retried_and_never_show_the_token() {
    for status in [StatusCode::BAD_REQUEST, StatusCode::FORBIDDEN] {
        let (base, hits, _stop) = flaky_api(10, status, None).await;
        let store = flaky_store(&base, 5);
        let err = store.list_namespaces().await.unwrap_err();
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{status} is not retried");
        let shown = format!("{err} {err:?} {store:?}");
        assert!(shown.contains(status.as_str()), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }
    // Nothing listening: the connection failure is retried, then reported.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/client/v4", l.local_addr().unwrap())
    };
    let err = flaky_store(&dead, 1).list_namespaces().await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}
