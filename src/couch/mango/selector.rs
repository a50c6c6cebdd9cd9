//! Mango selectors: parsed and normalized as CouchDB's `mango_selector` does, then matched
//! against documents.
//!
//! Normalization: several keys in one object are an `$and`; a bare value is `$eq`; nested
//! objects without operators name nested fields (`{"a": {"b": 1}}` is `a.b = 1`); field-level
//! `$and`/`$or`/`$not`/`$nor` are lifted above the field; `$not` and `$nor` are pushed down to
//! the conditions (De Morgan, `$not $gt` is `$lte`, `$not $in` is `$nin`, …). A condition on a
//! field the document does not have is false, except `$exists: false` — so `{"a": {"$ne": 1}}`
//! does not match a document without `a`, as in CouchDB.

use std::cmp::Ordering;

use regex::Regex;
use serde_json::{Map, Value};

use super::collate::cmp;
use crate::couch::limits::{self, ListKind};
use crate::couch::{CouchError, ErrorKind, Result};

/// The most bytes a `$regex` may compile to (the regex crate matches in linear time; this bounds
/// its memory).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A field path: `a.b` is `["a", "b"]`; `a\.b` is one field `a.b`.
pub type Path = Vec<String>;

/// A normalized selector.
#[derive(Debug, Clone)]
pub struct Selector {
    root: Node,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Matches everything (`{}`).
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    /// A condition on the value at a path (the empty path is the value itself, inside
    /// `$elemMatch` and friends).
    Field(Path, Cond),
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Cmp(CmpOp, Value),
    Exists(bool),
    Type(String),
    In(Vec<Value>),
    Nin(Vec<Value>),
    All(Vec<Value>),
    Size(u64),
    Mod(i64, i64),
    Regex(Regex),
    BeginsWith(String),
    ElemMatch(Box<Node>),
    AllMatch(Box<Node>),
    KeyMapMatch(Box<Node>),
    /// A negated condition that has no positive form (`$not` of `$regex`, `$size`, …).
    Not(Box<Cond>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Lt,
    Lte,
    Eq,
    Ne,
    Gte,
    Gt,
}

impl CmpOp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Lte => o != Ordering::Greater,
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Gte => o != Ordering::Less,
            CmpOp::Gt => o == Ordering::Greater,
        }
    }
    fn negated(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gte,
            CmpOp::Lte => CmpOp::Gt,
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Gte => CmpOp::Lt,
            CmpOp::Gt => CmpOp::Lte,
        }
    }
}

fn bad_arg(op: &str, arg: &Value) -> CouchError {
    CouchError::new(
        ErrorKind::BadRequest,
        "bad_arg",
        format!("Bad argument for operator {op}: {arg}"),
    )
}

fn invalid_operator(op: &str) -> CouchError {
    CouchError::new(
        ErrorKind::BadRequest,
        "invalid_operator",
        format!("Invalid operator: {op}"),
    )
}

/// `a.b\.c` → `["a", "b.c"]`.
pub fn parse_path(field: &str) -> Path {
    let mut parts = vec![String::new()];
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                if let Some(p) = parts.last_mut() {
                    p.push('.');
                }
            }
            '.' => parts.push(String::new()),
            c => {
                if let Some(p) = parts.last_mut() {
                    p.push(c);
                }
            }
        }
    }
    parts
}

