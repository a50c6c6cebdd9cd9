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
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{select, Either};
use futures::StreamExt;

use crate::{Batch, EventKind, EventStream, Expect, ListOptions, Op, Store, StoreError};

const NS: &str = "0123456789abcdef0123456789abcdef";

/// Runs every case, each on a fresh store from `factory`.
pub async fn run_all<S, F, Fut>(factory: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    macro_rules! case {
        ($name:ident) => {{
            eprintln!("conformance: {}", stringify!($name));
            let store = factory().await;
            $name(&store).await;
            let _ = store.close().await;
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
/// needs no particular executor).
pub async fn within<T>(ms: u64, fut: impl Future<Output = T>) -> Option<T> {
    let (tx, rx) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        let _ = tx.send(());
    });
    match select(pin!(fut), rx).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
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

pub async fn namespaces<S: Store + ?Sized>(store: &S) {
    assert_eq!(store.list_namespaces().await.unwrap(), vec![]);
    let b = store.create_namespace("bbbb", "second").await.unwrap();
    assert_eq!((b.id.as_str(), b.title.as_str()), ("bbbb", "second"));
    store.create_namespace("aaaa", "first").await.unwrap();
    assert_eq!(
        store.create_namespace("cccc", "first").await,
        Err(StoreError::NamespaceExists("first".into()))
    );
    assert_eq!(
        store.create_namespace("aaaa", "third").await,
        Err(StoreError::NamespaceIdTaken("aaaa".into()))
    );
    let all = store.list_namespaces().await.unwrap();
    let ids: Vec<_> = all.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["aaaa", "bbbb"], "namespaces are listed by id");
    assert_eq!(
        store.get_namespace("aaaa").await.unwrap().map(|n| n.title),
        Some("first".into())
    );
    assert_eq!(store.get_namespace("zzzz").await.unwrap(), None);

    assert_eq!(
        store.rename_namespace("aaaa", "second").await,
        Err(StoreError::NamespaceExists("second".into()))
    );
    let renamed = store.rename_namespace("aaaa", "renamed").await.unwrap();
    assert_eq!(renamed.title, "renamed");
    // Renaming to its own title is no clash.
    store.rename_namespace("aaaa", "renamed").await.unwrap();
    assert_eq!(
        store.rename_namespace("zzzz", "x").await,
        Err(StoreError::NamespaceNotFound("zzzz".into()))
    );

    store
        .put("aaaa", "k", Bytes::from_static(b"v"))
        .await
        .unwrap();
    store.delete_namespace("aaaa").await.unwrap();
    assert_eq!(store.get_namespace("aaaa").await.unwrap(), None);
    assert_eq!(
        store.get("aaaa", "k").await,
        Err(StoreError::NamespaceNotFound("aaaa".into()))
    );
    assert_eq!(
        store.delete_namespace("aaaa").await,
        Err(StoreError::NamespaceNotFound("aaaa".into()))
    );
    // A namespace made again under the old id starts empty.
    store.create_namespace("aaaa", "again").await.unwrap();
    assert_eq!(store.get("aaaa", "k").await.unwrap(), None);
    // Operations on an unknown namespace say so.
    assert!(matches!(
        store.list("nope", &opts("", 10)).await,
        Err(StoreError::NamespaceNotFound(_))
    ));
    assert!(matches!(
        store.batch("nope", Batch::new().put("k", "v")).await,
        Err(StoreError::NamespaceNotFound(_))
    ));
    assert!(matches!(
        store.watch("nope", "").await,
        Err(StoreError::NamespaceNotFound(_))
    ));
}

pub async fn namespace_isolation<S: Store + ?Sized>(store: &S) {
    // One id a prefix of the other: neither may see the other's keys.
    store.create_namespace("ns", "one").await.unwrap();
    store.create_namespace("ns1", "two").await.unwrap();
    store
        .put("ns", "a", Bytes::from_static(b"1"))
        .await
        .unwrap();
    store
        .put("ns1", "a", Bytes::from_static(b"2"))
        .await
        .unwrap();
    store
        .put("ns1", "b", Bytes::from_static(b"3"))
        .await
        .unwrap();
    assert_eq!(store.get("ns", "a").await.unwrap().unwrap().value, "1");
    assert_eq!(store.get("ns1", "a").await.unwrap().unwrap().value, "2");
    let page = store.list("ns", &opts("", 100)).await.unwrap();
    assert_eq!(keys(&page), ["a"]);
    if store.capabilities().ranges {
        let mut rev = opts("", 100);
        rev.reverse = true;
        let page = store.list("ns", &rev).await.unwrap();
        assert_eq!(keys(&page), ["a"]);
    }
    store.delete_namespace("ns").await.unwrap();
    assert_eq!(
        store
            .list("ns1", &opts("", 100))
            .await
            .unwrap()
            .entries
            .len(),
        2
    );
}

pub async fn put_get_delete<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    assert_eq!(store.get(NS, "missing").await.unwrap(), None);
    let v1 = store
        .put(NS, "k", Bytes::from_static(b"one"))
        .await
        .unwrap();
    // Without `versions` records carry 0; batches still return growing versions.
    let versioned = |v: u64| if store.capabilities().versions { v } else { 0 };
    let rec = store.get(NS, "k").await.unwrap().expect("stored");
    assert_eq!(rec.value, "one");
    assert_eq!(
        (rec.metadata, rec.expiration, rec.version),
        (None, None, versioned(v1))
    );

    let v2 = store
        .batch(
            NS,
            Batch {
                ops: vec![Op::Put {
                    key: "k".into(),
                    value: Bytes::from_static(b"two"),
                    metadata: Some(r#"{"a":1}"#.into()),
                    expiration: Some(4_000_000_000),
                }],
                preconditions: vec![],
            },
        )
        .await
        .unwrap();
    assert!(v2 > v1, "versions grow: {v2} after {v1}");
    let rec = store.get(NS, "k").await.unwrap().unwrap();
    assert_eq!(rec.value, "two");
    assert_eq!(rec.metadata.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(rec.expiration, Some(4_000_000_000));
    assert_eq!(rec.version, versioned(v2));

    // An empty value is a value.
    store.put(NS, "empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get(NS, "empty").await.unwrap().unwrap().value, "");

    store.delete(NS, "k").await.unwrap();
    assert_eq!(store.get(NS, "k").await.unwrap(), None);
    // Deleting a missing key is no error.
    store.delete(NS, "k").await.unwrap();
}

pub async fn get_many<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    store.put(NS, "a", Bytes::from_static(b"1")).await.unwrap();
    store.put(NS, "c", Bytes::from_static(b"3")).await.unwrap();
    let got = store
        .get_many(NS, &["c".into(), "b".into(), "a".into(), "c".into()])
        .await
        .unwrap();
    let values: Vec<Option<Bytes>> = got.into_iter().map(|r| r.map(|r| r.value)).collect();
    assert_eq!(
        values,
        [Some("3".into()), None, Some("1".into()), Some("3".into())]
    );
    assert!(store.get_many(NS, &[]).await.unwrap().is_empty());
}

pub async fn byte_order<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    // Sorted by UTF-8 bytes, not by code point groups or locale: "Z" < "a" < "é" < "中" < "😀".
    let mut expected = vec![
        "\u{0}",
        "\u{1}x",
        "!",
        "0",
        "9",
        "A",
        "Z",
        "_",
        "a",
        "a\u{0}",
        "a\u{0}b",
        "aa",
        "z",
        "\u{7f}",
        "é",
        "éa",
        "\u{ffff}",
        "中",
        "😀",
        "\u{10ffff}",
    ];
    for (i, k) in expected.iter().rev().enumerate() {
        store.put(NS, k, Bytes::from(i.to_string())).await.unwrap();
    }
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let page = store.list(NS, &opts("", 1000)).await.unwrap();
    assert_eq!(keys(&page), expected);
    assert!(!page.more);
    if store.capabilities().ranges {
        let mut rev = opts("", 1000);
        rev.reverse = true;
        let page = store.list(NS, &rev).await.unwrap();
        let mut backwards = expected.clone();
        backwards.reverse();
        assert_eq!(keys(&page), backwards);
    }
    // A prefix that is a whole character, and one inside a multi-byte character's bytes cannot
    // occur (prefixes are strings), so "é" lists "é" and "éa" only.
    let page = store.list(NS, &opts("é", 1000)).await.unwrap();
    assert_eq!(keys(&page), ["é", "éa"]);
    let page = store.list(NS, &opts("a\u{0}", 1000)).await.unwrap();
    assert_eq!(keys(&page), ["a\u{0}", "a\u{0}b"]);
}

pub async fn list_paging<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    let all: Vec<String> = (0..10).map(|i| format!("p/{i:02}")).collect();
    for k in &all {
        store.put(NS, k, Bytes::from(k.clone())).await.unwrap();
    }
    store.put(NS, "o", Bytes::new()).await.unwrap();
    store.put(NS, "q", Bytes::new()).await.unwrap();
    let directions: &[bool] = if store.capabilities().ranges {
        &[false, true]
    } else {
        &[false]
    };
    for &reverse in directions {
        for limit in 1..=11 {
            let mut seen = Vec::new();
            let mut o = opts("p/", limit);
            o.reverse = reverse;
            loop {
                let page = store.list(NS, &o).await.unwrap();
                assert!(page.entries.len() <= limit);
                seen.extend(page.entries.iter().map(|e| e.key.clone()));
                let Some(last) = page.entries.last() else {
                    assert!(!page.more);
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
            let mut want = all.clone();
            if reverse {
                want.reverse();
            }
            assert_eq!(seen, want, "limit {limit}, reverse {reverse}");
            // `more` is exact: a page that ends at the last key says so.
            let mut o = opts("p/", 10);
            o.reverse = reverse;
            assert!(!store.list(NS, &o).await.unwrap().more);
            o.limit = 9;
            assert!(store.list(NS, &o).await.unwrap().more);
        }
    }
    // A key written between two pages, after the cursor, still appears.
    let mut o = opts("p/", 5);
    let page = store.list(NS, &o).await.unwrap();
    o.start = Bound::Excluded(page.entries.last().unwrap().key.clone());
    store.put(NS, "p/04x", Bytes::new()).await.unwrap();
    let page = store.list(NS, &o).await.unwrap();
    assert_eq!(page.entries[0].key, "p/04x");
}

pub async fn list_ranges<S: Store + ?Sized>(store: &S) {
    if !store.capabilities().ranges {
        return;
    }
    fresh(store).await;
    for k in ["a", "b", "ba", "bb", "c", "d"] {
        store.put(NS, k, Bytes::new()).await.unwrap();
    }
    let run = |start: Bound<&str>, end: Bound<&str>, prefix: &str, reverse: bool| {
        let o = ListOptions {
            prefix: prefix.into(),
            start: start.map(str::to_owned),
            end: end.map(str::to_owned),
            reverse,
            limit: 100,
            values: false,
        };
        async move {
            let page = store.list(NS, &o).await.unwrap();
            page.entries.into_iter().map(|e| e.key).collect::<Vec<_>>()
        }
    };
    use Bound::{Excluded as Ex, Included as In, Unbounded as Un};
    assert_eq!(run(In("b"), Ex("c"), "", false).await, ["b", "ba", "bb"]);
    assert_eq!(run(Ex("b"), In("c"), "", false).await, ["ba", "bb", "c"]);
    assert_eq!(run(Ex("b"), In("c"), "", true).await, ["c", "bb", "ba"]);
    assert_eq!(
        run(In("b"), Un, "", true).await,
        ["d", "c", "bb", "ba", "b"]
    );
    assert_eq!(run(Un, Ex("b"), "", true).await, ["a"]);
    assert_eq!(run(Un, Un, "b", true).await, ["bb", "ba", "b"]);
    assert_eq!(run(Ex("b"), Un, "b", false).await, ["ba", "bb"]);
    assert_eq!(run(Un, Ex("bb"), "b", true).await, ["ba", "b"]);
    assert_eq!(run(In("c"), Ex("b"), "", false).await, Vec::<String>::new());
    assert_eq!(run(In("b"), Ex("b"), "", true).await, Vec::<String>::new());
    assert_eq!(run(In("b"), In("b"), "", true).await, ["b"]);
    assert_eq!(run(In("x"), Un, "", false).await, Vec::<String>::new());
    assert_eq!(run(Un, Un, "e", true).await, Vec::<String>::new());
}

pub async fn list_values<S: Store + ?Sized>(store: &S) {
    if !store.capabilities().list_values {
        return;
    }
    fresh(store).await;
    store.put(NS, "a", Bytes::from_static(b"1")).await.unwrap();
    let mut o = opts("", 10);
    let page = store.list(NS, &o).await.unwrap();
    assert_eq!(page.entries[0].value, None);
    o.values = true;
    let page = store.list(NS, &o).await.unwrap();
    assert_eq!(page.entries[0].value.as_deref(), Some(&b"1"[..]));
}

pub async fn atomic_batch<S: Store + ?Sized>(store: &S) {
    if !store.capabilities().atomic_batch {
        return;
    }
    fresh(store).await;
    store
        .put(NS, "old", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let v = store
        .batch(NS, Batch::new().put("a", "1").put("b", "2").delete("old"))
        .await
        .unwrap();
    let got = store
        .get_many(NS, &["a".into(), "b".into(), "old".into()])
        .await
        .unwrap();
    assert_eq!(got[0].as_ref().map(|r| r.version), Some(v));
    assert_eq!(got[1].as_ref().map(|r| r.version), Some(v));
    assert_eq!(got[2], None);
    // The last write of a key in a batch wins.
    store
        .batch(
            NS,
            Batch::new().put("k", "first").delete("k").put("k", "last"),
        )
        .await
        .unwrap();
    assert_eq!(store.get(NS, "k").await.unwrap().unwrap().value, "last");
    // A batch whose precondition fails applies none of its writes.
    let r = store
        .batch(
            NS,
            Batch::new()
                .put("c", "3")
                .delete("a")
                .expect("b", Expect::Absent),
        )
        .await;
    assert_eq!(r, Err(StoreError::Conflict { key: "b".into() }));
    assert_eq!(store.get(NS, "c").await.unwrap(), None);
    assert!(store.get(NS, "a").await.unwrap().is_some());
    // Many writers at once: every batch whole.
    let writers = (0..20).map(|i| {
        store.batch(
            NS,
            Batch::new()
                .put(format!("w{i}/x"), i.to_string())
                .put(format!("w{i}/y"), i.to_string()),
        )
    });
    let versions = futures::future::join_all(writers).await;
    let mut versions: Vec<u64> = versions.into_iter().map(Result::unwrap).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 20, "each batch has its own version");
    for i in 0..20 {
        let got = store
            .get_many(NS, &[format!("w{i}/x"), format!("w{i}/y")])
            .await
            .unwrap();
        assert_eq!(
            got[0].as_ref().map(|r| r.version),
            got[1].as_ref().map(|r| r.version)
        );
    }
}

pub async fn preconditions<S: Store + ?Sized>(store: &S) {
    if !store.capabilities().preconditions {
        return;
    }
    fresh(store).await;
    // Absent holds for a missing key, once.
    let v1 = store
        .batch(NS, Batch::new().put("k", "1").expect("k", Expect::Absent))
        .await
        .unwrap();
    assert_eq!(
        store
            .batch(NS, Batch::new().put("k", "2").expect("k", Expect::Absent))
            .await,
        Err(StoreError::Conflict { key: "k".into() })
    );
    // Version holds for the current version only.
    let v2 = store
        .batch(
            NS,
            Batch::new().put("k", "2").expect("k", Expect::Version(v1)),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .batch(
                NS,
                Batch::new().put("k", "3").expect("k", Expect::Version(v1))
            )
            .await,
        Err(StoreError::Conflict { key: "k".into() })
    );
    assert_eq!(store.get(NS, "k").await.unwrap().unwrap().value, "2");
    // A precondition on one key guards writes to others; Version on a missing key fails.
    assert_eq!(
        store
            .batch(
                NS,
                Batch::new()
                    .put("other", "x")
                    .expect("gone", Expect::Version(v2))
            )
            .await,
        Err(StoreError::Conflict { key: "gone".into() })
    );
    assert_eq!(store.get(NS, "other").await.unwrap(), None);
    store
        .batch(
            NS,
            Batch::new().delete("k").expect("k", Expect::Version(v2)),
        )
        .await
        .unwrap();
    // Compare-and-set under contention: of many racing writers expecting the same version,
    // exactly one wins.
    let v = store
        .put(NS, "race", Bytes::from_static(b"0"))
        .await
        .unwrap();
    let racers = (0..10).map(|i| {
        store.batch(
            NS,
            Batch::new()
                .put("race", i.to_string())
                .expect("race", Expect::Version(v)),
        )
    });
    let results = futures::future::join_all(racers).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict { .. }))));
}

