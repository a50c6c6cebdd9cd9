//! The kv layer's errors, one variant per thing that can go wrong, each displaying the message
//! Miniflare gives. Which HTTP status and Cloudflare code each is, is decided in the HTTP layer
//! (`http/kv_api.rs`), in one place.

use couchkv_adapters::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    #[error("Key names must not be empty")]
    EmptyKey,
    #[error("Illegal key name \"{0}\". Please use a different name.")]
    IllegalKey(String),
    #[error("UTF-8 encoded length of {0} exceeds key length limit of 512.")]
    KeyTooLong(usize),
    /// Within Workers KV's limit but longer than the store holds (a Worker binding's
    /// namespaces take a few bytes of every key).
    #[error("UTF-8 encoded length of {len} exceeds key length limit of {limit}.")]
    KeyTooLongForStore { len: usize, limit: usize },
    #[error("Invalid cache_ttl of {0}. Cache TTL must be at least 30.")]
    CacheTtlTooSmall(i64),
    #[error("Invalid expiration_ttl of {0}. Please specify integer greater than 0.")]
    ExpirationTtlNotPositive(i64),
    #[error("Invalid expiration_ttl of {0}. Expiration TTL must be at least 60.")]
    ExpirationTtlTooSmall(i64),
    #[error("Invalid expiration of {0}. Please specify integer greater than the current number of seconds since the UNIX epoch.")]
    ExpirationInPast(i64),
    #[error(
        "Invalid expiration of {0}. Expiration times must be at least 60 seconds in the future."
    )]
    ExpirationTooSoon(i64),
    #[error("Metadata length of {0} exceeds limit of 1024.")]
    MetadataTooLarge(usize),
    #[error("Metadata is not valid JSON: {0}")]
    MetadataNotJson(String),
    #[error("Value length of {0} exceeds limit of 26214400.")]
    ValueTooLarge(usize),
    #[error("Invalid key_count_limit of {0}. Please specify an integer greater than 0.")]
    ListLimitTooSmall(i64),
    #[error("Invalid key_count_limit of {0}. Please specify an integer less than 1000.")]
    ListLimitTooLarge(i64),
    #[error("Invalid cursor")]
    InvalidCursor,
    #[error("\"{0}\" is not a valid type. Use \"json\" or \"text\"")]
    BulkGetBadType(String),
    #[error("You must request a minimum of 1 key")]
    BulkGetTooFew,
    #[error("You can request a maximum of 100 keys")]
    BulkGetTooMany,
    #[error("At least one of the requested keys corresponds to a non-json value")]
    BulkGetNotJson,
    #[error("Total size of request exceeds the limit of 25MB")]
    BulkGetTooLarge,
    #[error("You can write or delete a maximum of 10000 keys at once; got {0}")]
    BulkTooMany(usize),
    #[error("Invalid item at index {index}: {source}")]
    BulkItem {
        index: usize,
        #[source]
        source: Box<KvError>,
    },
    #[error("Namespace titles must not be empty")]
    EmptyTitle,
    #[error("Not Found")]
    KeyNotFound,
    #[error("namespace not found")]
    NamespaceNotFound,
    #[error("a namespace with this account ID and title already exists")]
    NamespaceExists,
    #[error("precondition failed on key {0:?}")]
    Conflict(String),
    #[error("the store is closed")]
    Unavailable,
    /// The store cannot do what was asked (its capabilities say so).
    #[error("not supported by this store: {0}")]
    NotSupported(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for KvError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NamespaceNotFound(_) => KvError::NamespaceNotFound,
            StoreError::NamespaceExists(_) => KvError::NamespaceExists,
            StoreError::Conflict { key } => KvError::Conflict(key),
            StoreError::Closed => KvError::Unavailable,
            StoreError::NotSupported(what) => KvError::NotSupported(what),
            StoreError::KeyTooLong { len, limit } => KvError::KeyTooLongForStore { len, limit },
            other => KvError::Internal(other.to_string()),
        }
    }
}
