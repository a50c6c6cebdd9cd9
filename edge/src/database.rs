//! A database's object: one per CouchDB database, named by it, holding its documents, revision
//! trees, attachments, sequence and live feeds — the native server's router on the object's
//! own storage, so every update is one transaction of one object and sequences strictly
//! increase. Its feeds are woken by its own commits.
//!
//! The registry's catalog is the truth about which databases exist. The object asks it
//! ([`CATALOG_PATH`]) on its first request and again when its answer is older than
//! [`CATALOG_FOR_MS`], and follows it: a generation it does not hold means the database was made
//! (again) — it starts empty with the catalog's `_security` (how a per-user database made on
//! sign-up gets its owner); a catalog `_security` that changed since it last took it (the
//! registry took a deleted user out of their database) is taken again; no entry means the
//! database is gone — its storage is dropped and the registry answers the request, as the
//! native server answers for an unknown database. `_security` set through the database's own
//! route stays the object's. A deletion through the front drops the object at once
//! ([`DROP_PATH`]); the catalog check bounds how long anything else takes to arrive.

use std::cell::RefCell;

use couchkv::auth::SYSTEM_NAMESPACE;
use couchkv::couch::{CouchError, ErrorKind, Security};
use couchkv_adapters::{Store, StoreExt};
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::front::{internal, registry};
use crate::host::{to_axum, to_worker_error, Core};
use crate::route::{Asserted, Catalog, CATALOG_PATH, DROP_PATH, SESSION_HEADER, UPDATED_PATH};

/// Where the object keeps what it last took from the catalog.
const PLACEMENT_KEY: &str = "edge_placement";
/// How long the catalog's answer is trusted before it is asked again.
pub const CATALOG_FOR_MS: f64 = 10_000.0;
/// How long after a write the object tells the registry (`_db_updates`): the writes of that
/// interval go in one report.
const REPORT_AFTER: std::time::Duration = couchkv::couch::updates::FLUSH_EVERY;

#[durable_object]
pub struct DatabaseObject {
    state: State,
    env: Env,
    core: RefCell<Option<Core>>,
    /// The catalog's last answer for a database it holds, and when it came.
    catalog: RefCell<Option<(Catalog, f64)>>,
    /// What the object last took from the catalog: `{name, generation, security}`.
    placed: RefCell<Option<Value>>,
    /// One placement at a time (requests interleave at every await).
    placing: futures::lock::Mutex<()>,
    /// A report of writes to the registry is on its way (`_db_updates`).
    reporting: std::rc::Rc<std::cell::Cell<bool>>,
}

impl DatabaseObject {
    async fn core(&self) -> Result<Core> {
        Core::of(&self.core, &self.state, &self.env).await
    }

    /// The catalog's facts about `name`: remembered, or asked for again.
    async fn catalog(&self, name: &str) -> Result<Catalog> {
        let now = js_sys::Date::now();
        if let Some((c, at)) = self.catalog.borrow().as_ref() {
            if now - at < CATALOG_FOR_MS {
                return Ok(c.clone());
            }
        }
        let body = json!({ "db": name }).to_string();
        let req = internal(CATALOG_PATH, worker::Headers::new(), Some(body))?;
        let mut resp = registry(&self.env)?.fetch_with_request(req).await?;
        if resp.status_code() != 200 {
            return Err(to_worker_error(format!(
                "the registry's catalog answered {}",
                resp.status_code()
            )));
        }
        let facts = Catalog::from_json(&resp.json::<Value>().await?);
        // Only a database that exists is remembered: one made a moment later is found at once.
        *self.catalog.borrow_mut() = facts.generation.is_some().then(|| (facts.clone(), now));
        Ok(facts)
    }

    /// Brings the object in line with the catalog's facts about database `name`.
    async fn place(&self, core: &Core, name: &str, facts: &Catalog) -> Result<()> {
        let wanted =
            json!({"name": name, "generation": facts.generation, "security": facts.security});
        if self.placed.borrow().as_ref() == Some(&wanted) {
            return Ok(());
        }
        let _one = self.placing.lock().await;
        let store = core.state.kv.store().clone();
        if self.placed.borrow().is_none() {
            let stored = (store.get(SYSTEM_NAMESPACE, PLACEMENT_KEY).await)
                .map_err(to_worker_error)?
                .and_then(|r| serde_json::from_slice::<Value>(&r.value).ok());
            *self.placed.borrow_mut() = stored;
        }
        let placed = self.placed.borrow().clone().unwrap_or(Value::Null);
        if placed == wanted {
            return Ok(());
        }
        let couch = &core.state.couch;
        let security = Security::from_json(&facts.security).map_err(to_worker_error)?;
        if placed["generation"] != wanted["generation"] || placed["name"] != wanted["name"] {
            // Made (again) in the catalog: whatever an older generation left goes.
            ok_if(couch.delete_db(name).await, ErrorKind::NotFound)?;
            ok_if(couch.create_db(name).await, ErrorKind::Exists)?;
        }
        let db = couch.db(name).await.map_err(to_worker_error)?;
        db.put_security(&security).await.map_err(to_worker_error)?;
        store
            .put(SYSTEM_NAMESPACE, PLACEMENT_KEY, wanted.to_string().into())
            .await
            .map_err(to_worker_error)?;
        *self.placed.borrow_mut() = Some(wanted);
        Ok(())
    }

