//! CouchDB's built-in reduce functions, in Rust: `_count`, `_sum`, `_stats` and
//! `_approx_count_distinct`, with rereduce. A reduction is a [`Partial`]: the reduce of some rows,
//! which rereduce combines with others (how a view index keeps reductions of its ranges) and
//! [`Partial::finish`] turns into the value a query answers.
//!
//! Numbers: sums of integers stay integers (as in CouchDB, whose Erlang integers do not
//! overflow; here an overflow past `i64` continues in floating point); anything with a fraction
//! is summed as a double.

use serde_json::{json, Map, Number, Value};
use sha2::Digest;

use crate::couch::mango::collate::sort_key;
use crate::couch::{CouchError, ErrorKind, Result};

/// A built-in reducer by its design-document name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Count,
    Sum,
    Stats,
    ApproxCountDistinct,
}

impl Builtin {
    /// `"_count"` → [`Builtin::Count`], …; `None` for anything else (a JavaScript reducer).
    pub fn named(name: &str) -> Option<Builtin> {
        match name.trim() {
            "_count" => Some(Builtin::Count),
            "_sum" => Some(Builtin::Sum),
            "_stats" => Some(Builtin::Stats),
            "_approx_count_distinct" => Some(Builtin::ApproxCountDistinct),
            _ => None,
        }
    }

    /// Reduces map rows (`key`, `value`).
    pub fn reduce<'a>(
        self,
        rows: impl IntoIterator<Item = (&'a Value, &'a Value)>,
    ) -> Result<Partial> {
        match self {
            Builtin::Count => Ok(Partial::Count(rows.into_iter().count() as u64)),
            Builtin::Sum => {
                let mut acc = Value::from(0);
                for (_, v) in rows {
                    acc = sum(&acc, v)?;
                }
                Ok(Partial::Sum(acc))
            }
            Builtin::Stats => {
                let mut acc: Option<Value> = None;
                for (_, v) in rows {
                    let s = stats_of(v)?;
                    acc = Some(match acc {
                        None => s,
                        Some(a) => merge_stats(&a, &s)?,
                    });
                }
                Ok(Partial::Stats(acc.unwrap_or(Value::Null)))
            }
            Builtin::ApproxCountDistinct => {
                let mut h = Hll::default();
                for (k, _) in rows {
                    h.add(k);
                }
                Ok(Partial::Distinct(Box::new(h)))
            }
        }
    }
}

/// A reduction of some rows, to combine with others or finish.
#[derive(Debug, Clone, PartialEq)]
pub enum Partial {
    Count(u64),
    Sum(Value),
    /// `{sum, count, min, max, sumsqr}` (or an array of them), `null` for no rows.
    Stats(Value),
    Distinct(Box<Hll>),
}

impl Partial {
    /// Rereduce: the reduction of the rows of both.
    pub fn combine(&self, other: &Partial) -> Result<Partial> {
        match (self, other) {
            (Partial::Count(a), Partial::Count(b)) => Ok(Partial::Count(a.saturating_add(*b))),
            (Partial::Sum(a), Partial::Sum(b)) => Ok(Partial::Sum(sum(a, b)?)),
            (Partial::Stats(Value::Null), s @ Partial::Stats(_)) => Ok(s.clone()),
            (s @ Partial::Stats(_), Partial::Stats(Value::Null)) => Ok(s.clone()),
            (Partial::Stats(a), Partial::Stats(b)) => Ok(Partial::Stats(merge_stats(a, b)?)),
            (Partial::Distinct(a), Partial::Distinct(b)) => {
                let mut h = (**a).clone();
                h.merge(b);
                Ok(Partial::Distinct(Box::new(h)))
            }
            _ => Err(CouchError::internal("reductions of different reducers")),
        }
    }

    /// The value a query answers.
    pub fn finish(&self) -> Value {
        match self {
            Partial::Count(n) => json!(n),
            Partial::Sum(v) | Partial::Stats(v) => v.clone(),
            Partial::Distinct(h) => json!(h.estimate()),
        }
    }
}

fn reduce_error(reason: impl Into<String>) -> CouchError {
    CouchError::new(ErrorKind::BadRequest, "builtin_reduce_error", reason)
}

/// Adds two numbers: integers while both are and the sum fits, else doubles.
fn add_numbers(a: &Number, b: &Number) -> Value {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(s) = x.checked_add(y) {
            return Value::from(s);
        }
    }
    let s = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    Number::from_f64(s).map_or(Value::Null, Value::Number)
}

