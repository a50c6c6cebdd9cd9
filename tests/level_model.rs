//! Model-based test: random sequences of put, del, batch, get, get_many, clear, iterate (random
//! ranges, directions, limits, keys-only) and seek, in the root and in nested sublevels, run on
//! `MemoryLevel` (the model) and on `KvLevel` over a native store and over a plain Workers KV
//! namespace. Every step's result must be the same on all three.

use std::sync::Arc;

use bytes::Bytes;
use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::kv::Kv;
use couchkv::level::{BatchOp, KvLevel, LevelDb, MemoryLevel, RangeOptions};
use couchkv_adapters::{DynStore, MemoryStore, PlainKvStore};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Put(usize, Vec<u8>, Vec<u8>),
    Del(usize, Vec<u8>),
    Batch(usize, Vec<(bool, Vec<u8>, Vec<u8>)>),
    Get(usize, Vec<u8>),
    GetMany(usize, Vec<Vec<u8>>),
    Iterate(usize, Range, bool),
    Seek(usize, Range, Vec<u8>, usize),
    Clear(usize, Range),
}

#[derive(Debug, Clone)]
struct Range {
    gt: Option<Vec<u8>>,
    gte: Option<Vec<u8>>,
    lt: Option<Vec<u8>>,
    lte: Option<Vec<u8>>,
    reverse: bool,
    limit: Option<usize>,
}

impl Range {
    fn options(&self) -> RangeOptions {
        RangeOptions {
            gt: self.gt.clone(),
            gte: self.gte.clone(),
            lt: self.lt.clone(),
            lte: self.lte.clone(),
            reverse: self.reverse,
            limit: self.limit,
        }
    }
}

/// Bytes chosen to sit on every boundary that matters: NUL, the sublevel separator `!` and the
/// byte after it, ASCII, DEL, and 0xFF.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![0u8, 1, b'!', b'"', b'a', b'b', 0x7f, 0xff]),
        0..4,
    )
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..6)
}

fn range() -> impl Strategy<Value = Range> {
    (
        prop::option::weighted(0.3, key()),
        prop::option::weighted(0.3, key()),
        prop::option::weighted(0.3, key()),
        prop::option::weighted(0.3, key()),
        any::<bool>(),
        prop::option::weighted(0.4, 0usize..6),
    )
        .prop_map(|(gt, gte, lt, lte, reverse, limit)| Range {
            gt,
            gte,
            lt,
            lte,
            reverse,
            limit,
        })
}

/// 0 is the root, 1 and 2 siblings, 3 a child of 1.
fn sub() -> impl Strategy<Value = usize> {
    0usize..4
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (sub(), key(), value()).prop_map(|(s, k, v)| Step::Put(s, k, v)),
        2 => (sub(), key()).prop_map(|(s, k)| Step::Del(s, k)),
        2 => (sub(), prop::collection::vec((any::<bool>(), key(), value()), 0..6))
            .prop_map(|(s, ops)| Step::Batch(s, ops)),
        1 => (sub(), key()).prop_map(|(s, k)| Step::Get(s, k)),
        1 => (sub(), prop::collection::vec(key(), 0..4)).prop_map(|(s, ks)| Step::GetMany(s, ks)),
        3 => (sub(), range(), any::<bool>()).prop_map(|(s, r, keys_only)| Step::Iterate(s, r, keys_only)),
        1 => (sub(), range(), key(), 1usize..4).prop_map(|(s, r, t, n)| Step::Seek(s, r, t, n)),
        1 => (sub(), range()).prop_map(|(s, r)| Step::Clear(s, r)),
    ]
}

/// A database and its sublevels, in the order `sub()` numbers them.
fn handles(db: LevelDb) -> Vec<LevelDb> {
    let a = db.sublevel("a").unwrap();
    let b = db.sublevel("b").unwrap();
    let ax = a.sublevel("x").unwrap();
    vec![db, a, b, ax]
}