/// The value at `path` in `v`: `None` when a step is missing or goes through a scalar. Arrays
/// take numeric steps.
pub fn get_path<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut at = v;
    for step in path {
        at = match at {
            Value::Object(m) => m.get(step)?,
            Value::Array(items) => items.get(step.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

impl Selector {
    /// Parses and normalizes a selector; the errors are CouchDB's (`invalid_operator`,
    /// `bad_arg`, `invalid_selector`).
    pub fn parse(v: &Value) -> Result<Selector> {
        let Value::Object(_) = v else {
            return Err(CouchError::new(
                ErrorKind::BadRequest,
                "invalid_selector",
                "Selector must be a JSON object",
            ));
        };
        limits::check(ListKind::SelectorTerms, terms(v))?;
        let root = parse(v, &[])?;
        if has_empty_field(&root) {
            return Err(CouchError::new(
                ErrorKind::BadRequest,
                "invalid_selector",
                "One or more conditions is missing a field name.",
            ));
        }
        Ok(Selector { root })
    }

    /// The selector matching every document.
    pub fn all() -> Selector {
        Selector { root: Node::All }
    }

    pub fn matches(&self, doc: &Value) -> bool {
        node_matches(&self.root, doc)
    }
}

/// How many JSON values a selector holds (keys count with their values).
fn terms(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(terms).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(terms).sum::<usize>(),
        _ => 1,
    }
}

/// Whether a top-level condition has no field (`{"$gt": 1}`): CouchDB refuses those.
fn has_empty_field(n: &Node) -> bool {
    match n {
        Node::All => false,
        Node::And(xs) | Node::Or(xs) => xs.iter().any(has_empty_field),
        Node::Field(p, _) => p.is_empty(),
    }
}

fn parse(v: &Value, path: &[String]) -> Result<Node> {
    let Value::Object(map) = v else {
        return Ok(Node::Field(path.to_vec(), Cond::Cmp(CmpOp::Eq, v.clone())));
    };
    match map.len() {
        0 if path.is_empty() => Ok(Node::All),
        0 => Ok(Node::Field(path.to_vec(), Cond::Cmp(CmpOp::Eq, v.clone()))),
        1 => {
            let (k, arg) = map.iter().next().expect("one entry");
            parse_entry(k, arg, path)
        }
        _ => Ok(Node::And(
            map.iter()
                .map(|(k, arg)| parse_entry(k, arg, path))
                .collect::<Result<_>>()?,
        )),
    }
}

fn list<'a>(op: &str, arg: &'a Value) -> Result<&'a Vec<Value>> {
    arg.as_array().ok_or_else(|| bad_arg(op, arg))
}

fn sub_selector(op: &str, arg: &Value) -> Result<Box<Node>> {
    match arg {
        Value::Object(_) => Ok(Box::new(parse(arg, &[])?)),
        _ => Err(bad_arg(op, arg)),
    }
}

fn parse_entry(k: &str, arg: &Value, path: &[String]) -> Result<Node> {
    let field = |c: Cond| Ok(Node::Field(path.to_vec(), c));
    let cmp_op = |op| field(Cond::Cmp(op, arg.clone()));
    match k {
        "$and" | "$or" | "$nor" => {
            let parts = list(k, arg)?
                .iter()
                .map(|a| parse(a, path))
                .collect::<Result<Vec<_>>>()?;
            Ok(match k {
                "$and" => Node::And(parts),
                "$or" => Node::Or(parts),
                _ => Node::And(parts.into_iter().map(negate).collect()),
            })
        }
        "$not" => match arg {
            Value::Object(_) => Ok(negate(parse(arg, path)?)),
            _ => Err(bad_arg(k, arg)),
        },
        "$eq" => cmp_op(CmpOp::Eq),
        "$ne" => cmp_op(CmpOp::Ne),
        "$lt" => cmp_op(CmpOp::Lt),
        "$lte" => cmp_op(CmpOp::Lte),
        "$gt" => cmp_op(CmpOp::Gt),
        "$gte" => cmp_op(CmpOp::Gte),
        "$in" => field(Cond::In(list(k, arg)?.clone())),
        "$nin" => field(Cond::Nin(list(k, arg)?.clone())),
        "$all" => field(Cond::All(list(k, arg)?.clone())),
        "$exists" => field(Cond::Exists(arg.as_bool().ok_or_else(|| bad_arg(k, arg))?)),
        "$type" => field(Cond::Type(
            arg.as_str().ok_or_else(|| bad_arg(k, arg))?.to_owned(),
        )),
        "$size" => field(Cond::Size(arg.as_u64().ok_or_else(|| bad_arg(k, arg))?)),
        "$mod" => {
            let pair = list(k, arg)?;
            match (pair.as_slice(), pair.first().and_then(Value::as_i64)) {
                ([d, r], Some(div)) if div != 0 && r.is_i64() => {
                    field(Cond::Mod(div, r.as_i64().unwrap_or_default()))
                }
                _ => Err(bad_arg(k, arg)),
            }
        }
        "$regex" => {
            let pattern = arg.as_str().ok_or_else(|| bad_arg(k, arg))?;
            let re = regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|_| bad_arg(k, arg))?;
            field(Cond::Regex(re))
        }
        "$beginsWith" => field(Cond::BeginsWith(
            arg.as_str().ok_or_else(|| bad_arg(k, arg))?.to_owned(),
        )),
        "$elemMatch" => field(Cond::ElemMatch(sub_selector(k, arg)?)),
        "$allMatch" => field(Cond::AllMatch(sub_selector(k, arg)?)),
        "$keyMapMatch" => field(Cond::KeyMapMatch(sub_selector(k, arg)?)),
        op if op.starts_with('$') => Err(invalid_operator(op)),
        name => {
            let mut deeper = path.to_vec();
            deeper.extend(parse_path(name));
            parse(arg, &deeper)
        }
    }
}

