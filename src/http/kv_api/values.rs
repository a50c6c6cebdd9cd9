//! Keys and values: list with cursors, read (raw or with metadata), write, delete.

use super::*;
use crate::kv::KeyInfo;

pub(super) async fn list_keys(
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
    let keys: Vec<Value> = page.keys.iter().map(KeyInfo::to_json).collect();
    // A finished listing has the cursor "" over REST.
    let info = json!({"count": keys.len(), "cursor": page.cursor.unwrap_or_default()});
    Ok(ok_with_info(Value::Array(keys), info))
}

pub(super) fn cache_ttl(p: &Params) -> Result<GetOptions> {
    Ok(GetOptions {
        cache_ttl: int_param(p, "cache_ttl")?,
    })
}

pub(super) async fn get_value(
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

pub(super) async fn get_metadata(
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
pub(super) async fn value_and_metadata(
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

pub(super) async fn put_value(
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

pub(super) async fn delete_value(
    State(s): State<AppState>,
    KvPath((_, ns, key)): KvPath<(String, String, String)>,
) -> Result<Response> {
    check_visible(&ns)?;
    s.kv.namespace(&ns).delete(&key).await?;
    Ok(ok(json!({})))
}