pub async fn watch<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    let mut w = store.watch(NS, "w/").await.unwrap();
    let mut all = store.watch(NS, "").await.unwrap();
    let v1 = store
        .put(NS, "w/a", Bytes::from_static(b"1"))
        .await
        .unwrap();
    store
        .put(NS, "other", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let vs = apply(
        store,
        vec![
            Op::Put {
                key: "w/b".into(),
                value: Bytes::from_static(b"2"),
                metadata: Some("{}".into()),
                expiration: Some(4_000_000_000),
            },
            Op::Delete { key: "w/a".into() },
        ],
    )
    .await;
    let e = next_event(&mut w).await;
    assert_eq!((e.key.as_str(), e.version), ("w/a", v1));
    assert!(matches!(e.kind, EventKind::Put { .. }));
    let e = next_event(&mut w).await;
    assert_eq!((e.key.as_str(), e.version), ("w/b", vs[0]));
    assert_eq!(
        e.kind,
        EventKind::Put {
            metadata: Some("{}".into()),
            expiration: Some(4_000_000_000)
        }
    );
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.key.as_str(), e.kind, e.version),
        ("w/a", EventKind::Delete, vs[1])
    );
    // The unfiltered watcher saw all four changes in commit order.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_event(&mut all).await.key);
    }
    assert_eq!(seen, ["w/a", "other", "w/b", "w/a"]);
    // Many writes in a row arrive complete and in order.
    let mut versions = Vec::new();
    for i in 0..200 {
        versions.push(
            store
                .put(NS, &format!("w/{i}"), Bytes::new())
                .await
                .unwrap(),
        );
    }
    for v in versions {
        assert_eq!(next_event(&mut w).await.version, v);
    }
}