/// `$not` pushed down to the conditions, as CouchDB's `norm_negations` does.
fn negate(n: Node) -> Node {
    match n {
        Node::All => Node::Or(Vec::new()),
        Node::And(xs) => Node::Or(xs.into_iter().map(negate).collect()),
        Node::Or(xs) => Node::And(xs.into_iter().map(negate).collect()),
        Node::Field(p, c) => Node::Field(p, negate_cond(c)),
    }
}

fn negate_cond(c: Cond) -> Cond {
    match c {
        Cond::Cmp(op, v) => Cond::Cmp(op.negated(), v),
        Cond::In(v) => Cond::Nin(v),
        Cond::Nin(v) => Cond::In(v),
        Cond::Exists(b) => Cond::Exists(!b),
        Cond::Not(inner) => *inner,
        other => Cond::Not(Box::new(other)),
    }
}

fn node_matches(n: &Node, v: &Value) -> bool {
    match n {
        Node::All => true,
        Node::And(xs) => xs.iter().all(|x| node_matches(x, v)),
        Node::Or(xs) => xs.iter().any(|x| node_matches(x, v)),
        Node::Field(path, cond) => match get_path(v, path) {
            None => matches!(cond, Cond::Exists(false)),
            // `_id` compares as raw bytes in CouchDB, not by collation.
            Some(x) if path.len() == 1 && path[0] == "_id" => cond_matches(cond, x, raw_cmp),
            Some(x) => cond_matches(cond, x, cmp),
        },
    }
}

fn raw_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => cmp(a, b),
    }
}

type Cmp = fn(&Value, &Value) -> Ordering;

fn cond_matches(c: &Cond, v: &Value, order: Cmp) -> bool {
    let equal = |a: &Value, b: &Value| order(a, b) == Ordering::Equal;
    match c {
        Cond::Cmp(op, arg) => op.holds(order(v, arg)),
        Cond::Exists(should) => *should,
        Cond::Type(t) => type_name(v) == t,
        Cond::In(args) => in_list(v, args, equal),
        Cond::Nin(args) => match v {
            Value::Array(_) => !in_list(v, args, equal),
            _ => args.iter().all(|a| !equal(v, a)),
        },
        Cond::All(args) => match v {
            Value::Array(items) => {
                let has_all = args.iter().all(|a| items.iter().any(|i| equal(i, a)));
                let is_args = matches!(args.as_slice(), [Value::Array(only)] if only == items);
                has_all || is_args
            }
            _ => false,
        },
        Cond::Size(n) => matches!(v, Value::Array(items) if items.len() as u64 == *n),
        Cond::Mod(d, r) => match v.as_i64() {
            Some(x) if v.is_i64() || v.is_u64() => x.checked_rem(*d) == Some(*r),
            _ => false,
        },
        Cond::Regex(re) => matches!(v, Value::String(s) if re.is_match(s)),
        Cond::BeginsWith(prefix) => matches!(v, Value::String(s) if s.starts_with(prefix.as_str())),
        Cond::ElemMatch(sub) => {
            matches!(v, Value::Array(items) if items.iter().any(|i| node_matches(sub, i)))
        }
        Cond::AllMatch(sub) => matches!(v, Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| node_matches(sub, i))),
        Cond::KeyMapMatch(sub) => matches!(v, Value::Object(m)
            if m.keys().any(|k| node_matches(sub, &Value::String(k.clone())))),
        Cond::Not(inner) => !cond_matches(inner, v, order),
    }
}

