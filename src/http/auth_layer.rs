//! Authentication and authorization for every route, in one place: the credentials become a
//! [`Session`] in the request's extensions, and the route's class decides what it needs.
//! Handlers refine only what depends on the body (design documents in a bulk write, and the
//! rules of `_users` documents).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::AppState;
use crate::auth::{Credentials, Need, Session, USERS_DB, USER_PREFIX};

/// What a route needs before its handler runs.
enum Access {
    Public,
    ServerAdmin,
    /// The KV API: a server admin (API tokens come with their own scopes). Refusals are in
    /// Cloudflare's envelope.
    Kv,
    Db(String, Need),
    /// A `_users` document: the handler applies the user-document rules.
    UserDoc,
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

fn classify(method: &Method, path: &str) -> Access {
    if path.starts_with("/client/v4/") {
        return Access::Kv;
    }
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let write = !matches!(*method, Method::GET | Method::HEAD);
    let Some(db) = segs.first() else {
        return Access::Public;
    };
    match (db.as_str(), segs.len()) {
        ("_up" | "_uuids" | "_session", 1) => return Access::Public,
        ("_all_dbs", 1) | ("_couchkv", _) => return Access::ServerAdmin,
        _ => {}
    }
    if db == USERS_DB {
        return match segs.get(1) {
            Some(id) if id.starts_with(USER_PREFIX) && segs.len() == 2 => Access::UserDoc,
            _ => Access::ServerAdmin,
        };
    }
    let need = match (segs.len(), segs.get(1).map(String::as_str)) {
        (1, _) if *method == Method::PUT || *method == Method::DELETE => {
            return Access::ServerAdmin
        }
        (_, Some("_security")) if write => Need::DbAdmin,
        (_, Some("_compact" | "_purge")) => Need::DbAdmin,
        // `_design/x` as two segments or, percent-encoded, as one.
        (_, Some(seg)) if write && (seg == "_design" || crate::couch::is_design_doc(seg)) => {
            Need::DbAdmin
        }
        _ => Need::Member,
    };
    Access::Db(db.clone(), need)
}

/// The credentials a request carries: Basic, a bearer token, or the `AuthSession` cookie. An
/// `Authorization` header that cannot be parsed is ignored, as CouchDB ignores it: the request
/// is then anonymous (or carried by its cookie).
pub fn credentials(headers: &HeaderMap) -> Credentials {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(b) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        {
            let parsed = B64
                .decode(b.trim())
                .ok()
                .and_then(|r| String::from_utf8(r).ok());
            if let Some((name, password)) = parsed.as_deref().and_then(|r| r.split_once(':')) {
                return Credentials::Basic {
                    name: name.to_owned(),
                    password: password.to_owned(),
                };
            }
        } else if let Some(t) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            return Credentials::Bearer(t.trim().to_owned());
        }
    }
    for cookie in headers.get_all(header::COOKIE) {
        let Ok(cookie) = cookie.to_str() else {
            continue;
        };
        for part in cookie.split(';') {
            if let Some(v) = part.trim().strip_prefix("AuthSession=") {
                if !v.is_empty() {
                    return Credentials::Cookie(v.to_owned());
                }
            }
        }
    }
    Credentials::None
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(t.trim().to_owned())
}

/// Whether an API token may make this KV API request: valid, reaching the namespace, and
/// allowed to write if the request writes (a bulk get reads).
async fn kv_token_allows(
    state: &AppState,
    token: &str,
    method: &Method,
    path: &str,
) -> Result<(), super::kv_api::ApiError> {
    use super::kv_api::ApiError;
    let scope = crate::auth::tokens::verify(
        state.kv.store().as_ref(),
        crate::auth::SYSTEM_NAMESPACE,
        token,
        state.auth.now(),
    )
    .await
    .map_err(|e| ApiError::new(500, 10001, e.to_string()))?
    .ok_or_else(|| ApiError::new(401, 10000, "Authentication error"))?;
    let after = path.split("/namespaces").nth(1).unwrap_or_default();
    let ns = after
        .split('/')
        .nth(1)
        .filter(|s| !s.is_empty())
        .map(decode);
    let reads = matches!(*method, Method::GET | Method::HEAD) || path.ends_with("/bulk/get");
    let allowed = match ns {
        Some(ns) => scope.reaches(&ns) && (reads || scope.write),
        // Listing namespaces needs any token; making one, an unrestricted writer.
        None => reads || (scope.write && scope.namespaces.is_empty()),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(403, 10000, "Authorization error"))
    }
}

