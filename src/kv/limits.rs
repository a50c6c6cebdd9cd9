//! Workers KV's limits and the checks that enforce them, once, before anything reaches a store.

use super::KvError;

pub const MAX_KEY_BYTES: usize = 512;
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
pub const MAX_METADATA_BYTES: usize = 1024;
pub const MIN_EXPIRATION_TTL: i64 = 60;
pub const MIN_CACHE_TTL: i64 = 30;
pub const MAX_LIST_LIMIT: i64 = 1000;
pub const MAX_BULK_GET_KEYS: usize = 100;
pub const MAX_BULK_GET_BYTES: usize = 25 * 1024 * 1024;
pub const MAX_BULK_WRITE: usize = 10_000;

pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if key == "." || key == ".." {
        return Err(KvError::IllegalKey(key.to_owned()));
    }
    check_key_length(key)
}

/// Keys and list prefixes share the length limit.
pub fn check_key_length(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::KeyTooLong(key.len()));
    }
    Ok(())
}

pub fn check_cache_ttl(cache_ttl: Option<i64>) -> Result<(), KvError> {
    match cache_ttl {
        Some(t) if t < MIN_CACHE_TTL => Err(KvError::CacheTtlTooSmall(t)),
        _ => Ok(()),
    }
}

/// The absolute expiry a put asks for. A TTL wins over an absolute time when both are given.
pub fn resolve_expiration(
    now: u64,
    expiration: Option<i64>,
    expiration_ttl: Option<i64>,
) -> Result<Option<u64>, KvError> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    if let Some(ttl) = expiration_ttl {
        if ttl <= 0 {
            return Err(KvError::ExpirationTtlNotPositive(ttl));
        }
        if ttl < MIN_EXPIRATION_TTL {
            return Err(KvError::ExpirationTtlTooSmall(ttl));
        }
        return Ok(Some(now.saturating_add(ttl) as u64));
    }
    if let Some(at) = expiration {
        if at <= now {
            return Err(KvError::ExpirationInPast(at));
        }
        if at < now.saturating_add(MIN_EXPIRATION_TTL) {
            return Err(KvError::ExpirationTooSoon(at));
        }
        return Ok(Some(at as u64));
    }
    Ok(None)
}

/// Checks serialized metadata: its size first (as Workers KV does), then that it is JSON.
pub fn check_metadata(metadata: Option<&str>) -> Result<(), KvError> {
    let Some(m) = metadata else { return Ok(()) };
    if m.len() > MAX_METADATA_BYTES {
        return Err(KvError::MetadataTooLarge(m.len()));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(m)
        .map_err(|e| KvError::MetadataNotJson(e.to_string()))?;
    Ok(())
}

pub fn check_value(len: usize) -> Result<(), KvError> {
    if len > MAX_VALUE_BYTES {
        return Err(KvError::ValueTooLarge(len));
    }
    Ok(())
}

/// The page size of a list: absent means the maximum.
pub fn list_limit(limit: Option<i64>) -> Result<usize, KvError> {
    match limit {
        None => Ok(MAX_LIST_LIMIT as usize),
        Some(l) if l < 1 => Err(KvError::ListLimitTooSmall(l)),
        Some(l) if l > MAX_LIST_LIMIT => Err(KvError::ListLimitTooLarge(l)),
        Some(l) => Ok(l as usize),
    }
}
