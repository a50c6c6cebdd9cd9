//! A view query's options (CouchDB's `_view` parameters, already parsed), which rows they
//! take, and [`Fold`]: reducing a stream of rows a bounded chunk at a time, as CouchDB reduces
//! then rereduces, so a reduction's memory is a chunk whatever the number of rows.

use std::cmp::Ordering;

use serde_json::Value;

use super::design::Reducer;
use super::reduce::Partial;
use crate::couch::js::{self, DesignCode, Engine};
use crate::couch::mango::collate;
use crate::couch::{CouchError, Result};

/// Whether a query brings the index up to date first (`update`, or `stale`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Update {
    #[default]
    Before,
    /// `update=false` / `stale=ok`: answer from the index as it is.
    Never,
    /// `update=lazy` / `stale=update_after`: answer as it is, then update.
    After,
}

/// A parsed view query.
#[derive(Debug, Clone)]
pub struct ViewQuery {
    /// `keys`: the rows of each key, in the order given.
    pub keys: Option<Vec<Value>>,
    /// `startkey` (or `key`), and `startkey_docid`.
    pub start: Option<Value>,
    pub start_docid: Option<String>,
    pub end: Option<Value>,
    pub end_docid: Option<String>,
    pub inclusive_end: bool,
    pub descending: bool,
    pub limit: Option<usize>,
    pub skip: usize,
    pub include_docs: bool,
    pub conflicts: bool,
    pub attachments: bool,
    /// `None`: reduce if the view has a reducer.
    pub reduce: Option<bool>,
    pub group: bool,
    pub group_level: Option<usize>,
    pub update_seq: bool,
    pub update: Update,
}

impl Default for ViewQuery {
    fn default() -> Self {
        ViewQuery {
            keys: None,
            start: None,
            start_docid: None,
            end: None,
            end_docid: None,
            inclusive_end: true,
            descending: false,
            limit: None,
            skip: 0,
            include_docs: false,
            conflicts: false,
            attachments: false,
            reduce: None,
            group: false,
            group_level: None,
            update_seq: false,
            update: Update::Before,
        }
    }
}

/// The most keys one `keys` query takes.
pub const MAX_VIEW_KEYS: usize = 1_000;

impl ViewQuery {
    /// Whether this query reduces `reducer`'s view, after checking the options agree (CouchDB's
    /// `query_parse_error`s).
    pub fn reduces(&self, reducer: Option<&Reducer>) -> Result<bool> {
        let reduces = match (self.reduce, reducer) {
            (Some(true), None) => {
                return Err(CouchError::query_parse_error(
                    "Reduce is invalid for map-only views.",
                ))
            }
            (Some(r), _) => r,
            (None, r) => r.is_some(),
        };
        if reduces {
            if self.include_docs {
                return Err(CouchError::query_parse_error(
                    "`include_docs` is invalid for reduce",
                ));
            }
            if self.keys.is_some() && !self.grouping() {
                return Err(CouchError::query_parse_error(
                    "Multi-key fetches for reduce views must use `group=true`",
                ));
            }
        } else if self.group || self.group_level.is_some() {
            return Err(CouchError::query_parse_error(
                "Invalid use of grouping on a map view.",
            ));
        }
        if let Some(k) = &self.keys {
            if k.len() > MAX_VIEW_KEYS {
                return Err(CouchError::too_large(format!(
                    "a view query takes at most {MAX_VIEW_KEYS} keys"
                )));
            }
        }
        if !self.descending {
            if let (Some(s), Some(e)) = (&self.start, &self.end) {
                if collate::cmp(s, e) == Ordering::Greater {
                    return Err(CouchError::query_parse_error(
                        "No rows can match your key range, reverse your start_key and end_key or set descending=true",
                    ));
                }
            }
        } else if let (Some(s), Some(e)) = (&self.start, &self.end) {
            if collate::cmp(s, e) == Ordering::Less {
                return Err(CouchError::query_parse_error(
                    "No rows can match your key range, reverse your start_key and end_key or set descending=false",
                ));
            }
        }
        Ok(reduces)
    }

    fn grouping(&self) -> bool {
        self.group || self.group_level.is_some_and(|l| l > 0)
    }

    /// The key a row's reduction is grouped under; `None` for one reduction of every row.
    pub fn group_key(&self, key: &Value) -> Option<Value> {
        match self.group_level {
            Some(0) => None,
            Some(n) => Some(match key {
                Value::Array(items) => Value::Array(items.iter().take(n).cloned().collect()),
                other => other.clone(),
            }),
            None if self.group => Some(key.clone()),
            None => None,
        }
    }

    /// Whether row (`key`, `id`) is within the query's start and end (the index read gives a
    /// superset: cut keys and ranges in byte order).
    pub fn within(&self, key: &Value, id: &str) -> bool {
        let after_start =
            |bound: &Value, docid: &Option<String>, dir: Ordering| match collate::cmp(key, bound) {
                Ordering::Equal => docid.as_deref().is_none_or(|d| id.cmp(d) != dir.reverse()),
                o => o == dir,
            };
        let (start_dir, end_dir) = if self.descending {
            (Ordering::Less, Ordering::Greater)
        } else {
            (Ordering::Greater, Ordering::Less)
        };
        if let Some(s) = &self.start {
            if !after_start(s, &self.start_docid, start_dir) {
                return false;
            }
        }
        if let Some(e) = &self.end {
            match collate::cmp(key, e) {
                Ordering::Equal => {
                    if !self.inclusive_end && self.end_docid.is_none() {
                        return false;
                    }
                    if let Some(d) = &self.end_docid {
                        let o = id.cmp(d.as_str());
                        let ok = o == end_dir || (o == Ordering::Equal && self.inclusive_end);
                        if !ok {
                            return false;
                        }
                    }
                }
                o if o != end_dir => return false,
                _ => {}
            }
        }
        true
    }
}

