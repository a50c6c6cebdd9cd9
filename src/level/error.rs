//! The level layer's errors. Each has a stable code (abstract-level's names); tests match codes,
//! never messages.

use crate::kv::KvError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The database (or the sublevel, or a parent of it) is not open.
    DatabaseNotOpen,
    /// The iterator was closed.
    IteratorNotOpen,
    /// A chained batch was written or closed already.
    BatchNotOpen,
    /// A key the database cannot hold (too long for the store below).
    InvalidKey,
    /// A value the database cannot hold (too large for the store below).
    InvalidValue,
    /// A sublevel name outside the allowed characters.
    InvalidPrefix,
    /// The operation needs something this database does not do.
    NotSupported,
    /// Stored data that cannot be decoded.
    Corruption,
    /// The store below failed.
    IoError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::DatabaseNotOpen => "LEVEL_DATABASE_NOT_OPEN",
            ErrorCode::IteratorNotOpen => "LEVEL_ITERATOR_NOT_OPEN",
            ErrorCode::BatchNotOpen => "LEVEL_BATCH_NOT_OPEN",
            ErrorCode::InvalidKey => "LEVEL_INVALID_KEY",
            ErrorCode::InvalidValue => "LEVEL_INVALID_VALUE",
            ErrorCode::InvalidPrefix => "LEVEL_INVALID_PREFIX",
            ErrorCode::NotSupported => "LEVEL_NOT_SUPPORTED",
            ErrorCode::Corruption => "LEVEL_CORRUPTION",
            ErrorCode::IoError => "LEVEL_IO_ERROR",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct LevelError {
    pub code: ErrorCode,
    pub message: String,
}

impl LevelError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn not_open() -> Self {
        Self::new(ErrorCode::DatabaseNotOpen, "the database is not open")
    }
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }
}

impl From<KvError> for LevelError {
    fn from(e: KvError) -> Self {
        let code = match &e {
            KvError::KeyTooLong(_)
            | KvError::KeyTooLongForStore { .. }
            | KvError::EmptyKey
            | KvError::IllegalKey(_) => ErrorCode::InvalidKey,
            KvError::ValueTooLarge(_) => ErrorCode::InvalidValue,
            KvError::BulkItem { source, .. } => return LevelError::from((**source).clone()),
            KvError::Unavailable => ErrorCode::DatabaseNotOpen,
            KvError::NotSupported(_) => ErrorCode::NotSupported,
            _ => ErrorCode::IoError,
        };
        LevelError::new(code, e.to_string())
    }
}
