//! Workers KV semantics through the kv layer: every limit of KV-API.md's validation table with its
//! typed error, status and Miniflare's message; expiry on a manual clock; list cursors; bulk
//! operations. Each behaviour runs on the memory store and on redb.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::http::error::{kv_code, kv_status};
use couchkv::kv::{
    BulkGetType, BulkPutItem, GetOptions, Kv, KvError, KvNamespace, ListOptions, PutOptions,
};
use couchkv_adapters::{DynStore, MemoryStore, RedbStore};

const NOW: u64 = 1_700_000_000;

struct Fixture {
    kv: Kv,
    ns: KvNamespace,
    clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

async fn fixture(store: DynStore, dir: Option<tempfile::TempDir>) -> Fixture {
    let clock = Arc::new(ManualClock::at_secs(NOW));
    let kv = Kv::new(store, clock.clone(), Arc::new(SequentialIds::default()));
    let created = kv.create_namespace("test").await.unwrap();
    let ns = kv.namespace(&created.id);
    Fixture {
        kv,
        ns,
        clock,
        _dir: dir,
    }
}

/// Runs `case` on a memory store and on a fresh redb file.
async fn on_both<F, Fut>(case: F)
where
    F: Fn(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    case(fixture(Arc::new(MemoryStore::new()), None).await).await;
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("kv.redb")).unwrap();
    case(fixture(Arc::new(store), Some(dir)).await).await;
}

fn put_opts(expiration: Option<i64>, ttl: Option<i64>, metadata: Option<&str>) -> PutOptions {
    PutOptions {
        expiration,
        expiration_ttl: ttl,
        metadata: metadata.map(str::to_owned),
    }
}

