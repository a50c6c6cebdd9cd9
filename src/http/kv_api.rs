//! The KV store over HTTP in the shape of Cloudflare's v4 API
//! (`/client/v4/accounts/{account}/storage/kv/namespaces/…`), so wrangler and the `cloudflare`
//! SDK work unchanged. Every reply is Cloudflare's envelope, except value reads (raw bytes).

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::error::{Params, RawBody};
use super::AppState;
use crate::kv::{BulkGetType, BulkPutItem, GetOptions, KvError, ListOptions, PutOptions};

const BASE: &str = "/client/v4/accounts/{account}/storage/kv/namespaces";

pub fn routes() -> Router<AppState> {
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
        .route("/_couchkv/tokens", post(create_token).get(list_tokens))
        .route("/_couchkv/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/client/v4/{*rest}", axum::routing::any(no_route))
}

/// `GET /_couchkv/tokens` (server admins): every token's id, name, scope, creation and
/// expiry; never a secret.
async fn list_tokens(State(s): State<AppState>) -> Result<Response> {
    let tokens = crate::auth::tokens::list(s.kv.store().as_ref(), crate::auth::SYSTEM_NAMESPACE)
        .await
        .map_err(|e| ApiError::new(500, 10001, e.to_string()))?;
    Ok(ok(Value::Array(
        tokens.iter().map(|t| t.to_json()).collect(),
    )))
}

/// `DELETE /_couchkv/tokens/{id}` (server admins): the token stops working at once.
async fn revoke_token(State(s): State<AppState>, KvPath(id): KvPath<String>) -> Result<Response> {
    let found =
        crate::auth::tokens::revoke(s.kv.store().as_ref(), crate::auth::SYSTEM_NAMESPACE, &id)
            .await
            .map_err(|e| ApiError::new(500, 10001, e.to_string()))?;
    if !found {
        return Err(ApiError::new(404, 10000, "token not found"));
    }
    Ok(ok(json!({"id": id})))
}

