//! Extractors: path parameters, the query, raw and JSON bodies. They refuse bad input in
//! CouchDB's shape, so bad input looks the same on every route, and bound what a body may cost.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::couch::{CouchError, ErrorKind};

/// Path parameters, percent-decoded; a malformed one is a CouchDB `bad_request`.
pub struct CouchPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for CouchPath<T> {
    type Rejection = CouchError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(CouchPath(v)),
            Err(e) => Err(CouchError::bad_request(e.body_text())),
        }
    }
}

/// The query string as name → value (the last of repeated names wins). Never rejects.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = CouchError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        Ok(Params(
            form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        ))
    }
}

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn flag(&self, k: &str) -> Result<bool, CouchError> {
        match self.get(k) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(CouchError::bad_request(format!(
                "Invalid boolean parameter: {k}={v}"
            ))),
        }
    }

    pub fn number(&self, k: &str) -> Result<Option<u64>, CouchError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                CouchError::bad_request(format!(
                    "Invalid value for {k}: must be a non-negative integer"
                ))
            }),
        }
    }

    /// The first of `names` given, as a JSON string (`startkey="a"`, or its alias `start_key`).
    pub fn json_string(&self, names: &[&str]) -> Result<Option<String>, CouchError> {
        for n in names {
            if let Some(v) = self.json(n)? {
                return match v {
                    Value::String(s) => Ok(Some(s)),
                    _ => Err(CouchError::bad_request(format!(
                        "{n} must be a JSON string"
                    ))),
                };
            }
        }
        Ok(None)
    }

    /// A parameter CouchDB takes as JSON (`startkey="a"`, `keys=[…]`, `open_revs=[…]`).
    pub fn json(&self, k: &str) -> Result<Option<Value>, CouchError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => serde_json::from_str(v).map(Some).map_err(|_| {
                CouchError::bad_request(format!("Invalid JSON in query parameter {k}"))
            }),
        }
    }
}

/// The raw body, within the configured size limit (413 beyond it).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = CouchError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(CouchError::too_large("the request entity is too large"))
            }
            Err(e) if timed_out(&e) => Err(CouchError::new(
                ErrorKind::Timeout,
                "request_timeout",
                "the request body did not arrive in time",
            )),
            Err(e) => Err(CouchError::bad_request(e.body_text())),
        }
    }
}

/// Whether reading a body failed because the body timeout (`--body-timeout`) ran out.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if is_timeout(err) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The native host's body timeout (`--body-timeout`, a tower-http layer put on by the accept
/// loop); a Worker's platform has its own and never reaches here with one.
fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    #[cfg(feature = "server")]
    return err.is::<tower_http::timeout::TimeoutError>();
    #[cfg(not(feature = "server"))]
    return {
        let _ = err;
        false
    };
}

/// The most structural tokens (`{`, `[`, `,`, `:` outside strings: about two per value) one
/// JSON request body may hold. A parsed value takes up to ~200 bytes however small its text,
/// so this, not the body size, bounds the memory a JSON request costs (about 100 MB at the
/// most; 200,000 ids in a 3.7 MB `_bulk_get` parsed to over 100 MB).
pub const MAX_JSON_NODES: usize = 500_000;

/// Whether `body` holds at most `max` structural tokens, counted without parsing or
/// allocating: every `{`, `[`, `,` and `:` outside strings is one (and the first value).
pub fn json_nodes_within(body: &[u8], max: usize) -> bool {
    let mut count = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' | b',' | b':' => {
                count += 1;
                if count > max {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Parses a JSON request body within [`MAX_JSON_NODES`]; `None` when it has more.
pub fn parse_bounded(body: &[u8]) -> Option<Result<Value, serde_json::Error>> {
    json_nodes_within(body, MAX_JSON_NODES).then(|| serde_json::from_slice(body))
}

/// Whether a `Content-Type` says JSON (`application/json`, parameters allowed).
pub fn is_json_type(value: Option<&axum::http::HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON body; anything else is CouchDB's `bad_request`, "invalid UTF-8 JSON". A POST must
/// say `Content-Type: application/json`, as CouchDB requires (415 `bad_content_type`): the
/// types a browser may send cross-site without asking first (forms, `text/plain`) are
/// refused, so a page elsewhere cannot post on a signed-in user's behalf.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = CouchError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == axum::http::Method::POST
            && !is_json_type(req.headers().get(axum::http::header::CONTENT_TYPE))
        {
            return Err(CouchError::new(
                ErrorKind::UnsupportedType,
                "bad_content_type",
                "Content-Type must be application/json",
            ));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_bounded(&bytes)
            .ok_or_else(|| {
                CouchError::too_large(format!(
                    "the JSON body has more than {MAX_JSON_NODES} structural tokens"
                ))
            })?
            .map(JsonBody)
            .map_err(|_| CouchError::bad_request("invalid UTF-8 JSON"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_counted_without_parsing() {
        assert!(json_nodes_within(b"1", 1));
        assert!(json_nodes_within(br#"{"a":[1,2]}"#, 5));
        assert!(!json_nodes_within(br#"{"a":[1,2]}"#, 4));
        // Structure inside strings, escaped quotes included, does not count.
        assert!(json_nodes_within(br#""{[,:\"{[,:""#, 1));
        assert!(json_nodes_within(br#"{"k\"":"v,:"}"#, 3));
        let many = format!("[{}]", vec!["{}"; 1000].join(","));
        assert!(json_nodes_within(many.as_bytes(), 2001));
        assert!(!json_nodes_within(many.as_bytes(), 2000));
    }
}
