//! The couch layer's errors, in CouchDB's vocabulary: each carries the status and the `error`
//! name CouchDB answers with, and its `reason`. The HTTP layer only renders them.

use crate::level::{ErrorCode, LevelError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {reason}")]
pub struct CouchError {
    pub status: u16,
    pub error: &'static str,
    pub reason: String,
}

impl CouchError {
    pub fn new(status: u16, error: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            error,
            reason: reason.into(),
        }
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(400, "bad_request", reason)
    }
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(404, "not_found", reason)
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
        Self::new(409, "conflict", "Document update conflict.")
    }
    pub fn file_exists() -> Self {
        Self::new(
            412,
            "file_exists",
            "The database could not be created, the file already exists.",
        )
    }
    pub fn illegal_db_name(name: &str) -> Self {
        Self::new(
            400,
            "illegal_database_name",
            format!(
                "Name: '{name}'. Only lowercase characters (a-z), digits (0-9), and any of the characters _, $, (, ), +, -, and / are allowed. Must begin with a letter."
            ),
        )
    }
    pub fn doc_validation(reason: impl Into<String>) -> Self {
        Self::new(400, "doc_validation", reason)
    }
    pub fn missing_stub(reason: impl Into<String>) -> Self {
        Self::new(412, "missing_stub", reason)
    }
    /// A write that would give a document a new branch past its bounds.
    pub fn too_many_leaves(leaves: usize, revs: usize) -> Self {
        Self::new(
            413,
            "too_large",
            format!("The document would have more than {leaves} leaf revisions or {revs} revisions in its tree; resolve conflicts first"),
        )
    }
    pub fn too_large(reason: impl Into<String>) -> Self {
        Self::new(413, "too_large", reason)
    }
    /// 503: the write could not get through (other nodes kept winning); the client retries.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(503, "service_unavailable", reason)
    }
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(500, "unknown_error", reason)
    }
}

impl From<LevelError> for CouchError {
    fn from(e: LevelError) -> Self {
        match e.code {
            ErrorCode::InvalidKey => CouchError::bad_request(format!("id too long: {}", e.message)),
            ErrorCode::InvalidValue => CouchError::too_large(e.message),
            ErrorCode::DatabaseNotOpen => CouchError::new(503, "unavailable", e.message),
            _ => CouchError::internal(e.to_string()),
        }
    }
}

pub type Result<T, E = CouchError> = std::result::Result<T, E>;
