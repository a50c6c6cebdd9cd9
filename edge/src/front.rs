//! The front Worker: every client request arrives here and goes to the object that serves it
//! ([`target`]). A request to a database goes to the database's object with who is asking: the
//! registry authenticated the credentials (the registry holds `_users`), and the front remembers
//! its answer for [`SESSION_FOR_MS`] (keyed by a digest of the credentials under a key of this
//! isolate), so a client's requests do not each cross the registry. A password changed or a user
//! deleted takes at most that long to reach every database; bad credentials are never
//! remembered (each is checked, and throttled, by the registry).

use std::cell::RefCell;
use std::collections::HashMap;

use worker::{Env, Headers, Method, Request, RequestInit, Response, Result, Stub};

use crate::route::{
    target, Asserted, Target, DROP_PATH, INTERNAL_PREFIX, SESSION_HEADER, SESSION_PATH,
};

/// How long an authentication is remembered in the front.
pub const SESSION_FOR_MS: f64 = 5_000.0;
/// Sessions remembered at most (then the memory starts over).
const SESSIONS: usize = 10_000;

thread_local! {
    /// Digest of the credentials → (who they are, when that was asked).
    static REMEMBERED: RefCell<HashMap<Vec<u8>, (Asserted, f64)>> = RefCell::new(HashMap::new());
    /// The key the digests are made under; random per isolate, never leaves it.
    static DIGEST_KEY: [u8; 32] = couchkv::auth::crypto::random_bytes::<32>();
}

pub fn registry(env: &Env) -> Result<Stub> {
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
pub fn internal(path: &str, headers: Headers, body: Option<String>) -> Result<Request> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers);
    if let Some(b) = body {
        init.with_body(Some(b.into()));
    }
    Request::new_with_init(&format!("https://couchkv{path}"), &init)
}

/// Who the request is: anonymous without credentials, remembered, or asked of the registry;
/// or the registry's refusal, to hand back as it is.
async fn who(env: &Env, req: &Request) -> Result<std::result::Result<Asserted, Response>> {
    let (auth, cookie) = (
        req.headers().get("authorization")?,
        req.headers().get("cookie")?,
    );
    if auth.is_none() && cookie.is_none() {
        return Ok(Ok(Asserted::anonymous()));
    }
    let creds = format!(
        "{}\n{}",
        auth.as_deref().unwrap_or(""),
        cookie.as_deref().unwrap_or("")
    );
    let key = DIGEST_KEY.with(|k| couchkv::auth::crypto::credential_digest(k, "front", &creds));
    let now = js_sys::Date::now();
    let known = REMEMBERED.with(|r| {
        (r.borrow().get(&key))
            .filter(|(_, at)| now - at < SESSION_FOR_MS)
            .map(|(a, _)| a.clone())
    });
    if let Some(a) = known {
        return Ok(Ok(a));
    }
    let headers = Headers::new();
    for name in ["authorization", "cookie", "cf-connecting-ip"] {
        if let Some(v) = req.headers().get(name)? {
            headers.set(name, &v)?;
        }
    }
    let mut resp = registry(env)?
        .fetch_with_request(internal(SESSION_PATH, headers, None)?)
        .await?;
    if resp.status_code() != 200 {
        return Ok(Err(resp));
    }
    let v: serde_json::Value = resp.json().await?;
    let asserted = Asserted::from_json(&v)
        .ok_or_else(|| worker::Error::RustError("the registry's session answer".into()))?;
    // A session being renewed is asked again next time, so the renewed cookie is handed out.
    if asserted.set_cookie.is_none() {
        REMEMBERED.with(|r| {
            let mut r = r.borrow_mut();
            if r.len() >= SESSIONS {
                r.clear();
            }
            r.insert(key, (asserted.clone(), now));
        });
    }
    Ok(Ok(asserted))
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
            let asserted = match who(env, &req).await? {
                Ok(a) => a,
                Err(refused) => return Ok(refused),
            };
            let facts = asserted.to_json().to_string();
            req.headers().set(SESSION_HEADER, &facts)?;
            let mut resp = database(env, &name)?.fetch_with_request(req).await?;
            if let Some(cookie) = &asserted.set_cookie {
                resp.headers_mut().append("set-cookie", cookie)?;
            }
            Ok(resp)
        }
    }
}