/// `POST /_couchkv/tokens` (server admins): `{name, namespaces?: [id], write: bool,
/// expires_in?: seconds}` → `{token}`, shown this once.
async fn create_token(State(s): State<AppState>, KvBody(body): KvBody) -> Result<Response> {
    let req = json_body(&body)?;
    let name = req["name"]
        .as_str()
        .ok_or_else(|| ApiError::bad("name is required"))?;
    let namespaces: Vec<String> = match &req["namespaces"] {
        Value::Null => Vec::new(),
        v => serde_json::from_value(v.clone())
            .map_err(|_| ApiError::bad("namespaces must be an array of ids"))?,
    };
    let write = match (req.get("write"), req.get("read")) {
        (Some(Value::Bool(w)), _) => *w,
        (None, Some(Value::Bool(true))) => false,
        _ => {
            return Err(ApiError::bad(
                "give the token a scope: \"write\": true, or \"read\": true",
            ))
        }
    };
    let now = s.auth.now();
    let expires = match req.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| now.checked_add(n))
                .ok_or_else(|| ApiError::bad("expires_in must be a positive number of seconds"))?,
        ),
    };
    let new = crate::auth::tokens::NewToken {
        name: name.to_owned(),
        namespaces,
        write,
        expires,
    };
    let token = crate::auth::tokens::create(
        s.kv.store().as_ref(),
        crate::auth::SYSTEM_NAMESPACE,
        &new,
        now,
    )
    .await
    .map_err(|e| ApiError::new(500, 10001, e.to_string()))?;
    Ok(ok(json!({"token": token})))
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
    super::error::parse_bounded(body)
        .ok_or_else(|| {
            ApiError::new(
                413,
                10000,
                format!(
                    "the JSON body has more than {} structural tokens",
                    super::error::MAX_JSON_NODES
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

async fn list_namespaces(State(s): State<AppState>, p: Params) -> Result<Response> {
    let page = int_param(&p, "page")?.unwrap_or(1);
    if page < 1 {
        return Err(ApiError::bad("page must be at least 1"));
    }
    let page = usize::try_from(page).unwrap_or(usize::MAX);
    let per_page = int_param(&p, "per_page")?.unwrap_or(20).clamp(1, 1000) as usize;
    let mut all: Vec<_> =
        s.kv.list_namespaces()
            .await?
            .into_iter()
            .filter(|n| visible(&n.id))
            .collect();
    match p.get("order") {
        Some("title") => all.sort_by(|a, b| a.title.cmp(&b.title)),
        Some("id") | None => all.sort_by(|a, b| a.id.cmp(&b.id)),
        Some(other) => return Err(ApiError::bad(format!("Invalid order: {other}"))),
    }
    match p.get("direction") {
        Some("desc") => all.reverse(),
        Some("asc") | None => {}
        Some(other) => return Err(ApiError::bad(format!("Invalid direction: {other}"))),
    }
    let total = all.len();
    // A page past the end is empty: the SDK pages until it gets one.
    let items: Vec<Value> = all
        .iter()
        // Checked: a client's page number times the page size must not wrap.
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|n| namespace_json(&n.id, &n.title))
        .collect();
    let info =
        json!({"page": page, "per_page": per_page, "count": items.len(), "total_count": total});
    Ok(ok_with_info(Value::Array(items), info))
}

fn title_of(body: &[u8]) -> Result<String> {
    match json_body(body)?.get("title") {
        Some(Value::String(t)) => Ok(t.clone()),
        _ => Err(ApiError::bad("A title is required")),
    }
}

async fn create_namespace(State(s): State<AppState>, KvBody(body): KvBody) -> Result<Response> {
    let ns = s.kv.create_namespace(&title_of(&body)?).await?;
    Ok(ok(namespace_json(&ns.id, &ns.title)))
}

async fn get_namespace(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
) -> Result<Response> {
    check_visible(&ns)?;
    let n = s.kv.get_namespace(&ns).await?;
    Ok(ok(namespace_json(&n.id, &n.title)))
}

async fn rename_namespace(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let n = s.kv.rename_namespace(&ns, &title_of(&body)?).await?;
    Ok(ok(namespace_json(&n.id, &n.title)))
}

async fn delete_namespace(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
) -> Result<Response> {
    check_visible(&ns)?;
    s.kv.delete_namespace(&ns).await?;
    Ok(ok(json!({})))
}

async fn list_keys(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    p: Params,
) -> Result<Response> {
    check_visible(&ns)?;
    let opts = ListOptions {
        prefix: p.get("prefix").map(str::to_owned),
        limit: int_param(&p, "limit")?,
        cursor: p.get("cursor").filter(|c| !c.is_empty()).map(str::to_owned),
    };
    let page = s.kv.namespace(&ns).list(&opts).await?;
    let keys: Vec<Value> = page
        .keys
        .iter()
        .map(|k| {
            let mut v = json!({"name": k.name});
            if let Some(e) = k.expiration {
                v["expiration"] = json!(e);
            }
            if let Some(m) = &k.metadata {
                v["metadata"] = serde_json::from_str(m).unwrap_or(Value::Null);
            }
            v
        })
        .collect();
    // A finished listing has the cursor "" over REST.
    let info = json!({"count": keys.len(), "cursor": page.cursor.unwrap_or_default()});
    Ok(ok_with_info(Value::Array(keys), info))
}

fn cache_ttl(p: &Params) -> Result<GetOptions> {
    Ok(GetOptions {
        cache_ttl: int_param(p, "cache_ttl")?,
    })
}

async fn get_value(
    State(s): State<AppState>,
    KvPath((_, ns, key)): KvPath<(String, String, String)>,
    p: Params,
) -> Result<Response> {
    check_visible(&ns)?;
    let v =
        s.kv.namespace(&ns)
            .get(&key, &cache_ttl(&p)?)
            .await?
            .ok_or(KvError::KeyNotFound)
            .map_err(|_| ApiError::new(404, 10009, "get: 'key not found'"))?;
    let mut resp = v.value.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(e) = v.expiration {
        if let Ok(val) = header::HeaderValue::from_str(&e.to_string()) {
            h.insert("expiration", val);
        }
    }
    Ok(resp)
}

async fn get_metadata(
    State(s): State<AppState>,
    KvPath((_, ns, key)): KvPath<(String, String, String)>,
) -> Result<Response> {
    check_visible(&ns)?;
    let v =
        s.kv.namespace(&ns)
            .get(&key, &GetOptions::default())
            .await?
            .ok_or_else(|| ApiError::new(404, 10009, "get: 'key not found'"))?;
    let meta = v
        .metadata
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|_| ApiError::new(500, 10001, "stored metadata is not JSON"))?
        .unwrap_or(Value::Null);
    Ok(ok(meta))
}

/// The value and metadata of a PUT: a raw body, or multipart with a `value` part and either a
/// `metadata` part (JSON text) or `metadata[field]` parts (the SDK's form of an object).
async fn value_and_metadata(
    headers: &HeaderMap,
    req: Request,
    state: &AppState,
) -> Result<(Bytes, Option<String>)> {
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    if !multipart {
        let KvBody(b) = KvBody::from_request(req, state).await?;
        return Ok((b, None));
    }
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad(e.body_text()))?;
    let mut value = None;
    let mut metadata = None;
    let mut fields: serde_json::Map<String, Value> = serde_json::Map::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad(e.body_text()))?;
        if name == "value" {
            value = Some(data);
        } else if name == "metadata" {
            metadata = Some(
                String::from_utf8(data.to_vec())
                    .map_err(|_| ApiError::bad("metadata is not UTF-8"))?,
            );
        } else if let Some(k) = name
            .strip_prefix("metadata[")
            .and_then(|r| r.strip_suffix(']'))
        {
            fields.insert(
                k.to_owned(),
                Value::String(String::from_utf8_lossy(&data).into_owned()),
            );
        }
    }
    if metadata.is_none() && !fields.is_empty() {
        metadata = Some(Value::Object(fields).to_string());
    }
    Ok((value.unwrap_or_default(), metadata))
}

