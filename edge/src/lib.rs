//! couchkv inside a Cloudflare Worker (workers-rs): [`DoSql`], a Durable Object's SQLite storage
//! as the `SqlExec` of `couchkv_adapters::SqlStore`; the CouchDB and KV APIs in a Durable Object
//! on it ([`couch`], the native server's router and rules); and a route that runs the store and
//! level conformance suites *inside* workerd and reports their case counts.
//!
//! Natively this crate is empty: everything here is for `wasm32-unknown-unknown`.
#![cfg(target_arch = "wasm32")]

mod conformance;
pub mod couch;
mod do_sql;
mod runtime;

pub use do_sql::DoSql;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        // The suites on a Durable Object's storage, in an object of their own.
        "/_edge/conformance" => {
            let stub = env
                .durable_object("CONFORMANCE")?
                .id_from_name("conformance")?
                .get_stub()?;
            stub.fetch_with_request(req).await
        }
        // Everything else is the CouchDB and KV APIs, in their object.
        _ => {
            let stub = env
                .durable_object("COUCH")?
                .id_from_name("couch")?
                .get_stub()?;
            stub.fetch_with_request(req).await
        }
    }
}
