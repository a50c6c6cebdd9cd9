//! The level conformance suite, exported as abstract-level exports its own: a factory hands out
//! a fresh, open database per case; [`run_all`] runs every case on it, then again on a sublevel
//! of it. Tests match error codes, never messages. The range cases are abstract-level's
//! `iterator-range-test.js` and `iterator-seek-test.js` tables.

use std::future::Future;

use bytes::Bytes;

use super::{BatchOp, ErrorCode, LevelDb, RangeOptions, Result, Status};

/// Runs every case on `factory()`'s database and on a sublevel of a fresh one; returns how many
/// cases ran (each panics on a broken promise).
pub async fn run_all<F, Fut>(factory: F) -> usize
where
    F: Fn() -> Fut,
    Fut: Future<Output = LevelDb>,
{
    let mut ran = 0;
    for sub in [false, true] {
        macro_rules! case {
            ($name:ident) => {{
                eprintln!(
                    "level conformance: {}{}",
                    stringify!($name),
                    if sub { " (sublevel)" } else { "" }
                );
                let db = factory().await;
                let db = if sub {
                    db.put("outside", "x").await.unwrap();
                    db.sublevel("sub").unwrap()
                } else {
                    db
                };
                $name(&db).await;
                ran += 1;
            }};
        }
        case!(put_get_del);
        case!(get_many);
        case!(batch);
        case!(chained_batch);
        case!(iterator_ranges);
        case!(iterator_kinds);
        case!(seek);
        case!(paging);
        case!(clear);
        case!(sublevels);
        case!(key_limit);
        case!(large_values);
        case!(watch);
        case!(closed);
    }
    ran
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> ErrorCode {
    r.expect_err("an error").code
}

async fn keys_of(db: &LevelDb, opts: RangeOptions) -> Vec<Vec<u8>> {
    db.keys(opts).unwrap().all().await.unwrap()
}

pub async fn put_get_del(db: &LevelDb) {
    assert_eq!(db.get("missing").await.unwrap(), None);
    db.put("k", "v1").await.unwrap();
    assert_eq!(db.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    db.put("k", "v2").await.unwrap();
    assert_eq!(db.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    db.del("k").await.unwrap();
    assert_eq!(db.get("k").await.unwrap(), None);
    db.del("k").await.unwrap();
    // Empty keys and values, and bytes that are not UTF-8.
    db.put("", "empty key").await.unwrap();
    db.put("empty value", "").await.unwrap();
    for key in [vec![0u8], vec![0xff], vec![0, 0xff, 0], vec![0xc3, 0x28]] {
        db.put(&key, Bytes::from(key.clone())).await.unwrap();
    }
    assert_eq!(
        db.get("").await.unwrap().as_deref(),
        Some(&b"empty key"[..])
    );
    assert_eq!(
        db.get("empty value").await.unwrap().as_deref(),
        Some(&b""[..])
    );
    assert_eq!(
        db.get([0xff]).await.unwrap().as_deref(),
        Some(&[0xffu8][..])
    );
    let all = keys_of(db, RangeOptions::all()).await;
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "keys iterate in byte order");
    assert_eq!(all.first().map(Vec::as_slice), Some(&b""[..]));
    assert_eq!(all.last().map(Vec::as_slice), Some(&[0xffu8][..]));
}

pub async fn get_many(db: &LevelDb) {
    db.put("a", "1").await.unwrap();
    db.put("c", "3").await.unwrap();
    let got = db.get_many(&["c", "b", "a", "c"]).await.unwrap();
    let got: Vec<Option<&[u8]>> = got.iter().map(|v| v.as_deref()).collect();
    assert_eq!(
        got,
        [Some(&b"3"[..]), None, Some(&b"1"[..]), Some(&b"3"[..])]
    );
    assert!(db.get_many::<&str>(&[]).await.unwrap().is_empty());
}

pub async fn batch(db: &LevelDb) {
    db.put("gone", "x").await.unwrap();
    db.batch(vec![
        BatchOp::put("a", "1"),
        BatchOp::put("b", "2"),
        BatchOp::del("gone"),
        BatchOp::put("c", "first"),
        BatchOp::del("c"),
        BatchOp::put("c", "last"),
        BatchOp::put("d", "put then deleted"),
        BatchOp::del("d"),
    ])
    .await
    .unwrap();
    let got = db.get_many(&["a", "b", "gone", "c", "d"]).await.unwrap();
    let got: Vec<Option<&[u8]>> = got.iter().map(|v| v.as_deref()).collect();
    assert_eq!(
        got,
        [
            Some(&b"1"[..]),
            Some(&b"2"[..]),
            None,
            Some(&b"last"[..]),
            None
        ]
    );
    db.batch(vec![]).await.unwrap();
    if let Some(max) = db.supports().max_key_bytes {
        let r = db
            .batch(vec![
                BatchOp::put("e", "5"),
                BatchOp::put(vec![b'k'; max + 1], "x"),
            ])
            .await;
        assert_eq!(code(r), ErrorCode::InvalidKey);
        assert_eq!(
            db.get("e").await.unwrap(),
            None,
            "nothing of a rejected batch is written"
        );
    }
}

pub async fn chained_batch(db: &LevelDb) {
    db.put("old", "x").await.unwrap();
    let mut b = db.chained_batch();
    b.put("a", "1")
        .unwrap()
        .put("b", "2")
        .unwrap()
        .del("old")
        .unwrap();
    assert_eq!(b.len(), 3);
    b.clear().unwrap();
    assert!(b.is_empty());
    b.put("c", "3").unwrap().del("old").unwrap();
    b.write().await.unwrap();
    assert_eq!(
        db.get("a").await.unwrap(),
        None,
        "cleared writes are dropped"
    );
    assert_eq!(db.get("c").await.unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(db.get("old").await.unwrap(), None);
    assert_eq!(code(b.write().await), ErrorCode::BatchNotOpen);
    assert_eq!(code(b.put("x", "y").map(|_| ())), ErrorCode::BatchNotOpen);
    let mut closed = db.chained_batch();
    closed.put("never", "1").unwrap();
    closed.close();
    assert_eq!(code(closed.write().await), ErrorCode::BatchNotOpen);
    assert_eq!(db.get("never").await.unwrap(), None);
    if let Some(max) = db.supports().max_key_bytes {
        let mut b = db.chained_batch();
        assert_eq!(
            code(b.put(vec![b'k'; max + 1], "x").map(|_| ())),
            ErrorCode::InvalidKey
        );
    }
}

fn data_key(i: usize) -> String {
    format!("{i:02}")
}

async fn hundred(db: &LevelDb) {
    let ops = (0..100)
        .map(|i| BatchOp::put(data_key(i), format!("v{i}")))
        .collect();
    db.batch(ops).await.unwrap();
}

/// One row of abstract-level's range table: the options, and the indices of the expected keys.
async fn expect_range(db: &LevelDb, opts: RangeOptions, want: Vec<usize>) {
    let got = db.iterator(opts.clone()).unwrap().all().await.unwrap();
    let want_entries: Vec<(Vec<u8>, Bytes)> = want
        .iter()
        .map(|&i| (data_key(i).into_bytes(), Bytes::from(format!("v{i}"))))
        .collect();
    assert_eq!(got, want_entries, "{opts:?}");
    // In reverse, the same entries in the opposite order.
    if !opts.reverse && opts.limit.is_none() {
        let got = keys_of(db, opts.clone().reverse()).await;
        let mut want: Vec<Vec<u8>> = want.iter().map(|&i| data_key(i).into_bytes()).collect();
        want.reverse();
        assert_eq!(got, want, "{opts:?} flipped");
    }
}

pub async fn iterator_ranges(db: &LevelDb) {
    hundred(db).await;
    let all = || RangeOptions::all();
    let up = |a: usize, b: usize| (a..b).collect::<Vec<_>>();
    let down = |a: usize, b: usize| (a..b).rev().collect::<Vec<_>>();
    let rows: Vec<(RangeOptions, Vec<usize>)> = vec![
        (all(), up(0, 100)),
        (all().reverse(), down(0, 100)),
        (all().gte("00"), up(0, 100)),
        (all().gte("50"), up(50, 100)),
        (all().lte("50").reverse(), down(0, 51)),
        (all().gte("49.5"), up(50, 100)),
        (all().gte("49999"), up(50, 100)),
        (all().lte("49.5").reverse(), down(0, 50)),
        (all().lt("49.5").reverse(), down(0, 50)),
        (all().lt("50").reverse(), down(0, 50)),
        (all().lte("50"), up(0, 51)),
        (all().lte("50.5"), up(0, 51)),
        (all().lte("50555"), up(0, 51)),
        (all().lt("50555"), up(0, 51)),
        (all().gte("50.5").reverse(), down(51, 100)),
        (all().gt("50.5").reverse(), down(51, 100)),
        (all().gt("50").reverse(), down(51, 100)),
        (all().lte("0"), vec![]),
        (all().lt("0"), vec![]),
        (all().gte("30").lte("70"), up(30, 71)),
        (all().gt("29").lt("71"), up(30, 71)),
        (all().lte("70").gte("30").reverse(), down(30, 71)),
        (all().lt("71").gt("29").reverse(), down(30, 71)),
        (all().limit(20), up(0, 20)),
        (all().limit(20).gte("20"), up(20, 40)),
        (all().limit(20).reverse(), down(80, 100)),
        (all().limit(20).lte("79").reverse(), down(60, 80)),
        (all().limit(0), vec![]),
        (all().limit(20).lte("50"), up(0, 20)),
        (all().limit(50).lte("19"), up(0, 20)),
        (all().gte("9a"), vec![]),
        (all().gt("9a"), vec![]),
        (all().lte("9a").reverse(), down(0, 100)),
        (all().lt("a"), up(0, 100)),
        (all().lt("99"), up(0, 99)),
        (all().lte("99"), up(0, 100)),
        (all().lt("98"), up(0, 98)),
        (all().lte("98"), up(0, 99)),
        (all().lte("9b").gte("9a").reverse(), vec![]),
        (all().lt("9b").gt("9a").reverse(), vec![]),
        (all().gt("20").lt("10"), vec![]),
        (all().gte("20").lte("10"), vec![]),
        // Both forms of a bound: the tighter one holds.
        (all().gt("50").gte("40"), up(51, 100)),
        (all().lt("60").lte("70"), up(0, 60)),
    ];
    for (opts, want) in rows {
        expect_range(db, opts, want).await;
    }
}

pub async fn iterator_kinds(db: &LevelDb) {
    hundred(db).await;
    let keys = db
        .keys(RangeOptions::all().gte("10").limit(3))
        .unwrap()
        .all()
        .await
        .unwrap();
    assert_eq!(keys, [b"10".to_vec(), b"11".to_vec(), b"12".to_vec()]);
    let values = db
        .values(RangeOptions::all().lt("03").reverse())
        .unwrap()
        .all()
        .await
        .unwrap();
    assert_eq!(
        values,
        [Bytes::from("v2"), Bytes::from("v1"), Bytes::from("v0")]
    );
    let mut it = db.iterator(RangeOptions::all().limit(2)).unwrap();
    assert!(it.next().await.unwrap().is_some());
    assert!(it.next().await.unwrap().is_some());
    assert_eq!(it.next().await.unwrap(), None, "the limit holds");
    assert_eq!(it.next().await.unwrap(), None);
    it.close();
    assert_eq!(code(it.next().await), ErrorCode::IteratorNotOpen);
}

pub async fn seek(db: &LevelDb) {
    db.batch(vec![
        BatchOp::put("one", "1"),
        BatchOp::put("two", "2"),
        BatchOp::put("three", "3"),
    ])
    .await
    .unwrap();
    let mut it = db.iterator(RangeOptions::all()).unwrap();
    it.seek("two");
    assert_eq!(it.next().await.unwrap().map(|e| e.0), Some(b"two".to_vec()));
    assert_eq!(it.next().await.unwrap(), None);
    // Seeking back re-reads.
    it.seek("one");
    assert_eq!(it.next().await.unwrap().map(|e| e.0), Some(b"one".to_vec()));
    let mut it = db.iterator(RangeOptions::all().reverse().limit(1)).unwrap();
    it.seek("three!");
    assert_eq!(
        it.next().await.unwrap().map(|e| e.1),
        Some(Bytes::from("3"))
    );
    let mut it = db.iterator(RangeOptions::all()).unwrap();
    it.seek("zzz");
    assert_eq!(it.next().await.unwrap(), None);
    let mut it = db.iterator(RangeOptions::all().reverse()).unwrap();
    it.seek("zzz");
    assert_eq!(
        it.next().await.unwrap().map(|e| e.1),
        Some(Bytes::from("2"))
    );

    // The seek table: a target outside the range ends the iteration.
    db.clear(RangeOptions::all()).await.unwrap();
    let ops = (0..10)
        .map(|i| BatchOp::put(i.to_string(), i.to_string()))
        .collect();
    db.batch(ops).await.unwrap();
    let all = || RangeOptions::all();
    let rows: Vec<(RangeOptions, &str, Option<&str>)> = vec![
        (all().gt("5"), "4", None),
        (all().gt("5"), "5", None),
        (all().gt("5"), "6", Some("6")),
        (all().gte("5"), "4", None),
        (all().gte("5"), "5", Some("5")),
        (all().gte("5"), "6", Some("6")),
        (all().lt("5"), "4", Some("4")),
        (all().lt("5"), "5", None),
        (all().lt("5"), "6", None),
        (all().lte("5"), "4", Some("4")),
        (all().lte("5"), "5", Some("5")),
        (all().lte("5"), "6", None),
        (all().lt("5").reverse(), "4", Some("4")),
        (all().lt("5").reverse(), "5", None),
        (all().lt("5").reverse(), "6", None),
        (all().lte("5").reverse(), "4", Some("4")),
        (all().lte("5").reverse(), "5", Some("5")),
        (all().lte("5").reverse(), "6", None),
        (all().gt("5").reverse(), "4", None),
        (all().gt("5").reverse(), "5", None),
        (all().gt("5").reverse(), "6", Some("6")),
        (all().gte("5").reverse(), "4", None),
        (all().gte("5").reverse(), "5", Some("5")),
        (all().gte("5").reverse(), "6", Some("6")),
        (all().gt("7").lt("8"), "7", None),
        (all().gte("7").lt("8"), "7", Some("7")),
        (all().gte("7").lt("8"), "8", None),
        (all().gt("7").lte("8"), "8", Some("8")),
    ];
    for (opts, target, want) in rows {
        let mut it = db.values(opts.clone()).unwrap();
        it.seek(target);
        let got = it.next().await.unwrap();
        assert_eq!(
            got.as_deref(),
            want.map(str::as_bytes),
            "seek({target}) on {opts:?}"
        );
    }
}

pub async fn paging(db: &LevelDb) {
    // More keys than one page, so iterators cross page boundaries.
    let n = 2500;
    let key = |i: usize| format!("p{i:05}");
    for chunk in (0..n).collect::<Vec<_>>().chunks(700) {
        let ops = chunk
            .iter()
            .map(|&i| BatchOp::put(key(i), i.to_string()))
            .collect();
        db.batch(ops).await.unwrap();
    }
    let fwd = keys_of(db, RangeOptions::all()).await;
    assert_eq!(fwd.len(), n);
    assert!(fwd
        .iter()
        .enumerate()
        .all(|(i, k)| *k == key(i).into_bytes()));
    let rev = keys_of(db, RangeOptions::all().reverse()).await;
    assert!(rev.iter().rev().eq(fwd.iter()));
    let some = keys_of(db, RangeOptions::all().gt(key(100)).limit(1500)).await;
    assert_eq!((some.len(), some[0].clone()), (1500, key(101).into_bytes()));
    let mut it = db.values(RangeOptions::all().reverse()).unwrap();
    it.seek(key(1234));
    assert_eq!(it.next().await.unwrap().as_deref(), Some(&b"1234"[..]));
    assert_eq!(it.next().await.unwrap().as_deref(), Some(&b"1233"[..]));
}

pub async fn clear(db: &LevelDb) {
    let reset = || async {
        db.clear(RangeOptions::all()).await.unwrap();
        hundred(db).await;
    };
    let left = || async { keys_of(db, RangeOptions::all()).await.len() };
    reset().await;
    db.clear(RangeOptions::all().gte("20").lt("30"))
        .await
        .unwrap();
    assert_eq!(left().await, 90);
    assert_eq!(db.get("25").await.unwrap(), None);
    assert!(db.get("30").await.unwrap().is_some());
    reset().await;
    db.clear(RangeOptions::all().limit(10)).await.unwrap();
    assert_eq!(
        keys_of(db, RangeOptions::all().limit(1)).await,
        [b"10".to_vec()]
    );
    reset().await;
    db.clear(RangeOptions::all().limit(10).reverse())
        .await
        .unwrap();
    assert_eq!(
        keys_of(db, RangeOptions::all().reverse().limit(1)).await,
        [b"89".to_vec()]
    );
    reset().await;
    db.clear(RangeOptions::all().gt("95")).await.unwrap();
    assert_eq!(left().await, 96);
    db.clear(RangeOptions::all().gt("20").lt("10"))
        .await
        .unwrap();
    assert_eq!(left().await, 96, "an empty range clears nothing");
    db.clear(RangeOptions::all()).await.unwrap();
    assert_eq!(left().await, 0);
}

pub async fn sublevels(db: &LevelDb) {
    let a = db.sublevel("a").unwrap();
    let ab = db.sublevel("ab").unwrap();
    let b = db.sublevel("b").unwrap();
    let a_x = a.sublevel("x").unwrap();
    a.put("k", "a").await.unwrap();
    ab.put("k", "ab").await.unwrap();
    b.put("k", "b").await.unwrap();
    a_x.put("k", "a/x").await.unwrap();
    db.put("k", "root").await.unwrap();
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(ab.get("k").await.unwrap().as_deref(), Some(&b"ab"[..]));
    assert_eq!(a_x.get("k").await.unwrap().as_deref(), Some(&b"a/x"[..]));
    // Each sibling's range holds only its own keys, whatever the direction or bounds.
    for sub in [&a, &ab, &b] {
        for opts in [
            RangeOptions::all(),
            RangeOptions::all().reverse(),
            RangeOptions::all().gte("").lte([0xffu8; 8]),
        ] {
            let keys = keys_of(sub, opts).await;
            assert!(
                keys.iter().all(|k| k == b"k" || k.starts_with(b"!x!")),
                "{keys:?}"
            );
        }
    }
    assert_eq!(keys_of(&ab, RangeOptions::all()).await, [b"k".to_vec()]);
    assert_eq!(
        keys_of(&a, RangeOptions::all()).await,
        [b"!x!k".to_vec(), b"k".to_vec()]
    );
    // The parent sees its sublevels' entries under their prefixes.
    let parent = keys_of(db, RangeOptions::all().gte("!").lt("\"")).await;
    assert_eq!(
        parent,
        [
            b"!a!!x!k".to_vec(),
            b"!a!k".to_vec(),
            b"!ab!k".to_vec(),
            b"!b!k".to_vec()
        ]
    );
    a.clear(RangeOptions::all()).await.unwrap();
    assert_eq!(
        a_x.get("k").await.unwrap(),
        None,
        "clearing a sublevel clears its children"
    );
    assert_eq!(ab.get("k").await.unwrap().as_deref(), Some(&b"ab"[..]));
    assert_eq!(db.get("k").await.unwrap().as_deref(), Some(&b"root"[..]));
    for bad in ["", "a!b", "a b", "é", "tab\t"] {
        assert_eq!(
            code(db.sublevel(bad).map(|_| ())),
            ErrorCode::InvalidPrefix,
            "{bad:?}"
        );
    }
}

pub async fn key_limit(db: &LevelDb) {
    let Some(max) = db.supports().max_key_bytes else {
        return;
    };
    let longest = vec![0xffu8; max];
    db.put(&longest, "fits").await.unwrap();
    assert_eq!(
        db.get(&longest).await.unwrap().as_deref(),
        Some(&b"fits"[..])
    );
    assert_eq!(
        keys_of(db, RangeOptions::all()).await,
        std::slice::from_ref(&longest)
    );
    let over = vec![0u8; max + 1];
    assert_eq!(code(db.put(&over, "x").await), ErrorCode::InvalidKey);
    assert_eq!(code(db.get(&over).await), ErrorCode::InvalidKey);
    assert_eq!(code(db.del(&over).await), ErrorCode::InvalidKey);
    assert_eq!(code(db.get_many(&[&over]).await), ErrorCode::InvalidKey);
}

pub async fn large_values(db: &LevelDb) {
    let value = Bytes::from(
        (0..1024 * 1024)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    db.put("big", value.clone()).await.unwrap();
    assert!(db.get("big").await.unwrap() == Some(value));
}

pub async fn watch(db: &LevelDb) {
    use futures::StreamExt;
    async fn next(w: &mut super::KeyStream) -> Vec<u8> {
        couchkv_adapters::conformance::within(5000, w.next())
            .await
            .expect("a change within 5 s")
            .expect("the stream is open")
            .expect("no watch error")
    }
    let mut w = db.watch("w").await.unwrap();
    db.put("w1", "x").await.unwrap();
    db.put("other", "y").await.unwrap();
    assert_eq!(next(&mut w).await, b"w1");
    db.batch(vec![
        BatchOp::put("w2", "2"),
        BatchOp::del("w1"),
        BatchOp::put("v", "no"),
    ])
    .await
    .unwrap();
    let mut batch = vec![next(&mut w).await, next(&mut w).await];
    batch.sort();
    assert_eq!(batch, [b"w1".to_vec(), b"w2".to_vec()]);
    db.put("w3", "3").await.unwrap();
    assert_eq!(next(&mut w).await, b"w3", "nothing else came in between");
}

pub async fn closed(db: &LevelDb) {
    db.put("k", "v").await.unwrap();
    let mut it = db.iterator(RangeOptions::all()).unwrap();
    assert_eq!(db.status(), Status::Open);
    db.close().await.unwrap();
    assert_eq!(db.status(), Status::Closed);
    let not_open = ErrorCode::DatabaseNotOpen;
    assert_eq!(code(db.get("k").await), not_open);
    assert_eq!(code(db.get_many(&["k"]).await), not_open);
    assert_eq!(code(db.put("k", "v").await), not_open);
    assert_eq!(code(db.del("k").await), not_open);
    assert_eq!(code(db.batch(vec![BatchOp::del("k")]).await), not_open);
    assert_eq!(code(db.clear(RangeOptions::all()).await), not_open);
    assert_eq!(code(db.iterator(RangeOptions::all()).map(|_| ())), not_open);
    assert_eq!(code(db.keys(RangeOptions::all()).map(|_| ())), not_open);
    assert_eq!(code(db.values(RangeOptions::all()).map(|_| ())), not_open);
    assert_eq!(code(it.next().await), not_open);
    let mut b = db.chained_batch();
    b.put("k", "v").unwrap();
    assert_eq!(code(b.write().await), not_open);
    // Sublevels of a closed database are closed too.
    assert_eq!(code(db.sublevel("child").unwrap().get("k").await), not_open);
    db.close().await.unwrap();
    db.open().await.unwrap();
    assert_eq!(db.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}
