//! The store and level conformance suites run inside workerd: `GET /_edge/conformance` runs
//! them on a Durable Object's SQLite storage ([`DoSql`]) and on a Workers KV binding
//! ([`KvBindingStore`], binding `CONFORMANCE_KV`), and answers the case counts once every case
//! passed (a failing case panics, and the request fails). Only with the var
//! `COUCHKV_CONFORMANCE=1` (the tests set it): a deployment does not run it for anyone.

use std::future::Future;
use std::sync::Arc;

use couchkv::clock::SequentialIds;
use couchkv::kv::Kv;
use couchkv::level::{KvLevel, LevelDb};
use couchkv_adapters::{SqlStore, Store};
use worker::kv::KvStore;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::host::DateClock;
use crate::{DoSql, KvBindingStore};

#[durable_object]
pub struct ConformanceObject {
    state: State,
    env: Env,
}

/// A level database on a fresh namespace of `store`.
async fn level_on<S: Store + 'static>(store: S) -> LevelDb {
    let kv = Kv::new(
        Arc::new(store),
        Arc::new(DateClock),
        Arc::new(SequentialIds::default()),
    );
    let ns = kv.create_namespace("level").await.expect("a namespace");
    LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), ""))
        .await
        .expect("open the level database")
}

/// Both suites on stores from `fresh`: (store cases, level cases).
async fn suites<S, F, Fut>(fresh: F) -> (usize, usize)
where
    S: Store + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store_cases = couchkv_adapters::conformance::run_all(&fresh).await;
    let level_cases =
        couchkv::level::conformance::run_all(|| async { level_on(fresh().await).await }).await;
    (store_cases, level_cases)
}

impl ConformanceObject {
    /// An empty store on this object's storage: the previous case's tables dropped first.
    fn fresh_sql(&self) -> SqlStore<DoSql> {
        let sql = self.state.storage().sql();
        for table in ["kv_records", "kv_namespaces", "kv_meta"] {
            let _ = sql.exec(&format!("DROP TABLE IF EXISTS {table}"), None);
        }
        SqlStore::open(DoSql::new(self.state.storage())).expect("open the SQL store")
    }

    fn binding(&self) -> KvStore {
        self.env
            .kv("CONFORMANCE_KV")
            .expect("the CONFORMANCE_KV binding")
    }

    /// A store on the KV binding, emptied of every key first.
    async fn fresh_kv(&self) -> KvBindingStore {
        let kv = self.binding();
        loop {
            let page = kv.list().execute().await.expect("list the binding");
            if page.keys.is_empty() {
                break;
            }
            for k in page.keys {
                kv.delete(&k.name).await.expect("empty the binding");
            }
        }
        KvBindingStore::new(kv)
    }
}

impl DurableObject for ConformanceObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        if crate::host::var(&self.env, "COUCHKV_CONFORMANCE").as_deref() != Some("1") {
            return Ok(Response::from_json(
                &serde_json::json!({"error": "not_found", "reason": "missing"}),
            )?
            .with_status(404));
        }
        let (store_cases, level_cases) = suites(|| async { self.fresh_sql() }).await;
        let (kv_store_cases, kv_level_cases) = suites(|| self.fresh_kv()).await;
        // Leave no case's data behind.
        drop(self.fresh_sql());
        drop(self.fresh_kv().await);
        Response::from_json(&serde_json::json!({
            "store_cases": store_cases,
            "level_cases": level_cases,
            "kv_store_cases": kv_store_cases,
            "kv_level_cases": kv_level_cases,
        }))
    }
}
