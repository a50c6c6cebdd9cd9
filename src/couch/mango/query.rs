//! `_find` requests, json index definitions (kept in design documents with `"language":
//! "query"`, as CouchDB keeps them, so they replicate), and the choice of index for a query.

use serde_json::{json, Map, Value};
use sha2::Digest;

use super::collate::sort_key;
use super::selector::{get_path, parse_path, Path, Selector};
use crate::couch::limits::{self, ListKind};
use crate::couch::{CouchError, ErrorKind, Result};

/// CouchDB's default `limit` of `_find`.
pub const DEFAULT_LIMIT: usize = 25;

/// The most bytes of an index key taken from a document's field values: longer keys are cut
/// (every candidate is checked against the whole selector, so a cut key never changes which
/// documents match; documents whose keys agree on these bytes sort among themselves by id).
pub const MAX_INDEX_KEY_BYTES: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

/// A parsed `POST /{db}/_find` (and `_explain`) body.
#[derive(Debug, Clone)]
pub struct FindRequest {
    pub selector: Selector,
    pub selector_json: Value,
    pub fields: Option<Vec<Path>>,
    pub fields_json: Option<Value>,
    /// The sort fields, all in one direction (CouchDB allows no mix).
    pub sort: Vec<Path>,
    pub sort_json: Vec<Value>,
    pub dir: SortDir,
    pub limit: usize,
    pub skip: usize,
    pub bookmark: Option<Vec<u8>>,
    /// `[ddoc]` or `[ddoc, name]`.
    pub use_index: Option<(String, Option<String>)>,
    pub conflicts: bool,
    /// `update: false`: answer from the index as it is.
    pub update: bool,
    pub execution_stats: bool,
}

fn bad(reason: impl Into<String>) -> CouchError {
    CouchError::bad_request(reason)
}

fn invalid(field: &str, why: &str) -> CouchError {
    CouchError::new(
        ErrorKind::BadRequest,
        "bad_request",
        format!("Invalid value for {field}: {why}"),
    )
}

/// `"a"` or `{"a": "asc"}` of a sort or index field list.
fn sort_field(v: &Value) -> Result<(String, SortDir)> {
    match v {
        Value::String(s) => Ok((s.clone(), SortDir::Asc)),
        Value::Object(m) if m.len() == 1 => {
            let (k, d) = m.iter().next().expect("one entry");
            match d.as_str() {
                Some("asc") => Ok((k.clone(), SortDir::Asc)),
                Some("desc") => Ok((k.clone(), SortDir::Desc)),
                _ => Err(bad(format!("Invalid sort direction for field {k}"))),
            }
        }
        _ => Err(bad(
            "Invalid sort field: each must be a name or {name: \"asc\"|\"desc\"}",
        )),
    }
}

fn count(v: &Value, field: &str) -> Result<usize> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| invalid(field, "must be a non-negative integer"))
}