pub async fn expiry<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    if store.capabilities().native_expiry {
        return native_expiry(store).await;
    }
    let put = |key: &'static str, expiration: Option<u64>| Op::Put {
        key: key.into(),
        value: Bytes::from_static(b"v"),
        metadata: None,
        expiration,
    };
    apply(
        store,
        vec![
            put("soon", Some(100)),
            put("later", Some(200)),
            put("never", None),
        ],
    )
    .await;
    // Stored, not enforced: the record is there until swept.
    assert_eq!(
        store.get(NS, "soon").await.unwrap().unwrap().expiration,
        Some(100)
    );
    let mut w = store.watch(NS, "").await.unwrap();
    assert_eq!(store.sweep_expired(NS, 150, 1000).await.unwrap(), 1);
    assert_eq!(store.get(NS, "soon").await.unwrap(), None);
    assert!(store.get(NS, "later").await.unwrap().is_some());
    let e = next_event(&mut w).await;
    assert_eq!((e.key.as_str(), e.kind), ("soon", EventKind::Expire));
    assert_eq!(store.sweep_expired(NS, 150, 1000).await.unwrap(), 0);
    assert_eq!(store.sweep_expired(NS, 10_000, 1000).await.unwrap(), 1);
    let page = store.list(NS, &opts("", 10)).await.unwrap();
    assert_eq!(keys(&page), ["never"]);
}

