//! couchkv inside a Cloudflare Worker (workers-rs), one Durable Object per CouchDB database:
//! - [`front`]: the Worker every request arrives at, routing it ([`route`]);
//! - [`registry`]: the object with the catalog of databases, `_users`, sessions, the KV API;
//! - [`database`]: one object per database, its documents and live feeds;
//! - [`DoSql`]: an object's SQLite storage as the `SqlExec` of `couchkv_adapters::SqlStore`, on
//!   which every object runs the native server's router and rules ([`host`]);
//! - [`KvBindingStore`]: a `Store` over a Workers KV binding (with `couchkv::level` on top, a
//!   LevelDB-style database on plain Workers KV, for any Rust Worker);
//! - a route that runs the store and level conformance suites *inside* workerd, on an object's
//!   storage and on a KV binding.
//!
//! Natively only [`route`] and [`kv_metadata`] (pure rules, tested natively) are compiled: the rest is for
//! `wasm32-unknown-unknown`.

pub mod kv_metadata;
pub mod route;

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    req: worker::Request,
    env: worker::Env,
    _ctx: worker::Context,
) -> worker::Result<worker::Response> {
    match req.path().as_str() {
        // The suites on a Durable Object's storage, in an object of their own.
        "/_edge/conformance" => {
            let stub = env
                .durable_object("CONFORMANCE")?
                .get_by_name("conformance")?;
            stub.fetch_with_request(req).await
        }
        // The objects' internal routes are not for clients.
        p if p.starts_with("/_edge/") => Ok(worker::Response::from_json(
            &serde_json::json!({"error": "not_found", "reason": "missing"}),
        )?
        .with_status(404)),
        _ => front::fetch(req, &env).await,
    }
}

#[cfg(target_arch = "wasm32")]
mod conformance;
#[cfg(target_arch = "wasm32")]
pub mod database;
#[cfg(target_arch = "wasm32")]
mod do_sql;
#[cfg(target_arch = "wasm32")]
mod front;
#[cfg(target_arch = "wasm32")]
pub mod host;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
pub mod kv_binding;
#[cfg(target_arch = "wasm32")]
pub mod registry;
#[cfg(target_arch = "wasm32")]
mod runtime;

#[cfg(target_arch = "wasm32")]
pub use do_sql::DoSql;
#[cfg(target_arch = "wasm32")]
pub use kv_binding::KvBindingStore;