impl FindRequest {
    pub fn parse(body: &Value) -> Result<FindRequest> {
        let Value::Object(map) = body else {
            return Err(bad("Request body must be a JSON object"));
        };
        for k in map.keys() {
            if !matches!(
                k.as_str(),
                "selector"
                    | "limit"
                    | "skip"
                    | "sort"
                    | "fields"
                    | "use_index"
                    | "r"
                    | "conflicts"
                    | "bookmark"
                    | "update"
                    | "stable"
                    | "stale"
                    | "execution_stats"
                    | "allow_fallback"
            ) {
                return Err(bad(format!("Invalid key {k} for find request")));
            }
        }
        let selector_json = map
            .get("selector")
            .cloned()
            .ok_or_else(|| bad("Missing required key: selector"))?;
        let selector = Selector::parse(&selector_json)?;
        let fields_json = map.get("fields").cloned();
        if let Some(Value::Array(fs)) = &fields_json {
            limits::check(ListKind::FindFields, fs.len())?;
        }
        let fields = match &fields_json {
            None => None,
            Some(Value::Array(fs)) => Some(
                fs.iter()
                    .map(|f| {
                        f.as_str()
                            .map(parse_path)
                            .ok_or_else(|| invalid("fields", "each field must be a string"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(_) => return Err(invalid("fields", "must be an array of field names")),
        };
        let mut sort = Vec::new();
        let mut sort_json = Vec::new();
        let mut dir = None;
        match map.get("sort") {
            None => {}
            Some(Value::Array(items)) => {
                limits::check(ListKind::FindFields, items.len())?;
                for item in items {
                    let (name, d) = sort_field(item)?;
                    if dir.is_some_and(|x| x != d) {
                        return Err(CouchError::new(
                            ErrorKind::BadRequest,
                            "unsupported_mixed_sort",
                            "Sorts currently only support a single direction for all fields.",
                        ));
                    }
                    dir = Some(d);
                    sort.push(parse_path(&name));
                    sort_json.push(item.clone());
                }
            }
            Some(_) => return Err(invalid("sort", "must be an array")),
        }
        let use_index = match map.get("use_index") {
            None => None,
            Some(Value::String(s)) => Some((ddoc_id(s), None)),
            Some(Value::Array(parts)) => match parts.as_slice() {
                [] => None,
                [Value::String(d)] => Some((ddoc_id(d), None)),
                [Value::String(d), Value::String(n)] => Some((ddoc_id(d), Some(n.clone()))),
                _ => return Err(invalid("use_index", "must be a ddoc name or [ddoc, name]")),
            },
            Some(_) => return Err(invalid("use_index", "must be a string or an array")),
        };
        let bookmark = match map.get("bookmark") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "nil" => None,
            Some(Value::String(s)) => Some(decode_bookmark(s)?),
            Some(_) => return Err(invalid("bookmark", "must be a string")),
        };
        let flag = |k: &str, default: bool| match map.get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(k, "must be a boolean")),
        };
        Ok(FindRequest {
            selector,
            selector_json,
            fields,
            fields_json,
            sort,
            sort_json,
            dir: dir.unwrap_or(SortDir::Asc),
            limit: match map.get("limit") {
                Some(v) => count(v, "limit")?,
                None => DEFAULT_LIMIT,
            },
            skip: match map.get("skip") {
                Some(v) => count(v, "skip")?,
                None => 0,
            },
            bookmark,
            use_index,
            conflicts: flag("conflicts", false)?,
            update: flag("update", true)?,
            execution_stats: flag("execution_stats", false)?,
        })
    }
}

fn ddoc_id(name: &str) -> String {
    if name.starts_with("_design/") {
        name.to_owned()
    } else {
        format!("_design/{name}")
    }
}

/// A bookmark is the last key a page returned, base64url: opaque to clients, as CouchDB's.
pub fn encode_bookmark(key: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_bookmark(s: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| {
            CouchError::new(
                ErrorKind::BadRequest,
                "invalid_bookmark",
                format!("Invalid bookmark value: {s}"),
            )
        })
}

/// A json index: a view of a `"language": "query"` design document.
#[derive(Debug, Clone)]
pub struct IndexDef {
    pub ddoc: String,
    pub name: String,
    /// Field names as written, and as paths.
    pub fields: Vec<(String, SortDir)>,
    pub paths: Vec<Path>,
    pub partial: Option<Selector>,
    pub partial_json: Option<Value>,
    /// Names the index's storage: a digest of its definition, so a changed definition is a new
    /// index.
    pub signature: String,
}

impl IndexDef {
    /// The json indexes a design document defines (none unless its language is `query`).
    pub fn of_design_doc(id: &str, doc: &Value) -> Vec<IndexDef> {
        if doc.get("language").and_then(Value::as_str) != Some("query") {
            return Vec::new();
        }
        let Some(Value::Object(views)) = doc.get("views") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, view) in views {
            let Some(Value::Object(fields)) = view.pointer("/map/fields") else {
                continue;
            };
            let mut fs = Vec::new();
            for (f, d) in fields {
                let dir = if d.as_str() == Some("desc") {
                    SortDir::Desc
                } else {
                    SortDir::Asc
                };
                fs.push((f.clone(), dir));
            }
            if fs.is_empty() {
                continue;
            }
            let partial_json = view
                .pointer("/map/partial_filter_selector")
                .filter(|p| p.as_object().is_some_and(|m| !m.is_empty()))
                .cloned();
            let partial = match &partial_json {
                Some(p) => match Selector::parse(p) {
                    Ok(s) => Some(s),
                    Err(_) => continue,
                },
                None => None,
            };
            let signature = {
                let def = json!({"fields": fields, "partial": partial_json});
                let digest = sha2::Sha256::digest(def.to_string().as_bytes());
                digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
            };
            out.push(IndexDef {
                ddoc: id.to_owned(),
                name: name.clone(),
                paths: fs.iter().map(|(f, _)| parse_path(f)).collect(),
                fields: fs,
                partial,
                partial_json,
                signature,
            });
        }
        out
    }

    /// How `GET /_index` lists it.
    pub fn to_json(&self) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|(f, d)| json!({ f.clone(): if *d == SortDir::Desc { "desc" } else { "asc" } }))
            .collect();
        let mut def = json!({ "fields": fields });
        if let Some(p) = &self.partial_json {
            def["partial_filter_selector"] = p.clone();
        }
        json!({"ddoc": self.ddoc, "name": self.name, "type": "json", "partitioned": false, "def": def})
    }

    /// The index key of a document (its field values, cut at [`MAX_INDEX_KEY_BYTES`]), or
    /// `None` when the document is not in the index: a field missing, or the partial filter
    /// not matching. Design documents are never indexed.
    pub fn key_of(&self, doc: &Value) -> Option<Vec<u8>> {
        if let Some(p) = &self.partial {
            if !p.matches(doc) {
                return None;
            }
        }
        let mut key = vec![6u8];
        for path in &self.paths {
            sort_key(get_path(doc, path)?, &mut key);
        }
        key.push(0);
        key.truncate(MAX_INDEX_KEY_BYTES);
        Some(key)
    }
}

