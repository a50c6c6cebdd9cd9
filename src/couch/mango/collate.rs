//! CouchDB's collation of JSON values: `null < false < true < numbers < strings < arrays <
//! objects`, arrays element by element, objects key then value pair by pair (fewer first), and
//! strings in an ICU-like order. [`cmp`] compares two values; [`sort_key`] writes a value's
//! byte key, whose byte order is [`cmp`]'s order, for index keys in the store.
//!
//! Strings: CouchDB uses ICU's root collation. This is a smaller, table-driven order that agrees
//! with it on ASCII text: case-insensitive first (`a < A < aa < b < B`), then lowercase before
//! uppercase, whitespace and punctuation before digits before letters, in ICU's order for
//! punctuation. Characters past ASCII sort after ASCII letters by code point of their lowercase
//! form (ICU would sort `é` with `e`; README lists the difference). Strings that collate equal at
//! both levels are ordered by code point, so only identical strings are equal.

use std::cmp::Ordering;

use serde_json::Value;

/// ASCII punctuation, symbols and whitespace in ICU root order: they sort before digits.
const PUNCTUATION: &[u8] = b"\t\n\x0b\x0c\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

/// The first-level weight of a character: never 0 (0 ends a string in a sort key).
fn primary(c: char) -> u32 {
    if c.is_ascii() {
        let b = c as u8;
        if let Some(i) = PUNCTUATION.iter().position(|p| *p == b) {
            return 1 + i as u32;
        }
        if b.is_ascii_digit() {
            return 0x40 + u32::from(b - b'0');
        }
        if b.is_ascii_alphabetic() {
            return 0x60 + u32::from(b.to_ascii_lowercase() - b'a');
        }
        // Other control characters: after punctuation, before digits.
        return 0x30;
    }
    let lower = c.to_lowercase().next().unwrap_or(c);
    0x100 + lower as u32
}

/// The third-level weight: lowercase (and caseless) before uppercase.
fn tertiary(c: char) -> u8 {
    if c.is_uppercase() {
        2
    } else {
        1
    }
}

/// Compares two strings in the ICU-like order.
pub fn cmp_str(a: &str, b: &str) -> Ordering {
    a.chars()
        .map(primary)
        .cmp(b.chars().map(primary))
        .then_with(|| a.chars().map(tertiary).cmp(b.chars().map(tertiary)))
        .then_with(|| a.cmp(b))
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 1,
        Value::Bool(false) => 2,
        Value::Bool(true) => 3,
        Value::Number(_) => 4,
        Value::String(_) => 5,
        Value::Array(_) => 6,
        Value::Object(_) => 7,
    }
}

fn number(v: &serde_json::Number) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// CouchDB's collation of two JSON values.
pub fn cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => zero_aware(number(x), number(y)),
        (Value::String(x), Value::String(y)) => cmp_str(x, y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = cmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((kp, vp), (kq, vq)) in x.iter().zip(y) {
                let o = cmp_str(kp, kq).then_with(|| cmp(vp, vq));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Numeric order, -0 equal to 0 (JSON has no NaN).
fn zero_aware(x: f64, y: f64) -> Ordering {
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

/// Appends a character weight as three bytes whose first is at least 1, so a 0 byte (the end
/// of a string) sorts before every weight.
fn push_weight(out: &mut Vec<u8>, w: u32) {
    out.push(((w >> 16) as u8).saturating_add(1));
    out.push((w >> 8) as u8);
    out.push(w as u8);
}

/// Appends `v`'s sort key: comparing two keys byte by byte gives [`cmp`]'s order.
pub fn sort_key(v: &Value, out: &mut Vec<u8>) {
    out.push(rank(v));
    match v {
        Value::Number(n) => {
            let mut x = number(n);
            if x == 0.0 {
                x = 0.0; // -0 and 0 are one key
            }
            let bits = x.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::String(s) => {
            for c in s.chars() {
                push_weight(out, primary(c));
            }
            out.push(0);
            out.extend(s.chars().map(tertiary));
            out.push(0);
            for c in s.chars() {
                push_weight(out, c as u32);
            }
            out.push(0);
        }
        Value::Array(items) => {
            for item in items {
                sort_key(item, out);
            }
            out.push(0);
        }
        Value::Object(map) => {
            for (k, item) in map {
                sort_key(&Value::String(k.clone()), out);
                sort_key(item, out);
            }
            out.push(0);
        }
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn couchdb_documented_order() {
        // CouchDB's collation specification, in order.
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(1),
            json!(2),
            json!(3.0),
            json!(4),
            json!("a"),
            json!("A"),
            json!("aa"),
            json!("b"),
            json!("B"),
            json!("ba"),
            json!("bb"),
            json!(["a"]),
            json!(["b"]),
            json!(["b", "c"]),
            json!(["b", "c", "a"]),
            json!(["b", "d"]),
            json!(["b", "d", "e"]),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"b": 1}),
            json!({"b": 2}),
            json!({"b": 2, "a": 1}),
            json!({"b": 2, "c": 2}),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(cmp(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(cmp(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(cmp(&json!(-0.0), &json!(0)), Ordering::Equal);
        assert_eq!(cmp_str("_x", "1"), Ordering::Less);
        assert_eq!(cmp_str("9", "a"), Ordering::Less);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-5i64..5).prop_map(|n| json!(n)),
            (-3.0f64..3.0).prop_map(|n| json!(n)),
            "[a-cA-C0-2 _é\u{0}]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[ab]{1,2}", inner), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The byte keys sort exactly as the comparison does.
        #[test]
        fn sort_keys_agree_with_cmp(a in json_value(), b in json_value()) {
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            sort_key(&a, &mut ka);
            sort_key(&b, &mut kb);
            prop_assert_eq!(ka.cmp(&kb), cmp(&a, &b), "{} vs {}", a, b);
        }

        /// A total order: antisymmetric and transitive.
        #[test]
        fn cmp_is_an_order(a in json_value(), b in json_value(), c in json_value()) {
            prop_assert_eq!(cmp(&a, &b), cmp(&b, &a).reverse());
            if cmp(&a, &b) != Ordering::Greater && cmp(&b, &c) != Ordering::Greater {
                prop_assert_ne!(cmp(&a, &c), Ordering::Greater);
            }
        }
    }
}
