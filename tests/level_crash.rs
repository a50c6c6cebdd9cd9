//! A batch interrupted mid-way on a plain Workers KV namespace (no atomic batches) is, after a
//! reopen, either whole or absent. The store below fails every write after the first `k`, for
//! every `k` from 0 (nothing written) to past the end (everything written): the process "dies"
//! there, a new one opens the same namespace, and `open` replays the batch's journal.

use std::collections::BTreeMap;
use std::sync::Arc;

use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::kv::Kv;
use couchkv::level::{BatchOp, KvLevel, LevelDb, RangeOptions};
use couchkv_adapters::{DynStore, FailingStore, MemoryStore, PlainKvStore};

fn kv(store: DynStore) -> Kv {
    Kv::new(
        store,
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    )
}

async fn contents(db: &LevelDb) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut it = db.iterator(RangeOptions::all()).unwrap();
    it.all()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect()
}

fn state(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[tokio::test]
async fn interrupted_batch_is_whole_or_absent_after_reopen() {
    let before = state(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let after = state(&[("a", "10"), ("c", "30"), ("d", "4"), ("e", "5")]);
    let batch = || {
        vec![
            BatchOp::put("a", "10"),
            BatchOp::del("b"),
            BatchOp::put("d", "4"),
            BatchOp::put("e", "5"),
            BatchOp::put("c", "30"),
        ]
    };
    // The journal entry, five writes, the journal's removal: seven writes in all.
    let mut torn_seen = 0;
    for k in 0..=8u32 {
        let memory = Arc::new(MemoryStore::new());
        let failing = Arc::new(FailingStore::new(memory.clone()));
        let first = kv(Arc::new(PlainKvStore::new(failing.clone())));
        let ns = first.create_namespace("crash").await.unwrap();
        let db = LevelDb::opened(KvLevel::new(first.namespace(&ns.id), ""))
            .await
            .unwrap();
        for (key, value) in &before {
            db.put(key, value.clone()).await.unwrap();
        }
        assert!(!db.supports().atomic_batch);

        failing.fail_after(k);
        let result = db.batch(batch()).await;
        assert_eq!(result.is_ok(), k >= 7, "k = {k}: {result:?}");
        // What the dead process left, before any recovery.
        failing.heal();
        let left = contents(&db).await;
        if left != before && left != after {
            torn_seen += 1;
        }

        // A new process on the same namespace.
        let second = kv(Arc::new(PlainKvStore::new(memory.clone())));
        let reopened = LevelDb::opened(KvLevel::new(second.namespace(&ns.id), ""))
            .await
            .unwrap();
        let recovered = contents(&reopened).await;
        let want = if k == 0 { &before } else { &after };
        assert_eq!(&recovered, want, "k = {k}: the batch is whole or absent");
        // The journal is gone once replayed.
        let journal = second
            .namespace(&ns.id)
            .list(&couchkv::kv::ListOptions {
                prefix: Some("j".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(journal.keys.is_empty(), "k = {k}: journal left behind");
    }
    assert!(
        torn_seen >= 4,
        "the failures did tear the batch before recovery ({torn_seen})"
    );
}

#[tokio::test]
async fn native_batches_need_no_journal() {
    // On a store with atomic batches a failed batch writes nothing at all.
    let memory = Arc::new(MemoryStore::new());
    let failing = Arc::new(FailingStore::new(memory.clone()));
    let kv = kv(failing.clone());
    let ns = kv.create_namespace("native").await.unwrap();
    let db = LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), ""))
        .await
        .unwrap();
    assert!(db.supports().atomic_batch);
    failing.fail_after(0);
    let r = db
        .batch(vec![BatchOp::put("a", "1"), BatchOp::put("b", "2")])
        .await;
    assert!(r.is_err());
    failing.heal();
    assert!(contents(&db).await.is_empty());
}