pub fn session_cookie(value: &str, max_age: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "AuthSession={value}; Version=1; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

pub async fn authenticate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let kv_api = req.uri().path().starts_with("/client/v4/");
    if kv_api {
        // A bearer value shaped as an API token is one, with its own scope; anything else
        // (a JWT, say, of a server admin) is a CouchDB credential like on every other route.
        if let Some(token) = bearer(req.headers()).filter(|t| t.starts_with("ckv_")) {
            // On the KV API a bearer token is an API token, with its own scope.
            return match kv_token_allows(&state, &token, req.method(), req.uri().path()).await {
                Ok(()) => {
                    req.extensions_mut().insert::<Session>(Session {
                        user: Default::default(),
                        method: crate::auth::Method::None,
                        renewed_cookie: None,
                    });
                    next.run(req).await
                }
                Err(e) => e.into_response(),
            };
        }
    }
    let creds = credentials(req.headers());
    let session = match state.auth.authenticate(creds, Some(peer.ip())).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let access = classify(req.method(), req.uri().path());
    let allowed = match access {
        Access::Public | Access::UserDoc => Ok(()),
        Access::Kv => {
            if !session.user.is_admin() {
                let (status, message) = if session.user.name.is_none() {
                    (401, "Authentication error")
                } else {
                    (403, "Authorization error")
                };
                return super::kv_api::ApiError::new(status, 10000, message).into_response();
            }
            Ok(())
        }
        Access::ServerAdmin => {
            if session.user.is_admin() {
                Ok(())
            } else {
                Err(crate::auth::deny(&session.user))
            }
        }
        Access::Db(db, need) => state.auth.authorize(&session.user, &db, need).await,
    };
    if let Err(e) = allowed {
        return e.into_response();
    }
    let renewed = session.renewed_cookie.clone();
    req.extensions_mut().insert::<Session>(session);
    let mut resp = next.run(req).await;
    if let Some(cookie) = renewed {
        let max_age = state.auth.config().session_lifetime.as_secs();
        if let Some(v) = session_cookie(&cookie, max_age) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(method: Method, path: &str) -> String {
        match classify(&method, path) {
            Access::Public => "public".into(),
            Access::ServerAdmin => "server admin".into(),
            Access::Kv => "kv".into(),
            Access::UserDoc => "user doc".into(),
            Access::Db(db, n) => format!("{db} {n:?}"),
        }
    }

    #[test]
    fn routes_are_classified() {
        assert_eq!(need(Method::GET, "/"), "public");
        assert_eq!(need(Method::POST, "/_session"), "public");
        assert_eq!(need(Method::GET, "/_all_dbs"), "server admin");
        assert_eq!(need(Method::PUT, "/db"), "server admin");
        assert_eq!(need(Method::DELETE, "/db/"), "server admin");
        assert_eq!(need(Method::GET, "/db"), "db Member");
        assert_eq!(need(Method::PUT, "/db/_security"), "db DbAdmin");
        assert_eq!(need(Method::GET, "/db/_security"), "db Member");
        assert_eq!(need(Method::PUT, "/db/_design/x"), "db DbAdmin");
        assert_eq!(need(Method::GET, "/db/_design/x"), "db Member");
        assert_eq!(need(Method::PUT, "/db/_design%2Fx/a.js"), "db DbAdmin");
        assert_eq!(need(Method::DELETE, "/db/_design%2fx"), "db DbAdmin");
        assert_eq!(need(Method::PUT, "/a%2Fb/doc"), "a/b Member");
        assert_eq!(
            need(Method::PUT, "/_users/org.couchdb.user:bob"),
            "user doc"
        );
        assert_eq!(need(Method::GET, "/_users/_all_docs"), "server admin");
        assert_eq!(need(Method::GET, "/_users"), "server admin");
    }
}
