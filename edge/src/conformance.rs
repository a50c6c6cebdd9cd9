//! The store and level conformance suites run inside workerd, on a Durable Object's SQLite
//! storage: `GET /_edge/conformance` answers `{"store_cases": N, "level_cases": M}` once every
//! case passed (a failing case panics, and the request fails).

use std::sync::Arc;

use couchkv::clock::SequentialIds;
use couchkv::kv::Kv;
use couchkv::level::{KvLevel, LevelDb};
use couchkv_adapters::SqlStore;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::host::DateClock;
use crate::DoSql;

#[durable_object]
pub struct ConformanceObject {
    state: State,
}

impl ConformanceObject {
    /// An empty store on this object's storage: the previous case's tables dropped first.
    fn fresh_store(&self) -> SqlStore<DoSql> {
        let sql = self.state.storage().sql();
        for table in ["kv_records", "kv_namespaces", "kv_meta"] {
            let _ = sql.exec(&format!("DROP TABLE IF EXISTS {table}"), None);
        }
        SqlStore::open(DoSql::new(self.state.storage())).expect("open the SQL store")
    }

    async fn fresh_level(&self) -> LevelDb {
        let kv = Kv::new(
            Arc::new(self.fresh_store()),
            Arc::new(DateClock),
            Arc::new(SequentialIds::default()),
        );
        let ns = kv.create_namespace("level").await.expect("a namespace");
        LevelDb::opened(KvLevel::new(kv.namespace(&ns.id), ""))
            .await
            .expect("open the level database")
    }
}

impl DurableObject for ConformanceObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        let store_cases =
            couchkv_adapters::conformance::run_all(|| async { self.fresh_store() }).await;
        let level_cases = couchkv::level::conformance::run_all(|| self.fresh_level()).await;
        // Leave no case's data behind (the tables are dropped and made again, empty).
        drop(self.fresh_store());
        Response::from_json(&serde_json::json!({
            "store_cases": store_cases,
            "level_cases": level_cases,
        }))
    }
}
