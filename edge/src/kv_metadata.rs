//! A record's metadata (JSON text) in a Workers KV binding, byte for byte.
//!
//! A binding takes and gives metadata as JavaScript values, and JSON through JavaScript is not
//! always the same JSON: numbers become doubles (`1.0` comes back `1`, 2⁶⁴ loses digits),
//! array-index-like keys move to the front of their object, `__proto__` is no plain key, and
//! whitespace goes. Metadata that makes the trip unchanged is stored as the value it is, so
//! other readers of the namespace see it as they would; anything else is stored as its text,
//! wrapped as `{"couchkv:json": "<text>"}`.

use serde_json::{json, Map, Value};

const WRAP: &str = "couchkv:json";

/// The value to hand the binding for metadata `text`.
pub fn to_binding(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if travels(&v) && !is_wrapped(&v) && same_text(&v, text) => v,
        _ => json!({ WRAP: text }),
    }
}

/// The metadata text of a value the binding gave back.
pub fn from_binding(v: Value) -> String {
    match v {
        Value::Object(mut m) if is_wrapped_map(&m) => match m.remove(WRAP) {
            Some(Value::String(text)) => text,
            _ => String::new(),
        },
        other => other.to_string(),
    }
}

/// Whether `v` is spelled `text` (compact, fields in their order).
fn same_text(v: &Value, text: &str) -> bool {
    serde_json::to_string(v).is_ok_and(|t| t == text)
}

fn is_wrapped(v: &Value) -> bool {
    v.as_object().is_some_and(is_wrapped_map)
}

fn is_wrapped_map(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.get(WRAP).is_some_and(Value::is_string)
}

/// Whether JavaScript gives `v` back as it is.
fn travels(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        // Integers a double holds exactly; any fraction or exponent may come back spelled
        // otherwise.
        Value::Number(n) => n.as_i64().is_some_and(|i| i.unsigned_abs() <= (1u64 << 53)),
        Value::Array(a) => a.iter().all(travels),
        Value::Object(m) => m
            .iter()
            .all(|(k, v)| !index_like(k) && k != "__proto__" && travels(v)),
    }
}

/// Keys JavaScript orders before all others in an object: array indices.
fn index_like(k: &str) -> bool {
    k == "0"
        || (!k.starts_with('0')
            && !k.is_empty()
            && k.len() <= 10
            && k.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_travels_is_stored_as_it_is_and_the_rest_as_text() {
        for plain in [
            r#"{"a":1}"#,
            r#""hello""#,
            "null",
            "[1,2,3]",
            r#"{"z":{"y":[true]}}"#,
        ] {
            assert_eq!(
                to_binding(plain),
                serde_json::from_str::<Value>(plain).unwrap()
            );
            assert_eq!(from_binding(to_binding(plain)), plain);
        }
        for odd in [
            r#"{"b":1,"2":0}"#,
            "1.0",
            "18446744073709551615",
            r#"{ "a": 1 }"#,
            r#"{"__proto__":1}"#,
            r#"{"couchkv:json":"x"}"#,
            "1e3",
        ] {
            assert_eq!(to_binding(odd), json!({ WRAP: odd }), "{odd}");
            assert_eq!(from_binding(to_binding(odd)), odd);
        }
    }
}