    /// The catalog no longer holds the database: drop it, unless a request since found it made
    /// again (its answer, newer, is remembered).
    async fn drop_if_gone(&self) -> Result<()> {
        let _one = self.placing.lock().await;
        if self.catalog.borrow().is_some() {
            return Ok(());
        }
        self.drop_locked().await
    }

    /// The database was deleted from the catalog: its storage goes, and its feeds end.
    async fn drop_all(&self) -> Result<()> {
        let _one = self.placing.lock().await;
        *self.catalog.borrow_mut() = None;
        self.drop_locked().await
    }

    async fn drop_locked(&self) -> Result<()> {
        let core = self.core.borrow_mut().take();
        let placed = self.placed.borrow_mut().take();
        if let (Some(core), Some(placed)) = (core, placed) {
            if let Some(name) = placed["name"].as_str() {
                let _ = core.state.couch.delete_db(name).await;
            }
        }
        self.state.storage().delete_all().await
    }
}

impl DatabaseObject {
    /// The registry holds `_db_updates`: tell it the database was written to, once per
    /// [`REPORT_AFTER`] however many writes came in between, after the response (a timer
    /// task of the object's). An object evicted before its timer fires loses that report, as a
    /// native process killed within its flush interval does.
    fn report_writes(&self, core: &Core, name: &str) {
        if core.state.couch.updates().take_marked().is_empty() || self.reporting.get() {
            return;
        }
        self.reporting.set(true);
        let (env, name, reporting) = (self.env.clone(), name.to_owned(), self.reporting.clone());
        let runtime = core.state.runtime.clone();
        wasm_bindgen_futures::spawn_local(async move {
            runtime.sleep(REPORT_AFTER).await;
            reporting.set(false);
            let body = json!({ "db": name }).to_string();
            if let Ok(req) = internal(UPDATED_PATH, worker::Headers::new(), Some(body)) {
                if let Ok(registry) = registry(&env) {
                    let _ = registry.fetch_with_request(req).await;
                }
            }
        });
    }
}

fn ok_if(r: std::result::Result<(), CouchError>, kind: ErrorKind) -> Result<()> {
    match r {
        Err(e) if !e.is(kind) => Err(to_worker_error(e)),
        _ => Ok(()),
    }
}

impl DurableObject for DatabaseObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            core: RefCell::new(None),
            catalog: RefCell::new(None),
            placed: RefCell::new(None),
            placing: futures::lock::Mutex::new(()),
            reporting: std::rc::Rc::new(std::cell::Cell::new(false)),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        if req.path() == DROP_PATH {
            self.drop_all().await?;
            return Response::from_json(&json!({"ok": true}));
        }
        let asserted = req
            .headers()
            .get(SESSION_HEADER)?
            .and_then(|h| serde_json::from_str::<Value>(&h).ok())
            .and_then(|v| Asserted::from_json(&v))
            .ok_or_else(|| worker::Error::RustError("a request not routed by the front".into()))?;
        let name = routed_name(&req);
        let facts = self.catalog(&name).await?;
        if facts.generation.is_none() {
            // Gone (or never made): drop what a missed deletion left, and let the registry
            // answer, as for any unknown database.
            self.drop_if_gone().await?;
            return registry(&self.env)?.fetch_with_request(req).await;
        }
        let core = self.core().await?;
        self.place(&core, &name, &facts).await?;
        let mut req = to_axum(req).await?;
        req.extensions_mut().insert(asserted.session);
        let resp = core.serve(req).await;
        self.report_writes(&core, &name);
        resp
    }
}

/// The database's name from the request's path (the front routed it here by that name).
fn routed_name(req: &Request) -> String {
    match crate::route::target("GET", &req.path()) {
        crate::route::Target::Database(name) => name,
        crate::route::Target::Registry => String::new(),
    }
}
