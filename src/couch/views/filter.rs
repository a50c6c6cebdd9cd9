//! What decides which changes a filtered `_changes` feed (and so a filtered replication)
//! passes on: a Mango selector (`_selector`), a design document's filter function
//! (`filter=ddoc/name`) or a view's map function (`filter=_view`: the documents it emits rows
//! for). Each sees the winning revision of a changed document.

use serde_json::Value;

use super::design::{function, is_javascript, ViewGroup};
use crate::couch::js::{self, DesignCode, Engine};
use crate::couch::mango::Selector;
use crate::couch::{CouchError, Result};

/// A filter of change rows by their documents.
pub trait ChangeFilter: Send + Sync + std::fmt::Debug {
    fn accepts(&self, doc: &Value) -> Result<bool>;
}

impl ChangeFilter for Selector {
    fn accepts(&self, doc: &Value) -> Result<bool> {
        Ok(self.matches(doc))
    }
}

/// `filter=ddoc/name`: the design document's filter function, with CouchDB's request object.
pub struct JsFilter {
    js: Engine,
    code: DesignCode,
    fun: String,
    req: Value,
}

impl std::fmt::Debug for JsFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsFilter").field("fun", &self.fun).finish()
    }
}

impl std::fmt::Debug for ViewFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewFilter")
            .field("map", &self.map)
            .finish()
    }
}

impl ChangeFilter for JsFilter {
    fn accepts(&self, doc: &Value) -> Result<bool> {
        let out = js::filter(&self.js, &self.code, &self.fun, &[doc], &self.req)?;
        Ok(out.first().copied().unwrap_or(false))
    }
}

/// `filter=_view&view=ddoc/view`: documents the view's map function emits a row for.
pub struct ViewFilter {
    js: Engine,
    code: DesignCode,
    map: String,
}

impl ChangeFilter for ViewFilter {
    fn accepts(&self, doc: &Value) -> Result<bool> {
        let rows = js::map(&self.js, &self.code, &[self.map.as_str()], &[doc])?;
        Ok(rows
            .first()
            .and_then(|per_fun| per_fun.first())
            .is_some_and(|r| !r.is_empty()))
    }
}

/// Splits `ddoc/name` (CouchDB's error when it is not of that form).
fn split(spec: &str, what: &str) -> Result<(String, String)> {
    match spec.split_once('/') {
        Some((d, n)) if !d.is_empty() && !n.is_empty() => {
            let d = d.strip_prefix("_design/").unwrap_or(d);
            Ok((format!("_design/{d}"), n.to_owned()))
        }
        _ => Err(CouchError::bad_request(format!(
            "`{what}` must be of the form `designname/{what}name`"
        ))),
    }
}

/// The design-document filter `filter` names (`ddoc/name`, or `_view` with `view`), from the
/// database's design documents `ddocs`; `req` is the request object a filter function gets.
pub fn design_filter(
    js: &Engine,
    ddocs: &[(String, Value)],
    filter: &str,
    view: Option<&str>,
    req: Value,
) -> Result<std::sync::Arc<dyn ChangeFilter>> {
    let find = |id: &str| {
        ddocs
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, d)| d)
            .ok_or_else(CouchError::missing)
    };
    if filter == "_view" {
        let view = view
            .ok_or_else(|| CouchError::bad_request("`view` filter parameter is not provided."))?;
        let (ddoc_id, name) = split(view, "view")?;
        let doc = find(&ddoc_id)?;
        let group = ViewGroup::of_design_doc(&ddoc_id, doc)
            .ok_or_else(|| CouchError::not_found("missing_named_view"))?;
        let (_, def) = group.view(&name)?;
        return Ok(std::sync::Arc::new(ViewFilter {
            js: js.clone(),
            code: group.code.clone(),
            map: def.map.clone(),
        }));
    }
    let (ddoc_id, name) = split(filter, "filter")?;
    let doc = find(&ddoc_id)?;
    let fun = function(doc, "filters", Some(&name))
        .filter(|_| is_javascript(doc))
        .ok_or_else(|| CouchError::not_found(format!("missing json key: {name}")))?;
    Ok(std::sync::Arc::new(JsFilter {
        js: js.clone(),
        code: DesignCode::new(&ddoc_id, doc),
        fun: fun.to_owned(),
        req,
    }))
}
