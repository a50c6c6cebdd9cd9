//! couchkv inside a Cloudflare Worker (workers-rs). So far: [`DoSql`], a Durable Object's SQLite
//! storage as the `SqlExec` of `couchkv_adapters::SqlStore`, and a route that runs the store and
//! level conformance suites on it *inside* workerd and reports their case counts.
//!
//! Natively this crate is empty: everything here is for `wasm32-unknown-unknown`.
#![cfg(target_arch = "wasm32")]

mod conformance;
mod do_sql;

pub use do_sql::DoSql;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/" => Response::ok("couchkv edge"),
        // The suites on a Durable Object's storage, in an object of their own.
        "/_edge/conformance" => {
            let stub = env
                .durable_object("CONFORMANCE")?
                .id_from_name("conformance")?
                .get_stub()?;
            stub.fetch_with_request(req).await
        }
        _ => Response::error("not found", 404),
    }
}
