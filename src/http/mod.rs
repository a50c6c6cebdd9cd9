//! The HTTP API. Handlers are thin: extract, call the core, shape the answer. Errors become
//! responses here and nowhere else.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::kv::Kv;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub kv: Kv,
    /// The server's identity, stable across restarts (replication checkpoints depend on it).
    pub uuid: Arc<str>,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(welcome))
        .route("/_up", get(up))
        .fallback(not_found)
        .with_state(state)
}

/// An error in CouchDB's shape: `{"error", "reason"}` with its status.
#[derive(Debug)]
pub struct CouchError {
    pub status: StatusCode,
    pub error: &'static str,
    pub reason: String,
}

impl IntoResponse for CouchError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "reason": self.reason})),
        )
            .into_response()
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
    CouchError {
        status: StatusCode::NOT_FOUND,
        error: "not_found",
        reason: "missing".into(),
    }
}
