//! The KV store over HTTP in the shape of Cloudflare's v4 API
//! (`/client/v4/accounts/{account}/storage/kv/namespaces/…`), so wrangler and the `cloudflare`
//! SDK work unchanged. Every reply is Cloudflare's envelope, except value reads (raw bytes).

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

use super::extract::{Params, RawBody};
use super::AppState;
use crate::kv::{BulkGetType, BulkPutItem, GetOptions, KvError, ListOptions, PutOptions};

mod bulk;
mod namespaces;
mod tokens;
mod values;
mod watch;

use bulk::*;
use namespaces::*;
use tokens::*;
use values::*;
use watch::*;

const BASE: &str = "/client/v4/accounts/{account}/storage/kv/namespaces";

pub fn routes(state: &AppState) -> Router<AppState> {
    use crate::service::access::Resource::AdminOnly;
    let admin = |route| super::auth_layer::guarded(state, AdminOnly, route);
    Router::new()
        .route(BASE, get(list_namespaces).post(create_namespace))
        .route(
            &format!("{BASE}/{{ns}}"),
            get(get_namespace)
                .put(rename_namespace)
                .delete(delete_namespace),
        )
        .route(&format!("{BASE}/{{ns}}/keys"), get(list_keys))
        .route(
            &format!("{BASE}/{{ns}}/values/{{key}}"),
            get(get_value).put(put_value).delete(delete_value),
        )
        .route(
            &format!("{BASE}/{{ns}}/metadata/{{key}}"),
            get(get_metadata),
        )
        .route(
            &format!("{BASE}/{{ns}}/bulk"),
            axum::routing::put(bulk_put).delete(bulk_delete),
        )
        .route(&format!("{BASE}/{{ns}}/bulk/delete"), post(bulk_delete))
        .route(&format!("{BASE}/{{ns}}/bulk/get"), post(bulk_get))
        .route(&format!("{BASE}/{{ns}}/watch"), get(watch))
        .route(
            "/_couchkv/tokens",
            admin(post(create_token).get(list_tokens)),
        )
        .route(
            "/_couchkv/tokens/{id}",
            admin(axum::routing::delete(revoke_token)),
        )
        .route("/client/v4/{*rest}", axum::routing::any(no_route))
}

/// Path parameters, percent-decoded; a malformed one is a 400 in Cloudflare's envelope.
pub struct KvPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for KvPath<T>
{
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(KvPath(v)),
            Err(e) => Err(ApiError::bad(e.body_text())),
        }
    }
}

/// Any other path under `/client/v4/`: Cloudflare's answer for a route it does not have.
async fn no_route() -> ApiError {
    ApiError::new(404, 7000, "No route for that URI")
}

pub use super::error::ApiError;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A request body within the size limit; errors in the envelope (413 beyond the limit).
pub struct KvBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for KvBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        RawBody::from_request(req, state)
            .await
            .map(|RawBody(b)| KvBody(b))
            .map_err(|e| {
                ApiError::new(super::error::couch_status(e.kind).as_u16(), 10000, e.reason)
            })
    }
}

fn ok(result: Value) -> Response {
    Json(json!({"success": true, "errors": [], "messages": [], "result": result})).into_response()
}

fn ok_with_info(result: Value, info: Value) -> Response {
    Json(json!({"success": true, "errors": [], "messages": [], "result": result, "result_info": info}))
        .into_response()
}

/// couchkv's own namespaces (ids starting with `_`) are not the user's.
fn visible(id: &str) -> bool {
    !id.starts_with('_')
}

fn check_visible(ns: &str) -> Result<()> {
    if visible(ns) {
        Ok(())
    } else {
        Err(KvError::NamespaceNotFound.into())
    }
}

fn namespace_json(id: &str, title: &str) -> Value {
    json!({"id": id, "title": title, "supports_url_encoding": true})
}

fn json_body(body: &[u8]) -> Result<Value> {
    super::extract::parse_bounded(body)
        .ok_or_else(|| {
            ApiError::new(
                413,
                10000,
                format!(
                    "the JSON body has more than {} structural tokens",
                    super::extract::MAX_JSON_NODES
                ),
            )
        })?
        .map_err(|e| ApiError::bad(format!("Could not parse request body: {e}")))
}

fn int_param(p: &Params, k: &str) -> Result<Option<i64>> {
    match p.get(k) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad(format!("Invalid {k}: {v}"))),
    }
}
