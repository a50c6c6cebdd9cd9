//! `/_session`: log in (JSON or form), see who you are, log out.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::auth_layer::session_cookie;
use super::extract::RawBody;
use super::AppState;
use super::Peer;
use crate::auth::Session;
use crate::couch::CouchError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/_session", get(whoami).post(login).delete(logout))
}

async fn whoami(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Json<Value> {
    let mut handlers = vec!["cookie", "default"];
    if state.auth.config().jwt_secret.is_some() {
        handlers.insert(0, "jwt");
    }
    let mut info = json!({"authentication_handlers": handlers});
    if let Some(m) = session.method.name() {
        info["authenticated"] = json!(m);
    }
    Json(json!({"ok": true, "userCtx": session.user.to_json(), "info": info}))
}

async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, CouchError> {
    let (name, password) = login_form(&headers, &body)?;
    let Some(user) = state.auth.check_password(&name, &password, peer).await? else {
        return Err(CouchError::unauthorized("Name or password is incorrect."));
    };
    let cookie = state.auth.cookie_for(&name).await?;
    let max_age = state.auth.config().session_lifetime.as_secs();
    let mut resp =
        Json(json!({"ok": true, "name": user.name, "roles": user.roles})).into_response();
    if let Some(v) = cookie.and_then(|c| session_cookie(&c, max_age)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The name and password of a login: a form (`name` or `username`, `password`) or JSON.
fn login_form(headers: &HeaderMap, body: &[u8]) -> Result<(String, String), CouchError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let (name, password) = if form {
        let mut name = None;
        let mut password = None;
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "name" | "username" => name = Some(v.into_owned()),
                "password" => password = Some(v.into_owned()),
                _ => {}
            }
        }
        (name, password)
    } else {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| CouchError::bad_request("invalid UTF-8 JSON"))?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        (
            field("name").or_else(|| field("username")),
            field("password"),
        )
    };
    match (name, password) {
        (Some(name), Some(password)) => Ok((name, password)),
        _ => Err(CouchError::bad_request("name and password are required")),
    }
}

async fn logout() -> Response {
    let mut resp = (StatusCode::OK, Json(json!({"ok": true}))).into_response();
    if let Some(v) = session_cookie("", 0) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