async fn put_value(
    State(s): State<AppState>,
    KvPath((_, ns, key)): KvPath<(String, String, String)>,
    p: Params,
    req: Request,
) -> Result<Response> {
    check_visible(&ns)?;
    let headers = req.headers().clone();
    let (value, metadata) = value_and_metadata(&headers, req, &s).await?;
    let opts = PutOptions {
        expiration: int_param(&p, "expiration")?,
        expiration_ttl: int_param(&p, "expiration_ttl")?,
        metadata,
    };
    s.kv.namespace(&ns).put(&key, value, opts).await?;
    Ok(ok(json!({})))
}

async fn delete_value(
    State(s): State<AppState>,
    KvPath((_, ns, key)): KvPath<(String, String, String)>,
) -> Result<Response> {
    check_visible(&ns)?;
    s.kv.namespace(&ns).delete(&key).await?;
    Ok(ok(json!({})))
}

fn bulk_result(n: usize) -> Response {
    ok(json!({"successful_key_count": n, "unsuccessful_keys": []}))
}

async fn bulk_put(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let Value::Array(items) = json_body(&body)? else {
        return Err(ApiError::bad("The request body must be an array"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let bad = |m: &str| ApiError::bad(format!("Invalid item at index {index}: {m}"));
        let key = item["key"]
            .as_str()
            .ok_or_else(|| bad("key must be a string"))?
            .to_owned();
        let raw = item["value"]
            .as_str()
            .ok_or_else(|| bad("value must be a string"))?;
        let value = if item["base64"].as_bool() == Some(true) {
            Bytes::from(B64.decode(raw).map_err(|_| bad("value is not base64"))?)
        } else {
            Bytes::from(raw.to_owned())
        };
        let int = |k: &str| -> Result<Option<i64>> {
            match &item[k] {
                Value::Null => Ok(None),
                v => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| bad(&format!("{k} must be an integer"))),
            }
        };
        out.push(BulkPutItem {
            key,
            value,
            options: PutOptions {
                expiration: int("expiration")?,
                expiration_ttl: int("expiration_ttl")?,
                metadata: match &item["metadata"] {
                    Value::Null => None,
                    m => Some(m.to_string()),
                },
            },
        });
    }
    let n = s.kv.namespace(&ns).bulk_put(out).await?;
    Ok(bulk_result(n))
}

async fn bulk_delete(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let keys: Vec<String> = serde_json::from_value(json_body(&body)?)
        .map_err(|_| ApiError::bad("The request body must be an array of key names"))?;
    let n = s.kv.namespace(&ns).bulk_delete(keys).await?;
    Ok(bulk_result(n))
}

async fn bulk_get(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let req = json_body(&body)?;
    let keys: Vec<String> = serde_json::from_value(req["keys"].clone())
        .map_err(|_| ApiError::bad("keys must be an array of strings"))?;
    let kind = match req["type"].as_str() {
        None => BulkGetType::Text,
        Some(t) => BulkGetType::parse(t)?,
    };
    let with_metadata = req["withMetadata"].as_bool().unwrap_or(false);
    let got =
        s.kv.namespace(&ns)
            .bulk_get(
                &keys,
                kind,
                &GetOptions {
                    cache_ttl: req["cacheTtl"].as_i64(),
                },
            )
            .await?;
    let mut values = serde_json::Map::new();
    for (k, v) in got {
        let v = match v {
            None => Value::Null,
            Some(v) if with_metadata => {
                let mut out = json!({
                    "value": v.value,
                    "metadata": v.metadata.as_deref().map(serde_json::from_str::<Value>).transpose().ok().flatten(),
                });
                if let Some(e) = v.expiration {
                    out["expiration"] = json!(e);
                }
                out
            }
            Some(v) => v.value,
        };
        values.insert(k, v);
    }
    Ok(ok(json!({"values": values})))
}

/// Heartbeat of an idle watch stream.
const WATCH_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

fn event_text(
    version: u64,
    kind: &str,
    key: &str,
    metadata: Option<&str>,
    expiration: Option<u64>,
) -> String {
    let mut data = json!({"key": key});
    if let Some(m) = metadata {
        data["metadata"] = serde_json::from_str(m).unwrap_or(Value::Null);
    }
    if let Some(e) = expiration {
        data["expiration"] = json!(e);
    }
    format!("id: {version}\nevent: {kind}\ndata: {data}\n\n")
}

/// `GET …/namespaces/{ns}/watch?prefix=` (couchkv's extension): every put, delete and expiry
/// under the prefix as server-sent events (`event: put|delete|expire`, `id:` the store's
/// version, `data:` key, metadata, expiration), a heartbeat every 15 s while idle. With
/// `Last-Event-ID` (header or query) the stream first replays, as `put` events, the keys under
/// the prefix written after that version; deletions in the gap are not replayed (the store
/// keeps no change log).
async fn watch(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    p: Params,
    headers: HeaderMap,
) -> Result<Response> {
    use futures::StreamExt;
    check_visible(&ns)?;
    let prefix = p.get("prefix").unwrap_or_default().to_owned();
    let kv = s.kv.namespace(&ns);
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(p.get("last-event-id"))
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad("Last-Event-ID must be a version number"))
        })
        .transpose()?;
    // Subscribe before reading the catch-up, so nothing falls between the two.
    let events = kv.watch(&prefix).await?;
    let catch_up = match last {
        Some(since) => kv.changed_since(&prefix, since).await?,
        None => Vec::new(),
    };
    let first = futures::stream::iter(catch_up.into_iter().map(|c| {
        Ok::<_, std::convert::Infallible>(Bytes::from(event_text(
            c.version,
            "put",
            &c.key,
            c.metadata.as_deref(),
            c.expiration,
        )))
    }));
    let live = futures::stream::unfold(Some(events), |events| async move {
        let mut events = events?;
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => {
                    let text = match &ev.kind {
                        couchkv_adapters::EventKind::Put { metadata, expiration } => {
                            event_text(ev.version, "put", &ev.key, metadata.as_deref(), *expiration)
                        }
                        couchkv_adapters::EventKind::Delete => event_text(ev.version, "delete", &ev.key, None, None),
                        couchkv_adapters::EventKind::Expire => event_text(ev.version, "expire", &ev.key, None, None),
                    };
                    Some((Ok(Bytes::from(text)), Some(events)))
                }
                // The store closed the watch (it lagged, or the namespace went away): end; the
                // client reconnects with Last-Event-ID.
                _ => None,
            },
            _ = tokio::time::sleep(WATCH_HEARTBEAT) => {
                Some((Ok(Bytes::from_static(b"event: heartbeat\ndata: \n\n")), Some(events)))
            }
        }
    });
    let mut resp = Response::new(axum::body::Body::from_stream(first.chain(live)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    Ok(resp)
}
