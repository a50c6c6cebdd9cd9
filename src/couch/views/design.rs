//! What a JavaScript design document defines: its views (map and reduce), filters and
//! `validate_doc_update`, read from the document as CouchDB reads them. A design document's
//! views are indexed together, under a signature of everything that decides their rows, so a
//! changed map function (or `views.lib`) means a new index and an unchanged one keeps its own.

use serde_json::Value;
use sha2::Digest;

use super::reduce::Builtin;
use crate::couch::js::DesignCode;
use crate::couch::{CouchError, Result};

/// How a view reduces.
#[derive(Debug, Clone, PartialEq)]
pub enum Reducer {
    Builtin(Builtin),
    /// A JavaScript function's source.
    Js(String),
}

/// One view of a design document.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDef {
    pub name: String,
    pub map: String,
    pub reduce: Option<Reducer>,
}

/// A JavaScript design document's views, indexed together.
#[derive(Debug, Clone)]
pub struct ViewGroup {
    /// `_design/…`
    pub ddoc: String,
    /// In name order; a view's number in its index is its place here.
    pub views: Vec<ViewDef>,
    /// Hex digest of the map and reduce functions and `views.lib`: the index's storage name.
    pub signature: String,
    pub code: DesignCode,
}

/// Whether a design document is JavaScript (`language` missing or `javascript`); Mango's are
/// `query`.
pub fn is_javascript(doc: &Value) -> bool {
    matches!(
        doc.get("language").and_then(Value::as_str),
        None | Some("javascript")
    )
}

impl ViewGroup {
    /// The views of a design document; `None` when it has none (or is not JavaScript).
    pub fn of_design_doc(id: &str, doc: &Value) -> Option<ViewGroup> {
        if !is_javascript(doc) {
            return None;
        }
        let Some(Value::Object(views)) = doc.get("views") else {
            return None;
        };
        let mut defs: Vec<ViewDef> = views
            .iter()
            .filter(|(name, _)| name.as_str() != "lib")
            .filter_map(|(name, v)| {
                let map = v.get("map")?.as_str()?.to_owned();
                let reduce =
                    v.get("reduce")
                        .and_then(Value::as_str)
                        .map(|r| match Builtin::named(r) {
                            Some(b) => Reducer::Builtin(b),
                            None => Reducer::Js(r.to_owned()),
                        });
                Some(ViewDef {
                    name: name.clone(),
                    map,
                    reduce,
                })
            })
            .collect();
        if defs.is_empty() {
            return None;
        }
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        let decisive = serde_json::json!({
            "views": defs.iter().map(|d| {
                let reduce = match &d.reduce {
                    Some(Reducer::Js(s)) => Value::String(s.clone()),
                    Some(Reducer::Builtin(b)) => Value::String(format!("{b:?}")),
                    None => Value::Null,
                };
                serde_json::json!([d.name, d.map, reduce])
            }).collect::<Vec<_>>(),
            "lib": views.get("lib"),
        });
        let digest = sha2::Sha256::digest(decisive.to_string().as_bytes());
        Some(ViewGroup {
            ddoc: id.to_owned(),
            views: defs,
            signature: digest.iter().take(16).map(|b| format!("{b:02x}")).collect(),
            code: DesignCode::new(id, doc),
        })
    }

    /// A view by name, with its number.
    pub fn view(&self, name: &str) -> Result<(u16, &ViewDef)> {
        self.views
            .iter()
            .enumerate()
            .find(|(_, v)| v.name == name)
            .and_then(|(i, v)| Some((u16::try_from(i).ok()?, v)))
            .ok_or_else(|| CouchError::not_found("missing_named_view"))
    }
}

/// A function of a design document by kind: `filters.{name}` or `validate_doc_update`.
pub fn function<'a>(doc: &'a Value, kind: &str, name: Option<&str>) -> Option<&'a str> {
    match name {
        Some(n) => doc.get(kind)?.get(n)?.as_str(),
        None => doc.get(kind)?.as_str(),
    }
}

/// Every function source a design document holds with whether it is a view function (those
/// `require` from `views.lib` only): checked to compile when the document is saved.
pub fn all_functions(doc: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if !is_javascript(doc) {
        return out;
    }
    if let Some(Value::Object(views)) = doc.get("views") {
        for (name, v) in views {
            if name == "lib" {
                continue;
            }
            if let Some(m) = v.get("map").and_then(Value::as_str) {
                out.push((m.to_owned(), true));
            }
            if let Some(r) = v.get("reduce").and_then(Value::as_str) {
                if Builtin::named(r).is_none() {
                    out.push((r.to_owned(), true));
                }
            }
        }
    }
    if let Some(Value::Object(filters)) = doc.get("filters") {
        out.extend(
            filters
                .values()
                .filter_map(Value::as_str)
                .map(|s| (s.to_owned(), false)),
        );
    }
    if let Some(v) = doc.get("validate_doc_update").and_then(Value::as_str) {
        out.push((v.to_owned(), false));
    }
    out
}