/// `$in`: an array matches when any element equals any argument; another value when it equals
/// one.
fn in_list(v: &Value, args: &[Value], equal: impl Fn(&Value, &Value) -> bool) -> bool {
    match v {
        Value::Array(items) => args.iter().any(|a| items.iter().any(|i| equal(i, a))),
        _ => args.iter().any(|a| equal(v, a)),
    }
}

/// `$type`'s names.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What the selector says about one field for every match: the bounds an index range read can
/// use (conditions on the field in the top-level `$and`).
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldRange {
    pub low: Option<(Value, bool)>,
    pub high: Option<(Value, bool)>,
}

impl Selector {
    /// The range of `field`'s values any match must have, from the top-level conjunction.
    pub(crate) fn range_of(&self, field: &[String]) -> FieldRange {
        let mut range = FieldRange::default();
        fn conjuncts<'a>(n: &'a Node, out: &mut Vec<&'a Node>) {
            match n {
                Node::And(xs) => xs.iter().for_each(|x| conjuncts(x, out)),
                other => out.push(other),
            }
        }
        let mut all = Vec::new();
        conjuncts(&self.root, &mut all);
        for n in all {
            let Node::Field(p, Cond::Cmp(op, v)) = n else {
                continue;
            };
            if p.as_slice() != field {
                continue;
            }
            // Keep the tighter bound of several.
            let tighten = |cur: &mut Option<(Value, bool)>, new: (Value, bool), want: Ordering| {
                let replace = match cur {
                    None => true,
                    Some((c, inc)) => {
                        let o = cmp(&new.0, c);
                        o == want || (o == Ordering::Equal && *inc && !new.1)
                    }
                };
                if replace {
                    *cur = Some(new);
                }
            };
            match op {
                CmpOp::Eq => {
                    tighten(&mut range.low, (v.clone(), true), Ordering::Greater);
                    tighten(&mut range.high, (v.clone(), true), Ordering::Less);
                }
                CmpOp::Gt => tighten(&mut range.low, (v.clone(), false), Ordering::Greater),
                CmpOp::Gte => tighten(&mut range.low, (v.clone(), true), Ordering::Greater),
                CmpOp::Lt => tighten(&mut range.high, (v.clone(), false), Ordering::Less),
                CmpOp::Lte => tighten(&mut range.high, (v.clone(), true), Ordering::Less),
                CmpOp::Ne => {}
            }
        }
        range
    }

    /// Whether the selector pins `field` to one value (`$eq`).
    pub(crate) fn pins(&self, field: &[String]) -> bool {
        let r = self.range_of(field);
        match (&r.low, &r.high) {
            (Some((l, true)), Some((h, true))) => cmp(l, h) == Ordering::Equal,
            _ => false,
        }
    }

    /// Whether every match has every one of `fields` (CouchDB's `has_required_fields`): only
    /// then can a json index, which holds documents with all its fields, answer the query.
    pub(crate) fn requires(&self, fields: &[Path]) -> bool {
        let mut left: Vec<&Path> = fields.iter().collect();
        fn visit(n: &Node, left: &mut Vec<&Path>) {
            match n {
                Node::And(xs) => xs.iter().for_each(|x| visit(x, left)),
                Node::Or(xs) if !xs.is_empty() => {
                    // Seen through when every branch requires the same field.
                    left.retain(|f| {
                        !xs.iter().all(|x| {
                            let mut one = vec![*f];
                            visit(x, &mut one);
                            one.is_empty()
                        })
                    });
                }
                Node::Field(p, c) if !matches!(c, Cond::Exists(false)) => left.retain(|f| *f != p),
                _ => {}
            }
        }
        visit(&self.root, &mut left);
        left.is_empty()
    }
}

