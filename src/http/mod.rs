//! The HTTP API. Handlers are thin: extract, call the core, shape the answer. Errors become
//! responses in `error.rs` and nowhere else.

mod auth_layer;
mod changes;
mod couch_api;
pub mod error;
pub mod extract;
mod kv_api;
mod session_api;
pub mod state;
mod stream;
mod utils;

pub use auth_layer::{credentials, session_cookie};
pub use state::{AppState, Host};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::couch::{CouchError, ErrorKind};

/// The client's address as the host knows it (the TCP peer natively, `CF-Connecting-IP` in a
/// Worker), put in the request's extensions by the host. Login throttling counts by it; a
/// request without one is counted as from an unknown address.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Peer>().copied().unwrap_or_default())
    }
}

/// How the HTTP layer behaves.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Origins browsers may call from (`*` for any); empty for no CORS.
    pub cors_origins: Vec<String>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Bodies of old revisions a database may keep before it compacts itself (0: never).
    pub compact_after: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            max_body_bytes: 64 * 1024 * 1024,
            compact_after: 10_000,
        }
    }
}

pub fn app(state: AppState, config: &HttpConfig) -> Router {
    let router = Router::new()
        .route("/", get(welcome))
        .route("/_up", get(up))
        .merge(session_api::routes())
        .merge(utils::routes())
        .merge(kv_api::routes(&state))
        .merge(couch_api::routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_layer::authenticate,
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        // A body announced larger than the limit is refused before anything else is done.
        .layer(axum::middleware::from_fn_with_state(
            config.max_body_bytes,
            refuse_oversize,
        ))
        .with_state(state);
    match cors(config) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// CORS for browser clients: the allowed origins are echoed back, with credentials.
fn cors(config: &HttpConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let any = config.cors_origins.iter().any(|o| o == "*");
    let allowed: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let origin = AllowOrigin::predicate(move |o: &HeaderValue, _| any || allowed.contains(o));
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::PUT,
                Method::POST,
                Method::HEAD,
                Method::DELETE,
            ])
            .allow_headers([
                header::ACCEPT,
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ORIGIN,
                header::REFERER,
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::ETAG, header::CONTENT_TYPE]),
    )
}

/// 413 at once for a `Content-Length` over the limit, in the shape of the API asked.
async fn refuse_oversize(
    State(limit): State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(n) if n > limit as u64 => {
            let reason = format!("the request body of {n} bytes is over the limit of {limit}");
            if req.uri().path().starts_with("/client/v4/") {
                kv_api::ApiError::new(413, 10000, reason).into_response()
            } else {
                CouchError::too_large(reason).into_response()
            }
        }
        _ => next.run(req).await,
    }
}

async fn welcome(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "couchdb": "Welcome",
        "version": "3.3.3",
        "uuid": &*state.uuid,
        "features": [],
        "vendor": {"name": "couchkv", "version": env!("CARGO_PKG_VERSION")},
    }))
}

async fn up() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "seeds": {}}))
}

async fn not_found() -> CouchError {
    CouchError::not_found("missing")
}

async fn method_not_allowed(method: Method) -> CouchError {
    CouchError::new(
        ErrorKind::MethodNotAllowed,
        "method_not_allowed",
        format!("{method} is not allowed here"),
    )
}
