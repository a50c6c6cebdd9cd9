//! Errors become HTTP here and nowhere else: CouchDB's `{"error","reason"}` with its statuses,
//! and Cloudflare's v4 envelope for the kv layer's errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::couch::{CouchError, ErrorKind};

// ---- what each API answers an error with: CouchDB's status here, Cloudflare's status and
// code for the kv layer's errors below ----

/// The HTTP status Workers KV (as Miniflare simulates it) answers a kv error with.
pub fn kv_status(e: &crate::kv::KvError) -> u16 {
    use crate::kv::KvError::*;
    match e {
        KeyTooLong(_) | KeyTooLongForStore { .. } => 414,
        MetadataTooLarge(_) | ValueTooLarge(_) | BulkGetTooLarge => 413,
        BulkItem { source, .. } => kv_status(source),
        KeyNotFound | NamespaceNotFound => 404,
        Conflict(_) => 409,
        Unavailable => 503,
        NotSupported(_) => 501,
        Internal(_) => 500,
        _ => 400,
    }
}

/// The code in Cloudflare's v4 error envelope: the codes KV-API.md records, and 10000
/// (generic) for the rest, whose message carries the detail.
pub fn kv_code(e: &crate::kv::KvError) -> u32 {
    use crate::kv::KvError::*;
    match e {
        KeyNotFound => 10009,
        NamespaceNotFound => 10013,
        NamespaceExists => 10014,
        BulkItem { source, .. } => kv_code(source),
        _ => 10000,
    }
}

/// An error in Cloudflare's envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: message.into(),
        }
    }
    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self::new(400, 10000, message)
    }
}

impl From<crate::kv::KvError> for ApiError {
    fn from(e: crate::kv::KvError) -> Self {
        Self::new(kv_status(&e), kv_code(&e), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "kv request failed");
        }
        (
            self.status,
            Json(json!({
                "success": false,
                "errors": [{"code": self.code, "message": self.message}],
                "messages": [],
                "result": null,
            })),
        )
            .into_response()
    }
}

/// The one place a CouchDB error's meaning becomes an HTTP status.
pub fn couch_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Exists | ErrorKind::Precondition => StatusCode::PRECONDITION_FAILED,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for CouchError {
    fn into_response(self) -> Response {
        let status = couch_status(self.kind);
        if status.is_server_error() {
            tracing::error!(error = self.error, reason = %self.reason, "request failed");
        }
        (
            status,
            Json(json!({"error": self.error, "reason": self.reason})),
        )
            .into_response()
    }
}