/// Keeps only `fields` of a document (each a path), in the order they are asked for; missing
/// ones are left out, as CouchDB does.
pub fn project(doc: &Value, fields: &[Path]) -> Value {
    let mut out = Map::new();
    for path in fields {
        let Some(v) = get_path(doc, path) else {
            continue;
        };
        let mut at = &mut out;
        for (i, step) in path.iter().enumerate() {
            if i + 1 == path.len() {
                at.insert(step.clone(), v.clone());
            } else {
                let next = at
                    .entry(step.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !next.is_object() {
                    *next = Value::Object(Map::new());
                }
                let Value::Object(m) = next else { break };
                at = m;
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(sel: Value, doc: Value) -> bool {
        Selector::parse(&sel).unwrap().matches(&doc)
    }

    #[test]
    fn operators() {
        let doc = json!({"_id": "x", "a": 5, "s": "Hello", "t": ["x", "y", 3], "o": {"b.c": 1, "d": {"e": null}}});
        assert!(m(json!({"a": 5}), doc.clone()));
        assert!(m(json!({"a": 5.0}), doc.clone()));
        assert!(m(json!({"a": {"$gt": 4, "$lte": 5}}), doc.clone()));
        assert!(!m(json!({"a": {"$gt": 5}}), doc.clone()));
        assert!(
            m(json!({"a": {"$lt": "a"}}), doc.clone()),
            "numbers sort before strings"
        );
        assert!(m(json!({"a": {"$in": [1, 5]}}), doc.clone()));
        assert!(m(json!({"t": {"$in": ["y"]}}), doc.clone()));
        assert!(!m(json!({"t": {"$nin": ["y"]}}), doc.clone()));
        assert!(m(json!({"t": {"$all": ["y", 3]}}), doc.clone()));
        assert!(m(json!({"t": {"$size": 3}}), doc.clone()));
        assert!(m(json!({"t": {"$elemMatch": {"$eq": 3}}}), doc.clone()));
        assert!(!m(
            json!({"t": {"$allMatch": {"$type": "string"}}}),
            doc.clone()
        ));
        assert!(m(json!({"a": {"$mod": [2, 1]}}), doc.clone()));
        assert!(m(json!({"s": {"$regex": "^H.l+o$"}}), doc.clone()));
        assert!(m(json!({"s": {"$beginsWith": "He"}}), doc.clone()));
        assert!(m(json!({"o.b\\.c": 1}), doc.clone()));
        assert!(m(json!({"o": {"d": {"e": null}}}), doc.clone()));
        assert!(m(json!({"o.d.e": {"$type": "null"}}), doc.clone()));
        assert!(m(json!({"o": {"$keyMapMatch": {"$eq": "d"}}}), doc.clone()));
        assert!(m(json!({"t.1": "y"}), doc.clone()));
        assert!(m(json!({"$or": [{"a": 1}, {"s": "Hello"}]}), doc.clone()));
        assert!(m(json!({"$nor": [{"a": 1}, {"s": "x"}]}), doc.clone()));
        assert!(m(json!({"a": {"$not": {"$eq": 4}}}), doc.clone()));
        // A condition on a missing field is false, except $exists: false.
        assert!(!m(json!({"zz": {"$ne": 1}}), doc.clone()));
        assert!(!m(json!({"$not": {"zz": 1}}), doc.clone()));
        assert!(m(json!({"zz": {"$exists": false}}), doc.clone()));
        assert!(m(json!({"zz": {"$not": {"$exists": true}}}), doc.clone()));
        assert!(!m(json!({"zz": {"$not": {"$size": 1}}}), doc.clone()));
        assert!(m(json!({}), doc.clone()));
        // _id compares bytes: "Z" < "a" there, while collation puts "a" first.
        assert!(m(json!({"_id": {"$gt": "Z"}}), doc.clone()));
        assert!(!m(json!({"s": {"$lt": "a"}}), json!({"s": "Z"})));
    }

    #[test]
    fn errors_are_couchdbs() {
        for (sel, error) in [
            (json!({"a": {"$foo": 1}}), "invalid_operator"),
            (json!({"a": {"$in": 1}}), "bad_arg"),
            (json!({"a": {"$mod": [0, 1]}}), "bad_arg"),
            (json!({"a": {"$regex": "("}}), "bad_arg"),
            (json!({"a": {"$size": -1}}), "bad_arg"),
            (json!({"$gt": 1}), "invalid_selector"),
            (json!("foo"), "invalid_selector"),
            (json!({"a": {"$in": vec![1; 10_000]}}), "too_large"),
        ] {
            assert_eq!(Selector::parse(&sel).unwrap_err().error, error, "{sel}");
        }
    }

    #[test]
    fn required_fields_and_ranges() {
        let s = Selector::parse(&json!({"a": {"$gt": 1, "$lt": 9}, "b": {"$exists": false}, "$or": [{"c": 1}, {"c": 2}]})).unwrap();
        assert!(s.requires(&[vec!["a".into()], vec!["c".into()]]));
        assert!(!s.requires(&[vec!["b".into()]]));
        let r = s.range_of(&["a".to_owned()]);
        assert_eq!(r.low, Some((json!(1), false)));
        assert_eq!(r.high, Some((json!(9), false)));
    }

    #[test]
    fn projection_keeps_the_asked_order() {
        let doc = json!({"_id": "x", "a": {"b": 1, "c": 2}, "z": 3});
        let out = project(
            &doc,
            &[
                vec!["z".into()],
                vec!["a".into(), "c".into()],
                vec!["q".into()],
            ],
        );
        assert_eq!(out.to_string(), r#"{"z":3,"a":{"c":2}}"#);
    }
}

/// The selector language checked against a reference evaluator written from CouchDB's
/// documentation: it reads the selector as given (no normalization: `$not` is "does not
/// match", `$nor` "none matches", several keys "all hold"). On documents that have every field a
/// selector names, CouchDB's normalized matching must agree with it exactly.
#[cfg(test)]
mod reference {
    use super::*;
    use crate::couch::mango::collate::cmp;
    use proptest::prelude::*;
    use serde_json::json;

    fn eq(a: &Value, b: &Value) -> bool {
        cmp(a, b) == Ordering::Equal
    }

    fn reference(sel: &Value, doc: &Value) -> bool {
        sel.as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| match k.as_str() {
                "$and" => v.as_array().unwrap().iter().all(|s| reference(s, doc)),
                "$or" => v.as_array().unwrap().iter().any(|s| reference(s, doc)),
                "$nor" => !v.as_array().unwrap().iter().any(|s| reference(s, doc)),
                "$not" => !reference(v, doc),
                field => condition(v, &doc[field]),
            })
    }

    fn condition(c: &Value, v: &Value) -> bool {
        let ops = match c.as_object() {
            Some(m) if m.keys().all(|k| k.starts_with('$')) => m,
            _ => return eq(v, c),
        };
        ops.iter().all(|(op, arg)| {
            let list = || arg.as_array().unwrap();
            let member = |x: &Value| list().iter().any(|a| eq(x, a));
            match op.as_str() {
                "$eq" => eq(v, arg),
                "$ne" => !eq(v, arg),
                "$gt" => cmp(v, arg) == Ordering::Greater,
                "$gte" => cmp(v, arg) != Ordering::Less,
                "$lt" => cmp(v, arg) == Ordering::Less,
                "$lte" => cmp(v, arg) != Ordering::Greater,
                "$exists" => arg.as_bool().unwrap(),
                "$type" => type_name(v) == arg.as_str().unwrap(),
                // "The document field must exist in the list provided"; an array field: one of
                // its elements.
                "$in" => match v {
                    Value::Array(items) => items.iter().any(member),
                    _ => member(v),
                },
                "$nin" => !condition(&json!({"$in": arg}), v),
                "$size" => v
                    .as_array()
                    .is_some_and(|a| a.len() as u64 == arg.as_u64().unwrap()),
                "$mod" => match (v.as_i64(), list()[0].as_i64(), list()[1].as_i64()) {
                    (Some(x), Some(d), Some(r)) => x % d == r,
                    _ => false,
                },
                "$all" => v
                    .as_array()
                    .is_some_and(|items| list().iter().all(|a| items.iter().any(|i| eq(i, a)))),
                "$elemMatch" => v
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| element(arg, i))),
                "$allMatch" => v.as_array().is_some_and(|items| {
                    !items.is_empty() && items.iter().all(|i| element(arg, i))
                }),
                "$not" => !condition(arg, v),
                other => panic!("the generator made {other}"),
            }
        })
    }

    /// A sub-selector on an array element: operators on the element itself, or fields of it.
    fn element(sub: &Value, item: &Value) -> bool {
        let on_itself = sub.as_object().unwrap().keys().all(|k| k.starts_with('$'));
        if on_itself {
            condition(sub, item)
        } else {
            item.is_object() && reference(sub, item)
        }
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-3i64..4).prop_map(|n| json!(n)),
            Just(json!(1.5)),
            prop_oneof![Just("x"), Just("y"), Just("")].prop_map(|s| json!(s)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(Value::Null),
        ]
    }

    fn doc() -> impl Strategy<Value = Value> {
        (
            scalar(),
            scalar(),
            proptest::collection::vec(-2i64..3, 0..4),
            proptest::collection::vec((-2i64..3).prop_map(|k| json!({"k": k})), 0..3),
        )
            .prop_map(|(a, b, arr, objs)| json!({"a": a, "b": b, "arr": arr, "objs": objs}))
    }

    fn cond() -> impl Strategy<Value = Value> {
        let cmp_op = prop_oneof![
            Just("$eq"),
            Just("$ne"),
            Just("$gt"),
            Just("$gte"),
            Just("$lt"),
            Just("$lte")
        ];
        let leaf = prop_oneof![
            scalar().prop_filter("a bare object is fields", |v| !v.is_object()),
            (cmp_op, scalar()).prop_map(|(op, v)| json!({ op: v })),
            proptest::collection::vec(scalar(), 1..3).prop_map(|l| json!({"$in": l})),
            proptest::collection::vec(scalar(), 1..3).prop_map(|l| json!({"$nin": l})),
            any::<bool>().prop_map(|b| json!({"$exists": b})),
            prop_oneof![Just("null"), Just("number"), Just("string"), Just("array")]
                .prop_map(|t| json!({"$type": t})),
        ];
        leaf.prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                inner
                    .clone()
                    .prop_filter("$not takes operators", Value::is_object)
                    .prop_map(|c| json!({"$not": c})),
                (inner.clone(), inner).prop_map(|(x, y)| {
                    // Two operators on one field (an implicit `$and`), when both are objects.
                    match (x, y) {
                        (Value::Object(mut p), Value::Object(q)) => {
                            p.extend(q);
                            Value::Object(p)
                        }
                        (x, _) => x,
                    }
                }),
            ]
        })
    }

    fn array_cond() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0u64..4).prop_map(|n| json!({"arr": {"$size": n}})),
            (-2i64..3).prop_map(|n| json!({"arr": {"$all": [n]}})),
            (-2i64..3).prop_map(|n| json!({"arr": {"$elemMatch": {"$gt": n}}})),
            (-2i64..3).prop_map(|n| json!({"arr": {"$allMatch": {"$lte": n}}})),
            (-2i64..3).prop_map(|n| json!({"objs": {"$elemMatch": {"k": n}}})),
            (2i64..4, 0i64..2).prop_map(|(d, r)| json!({"a": {"$mod": [d, r]}})),
        ]
    }

    fn selector() -> impl Strategy<Value = Value> {
        let field = prop_oneof![Just("a"), Just("b")];
        let leaf = prop_oneof![
            3 => (field, cond()).prop_map(|(f, c)| json!({ f: c })),
            1 => array_cond(),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            let list = proptest::collection::vec(inner.clone(), 1..3);
            prop_oneof![
                list.clone().prop_map(|l| json!({"$and": l})),
                list.clone().prop_map(|l| json!({"$or": l})),
                list.prop_map(|l| json!({"$nor": l})),
                inner.prop_map(|s| json!({"$not": s})),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn normalized_matching_agrees_with_the_reference(sel in selector(), doc in doc()) {
            let parsed = Selector::parse(&sel).unwrap();
            prop_assert_eq!(parsed.matches(&doc), reference(&sel, &doc), "{} on {}", sel, doc);
        }
    }
}
