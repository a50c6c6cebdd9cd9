//! What only the postgres backend promises, against a real server (`COUCHKV_TEST_POSTGRES`):
//! two store handles on one schema act as two nodes. A watcher on one sees the other's writes in
//! commit order, including after its `LISTEN` connection is killed (notifications lost), and
//! the schema is migrated once when nodes open it together.
#![cfg(feature = "postgres")]

use std::time::Duration;

use bytes::Bytes;
use couchkv_adapters::conformance::{postgres_url, within};
use couchkv_adapters::{Namespaces, PostgresConfig, PostgresStore, Store, StoreExt};
use futures::StreamExt;

async fn node(url: &str, schema: &str) -> PostgresStore {
    let mut config = PostgresConfig::new(url);
    config.schema = schema.to_owned();
    config.pool_size = 4;
    PostgresStore::open(config).await.unwrap()
}

async fn sql(url: &str, query: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(query).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_other_nodes_in_commit_order_even_without_notifications() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("xnode_{}", std::process::id());
    // Both nodes open (and migrate) the schema at once.
    let (a, b) = tokio::join!(node(&url, &schema), node(&url, &schema));
    a.create_namespace("ns", "shared").await.unwrap();
    let mut w = a.watch("ns", "k/").await.unwrap();

    // Writes from both nodes, interleaved: the watcher on A gets them all, versions rising.
    let mut written = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { &a } else { &b };
        let v = store
            .put("ns", &format!("k/{i}"), Bytes::from(i.to_string()))
            .await
            .unwrap();
        written.push(v);
    }
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        let ev = within(5000, w.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        seen.push(ev.version);
    }
    assert_eq!(seen, written, "every write, in commit order");

    // Kill both nodes' LISTEN connections: notifications sent meanwhile are lost for good.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let killed = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
            &[&format!("LISTEN couchkv_{schema}")],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "one listener per node");
    let v = b
        .put("ns", "k/after", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let ev = within(5000, w.next())
        .await
        .expect("an event after the kill")
        .unwrap()
        .unwrap();
    assert_eq!((ev.key.as_str(), ev.version), ("k/after", v));

    // A namespace deleted on one node ends the other's watchers.
    b.delete_namespace("ns").await.unwrap();
    let end = within(5000, async {
        loop {
            match w.next().await {
                None => return true,
                Some(Err(_)) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(end, Some(true));
    tokio::time::sleep(Duration::from_millis(10)).await;
    sql(&url, &format!("DROP SCHEMA {schema} CASCADE")).await;
}
