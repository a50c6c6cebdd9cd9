//! Cases on namespaces, single keys and listing: isolation, byte order, paging, ranges, values.

use super::*;

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
                    expiration: Some(2_000_000_000),
                }],
                preconditions: vec![],
                durability: Default::default(),
            },
        )
        .await
        .unwrap();
    assert!(v2 > v1, "versions grow: {v2} after {v1}");
    let rec = store.get(NS, "k").await.unwrap().unwrap();
    assert_eq!(rec.value, "two");
    assert_eq!(rec.metadata.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(rec.expiration, Some(2_000_000_000));
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