async fn kv_level(store: DynStore) -> LevelDb {
    let kv = Kv::new(
        store,
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    );
    let ns = kv.create_namespace("model").await.unwrap();
    LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), ""))
        .await
        .unwrap()
}

/// What a step returns, in a comparable form.
type Outcome = Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, &'static str>;

async fn run(db: &LevelDb, step: &Step) -> Outcome {
    let entries =
        |v: Vec<(Vec<u8>, Bytes)>| v.into_iter().map(|(k, v)| (k, Some(v.to_vec()))).collect();
    let r = match step {
        Step::Put(_, k, v) => db.put(k, v.clone()).await.map(|()| vec![]),
        Step::Del(_, k) => db.del(k).await.map(|()| vec![]),
        Step::Batch(_, ops) => {
            let ops = ops
                .iter()
                .map(|(put, k, v)| {
                    if *put {
                        BatchOp::put(k.clone(), v.clone())
                    } else {
                        BatchOp::del(k.clone())
                    }
                })
                .collect();
            db.batch(ops).await.map(|()| vec![])
        }
        Step::Get(_, k) => db
            .get(k)
            .await
            .map(|v| vec![(k.clone(), v.map(|v| v.to_vec()))]),
        Step::GetMany(_, ks) => db.get_many(ks).await.map(|vs| {
            ks.iter()
                .cloned()
                .zip(vs.into_iter().map(|v| v.map(|v| v.to_vec())))
                .collect()
        }),
        Step::Iterate(_, r, true) => match db.keys(r.options()) {
            Ok(mut it) => it
                .all()
                .await
                .map(|ks| ks.into_iter().map(|k| (k, None)).collect()),
            Err(e) => Err(e),
        },
        Step::Iterate(_, r, false) => match db.iterator(r.options()) {
            Ok(mut it) => it.all().await.map(entries),
            Err(e) => Err(e),
        },
        Step::Seek(_, r, target, n) => match db.iterator(r.options()) {
            Ok(mut it) => {
                it.seek(target);
                let mut out = Vec::new();
                for _ in 0..*n {
                    match it.next().await {
                        Ok(Some((k, v))) => out.push((k, Some(v.to_vec()))),
                        Ok(None) => break,
                        Err(e) => return Err(e.code()),
                    }
                }
                Ok(out)
            }
            Err(e) => Err(e),
        },
        Step::Clear(_, r) => db.clear(r.options()).await.map(|()| vec![]),
    };
    r.map_err(|e| e.code())
}

fn sub_of(step: &Step) -> usize {
    match step {
        Step::Put(s, ..)
        | Step::Del(s, ..)
        | Step::Batch(s, ..)
        | Step::Get(s, ..)
        | Step::GetMany(s, ..)
        | Step::Iterate(s, ..)
        | Step::Seek(s, ..)
        | Step::Clear(s, ..) => *s,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn kv_level_matches_the_model(steps in prop::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let model = handles(LevelDb::opened(MemoryLevel::new()).await.unwrap());
            let native = handles(kv_level(Arc::new(MemoryStore::new())).await);
            let plain = handles(kv_level(Arc::new(PlainKvStore::new(MemoryStore::new()))).await);
            for (i, step) in steps.iter().enumerate() {
                let s = sub_of(step);
                let want = run(&model[s], step).await;
                let got_native = run(&native[s], step).await;
                let got_plain = run(&plain[s], step).await;
                prop_assert_eq!(&got_native, &want, "native store, step {}: {:?}", i, step);
                prop_assert_eq!(&got_plain, &want, "plain KV, step {}: {:?}", i, step);
            }
            // And the whole database agrees at the end.
            let all = Step::Iterate(0, Range { gt: None, gte: None, lt: None, lte: None, reverse: false, limit: None }, false);
            prop_assert_eq!(run(&native[0], &all).await, run(&model[0], &all).await);
            prop_assert_eq!(run(&plain[0], &all).await, run(&model[0], &all).await);
            Ok(())
        })?;
    }
}
