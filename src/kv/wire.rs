//! Workers KV's JSON shapes for what lists, bulk writes and bulk reads carry (KV-API.md): the
//! same for the v4 API and for wrangler's bulk files, so the HTTP layer and the CLI share them.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::{BulkPutItem, BulkValue, KeyInfo, PutOptions};

impl KeyInfo {
    /// As Workers KV lists it: `{"name", "expiration"?, "metadata"?}`, the metadata as the JSON
    /// it was written as.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"name": self.name});
        if let Some(e) = self.expiration {
            v["expiration"] = json!(e);
        }
        if let Some(m) = &self.metadata {
            v["metadata"] = serde_json::from_str(m).unwrap_or(Value::Null);
        }
        v
    }
}

impl BulkPutItem {
    /// One item of a bulk write: `{key, value, base64?, expiration?, expiration_ttl?,
    /// metadata?}`; what is wrong with it, otherwise.
    pub fn from_json(item: &Value) -> Result<Self, String> {
        let key = item["key"]
            .as_str()
            .ok_or("key must be a string")?
            .to_owned();
        let raw = item["value"].as_str().ok_or("value must be a string")?;
        let value = if item["base64"].as_bool() == Some(true) {
            Bytes::from(B64.decode(raw).map_err(|_| "value is not base64")?)
        } else {
            Bytes::from(raw.to_owned())
        };
        let int = |k: &str| -> Result<Option<i64>, String> {
            match &item[k] {
                Value::Null => Ok(None),
                v => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| format!("{k} must be an integer")),
            }
        };
        Ok(BulkPutItem {
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
        })
    }
}

impl BulkValue {
    /// As a bulk read answers it: the value alone, or with `withMetadata`
    /// `{"value", "metadata", "expiration"?}`.
    pub fn to_json(self, with_metadata: bool) -> Value {
        if !with_metadata {
            return self.value;
        }
        let metadata = self
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str::<Value>(m).ok());
        let mut out = json!({"value": self.value, "metadata": metadata});
        if let Some(e) = self.expiration {
            out["expiration"] = json!(e);
        }
        out
    }
}
