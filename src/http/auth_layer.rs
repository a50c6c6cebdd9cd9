//! Authentication and authorization for every route, in one place: the credentials become a
//! [`Session`] in the request's extensions, and the route's class decides what it needs.
//! Handlers refine only what depends on the body (design documents in a bulk write, and the
//! rules of `_users` documents).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use std::collections::HashMap;

use super::extract::CouchPath;
use super::AppState;
use super::Peer;
use crate::auth::{Credentials, Session};
use crate::couch::CouchError;
use crate::service::access::{access, Access, Resource};

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
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
    let scope = (state.tokens.verify(token, state.auth.now()).await)
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

/// After routing: what the route's resource needs (the service's one access decision),
/// from the router's own decoded path parameters.
pub async fn guard(
    State((state, resource)): State<(AppState, Resource)>,
    CouchPath(params): CouchPath<HashMap<String, String>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(session) = req.extensions().get::<Session>() else {
        return CouchError::internal("a route ran without authentication").into_response();
    };
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let db = params.get("db").map(String::as_str).unwrap_or_default();
    let doc = match (params.get("ddoc"), params.get("doc")) {
        (Some(ddoc), _) => Some(format!("_design/{ddoc}")),
        (None, doc) => doc.cloned(),
    };
    let allowed = match access(resource, write, db, doc.as_deref()) {
        Access::UserDoc => Ok(()),
        Access::ServerAdmin if session.user.is_admin() => Ok(()),
        Access::ServerAdmin => Err(crate::auth::deny(&session.user)),
        Access::Db(need) => state.auth.authorize(&session.user, db, need).await,
    };
    match allowed {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The guard of routes serving `resource`.
pub fn guarded(
    state: &AppState,
    resource: Resource,
    route: axum::routing::MethodRouter<AppState>,
) -> axum::routing::MethodRouter<AppState> {
    route.route_layer(axum::middleware::from_fn_with_state(
        (state.clone(), resource),
        guard,
    ))
}

pub fn session_cookie(value: &str, max_age: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "AuthSession={value}; Version=1; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

pub async fn authenticate(
    State(state): State<AppState>,
    Peer(peer): Peer,
    mut req: Request,
    next: Next,
) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    // A host that authenticated the request itself (the edge's front Worker, which asked the
    // object holding `_users`) says who it is in the request's extensions, where no client can
    // put anything.
    let asserted = req.extensions().get::<Session>().cloned();
    let session = match asserted {
        Some(s) => s,
        None => match session_of(&state, req.headers(), &method, &path, peer).await {
            Ok(s) => s,
            Err(refused) => return refused,
        },
    };
    let renewed = session.renewed_cookie.clone();
    req.extensions_mut().insert::<Session>(session);
    let mut resp = next.run(req).await;
    let max_age = state.auth.config().session_lifetime.as_secs();
    if let Some(v) = renewed.and_then(|c| session_cookie(&c, max_age)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Who is asking, or the answer that refuses them. On the KV API a bearer value shaped as an
/// API token is one, with its own scope (checked here); anything else (a JWT, say, of a server
/// admin) is a CouchDB credential as on every other route, and the KV API is then for server
/// admins only. CouchDB routes are guarded each by the resource it serves (`guard`, after
/// routing).
async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    peer: Option<std::net::IpAddr>,
) -> Result<Session, Response> {
    let kv_api = path.starts_with("/client/v4/");
    if let Some(token) = bearer(headers).filter(|t| kv_api && t.starts_with("ckv_")) {
        kv_token_allows(state, &token, method, path)
            .await
            .map_err(IntoResponse::into_response)?;
        return Ok(Session {
            user: Default::default(),
            method: crate::auth::Method::None,
            renewed_cookie: None,
        });
    }
    let creds = credentials(headers);
    let session =
        (state.auth.authenticate(creds, peer).await).map_err(IntoResponse::into_response)?;
    if kv_api && !session.user.is_admin() {
        let (status, message) = match session.user.name {
            None => (401, "Authentication error"),
            Some(_) => (403, "Authorization error"),
        };
        return Err(super::kv_api::ApiError::new(status, 10000, message).into_response());
    }
    Ok(session)
}