/// The special index every database has: documents by id.
pub fn all_docs_index_json() -> Value {
    json!({"ddoc": null, "name": "_all_docs", "type": "special", "def": {"fields": [{"_id": "asc"}]}})
}

/// A parsed `POST /{db}/_index` body.
#[derive(Debug, Clone)]
pub struct IndexRequest {
    pub ddoc: String,
    pub name: String,
    /// The view to put in the design document.
    pub view: Value,
}

impl IndexRequest {
    pub fn parse(body: &Value) -> Result<IndexRequest> {
        let Value::Object(map) = body else {
            return Err(bad("Request body must be a JSON object"));
        };
        match map.get("type").and_then(Value::as_str) {
            None | Some("json") => {}
            Some(t) => {
                return Err(CouchError::new(
                    ErrorKind::BadRequest,
                    "invalid_index_type",
                    format!("Invalid index type: {t}; couchkv has json indexes"),
                ))
            }
        }
        let Some(Value::Object(index)) = map.get("index") else {
            return Err(bad("Missing required key: index"));
        };
        let Some(Value::Array(fields)) = index.get("fields") else {
            return Err(invalid("index", "fields must be an array"));
        };
        if fields.is_empty() {
            return Err(invalid("index", "fields must not be empty"));
        }
        let mut map_fields = Map::new();
        for f in fields {
            let (name, dir) = sort_field(f)?;
            let d = if dir == SortDir::Desc { "desc" } else { "asc" };
            map_fields.insert(name, Value::String(d.to_owned()));
        }
        let mut view_map = json!({ "fields": map_fields });
        let partial = index.get("partial_filter_selector").cloned();
        if let Some(p) = &partial {
            Selector::parse(p)?;
            view_map["partial_filter_selector"] = p.clone();
        } else {
            view_map["partial_filter_selector"] = json!({});
        }
        let digest: String = {
            let d = sha2::Sha256::digest(json!({"f": fields, "p": partial}).to_string());
            d.iter().take(20).map(|b| format!("{b:02x}")).collect()
        };
        let name = match map.get("name") {
            None => digest.clone(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(invalid("name", "must be a non-empty string")),
        };
        let ddoc = match map.get("ddoc") {
            None => ddoc_id(&digest),
            Some(Value::String(s)) if !s.is_empty() => ddoc_id(s),
            Some(_) => return Err(invalid("ddoc", "must be a non-empty string")),
        };
        let mut def = json!({ "fields": fields });
        if let Some(p) = partial {
            def["partial_filter_selector"] = p;
        }
        Ok(IndexRequest {
            ddoc,
            name,
            view: json!({"map": view_map, "reduce": "_count", "options": {"def": def}}),
        })
    }
}

/// Which index answers a query.
#[derive(Debug, Clone)]
pub enum Plan {
    AllDocs,
    Json(Box<IndexDef>),
}

impl Plan {
    pub fn to_json(&self) -> Value {
        match self {
            Plan::AllDocs => all_docs_index_json(),
            Plan::Json(def) => def.to_json(),
        }
    }
}

fn no_usable_index(reason: &str) -> CouchError {
    CouchError::new(ErrorKind::BadRequest, "no_usable_index", reason)
}

/// Whether an index can answer the query, as CouchDB decides: every match is in it (the
/// selector requires each of its fields, sort fields counting as required, so a sorted query
/// leaves out documents without them, as CouchDB's does), and its order is the sort's once the
/// leading fields the selector pins to one value are passed over.
fn usable(def: &IndexDef, req: &FindRequest) -> bool {
    let unsorted: Vec<Path> = def
        .paths
        .iter()
        .filter(|p| !req.sort.contains(p))
        .cloned()
        .collect();
    if !req.selector.requires(&unsorted) {
        return false;
    }
    if req.sort.is_empty() {
        return true;
    }
    let mut cols = def.paths.as_slice();
    loop {
        if req.sort.len() <= cols.len() && req.sort.iter().zip(cols).all(|(s, p)| s == p) {
            return true;
        }
        match cols.split_first() {
            Some((first, rest)) if req.selector.pins(first) => cols = rest,
            _ => return false,
        }
    }
}

fn sorted_by_id(req: &FindRequest) -> bool {
    req.sort.is_empty() || (req.sort.len() == 1 && req.sort[0] == ["_id"])
}

/// Chooses the index for a query, CouchDB's way: the one asked for with `use_index` if it can
/// answer (otherwise a warning and the choice below), else the usable json index whose leading
/// fields the selector bounds most, partial indexes only when asked for, else `_all_docs`.
/// Returns the plan and a warning for the response.
pub fn choose(req: &FindRequest, indexes: &[IndexDef]) -> Result<(Plan, Option<String>)> {
    let mut warning = None;
    if let Some((ddoc, name)) = &req.use_index {
        let named = indexes
            .iter()
            .find(|d| &d.ddoc == ddoc && name.as_ref().is_none_or(|n| n == &d.name));
        match named {
            Some(def) if usable(def, req) => return Ok((Plan::Json(Box::new(def.clone())), None)),
            _ => {
                let shown = match name {
                    Some(n) => format!("{ddoc}, {n}"),
                    None => ddoc.clone(),
                };
                warning = Some(format!(
                    "{shown} was not used because it is not a valid index for this query."
                ));
            }
        }
    }
    let best = indexes
        .iter()
        .filter(|d| d.partial.is_none() && usable(d, req))
        .max_by_key(|d| {
            let bounded = d
                .paths
                .iter()
                .take_while(|p| {
                    let r = req.selector.range_of(p);
                    r.low.is_some() || r.high.is_some()
                })
                .count();
            (bounded, std::cmp::Reverse(d.paths.len()))
        });
    match best {
        Some(def) => Ok((Plan::Json(Box::new(def.clone())), warning)),
        None if sorted_by_id(req) => {
            let w = warning.unwrap_or_else(|| {
                "No matching index found, create an index to optimize query time.".to_owned()
            });
            Ok((Plan::AllDocs, Some(w)))
        }
        None => Err(no_usable_index(
            "No index exists for this sort, try indexing by the sort fields.",
        )),
    }
}

/// The key range of an index read for a query: `(gte, lt)` over index keys (without the
/// document id part), from the bounds the selector puts on the index's first field.
pub fn key_range(def: &IndexDef, req: &FindRequest) -> (Vec<u8>, Option<Vec<u8>>) {
    let first = &def.paths[0];
    let r = req.selector.range_of(first);
    let bound = |v: &Value| {
        let mut k = vec![6u8];
        sort_key(v, &mut k);
        k.truncate(MAX_INDEX_KEY_BYTES);
        k
    };
    let low = match &r.low {
        None => vec![6u8],
        Some((v, true)) => bound(v),
        Some((v, false)) => {
            let mut k = bound(v);
            // Past every key that starts with this value (a cut key included).
            k.push(0xff);
            k
        }
    };
    let high = r.high.as_ref().map(|(v, inclusive)| {
        let mut k = bound(v);
        if *inclusive || k.len() == MAX_INDEX_KEY_BYTES {
            k.push(0xff);
        }
        k
    });
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> FindRequest {
        FindRequest::parse(&v).unwrap()
    }

    #[test]
    fn parses_and_refuses() {
        let r = req(
            json!({"selector": {"a": 1}, "sort": [{"a": "desc"}], "limit": 5, "fields": ["a", "b.c"]}),
        );
        assert_eq!(r.dir, SortDir::Desc);
        assert_eq!(r.limit, 5);
        assert_eq!(r.fields.unwrap()[1], vec!["b".to_owned(), "c".to_owned()]);
        for bad in [
            json!({"selector": {"a": 1}, "sort": ["a", {"b": "desc"}]}),
            json!({"selector": {"a": 1}, "limit": -1}),
            json!({"selector": {"a": 1}, "nope": 1}),
            json!({"limit": 1}),
            json!({"selector": {"a": 1}, "bookmark": "!!"}),
        ] {
            assert!(FindRequest::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chooses_like_couchdb() {
        let ddoc = json!({"language": "query", "views": {
            "by-a": {"map": {"fields": {"a": "asc"}, "partial_filter_selector": {}}},
            "by-a-b": {"map": {"fields": {"a": "asc", "b": "asc"}, "partial_filter_selector": {}}},
            "by-c": {"map": {"fields": {"c": "asc"}, "partial_filter_selector": {"d": 1}}}}});
        let idx = IndexDef::of_design_doc("_design/x", &ddoc);
        assert_eq!(idx.len(), 3);
        let pick = |v: Value| match choose(&req(v), &idx) {
            Ok((Plan::Json(d), _)) => d.name,
            Ok((Plan::AllDocs, _)) => "_all_docs".into(),
            Err(e) => e.error.to_owned(),
        };
        assert_eq!(pick(json!({"selector": {"a": {"$gt": 1}}})), "by-a");
        assert_eq!(pick(json!({"selector": {"a": 1, "b": 2}})), "by-a-b");
        assert_eq!(
            pick(json!({"selector": {"c": 1}})),
            "_all_docs",
            "partial only when asked"
        );
        assert_eq!(
            pick(json!({"selector": {"c": 1}, "use_index": ["x", "by-c"]})),
            "by-c"
        );
        assert_eq!(
            pick(json!({"selector": {"z": 1}, "sort": ["z"]})),
            "no_usable_index"
        );
        assert_eq!(
            pick(json!({"selector": {"a": 1}, "sort": ["a", "b"]})),
            "by-a-b"
        );
        let doc = json!({"a": 1, "b": "x"});
        assert!(idx[1].key_of(&doc).is_some());
        assert!(idx[1].key_of(&json!({"a": 1})).is_none());
        assert!(idx[2].key_of(&json!({"c": 1, "d": 2})).is_none());
    }
}
