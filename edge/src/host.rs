//! What the edge's objects share: the Worker's clock, settings from secrets and vars, the API
//! core opened on an object's SQLite storage (`couchkv::http::app` on `AppState::open`, the
//! native server's router and rules), and requests handed between workers-rs and axum.

use std::sync::Arc;

use axum::Router;
use couchkv::auth::crypto::RandomIds;
use couchkv::auth::AuthConfig;
use couchkv::clock::Clock;
use couchkv::http::{app, AppState, Host, HttpConfig, Peer};
use couchkv_adapters::SqlStore;
use tower_service::Service;
use worker::{Env, Request, Response, Result, State};

use crate::runtime::DoRuntime;
use crate::DoSql;

/// The Worker's clock: `Date.now()`, which moves on across I/O.
pub struct DateClock;

impl Clock for DateClock {
    fn now_millis(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}

/// A setting: the Worker secret of that name, else the var; empty counts as unset.
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.is_empty())
}

/// The auth settings from the Worker's secrets and vars: `COUCHKV_ADMIN` (`NAME:PASSWORD`,
/// comma-separated for several), `COUCHKV_PBKDF2_ITERATIONS`, `COUCHKV_JWT_SECRET`.
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
    config.jwt_secret = var(env, "COUCHKV_JWT_SECRET").map(String::into_bytes);
    config
}

/// The API core on an object's storage: its state and router, made on the object's first
/// request and kept while the object lives.
#[derive(Clone)]
pub struct Core {
    pub state: AppState,
    pub router: Router,
}

pub fn to_worker_error(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

impl Core {
    pub async fn open(state: &State, env: &Env) -> Result<Core> {
        crate::js::load()
            .await
            .map_err(|e| worker::Error::RustError(format!("the JavaScript engine: {e:?}")))?;
        let store = SqlStore::open(DoSql::new(state.storage())).map_err(to_worker_error)?;
        let host = Host {
            store: Arc::new(store),
            clock: Arc::new(DateClock),
            ids: Arc::new(RandomIds),
            runtime: Arc::new(DoRuntime),
            js: Some(Arc::new(crate::js::WorkerJs)),
        };
        let http = HttpConfig {
            cors_origins: var(env, "COUCHKV_CORS_ORIGINS")
                .map(|o| o.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            ..HttpConfig::default()
        };
        let state = AppState::open(host, auth_config(env), &http)
            .await
            .map_err(to_worker_error)?;
        let router = app(state.clone(), &http);
        Ok(Core { state, router })
    }

    /// The object's core in `cell`, opened on its first request and kept while it lives.
    pub async fn of(
        cell: &std::cell::RefCell<Option<Core>>,
        state: &State,
        env: &Env,
    ) -> Result<Core> {
        if let Some(core) = cell.borrow().as_ref() {
            return Ok(core.clone());
        }
        let core = Core::open(state, env).await?;
        *cell.borrow_mut() = Some(core.clone());
        Ok(core)
    }

    /// Runs a request through the router.
    pub async fn serve(&self, req: axum::extract::Request) -> Result<Response> {
        let mut router = self.router.clone();
        let resp = match router.call(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        Response::try_from(resp)
    }
}

/// The client's address, from `CF-Connecting-IP`.
pub fn peer(req: &Request) -> Option<std::net::IpAddr> {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .and_then(|ip| ip.parse().ok())
}

/// The worker request as the router's: method, path and query, headers, the body read whole
/// (bounded by the router's body limit), and the client's address.
pub async fn to_axum(mut req: Request) -> Result<axum::extract::Request> {
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
    let peer = peer(&req);
    let mut out = builder
        .body(axum::body::Body::from(body))
        .map_err(to_worker_error)?;
    out.extensions_mut().insert(Peer(peer));
    Ok(out)
}