/// `_sum` of two values: numbers add; arrays add element by element (the longer's rest kept);
/// objects add key by key; a number and an array add the number to the array's first element,
/// as CouchDB does.
fn sum(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok(add_numbers(x, y)),
        (Value::Array(x), Value::Array(y)) => {
            let (long, short) = if x.len() >= y.len() { (x, y) } else { (y, x) };
            let mut out = Vec::with_capacity(long.len());
            for (i, item) in long.iter().enumerate() {
                out.push(match short.get(i) {
                    Some(other) => sum(item, other)?,
                    None => check_summable(item)?.clone(),
                });
            }
            Ok(Value::Array(out))
        }
        (Value::Number(_), Value::Array(xs)) | (Value::Array(xs), Value::Number(_)) => {
            let n = if a.is_number() { a } else { b };
            sum(&Value::Array(xs.clone()), &Value::Array(vec![n.clone()]))
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut out: Map<String, Value> = x.clone();
            for (k, v) in y {
                let merged = match out.get(k) {
                    Some(mine) => sum(mine, v)?,
                    None => check_summable(v)?.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Value::Number(n), Value::Object(_)) | (Value::Object(_), Value::Number(n))
            if n.as_f64() == Some(0.0) =>
        {
            // The starting zero of a sum of objects.
            Ok(if a.is_object() { a.clone() } else { b.clone() })
        }
        _ => Err(reduce_error(format!(
            "The _sum function requires that map values be numbers, arrays of numbers, or objects. Couldn't sum {b}"
        ))),
    }
}

fn check_summable(v: &Value) -> Result<&Value> {
    match v {
        Value::Number(_) => Ok(v),
        Value::Array(items) => {
            for i in items {
                check_summable(i)?;
            }
            Ok(v)
        }
        Value::Object(m) => {
            for i in m.values() {
                check_summable(i)?;
            }
            Ok(v)
        }
        _ => Err(reduce_error(format!(
            "The _sum function requires that map values be numbers, arrays of numbers, or objects. Couldn't sum {v}"
        ))),
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// The `_stats` of one map value: a number, an array of numbers, or stats already computed.
fn stats_of(v: &Value) -> Result<Value> {
    match v {
        Value::Number(n) => {
            // An integer's square stays an integer (as in CouchDB) while it fits.
            let sumsqr = match n.as_i64().and_then(|i| i.checked_mul(i)) {
                Some(sq) => Value::from(sq),
                None => {
                    let x = n.as_f64().unwrap_or(0.0);
                    Number::from_f64(x * x).map_or(Value::Null, Value::Number)
                }
            };
            Ok(json!({"sum": v, "count": 1, "min": v, "max": v, "sumsqr": sumsqr}))
        }
        Value::Array(items) => Ok(Value::Array(
            items.iter().map(stats_of).collect::<Result<_>>()?,
        )),
        Value::Object(m)
            if ["sum", "count", "min", "max", "sumsqr"]
                .iter()
                .all(|k| m.get(*k).is_some_and(Value::is_number)) =>
        {
            Ok(v.clone())
        }
        _ => Err(reduce_error(format!(
            "The _stats function requires that map values be numbers or arrays of numbers, not '{v}'"
        ))),
    }
}

fn merge_stats(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => Ok(Value::Array(
            x.iter()
                .zip(y)
                .map(|(p, q)| merge_stats(p, q))
                .collect::<Result<_>>()?,
        )),
        (Value::Object(x), Value::Object(y)) => {
            let pick = |k: &str, m: &Map<String, Value>| m.get(k).cloned().unwrap_or(json!(0));
            let min = |p: Value, q: Value| if num(&q) < num(&p) { q } else { p };
            let max = |p: Value, q: Value| if num(&q) > num(&p) { q } else { p };
            let add = |k: &str| match (pick(k, x), pick(k, y)) {
                (Value::Number(p), Value::Number(q)) => add_numbers(&p, &q),
                _ => json!(0),
            };
            Ok(json!({
                "sum": add("sum"),
                "count": add("count"),
                "min": min(pick("min", x), pick("min", y)),
                "max": max(pick("max", x), pick("max", y)),
                "sumsqr": add("sumsqr"),
            }))
        }
        _ => Err(reduce_error(
            "The _stats function requires values of one shape (numbers, or arrays of one length)",
        )),
    }
}

/// HyperLogLog with 2^11 registers (CouchDB's precision for `_approx_count_distinct`), over
/// each key's collation sort key, so keys equal by collation (`1`, `1.0`) count once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hll {
    registers: Vec<u8>,
}

const HLL_BITS: u32 = 11;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

impl Default for Hll {
    fn default() -> Self {
        Self {
            registers: vec![0; HLL_REGISTERS],
        }
    }
}

impl Hll {
    pub fn add(&mut self, key: &Value) {
        let mut bytes = Vec::new();
        sort_key(key, &mut bytes);
        let digest = sha2::Sha256::digest(&bytes);
        let mut h = [0u8; 8];
        h.copy_from_slice(&digest[..8]);
        let h = u64::from_be_bytes(h);
        let index = (h >> (64 - HLL_BITS)) as usize;
        let rest = h << HLL_BITS;
        let rank = (rest.leading_zeros().min(64 - HLL_BITS) + 1) as u8;
        if let Some(r) = self.registers.get_mut(index) {
            *r = (*r).max(rank);
        }
    }

    pub fn merge(&mut self, other: &Hll) {
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct keys (with the small-range correction).
    pub fn estimate(&self) -> u64 {
        let m = HLL_REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(b: Builtin, values: &[Value]) -> Result<Value> {
        let key = Value::Null;
        Ok(b.reduce(values.iter().map(|v| (&key, v)))?.finish())
    }

    #[test]
    fn count_sum_stats_as_couchdb() {
        assert_eq!(
            run(Builtin::Count, &[json!(1), json!("x")]).unwrap(),
            json!(2)
        );
        assert_eq!(
            run(Builtin::Sum, &[json!(1), json!(2), json!(3)]).unwrap(),
            json!(6)
        );
        assert_eq!(
            run(Builtin::Sum, &[json!(1), json!(0.5)]).unwrap(),
            json!(1.5)
        );
        assert_eq!(
            run(Builtin::Sum, &[json!([1, 2]), json!([10, 20, 30])]).unwrap(),
            json!([11, 22, 30])
        );
        assert_eq!(
            run(
                Builtin::Sum,
                &[json!({"a": 1, "b": [1]}), json!({"a": 2, "c": 5})]
            )
            .unwrap(),
            json!({"a": 3, "b": [1], "c": 5})
        );
        assert_eq!(
            run(Builtin::Sum, &[json!(i64::MAX), json!(1)]).unwrap(),
            json!(9223372036854775808.0)
        );
        let e = run(Builtin::Sum, &[json!(1), json!("x")]).unwrap_err();
        assert_eq!(e.error, "builtin_reduce_error");
        assert_eq!(
            run(Builtin::Stats, &[json!(2), json!(4), json!(-1)]).unwrap(),
            json!({"sum": 5, "count": 3, "min": -1, "max": 4, "sumsqr": 21})
        );
        assert_eq!(
            run(Builtin::Stats, &[json!([1, 2]), json!([3, 4])]).unwrap(),
            json!([
                {"sum": 4, "count": 2, "min": 1, "max": 3, "sumsqr": 10},
                {"sum": 6, "count": 2, "min": 2, "max": 4, "sumsqr": 20}
            ])
        );
        assert!(run(Builtin::Stats, &[json!("x")]).is_err());
        assert_eq!(Builtin::named(" _sum "), Some(Builtin::Sum));
        assert_eq!(Builtin::named("function(k, v) {}"), None);
    }

    #[test]
    fn rereduce_equals_reduce_of_everything() {
        let values: Vec<Value> = (0..100).map(|i| json!(i % 7)).collect();
        let keys: Vec<Value> = (0..100).map(|i| json!(i % 37)).collect();
        for b in [
            Builtin::Count,
            Builtin::Sum,
            Builtin::Stats,
            Builtin::ApproxCountDistinct,
        ] {
            let whole = b.reduce(keys.iter().zip(&values)).unwrap();
            let (k1, k2) = keys.split_at(40);
            let (v1, v2) = values.split_at(40);
            let left = b.reduce(k1.iter().zip(v1)).unwrap();
            let right = b.reduce(k2.iter().zip(v2)).unwrap();
            assert_eq!(
                left.combine(&right).unwrap().finish(),
                whole.finish(),
                "{b:?}"
            );
        }
    }

    #[test]
    fn approx_count_distinct_is_close() {
        for n in [10u64, 1_000, 50_000] {
            let keys: Vec<Value> = (0..n).map(|i| json!(format!("k{i}"))).collect();
            // Every key twice, one of them as a number equal by collation where it can be.
            let mut rows: Vec<(Value, Value)> =
                keys.iter().map(|k| (k.clone(), Value::Null)).collect();
            rows.extend(keys.iter().map(|k| (k.clone(), Value::Null)));
            rows.push((json!(1), Value::Null));
            rows.push((json!(1.0), Value::Null));
            let est = Builtin::ApproxCountDistinct
                .reduce(rows.iter().map(|(k, v)| (k, v)))
                .unwrap()
                .finish()
                .as_u64()
                .unwrap();
            let want = n + 1;
            let err = (est as f64 - want as f64).abs() / want as f64;
            assert!(err < 0.05, "{n}: estimated {est}");
        }
    }
}
