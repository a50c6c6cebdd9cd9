//! The CouchDB and KV APIs inside a Durable Object: the same router, rules and errors as the
//! native server (`couchkv::http::app` on `AppState::open`), on the object's SQLite storage.
//!
//! For now one object holds every database (the `COUCH` binding, named `couch`); one object per
//! database, with a registry, is the next step.

use std::cell::RefCell;
use std::sync::Arc;

use axum::Router;
use couchkv::auth::crypto::RandomIds;
use couchkv::auth::AuthConfig;
use couchkv::clock::Clock;
use couchkv::http::{app, AppState, Host, HttpConfig, Peer};
use couchkv_adapters::SqlStore;
use tower_service::Service;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::runtime::DoRuntime;
use crate::DoSql;

/// The Worker's clock: `Date.now()`, which moves on across I/O.
pub struct DateClock;

impl Clock for DateClock {
    fn now_millis(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}

#[durable_object]
pub struct CouchObject {
    state: State,
    env: Env,
    app: RefCell<Option<Router>>,
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.is_empty())
}

/// The auth settings from the Worker's secrets and vars: `COUCHKV_ADMIN` (`NAME:PASSWORD`,
/// comma-separated for several), `COUCHKV_PBKDF2_ITERATIONS`.
fn auth_config(env: &Env) -> AuthConfig {
    let mut config = AuthConfig::default();
    if let Some(admins) = var(env, "COUCHKV_ADMIN") {
        config.admins = admins
            .split(',')
            .filter_map(|a| a.split_once(':'))
            .map(|(n, p)| (n.to_owned(), p.to_owned()))
            .collect();
    }
    if let Some(n) = var(env, "COUCHKV_PBKDF2_ITERATIONS").and_then(|n| n.parse().ok()) {
        config.pbkdf2_iterations = n;
    }
    config
}

impl CouchObject {
    async fn router(&self) -> Result<Router> {
        if let Some(app) = self.app.borrow().as_ref() {
            return Ok(app.clone());
        }
        let store = SqlStore::open(DoSql::new(self.state.storage()))
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let host = Host {
            store: Arc::new(store),
            clock: Arc::new(DateClock),
            ids: Arc::new(RandomIds),
            runtime: Arc::new(DoRuntime),
        };
        let http = HttpConfig {
            cors_origins: var(&self.env, "COUCHKV_CORS_ORIGINS")
                .map(|o| o.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            ..HttpConfig::default()
        };
        let state = AppState::open(host, auth_config(&self.env), &http)
            .await
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        let router = app(state, &http);
        *self.app.borrow_mut() = Some(router.clone());
        Ok(router)
    }
}

/// The worker request as the router's: method, path and query, headers, the body read whole
/// (bounded by the router's body limit), and the client's address from `CF-Connecting-IP`.
async fn to_axum(mut req: Request) -> Result<axum::extract::Request> {
    let url = req.url()?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut builder = http::Request::builder()
        .method(req.method().as_ref())
        .uri(path);
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = req.bytes().await?;
    let peer = req
        .headers()
        .get("cf-connecting-ip")?
        .and_then(|ip| ip.parse().ok());
    let mut out = builder
        .body(axum::body::Body::from(body))
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    out.extensions_mut().insert(Peer(peer));
    Ok(out)
}

impl DurableObject for CouchObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            app: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let mut router = self.router().await?;
        let req = to_axum(req).await?;
        let resp = match router.call(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        Response::try_from(resp)
    }
}
