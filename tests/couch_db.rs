//! `couch::Db` as a library, without HTTP: the document model a second host (the Worker) calls
//! directly. Each test opens a fresh CouchDB layer on the memory store through the kv and level
//! layers, exactly as the server does.

use std::sync::Arc;

use bytes::Bytes;
use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::couch::revs::Rev;
use couchkv::couch::{ChangesOptions, Couch, Db, DocOptions, ErrorKind, WriteResult};
use couchkv::kv::Kv;
use couchkv::level::{KvLevel, LevelDb};
use couchkv_adapters::MemoryStore;
use serde_json::{json, Value};

async fn fresh_db(name: &str) -> Db {
    let kv = Kv::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    );
    let ns = kv.create_namespace("couch").await.unwrap();
    let level = LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), ""))
        .await
        .unwrap();
    let couch = Couch::new(level, Arc::new(SequentialIds::default())).unwrap();
    couch.create_db(name).await.unwrap();
    couch.db(name).await.unwrap()
}

fn rev_of(r: &WriteResult) -> String {
    match r {
        WriteResult::Ok { rev, .. } => rev.clone(),
        WriteResult::Err { error, .. } => panic!("write failed: {error:?}"),
    }
}

async fn put(db: &Db, doc: Value) -> WriteResult {
    db.bulk_docs(vec![doc], true).await.unwrap().remove(0)
}

#[tokio::test]
async fn writes_conflict_and_branch_by_the_rules() {
    let db = fresh_db("db").await;
    let r1 = rev_of(&put(&db, json!({"_id": "a", "v": 1})).await);
    assert!(r1.starts_with("1-"));
    // A write without the current revision is a conflict, and changes nothing.
    match put(&db, json!({"_id": "a", "v": 2})).await {
        WriteResult::Err { error, .. } => assert_eq!(error.kind, ErrorKind::Conflict),
        ok => panic!("{ok:?}"),
    }
    let r2 = rev_of(&put(&db, json!({"_id": "a", "_rev": r1, "v": 2})).await);
    assert!(r2.starts_with("2-"));
    // Replication's new_edits=false adds a branch beside it: a conflict both keep.
    let branch = json!({"_id": "a", "_rev": "2-ffffffffffffffffffffffffffffffff", "v": "b",
        "_revisions": {"start": 2, "ids": ["ffffffffffffffffffffffffffffffff", &r1[2..]]}});
    db.bulk_docs(vec![branch], false).await.unwrap();
    let opts = DocOptions {
        conflicts: true,
        ..DocOptions::default()
    };
    let doc = db.get("a", &opts).await.unwrap();
    // The winner is the higher revision id at the same depth.
    assert_eq!(doc["_rev"], "2-ffffffffffffffffffffffffffffffff");
    assert_eq!(doc["_conflicts"], json!([r2]));
    // The old revision is still there until compaction.
    let old = DocOptions {
        rev: Rev::parse(&r1),
        ..DocOptions::default()
    };
    assert_eq!(db.get("a", &old).await.unwrap()["v"], 1);
}

#[tokio::test]
async fn changes_list_each_document_once_at_its_latest_sequence() {
    let db = fresh_db("db").await;
    let ra = rev_of(&put(&db, json!({"_id": "a"})).await);
    put(&db, json!({"_id": "b"})).await;
    put(&db, json!({"_id": "a", "_rev": ra, "x": 1})).await;
    // _local documents are never in the feed.
    db.put_local("checkpoint", json!({"seq": 3})).await.unwrap();
    let page = db.changes(&ChangesOptions::default()).await.unwrap();
    let ids: Vec<&str> = page
        .results
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(page.last_seq, 3);
    let since = ChangesOptions {
        since: 2,
        ..ChangesOptions::default()
    };
    let later = db.changes(&since).await.unwrap();
    assert_eq!(later.results.len(), 1);
    assert_eq!(later.results[0]["id"], "a");
    assert_eq!(db.get_local("checkpoint").await.unwrap()["seq"], 3);
}

#[tokio::test]
async fn attachments_come_back_byte_for_byte() {
    let db = fresh_db("db").await;
    let bytes = Bytes::from((0u8..=255).collect::<Vec<u8>>());
    let r = db
        .update_attachment(
            "doc",
            "all.bin",
            None,
            Some(("application/octet-stream".into(), bytes.clone())),
            None,
        )
        .await
        .unwrap();
    let rev = rev_of(&r);
    let got = db.get_attachment("doc", "all.bin", None).await.unwrap();
    assert_eq!(got.data, bytes);
    assert_eq!(got.content_type, "application/octet-stream");
    assert!(got.digest.starts_with("md5-"), "{}", got.digest);
    // Removing it is a new revision without it.
    let r2 = db
        .update_attachment("doc", "all.bin", Rev::parse(&rev), None, None)
        .await
        .unwrap();
    assert!(rev_of(&r2).starts_with("2-"));
    let gone = db.get_attachment("doc", "all.bin", None).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn compaction_drops_old_bodies_and_keeps_leaves() {
    let db = fresh_db("db").await;
    let mut rev = rev_of(&put(&db, json!({"_id": "a", "n": 0})).await);
    let first = rev.clone();
    for n in 1..5 {
        rev = rev_of(&put(&db, json!({"_id": "a", "_rev": rev, "n": n})).await);
    }
    assert_eq!(db.garbage().await, 4);
    assert!(db.begin_compaction());
    assert_eq!(db.compact().await.unwrap(), 4);
    assert_eq!(db.garbage().await, 0);
    let old = DocOptions {
        rev: Rev::parse(&first),
        ..DocOptions::default()
    };
    assert_eq!(
        db.get("a", &old).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    let leaf = db.get("a", &DocOptions::default()).await.unwrap();
    assert_eq!(leaf["n"], 4);
    assert_eq!(leaf["_rev"], rev);
}
