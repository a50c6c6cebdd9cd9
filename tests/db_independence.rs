//! Each database in a level database of its own where the store's namespaces are independent
//! (memory, PostgreSQL): commits to one database never wait on another's, on one node or two;
//! deletion removes the storage; a name made again starts empty; idle databases are let go.

use std::sync::Arc;
use std::time::Duration;

use couchkv::clock::{ManualClock, SequentialIds};
use couchkv::couch::{Couch, DbNames, WriteResult};
use couchkv::kv::{Kv, UNEXPIRING_PREFIX};
use couchkv::server::open_couch;
use couchkv_adapters::conformance::postgres_url;
use couchkv_adapters::{DynStore, MemoryStore, Namespaces, PostgresConfig, PostgresStore, Store};
use serde_json::json;

async fn couch_on(store: DynStore) -> Couch {
    let kv = Kv::new(
        store,
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    );
    open_couch(&kv, Arc::new(SequentialIds::default()))
        .await
        .unwrap()
}

async fn db_namespaces(store: &dyn Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .list_namespaces()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .filter(|id| id.starts_with(UNEXPIRING_PREFIX))
        .collect();
    ids.sort();
    ids
}

fn ok(r: &[WriteResult]) -> String {
    match &r[0] {
        WriteResult::Ok { rev, .. } => rev.clone(),
        WriteResult::Err { error, .. } => panic!("{error:?}"),
    }
}

#[tokio::test]
async fn each_database_has_its_own_namespace_and_leaves_nothing_behind() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let couch = couch_on(store.clone()).await;
    let before = db_namespaces(store.as_ref()).await;
    couch.create_db("a").await.unwrap();
    couch.create_db("b").await.unwrap();
    let made = db_namespaces(store.as_ref()).await;
    assert_eq!(made.len(), before.len() + 2, "{made:?}");
    let a_ns = format!(
        "{UNEXPIRING_PREFIX}{}",
        couch.generation("a").await.unwrap().unwrap()
    );
    assert!(made.contains(&a_ns), "{made:?} has {a_ns}");

    let a = couch.db("a").await.unwrap();
    ok(&a
        .bulk_docs(vec![json!({"_id": "x", "v": 1})], true)
        .await
        .unwrap());
    assert!(
        store
            .list(&a_ns, &Default::default())
            .await
            .unwrap()
            .entries
            .len()
            > 1
    );

    // Deleting drops the namespace; the name made again is a new, empty database.
    couch.delete_db("a").await.unwrap();
    assert!(!db_namespaces(store.as_ref()).await.contains(&a_ns));
    assert!(store.get_namespace(&a_ns).await.unwrap().is_none());
    couch.create_db("a").await.unwrap();
    let again = couch.db("a").await.unwrap();
    assert_eq!(again.info().await.unwrap().doc_count, 0);
    assert_ne!(
        couch.generation("a").await.unwrap().unwrap(),
        a_ns.trim_start_matches(UNEXPIRING_PREFIX)
    );
    // The old handle knows its database is gone.
    assert!(a.bulk_docs(vec![json!({"_id": "y"})], true).await.is_err());

    // Creating a name twice at once: one wins, the loser's namespace is removed.
    let (r1, r2) = tokio::join!(couch.create_db("c"), couch.create_db("c"));
    assert!(r1.is_ok() != r2.is_ok(), "{r1:?} {r2:?}");
    assert_eq!(
        db_namespaces(store.as_ref()).await.len(),
        before.len() + 3,
        "a, b and c, nothing left over"
    );
}

#[tokio::test]
async fn database_names_page_in_both_directions() {
    let couch = couch_on(Arc::new(MemoryStore::new())).await;
    for n in ["d1", "d2", "d3", "d4", "d5"] {
        couch.create_db(n).await.unwrap();
    }
    let page = |start: Option<&str>, end: Option<(&str, bool)>, descending, limit| DbNames {
        start: start.map(|s| (s.to_owned(), true)),
        end: end.map(|(s, i)| (s.to_owned(), i)),
        descending,
        limit,
    };
    let names = couch
        .db_names(&page(Some("d2"), Some(("d4", false)), false, 10))
        .await
        .unwrap();
    assert_eq!(names, ["d2", "d3"]);
    let names = couch
        .db_names(&page(Some("d4"), Some(("d2", true)), true, 2))
        .await
        .unwrap();
    assert_eq!(names, ["d4", "d3"]);
    let all = couch.all_dbs().await.unwrap();
    assert_eq!(
        all,
        ["_users", "d1", "d2", "d3", "d4", "d5"]
            .map(String::from)
            .to_vec()[1..]
    );
}

