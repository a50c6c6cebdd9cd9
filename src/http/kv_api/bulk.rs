//! Bulk writes, deletes and reads, whole or not at all.

use super::*;

pub(super) fn bulk_result(n: usize) -> Response {
    ok(json!({"successful_key_count": n, "unsuccessful_keys": []}))
}

pub(super) async fn bulk_put(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let Value::Array(items) = json_body(&body)? else {
        return Err(ApiError::bad("The request body must be an array"));
    };
    let out = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            BulkPutItem::from_json(item)
                .map_err(|m| ApiError::bad(format!("Invalid item at index {index}: {m}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let n = s.kv.namespace(&ns).bulk_put(out).await?;
    Ok(bulk_result(n))
}

pub(super) async fn bulk_delete(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let keys: Vec<String> = serde_json::from_value(json_body(&body)?)
        .map_err(|_| ApiError::bad("The request body must be an array of key names"))?;
    let n = s.kv.namespace(&ns).bulk_delete(keys).await?;
    Ok(bulk_result(n))
}

pub(super) async fn bulk_get(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let req = json_body(&body)?;
    let keys: Vec<String> = serde_json::from_value(req["keys"].clone())
        .map_err(|_| ApiError::bad("keys must be an array of strings"))?;
    let kind = match req["type"].as_str() {
        None => BulkGetType::Text,
        Some(t) => BulkGetType::parse(t)?,
    };
    let with_metadata = req["withMetadata"].as_bool().unwrap_or(false);
    let opts = GetOptions {
        cache_ttl: req["cacheTtl"].as_i64(),
    };
    let got = s.kv.namespace(&ns).bulk_get(&keys, kind, &opts).await?;
    let values: serde_json::Map<String, Value> = got
        .into_iter()
        .map(|(k, v)| (k, v.map_or(Value::Null, |v| v.to_json(with_metadata))))
        .collect();
    Ok(ok(json!({"values": values})))
}