/// A store that expires records itself (Workers KV) keeps the expiration it was given and
/// leaves sweeping to itself; expirations must lie at least 60 s ahead there.
async fn native_expiry<S: Store + ?Sized>(store: &S) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = now + 3600;
    apply(
        store,
        vec![Op::Put {
            key: "later".into(),
            value: Bytes::from_static(b"v"),
            metadata: None,
            expiration: Some(at),
        }],
    )
    .await;
    assert_eq!(
        store.get(NS, "later").await.unwrap().unwrap().expiration,
        Some(at)
    );
    let page = store.list(NS, &opts("", 10)).await.unwrap();
    assert_eq!(page.entries[0].expiration, Some(at));
    assert_eq!(store.sweep_expired(NS, at + 1, 1000).await.unwrap(), 0);
}

pub async fn large_items<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    // Workers KV's largest value, key and metadata round-trip whole.
    let value: Vec<u8> = (0..25 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let key = "k".repeat(512);
    let metadata = format!("\"{}\"", "m".repeat(1022));
    store
        .batch(
            NS,
            Batch {
                ops: vec![Op::Put {
                    key: key.clone(),
                    value: Bytes::from(value.clone()),
                    metadata: Some(metadata.clone()),
                    expiration: None,
                }],
                preconditions: vec![],
            },
        )
        .await
        .unwrap();
    let rec = store.get(NS, &key).await.unwrap().unwrap();
    assert!(rec.value == value, "the 25 MiB value came back whole");
    assert_eq!(rec.metadata, Some(metadata));
    let page = store.list(NS, &opts("", 10)).await.unwrap();
    assert_eq!(page.entries[0].key, key);
}