#[tokio::test]
async fn idle_databases_are_let_go_and_used_ones_stay_one_handle() {
    let kv = Kv::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        Arc::new(SequentialIds::default()),
    );
    let couch = open_couch(&kv, Arc::new(SequentialIds::default()))
        .await
        .unwrap();
    couch.create_db("held").await.unwrap();
    let held = couch.db("held").await.unwrap();
    // Far more databases than are kept idle, each opened once.
    for i in 0..10_000 {
        let name = format!("db{i:05}");
        couch.create_db(&name).await.unwrap();
        couch.db(&name).await.unwrap();
    }
    assert!(
        couch.loaded_count() <= 8_193,
        "{} loaded",
        couch.loaded_count()
    );
    // The database in use is the same handle (one writer lock), and deleting it reaches it.
    let again = couch.db("held").await.unwrap();
    ok(&again
        .bulk_docs(vec![json!({"_id": "k"})], true)
        .await
        .unwrap());
    assert_eq!(held.info().await.unwrap().update_seq, 1);
    couch.delete_db("held").await.unwrap();
    assert!(held
        .bulk_docs(vec![json!({"_id": "z"})], true)
        .await
        .is_err());
}

async fn pg_node(url: &str, schema: &str) -> PostgresStore {
    let mut config = PostgresConfig::new(url);
    config.schema = schema.to_owned();
    config.pool_size = 4;
    PostgresStore::open(config).await.unwrap()
}

/// A transaction that holds database `a`'s namespace row (the lock every commit to `a` takes)
/// until told to let go.
async fn hold_row(url: &str, schema: &str, ns: &str) -> tokio::sync::oneshot::Sender<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute("BEGIN").await.unwrap();
    let rows = client
        .query(
            &format!("SELECT 1 FROM {schema}.namespaces WHERE id = $1 FOR UPDATE"),
            &[&ns],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the namespace row of {ns}");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = rx.await;
        client.batch_execute("COMMIT").await.unwrap();
    });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_locked_database_does_not_stop_the_others_on_any_node() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("indep_{}", std::process::id());
    let (s1, s2) = tokio::join!(pg_node(&url, &schema), pg_node(&url, &schema));
    let (n1, n2) = (couch_on(Arc::new(s1)).await, couch_on(Arc::new(s2)).await);
    n1.create_db("a").await.unwrap();
    n2.create_db("b").await.unwrap();
    let a_ns = format!(
        "{UNEXPIRING_PREFIX}{}",
        n1.generation("a").await.unwrap().unwrap()
    );
    let release = hold_row(&url, &schema, &a_ns).await;

    // A commit to `a` waits for the row; commits to `b` from both nodes go through meanwhile.
    let a = n1.db("a").await.unwrap();
    let blocked =
        tokio::spawn(async move { a.bulk_docs(vec![json!({"_id": "waits"})], true).await });
    for (i, node) in [&n1, &n2, &n1, &n2].into_iter().enumerate() {
        let b = node.db("b").await.unwrap();
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            b.bulk_docs(vec![json!({"_id": format!("d{i}")})], true),
        )
        .await
        .expect("a write to b while a is locked");
        ok(&r.unwrap());
    }
    assert!(!blocked.is_finished(), "a's commit waits for its own row");
    let _ = release.send(());
    ok(&blocked.await.unwrap().unwrap());
    let b = n2.db("b").await.unwrap();
    assert_eq!(b.info().await.unwrap().doc_count, 4);
    assert_eq!(
        n2.db("a").await.unwrap().info().await.unwrap().update_seq,
        1
    );
}
