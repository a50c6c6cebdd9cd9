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
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let bad = |m: &str| ApiError::bad(format!("Invalid item at index {index}: {m}"));
        let key = item["key"]
            .as_str()
            .ok_or_else(|| bad("key must be a string"))?
            .to_owned();
        let raw = item["value"]
            .as_str()
            .ok_or_else(|| bad("value must be a string"))?;
        let value = if item["base64"].as_bool() == Some(true) {
            Bytes::from(B64.decode(raw).map_err(|_| bad("value is not base64"))?)
        } else {
            Bytes::from(raw.to_owned())
        };
        let int = |k: &str| -> Result<Option<i64>> {
            match &item[k] {
                Value::Null => Ok(None),
                v => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| bad(&format!("{k} must be an integer"))),
            }
        };
        out.push(BulkPutItem {
            key,
            value,
            options: PutOptions {
                expiration: int("expiration")?,
                expiration_ttl: int("expiration_ttl")?,
                metadata: match &item["metadata"] {
                    Value::Null => None,
                    m => Some(m.to_string()),
                },
            },
        });
    }
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
    let got =
        s.kv.namespace(&ns)
            .bulk_get(
                &keys,
                kind,
                &GetOptions {
                    cache_ttl: req["cacheTtl"].as_i64(),
                },
            )
            .await?;
    let mut values = serde_json::Map::new();
    for (k, v) in got {
        let v = match v {
            None => Value::Null,
            Some(v) if with_metadata => {
                let mut out = json!({
                    "value": v.value,
                    "metadata": v.metadata.as_deref().map(serde_json::from_str::<Value>).transpose().ok().flatten(),
                });
                if let Some(e) = v.expiration {
                    out["expiration"] = json!(e);
                }
                out
            }
            Some(v) => v.value,
        };
        values.insert(k, v);
    }
    Ok(ok(json!({"values": values})))
}