pub async fn closed<S: Store + ?Sized>(store: &S) {
    fresh(store).await;
    store.put(NS, "k", Bytes::from_static(b"v")).await.unwrap();
    let mut w = store.watch(NS, "").await.unwrap();
    store.close().await.unwrap();
    let closed = Err(StoreError::Closed);
    assert_eq!(store.get(NS, "k").await.map(|_| ()), closed);
    assert_eq!(store.put(NS, "k", Bytes::new()).await.map(|_| ()), closed);
    assert_eq!(store.delete(NS, "k").await.map(|_| ()), closed);
    assert_eq!(store.list(NS, &opts("", 1)).await.map(|_| ()), closed);
    assert_eq!(store.get_many(NS, &["k".into()]).await.map(|_| ()), closed);
    assert_eq!(store.list_namespaces().await.map(|_| ()), closed);
    assert_eq!(store.get_namespace(NS).await.map(|_| ()), closed);
    assert_eq!(store.create_namespace("x", "y").await.map(|_| ()), closed);
    assert_eq!(store.rename_namespace(NS, "y").await.map(|_| ()), closed);
    assert_eq!(store.delete_namespace(NS).await.map(|_| ()), closed);
    assert_eq!(store.watch(NS, "").await.map(|_| ()), closed);
    assert_eq!(store.sweep_expired(NS, 0, 1).await.map(|_| ()), closed);
    // Open watchers end rather than hang.
    let end = within(5000, w.next())
        .await
        .expect("the watch ends when the store closes");
    assert!(end.is_none());
    // Closing twice is harmless.
    store.close().await.unwrap();
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
