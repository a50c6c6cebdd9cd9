//! Cases on writes and what follows them: atomic and conditional batches, watch, expiry, large
//! items, a closed store.

use super::*;

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
                expiration: Some(2_000_000_000),
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
            expiration: Some(2_000_000_000)
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
pub(super) async fn native_expiry<S: Store + ?Sized>(store: &S) {
    // Far ahead of any test run, within a binding's 32-bit expirations (2036), and fixed: the
    // suite reads no clock, so it runs where there is none (wasm32 in workerd).
    let at = 2_100_000_000;
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
    // Workers KV's largest value, key (as long as the store holds) and metadata round-trip whole.
    let value: Vec<u8> = (0..25 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let max_key = store.capabilities().max_key_bytes;
    assert!(max_key >= 500, "a store holds keys of 500 bytes at least");
    let key = "k".repeat(max_key);
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
                durability: Default::default(),
            },
        )
        .await
        .unwrap();
    let rec = store.get(NS, &key).await.unwrap().unwrap();
    assert!(rec.value == value, "the 25 MiB value came back whole");
    assert_eq!(rec.metadata, Some(metadata));
    let page = store.list(NS, &opts("", 10)).await.unwrap();
    assert_eq!(page.entries[0].key, key);
    // A store that holds shorter keys than Workers KV refuses longer ones, saying so.
    if max_key < 512 {
        let long = "k".repeat(max_key + 1);
        assert_eq!(
            store.put(NS, &long, Bytes::new()).await,
            Err(StoreError::KeyTooLong {
                len: max_key + 1,
                limit: max_key
            })
        );
    }
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