/// Rows folded per reduce call (and partial reductions per rereduce).
pub const REDUCE_CHUNK: usize = 100;

/// A reduction in progress over rows arriving in order.
pub struct Fold {
    reducer: Reducer,
    code: DesignCode,
    /// Rows not yet reduced (at most [`REDUCE_CHUNK`]): key, document id, value.
    rows: Vec<(Value, String, Value)>,
    builtin: Option<Partial>,
    /// A JavaScript reducer's partial reductions (at most [`REDUCE_CHUNK`]).
    partials: Vec<Value>,
    /// Whether `partials` came from more than one reduce call.
    rereduced: bool,
    pub count: u64,
}

impl Fold {
    pub fn new(reducer: Reducer, code: DesignCode) -> Fold {
        Fold {
            reducer,
            code,
            rows: Vec::new(),
            builtin: None,
            partials: Vec::new(),
            rereduced: false,
            count: 0,
        }
    }

    pub fn push(&mut self, js: &Engine, key: Value, id: String, value: Value) -> Result<()> {
        self.rows.push((key, id, value));
        self.count += 1;
        if self.rows.len() >= REDUCE_CHUNK {
            self.reduce_rows(js)?;
        }
        Ok(())
    }

    fn reduce_rows(&mut self, js: &Engine) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        match &self.reducer {
            Reducer::Builtin(b) => {
                let p = b.reduce(rows.iter().map(|(k, _, v)| (k, v)))?;
                self.builtin = Some(match self.builtin.take() {
                    Some(acc) => acc.combine(&p)?,
                    None => p,
                });
            }
            Reducer::Js(fun) => {
                let keys: Vec<Value> = rows
                    .iter()
                    .map(|(k, id, _)| Value::Array(vec![k.clone(), Value::String(id.clone())]))
                    .collect();
                let values: Vec<Value> = rows.into_iter().map(|(_, _, v)| v).collect();
                let r = js::reduce(js, &self.code, fun, Some(&keys), &values, false)?;
                if !self.partials.is_empty() {
                    self.rereduced = true;
                }
                self.partials.push(r);
                if self.partials.len() >= REDUCE_CHUNK {
                    let all = std::mem::take(&mut self.partials);
                    self.partials
                        .push(js::reduce(js, &self.code, fun, None, &all, true)?);
                }
            }
        }
        Ok(())
    }

    /// The reduction of every row pushed.
    pub fn finish(mut self, js: &Engine) -> Result<Value> {
        self.reduce_rows(js)?;
        match &self.reducer {
            Reducer::Builtin(b) => Ok(match self.builtin {
                Some(p) => p.finish(),
                None => b.reduce(std::iter::empty())?.finish(),
            }),
            Reducer::Js(fun) => match self.partials.len() {
                0 => js::reduce(js, &self.code, fun, Some(&[]), &[], false),
                1 if !self.rereduced => Ok(self.partials.pop().unwrap_or(Value::Null)),
                _ => js::reduce(js, &self.code, fun, None, &self.partials, true),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounds_as_couchdb() {
        let q = ViewQuery {
            start: Some(json!(2)),
            end: Some(json!(4)),
            ..ViewQuery::default()
        };
        assert!(!q.within(&json!(1), "a"));
        assert!(q.within(&json!(2), "a"));
        assert!(q.within(&json!(4), "z"));
        assert!(!q.within(&json!(5), "a"));
        let q = ViewQuery {
            inclusive_end: false,
            ..q
        };
        assert!(!q.within(&json!(4), "a"));
        let q = ViewQuery {
            start: Some(json!(2)),
            start_docid: Some("b".into()),
            end: Some(json!(4)),
            end_docid: Some("m".into()),
            ..ViewQuery::default()
        };
        assert!(!q.within(&json!(2), "a"));
        assert!(q.within(&json!(2), "b"));
        assert!(q.within(&json!(4), "m"));
        assert!(!q.within(&json!(4), "n"));
        let q = ViewQuery {
            descending: true,
            start: Some(json!(4)),
            end: Some(json!(2)),
            inclusive_end: false,
            ..ViewQuery::default()
        };
        assert!(q.within(&json!(4), "a"));
        assert!(q.within(&json!(3), "a"));
        assert!(!q.within(&json!(2), "a"));
        assert!(!q.within(&json!(5), "a"));
    }

    #[test]
    fn group_levels() {
        let q = ViewQuery {
            group_level: Some(1),
            ..ViewQuery::default()
        };
        assert_eq!(q.group_key(&json!([1, 2, 3])), Some(json!([1])));
        assert_eq!(q.group_key(&json!("x")), Some(json!("x")));
        let q = ViewQuery::default();
        assert_eq!(q.group_key(&json!([1])), None);
    }
}
