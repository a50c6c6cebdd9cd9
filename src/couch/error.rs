//! The couch layer's errors, by meaning: each has a [`ErrorKind`] (what happened), the `error`
//! name CouchDB gives it and a `reason`. Which HTTP status a kind is, is decided in one place,
//! the HTTP layer's `error.rs`; nothing below HTTP knows status codes.

use crate::level::{ErrorCode, LevelError};

/// What went wrong, independent of any wire format.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or asks for something invalid.
    BadRequest,
    /// Nobody is authenticated, or the credentials are wrong.
    Unauthorized,
    /// The authenticated user may not do this.
    Forbidden,
    /// No such database, document, revision or attachment.
    NotFound,
    /// The write conflicts with the current state (a stale or missing revision).
    Conflict,
    /// What is to be created exists already.
    Exists,
    /// A precondition the request relies on does not hold (an attachment stub with no data).
    Precondition,
    /// The request asks for more than the server allows.
    TooLarge,
    /// The body is not of a type the endpoint takes.
    UnsupportedType,
    /// The method is not one the resource takes.
    MethodNotAllowed,
    /// The client took too long.
    Timeout,
    /// The server cannot do it now; the client may retry.
    Unavailable,
    /// Something the server did failed.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {reason}")]
pub struct CouchError {
    pub kind: ErrorKind,
    /// CouchDB's name for it (`not_found`, `conflict`, `file_exists`, …).
    pub error: &'static str,
    pub reason: String,
}

impl CouchError {
    pub fn new(kind: ErrorKind, error: &'static str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            error,
            reason: reason.into(),
        }
    }
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "bad_request", reason)
    }
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, "unauthorized", reason)
    }
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "forbidden", reason)
    }
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", reason)
    }
    /// An unknown database.
    pub fn no_db() -> Self {
        Self::not_found("Database does not exist.")
    }
    /// An unknown document or revision.
    pub fn missing() -> Self {
        Self::not_found("missing")
    }
    /// A document whose winning revision is a deletion.
    pub fn deleted() -> Self {
        Self::not_found("deleted")
    }
    pub fn conflict() -> Self {
        Self::new(ErrorKind::Conflict, "conflict", "Document update conflict.")
    }
    pub fn file_exists() -> Self {
        Self::new(
            ErrorKind::Exists,
            "file_exists",
            "The database could not be created, the file already exists.",
        )
    }
    pub fn illegal_db_name(name: &str) -> Self {
        Self::new(
            ErrorKind::BadRequest,
            "illegal_database_name",
            format!(
                "Name: '{name}'. Only lowercase characters (a-z), digits (0-9), and any of the characters _, $, (, ), +, -, and / are allowed. Must begin with a letter."
            ),
        )
    }
    pub fn doc_validation(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "doc_validation", reason)
    }
    pub fn query_parse_error(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "query_parse_error", reason)
    }
    pub fn missing_stub(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Precondition, "missing_stub", reason)
    }
    /// A write that would give a document a new branch past its bounds.
    pub fn too_many_leaves(leaves: usize, revs: usize) -> Self {
        Self::too_large(format!("The document would have more than {leaves} leaf revisions or {revs} revisions in its tree; resolve conflicts first"))
    }
    pub fn too_large(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, "too_large", reason)
    }
    /// The write could not get through (other nodes kept winning); the client retries.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "service_unavailable", reason)
    }
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "unknown_error", reason)
    }
}

impl From<LevelError> for CouchError {
    fn from(e: LevelError) -> Self {
        match e.code {
            ErrorCode::InvalidKey => CouchError::bad_request(format!("id too long: {}", e.message)),
            ErrorCode::InvalidValue => CouchError::too_large(e.message),
            ErrorCode::DatabaseNotOpen => {
                CouchError::new(ErrorKind::Unavailable, "unavailable", e.message)
            }
            _ => CouchError::internal(e.to_string()),
        }
    }
}

pub type Result<T, E = CouchError> = std::result::Result<T, E>;