/// Asserts the error, its status and its message.
fn assert_err<T: std::fmt::Debug>(r: Result<T, KvError>, want: KvError, status: u16, msg: &str) {
    let e = r.expect_err("an error");
    assert_eq!(e, want);
    assert_eq!(kv_status(&e), status, "status of {e:?}");
    assert_eq!(e.to_string(), msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_limits() {
    on_both(|f| async move {
        let ns = &f.ns;
        let v = || Bytes::from_static(b"v");
        assert_err(
            ns.put("", v(), PutOptions::default()).await,
            KvError::EmptyKey,
            400,
            "Key names must not be empty",
        );
        for dots in [".", ".."] {
            assert_err(
                ns.put(dots, v(), PutOptions::default()).await,
                KvError::IllegalKey(dots.into()),
                400,
                &format!("Illegal key name \"{dots}\". Please use a different name."),
            );
            assert_err(
                ns.get(dots, &GetOptions::default()).await,
                KvError::IllegalKey(dots.into()),
                400,
                &format!("Illegal key name \"{dots}\". Please use a different name."),
            );
        }
        // 512 bytes of UTF-8 fit; 513 do not, counted in bytes, not characters.
        let at_limit = "é".repeat(256);
        ns.put(&at_limit, v(), PutOptions::default()).await.unwrap();
        assert!(ns
            .get(&at_limit, &GetOptions::default())
            .await
            .unwrap()
            .is_some());
        let over = format!("{at_limit}x");
        assert_err(
            ns.put(&over, v(), PutOptions::default()).await,
            KvError::KeyTooLong(513),
            414,
            "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        );
        assert_err(
            ns.delete(&over).await,
            KvError::KeyTooLong(513),
            414,
            "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        );
        assert_err(
            ns.get("", &GetOptions::default()).await,
            KvError::EmptyKey,
            400,
            "Key names must not be empty",
        );
        // Keys that look like paths or hold odd characters are fine.
        for k in ["a/b", "../x", " ", "hello/wörld key", "\u{0}"] {
            ns.put(k, v(), PutOptions::default()).await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_and_metadata_limits() {
    on_both(|f| async move {
        let ns = &f.ns;
        let max = Bytes::from(vec![7u8; 26_214_400]);
        ns.put("big", max, PutOptions::default()).await.unwrap();
        assert_eq!(
            ns.get("big", &GetOptions::default())
                .await
                .unwrap()
                .unwrap()
                .value
                .len(),
            26_214_400
        );
        assert_err(
            ns.put(
                "bigger",
                Bytes::from(vec![7u8; 26_214_401]),
                PutOptions::default(),
            )
            .await,
            KvError::ValueTooLarge(26_214_401),
            413,
            "Value length of 26214401 exceeds limit of 26214400.",
        );
        assert!(ns
            .get("bigger", &GetOptions::default())
            .await
            .unwrap()
            .is_none());

        let fits = format!("\"{}\"", "m".repeat(1022));
        ns.put("m", Bytes::new(), put_opts(None, None, Some(&fits)))
            .await
            .unwrap();
        let got = ns.get("m", &GetOptions::default()).await.unwrap().unwrap();
        assert_eq!(got.metadata.as_deref(), Some(fits.as_str()));
        let too_big = format!("\"{}\"", "m".repeat(1023));
        assert_err(
            ns.put("m2", Bytes::new(), put_opts(None, None, Some(&too_big)))
                .await,
            KvError::MetadataTooLarge(1025),
            413,
            "Metadata length of 1025 exceeds limit of 1024.",
        );
        let e = ns
            .put("m3", Bytes::new(), put_opts(None, None, Some("{not json")))
            .await
            .unwrap_err();
        assert!(matches!(e, KvError::MetadataNotJson(_)));
        assert_eq!(kv_status(&e), 400);
        assert!(ns
            .get("m3", &GetOptions::default())
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_limits() {
    on_both(|f| async move {
        let ns = &f.ns;
        let now = NOW as i64;
        let put = |exp, ttl| ns.put("k", Bytes::new(), put_opts(exp, ttl, None));
        assert_err(
            put(None, Some(59)).await,
            KvError::ExpirationTtlTooSmall(59),
            400,
            "Invalid expiration_ttl of 59. Expiration TTL must be at least 60.",
        );
        assert_err(
            put(None, Some(0)).await,
            KvError::ExpirationTtlNotPositive(0),
            400,
            "Invalid expiration_ttl of 0. Please specify integer greater than 0.",
        );
        assert_err(
            put(Some(now + 59), None).await,
            KvError::ExpirationTooSoon(now + 59),
            400,
            &format!(
                "Invalid expiration of {}. Expiration times must be at least 60 seconds in the future.",
                now + 59
            ),
        );
        assert_err(
            put(Some(now), None).await,
            KvError::ExpirationInPast(now),
            400,
            &format!(
                "Invalid expiration of {now}. Please specify integer greater than the current number of seconds since the UNIX epoch."
            ),
        );
        put(Some(now + 60), None).await.unwrap();
        let got = ns.get("k", &GetOptions::default()).await.unwrap().unwrap();
        assert_eq!(got.expiration, Some(NOW + 60));
        put(None, Some(60)).await.unwrap();
        // Both given: the TTL wins, even over a valid absolute time, and even when the absolute
        // time alone would be rejected.
        put(Some(now + 5000), Some(120)).await.unwrap();
        let got = ns.get("k", &GetOptions::default()).await.unwrap().unwrap();
        assert_eq!(got.expiration, Some(NOW + 120));
        put(Some(now - 10), Some(120)).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_ttl_limit() {
    on_both(|f| async move {
        let ns = &f.ns;
        assert_err(
            ns.get(
                "k",
                &GetOptions {
                    cache_ttl: Some(29),
                },
            )
            .await,
            KvError::CacheTtlTooSmall(29),
            400,
            "Invalid cache_ttl of 29. Cache TTL must be at least 30.",
        );
        assert!(ns
            .get(
                "k",
                &GetOptions {
                    cache_ttl: Some(30)
                }
            )
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_limits_and_cursors() {
    on_both(|f| async move {
        let ns = &f.ns;
        let list = |limit: Option<i64>, cursor: Option<&str>| {
            let opts = ListOptions {
                prefix: Some("p/".into()),
                limit,
                cursor: cursor.map(str::to_owned),
            };
            async move { ns.list(&opts).await }
        };
        assert_err(
            list(Some(0), None).await,
            KvError::ListLimitTooSmall(0),
            400,
            "Invalid key_count_limit of 0. Please specify an integer greater than 0.",
        );
        assert_err(
            list(Some(-3), None).await,
            KvError::ListLimitTooSmall(-3),
            400,
            "Invalid key_count_limit of -3. Please specify an integer greater than 0.",
        );
        assert_err(
            list(Some(1001), None).await,
            KvError::ListLimitTooLarge(1001),
            400,
            "Invalid key_count_limit of 1001. Please specify an integer less than 1000.",
        );
        assert_err(
            list(Some(10), Some("!!not a cursor")).await,
            KvError::InvalidCursor,
            400,
            "Invalid cursor",
        );
        assert_err(
            ns.list(&ListOptions {
                prefix: Some("x".repeat(513)),
                ..ListOptions::default()
            })
            .await,
            KvError::KeyTooLong(513),
            414,
            "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        );

        // 1,005 keys: the default page is 1000, and the rest follows the cursor.
        let items: Vec<BulkPutItem> = (0..1005)
            .map(|i| BulkPutItem {
                key: format!("p/{i:04}"),
                value: Bytes::new(),
                options: put_opts(None, None, Some(&format!("{{\"i\":{i}}}"))),
            })
            .collect();
        ns.bulk_put(items).await.unwrap();
        ns.put("q", Bytes::new(), PutOptions::default())
            .await
            .unwrap();
        let first = list(None, None).await.unwrap();
        assert_eq!(first.keys.len(), 1000);
        assert!(!first.list_complete);
        assert_eq!(first.keys[0].name, "p/0000");
        assert_eq!(first.keys[0].metadata.as_deref(), Some("{\"i\":0}"));
        let second = list(None, first.cursor.as_deref()).await.unwrap();
        let names: Vec<_> = second.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["p/1000", "p/1001", "p/1002", "p/1003", "p/1004"]);
        assert!(second.list_complete);
        assert_eq!(second.cursor, None);

        // Paging by 7 sees every key once, in order; a key written mid-way after the cursor
        // still appears.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = list(Some(7), cursor.as_deref()).await.unwrap();
            seen.extend(page.keys.iter().map(|k| k.name.clone()));
            if seen.len() == 14 {
                ns.put("p/0500a", Bytes::new(), PutOptions::default())
                    .await
                    .unwrap();
            }
            if page.list_complete {
                break;
            }
            cursor = page.cursor;
        }
        assert_eq!(seen.len(), 1006);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        assert!(seen.iter().any(|k| k == "p/0500a"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_are_never_returned() {
    on_both(|f| async move {
        let ns = &f.ns;
        ns.put("short", "a".into(), put_opts(None, Some(60), None))
            .await
            .unwrap();
        ns.put("shorter", "a".into(), put_opts(None, Some(60), None))
            .await
            .unwrap();
        ns.put("long", "b".into(), put_opts(None, Some(3600), None))
            .await
            .unwrap();
        ns.put("forever", "c".into(), PutOptions::default())
            .await
            .unwrap();
        let names =
            |r: couchkv::kv::ListResult| r.keys.into_iter().map(|k| k.name).collect::<Vec<_>>();
        f.clock.advance_secs(59);
        assert!(ns
            .get("short", &GetOptions::default())
            .await
            .unwrap()
            .is_some());
        f.clock.advance_secs(1);
        // At its expiration second the key is gone: from get, bulk get and list.
        assert!(ns
            .get("short", &GetOptions::default())
            .await
            .unwrap()
            .is_none());
        let bulk = ns
            .bulk_get(
                &["short".into(), "long".into()],
                BulkGetType::Text,
                &GetOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(bulk[0], ("short".into(), None));
        assert!(bulk[1].1.is_some());
        let listed = ns.list(&ListOptions::default()).await.unwrap();
        assert_eq!(names(listed), ["forever", "long"]);
        // A page of only expired keys is empty but not complete.
        let page = ns
            .list(&ListOptions {
                prefix: Some("s".into()),
                limit: Some(1),
                cursor: None,
            })
            .await
            .unwrap();
        assert!(page.keys.is_empty());
        assert!(!page.list_complete);
        let rest = ns
            .list(&ListOptions {
                prefix: Some("s".into()),
                limit: Some(1),
                cursor: page.cursor,
            })
            .await
            .unwrap();
        assert!(rest.keys.is_empty() && rest.list_complete);
        // The sweep removes them for good.
        assert_eq!(f.kv.sweep(1000).await.unwrap(), 2);
        f.clock.advance_secs(3600);
        assert_eq!(f.kv.sweep(1000).await.unwrap(), 1);
        let listed = ns.list(&ListOptions::default()).await.unwrap();
        assert_eq!(names(listed), ["forever"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_get_limits() {
    on_both(|f| async move {
        let ns = &f.ns;
        ns.put("text", "plain words".into(), PutOptions::default())
            .await
            .unwrap();
        ns.put(
            "doc",
            r#"{"a":[1,2]}"#.into(),
            put_opts(None, None, Some(r#"{"m":true}"#)),
        )
        .await
        .unwrap();
        let opts = GetOptions::default();
        assert_err(
            ns.bulk_get(&[], BulkGetType::Text, &opts).await,
            KvError::BulkGetTooFew,
            400,
            "You must request a minimum of 1 key",
        );
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        assert_err(
            ns.bulk_get(&many, BulkGetType::Text, &opts).await,
            KvError::BulkGetTooMany,
            400,
            "You can request a maximum of 100 keys",
        );
        ns.bulk_get(&many[..100], BulkGetType::Text, &opts)
            .await
            .unwrap();
        assert_err(
            BulkGetType::parse("arrayBuffer"),
            KvError::BulkGetBadType("arrayBuffer".into()),
            400,
            "\"arrayBuffer\" is not a valid type. Use \"json\" or \"text\"",
        );
        assert_err(
            ns.bulk_get(&["text".into()], BulkGetType::Json, &opts)
                .await,
            KvError::BulkGetNotJson,
            400,
            "At least one of the requested keys corresponds to a non-json value",
        );
        let got = ns
            .bulk_get(&["doc".into(), "missing".into()], BulkGetType::Json, &opts)
            .await
            .unwrap();
        let doc = got[0].1.as_ref().unwrap();
        assert_eq!(doc.value, serde_json::json!({"a": [1, 2]}));
        assert_eq!(doc.metadata.as_deref(), Some(r#"{"m":true}"#));
        assert_eq!(got[1], ("missing".into(), None));
        let got = ns
            .bulk_get(&["text".into()], BulkGetType::Text, &opts)
            .await
            .unwrap();
        assert_eq!(got[0].1.as_ref().unwrap().value, "plain words");
        assert_err(
            ns.bulk_get(&["".into()], BulkGetType::Text, &opts).await,
            KvError::EmptyKey,
            400,
            "Key names must not be empty",
        );
        // Over 25 MB in all.
        let chunk = Bytes::from(vec![b'x'; 13 * 1024 * 1024]);
        ns.put("big1", chunk.clone(), PutOptions::default())
            .await
            .unwrap();
        ns.put("big2", chunk, PutOptions::default()).await.unwrap();
        assert_err(
            ns.bulk_get(&["big1".into(), "big2".into()], BulkGetType::Text, &opts)
                .await,
            KvError::BulkGetTooLarge,
            413,
            "Total size of request exceeds the limit of 25MB",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_writes_are_whole() {
    on_both(|f| async move {
        let ns = &f.ns;
        let item = |k: &str| BulkPutItem {
            key: k.into(),
            value: Bytes::from(k.to_owned()),
            options: PutOptions::default(),
        };
        // One invalid item rejects the whole call; nothing is written.
        let mut items: Vec<BulkPutItem> = (0..50).map(|i| item(&format!("k{i}"))).collect();
        items.push(BulkPutItem {
            options: put_opts(None, Some(10), None),
            ..item("bad-ttl")
        });
        let e = ns.bulk_put(items).await.unwrap_err();
        assert_eq!(
            e,
            KvError::BulkItem {
                index: 50,
                source: Box::new(KvError::ExpirationTtlTooSmall(10))
            }
        );
        assert_eq!(kv_status(&e), 400);
        assert!(ns
            .list(&ListOptions::default())
            .await
            .unwrap()
            .keys
            .is_empty());

        let items: Vec<BulkPutItem> = (0..10_000).map(|i| item(&format!("k{i:05}"))).collect();
        assert_eq!(ns.bulk_put(items).await.unwrap(), 10_000);
        let too_many: Vec<BulkPutItem> = (0..10_001).map(|i| item(&format!("k{i}"))).collect();
        assert_err(
            ns.bulk_put(too_many).await,
            KvError::BulkTooMany(10_001),
            400,
            "You can write or delete a maximum of 10000 keys at once; got 10001",
        );
        let keys: Vec<String> = (0..10_001).map(|i| format!("k{i:05}")).collect();
        assert!(matches!(
            ns.bulk_delete(keys.clone()).await,
            Err(KvError::BulkTooMany(10_001))
        ));
        let mut with_bad = keys[..10].to_vec();
        with_bad.push(".".into());
        assert!(matches!(
            ns.bulk_delete(with_bad).await,
            Err(KvError::BulkItem { index: 10, .. })
        ));
        assert!(ns
            .get("k00000", &GetOptions::default())
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            ns.bulk_delete(keys[..10_000].to_vec()).await.unwrap(),
            10_000
        );
        assert!(ns
            .list(&ListOptions::default())
            .await
            .unwrap()
            .keys
            .is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces() {
    on_both(|f| async move {
        let kv = &f.kv;
        assert_err(
            kv.create_namespace("").await,
            KvError::EmptyTitle,
            400,
            "Namespace titles must not be empty",
        );
        let e = kv.create_namespace("test").await.unwrap_err();
        assert_eq!((kv_status(&e), kv_code(&e)), (400, 10014));
        let other = kv.create_namespace("other").await.unwrap();
        assert_eq!(other.id.len(), 32);
        kv.rename_namespace(&other.id, "renamed").await.unwrap();
        assert_eq!(kv.get_namespace(&other.id).await.unwrap().title, "renamed");
        kv.delete_namespace(&other.id).await.unwrap();
        let e = kv.get_namespace(&other.id).await.unwrap_err();
        assert_eq!(
            (e.clone(), kv_status(&e), kv_code(&e)),
            (KvError::NamespaceNotFound, 404, 10013)
        );
        let gone = kv.namespace(&other.id);
        assert_eq!(
            gone.get("k", &GetOptions::default()).await,
            Err(KvError::NamespaceNotFound)
        );
        assert_eq!(
            gone.put("k", Bytes::new(), PutOptions::default()).await,
            Err(KvError::NamespaceNotFound)
        );
        assert_eq!(kv_code(&KvError::KeyNotFound), 10009);
        assert_eq!(kv_status(&KvError::KeyNotFound), 404);
    })
    .await;
}

#[tokio::test]
async fn a_resuming_watcher_catches_up_on_live_keys_only() {
    on_both(|f| async move {
        f.ns.put("p/a", Bytes::from("1"), PutOptions::default())
            .await
            .unwrap();
        let since = f.ns.changed_since("p/", 0).await.unwrap();
        let v0 = since[0].version;
        f.ns.put(
            "p/b",
            Bytes::from("2"),
            put_opts(None, Some(60), Some("{\"m\":1}")),
        )
        .await
        .unwrap();
        f.ns.put("p/c", Bytes::from("3"), PutOptions::default())
            .await
            .unwrap();
        f.ns.put("q/x", Bytes::from("4"), PutOptions::default())
            .await
            .unwrap();
        let missed = f.ns.changed_since("p/", v0).await.unwrap();
        let keys: Vec<&str> = missed.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            ["p/b", "p/c"],
            "oldest write first, only under the prefix"
        );
        assert_eq!(missed[0].metadata.as_deref(), Some("{\"m\":1}"));
        // Once p/b has expired it is not replayed as a put, swept or not.
        f.clock.advance_secs(61);
        let missed = f.ns.changed_since("p/", v0).await.unwrap();
        let keys: Vec<&str> = missed.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["p/c"]);
    })
    .await;
}
