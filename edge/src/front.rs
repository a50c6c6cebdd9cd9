//! The front Worker: every client request arrives here and goes to the object that serves it
//! ([`target`]). A request to a database is authenticated by the registry first (one internal
//! request: the registry holds `_users`), then handed to the database's object with who is
//! asking and the catalog's facts; a database the catalog does not hold is answered by the
//! registry, exactly as the native server answers for an unknown database.

use serde_json::json;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Result, Stub};

use crate::route::{target, Routed, Target, DROP_PATH, INTERNAL_PREFIX, ROUTE_HEADER, ROUTE_PATH};

fn registry(env: &Env) -> Result<Stub> {
    env.durable_object("REGISTRY")?.get_by_name("registry")
}

fn database(env: &Env, name: &str) -> Result<Stub> {
    env.durable_object("DATABASE")?.get_by_name(name)
}

/// The request with every header of the edge's own removed (a client cannot pose as the front).
fn from_client(req: &Request) -> Result<Request> {
    let out = req.clone_mut()?;
    let internal: Vec<String> = (out.headers().keys())
        .filter(|k| k.to_ascii_lowercase().starts_with(INTERNAL_PREFIX))
        .collect();
    for k in internal {
        out.headers().delete(&k)?;
    }
    Ok(out)
}

/// An internal request to an object (the URL's host is ignored by a stub).
fn internal(path: &str, headers: Headers, body: Option<String>) -> Result<Request> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers);
    if let Some(b) = body {
        init.with_body(Some(b.into()));
    }
    Request::new_with_init(&format!("https://couchkv{path}"), &init)
}

/// Asks the registry who the request is and what the catalog knows of `db`: the facts, or the
/// registry's refusal to hand back as it is.
async fn ask_registry(
    env: &Env,
    req: &Request,
    db: &str,
) -> Result<std::result::Result<Routed, Response>> {
    let headers = Headers::new();
    for name in ["authorization", "cookie", "cf-connecting-ip"] {
        if let Some(v) = req.headers().get(name)? {
            headers.set(name, &v)?;
        }
    }
    let body = json!({ "db": db }).to_string();
    let mut resp = registry(env)?
        .fetch_with_request(internal(ROUTE_PATH, headers, Some(body))?)
        .await?;
    if resp.status_code() != 200 {
        return Ok(Err(resp));
    }
    let v: serde_json::Value = resp.json().await?;
    Routed::from_json(&v)
        .map(Ok)
        .ok_or_else(|| worker::Error::RustError("the registry's route answer".into()))
}

pub async fn fetch(req: Request, env: &Env) -> Result<Response> {
    let req = from_client(&req)?;
    let method = req.method();
    match target(method.as_ref(), &req.path()) {
        Target::Registry => {
            let deleting = method == Method::Delete;
            let name = req.path().trim_matches('/').to_owned();
            let resp = registry(env)?.fetch_with_request(req).await?;
            if deleting && resp.status_code() == 200 {
                // Deleted from the catalog: the object's storage goes too. Should this fail,
                // the data stays unreachable (the catalog no longer routes to it) and is
                // dropped when a database of that name is made again.
                let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy();
                if let Ok(stub) = database(env, &name) {
                    let _ = stub
                        .fetch_with_request(internal(DROP_PATH, Headers::new(), None)?)
                        .await;
                }
            }
            Ok(resp)
        }
        Target::Database(name) => {
            let routed = match ask_registry(env, &req, &name).await? {
                Ok(r) => r,
                Err(refused) => return Ok(refused),
            };
            if routed.generation.is_none() {
                return registry(env)?.fetch_with_request(req).await;
            }
            req.headers()
                .set(ROUTE_HEADER, &routed.to_json().to_string())?;
            let mut resp = database(env, &name)?.fetch_with_request(req).await?;
            if let Some(cookie) = &routed.set_cookie {
                resp.headers_mut().append("set-cookie", cookie)?;
            }
            Ok(resp)
        }
    }
}
