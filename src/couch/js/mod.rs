//! JavaScript in design documents: the engine a host provides ([`JsEngine`]) and the calls the
//! couch layer makes through it — map, reduce, filter, validate, compile — with their results
//! typed here. What runs inside the engine is `prelude.js`, the same for every engine, so an
//! engine only evaluates text and moves JSON text across.

use std::sync::Arc;

use serde_json::{json, Value};

use super::error::{CouchError, ErrorKind, Result};

/// The JavaScript every engine evaluates first: CouchDB's function environment and the
/// operations, called as `__init(ddocJson)` then `__call(op, argsJson)`.
pub const PRELUDE: &str = include_str!("prelude.js");

/// Why a call into the engine did not return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsError {
    /// The call passed a limit (time, memory, stack) and was stopped.
    #[error("{0}")]
    Limit(String),
    /// The engine failed otherwise (the prelude itself, a value that is not JSON).
    #[error("{0}")]
    Engine(String),
}

/// A design document as the engine sees it: its JSON text and a key that changes whenever the
/// text does (a digest of it), so an engine may keep what it compiled for it.
#[derive(Debug, Clone)]
pub struct DesignCode {
    pub key: String,
    pub json: Arc<str>,
}

impl DesignCode {
    pub fn new(id: &str, doc: &Value) -> DesignCode {
        use sha2::Digest;
        let json = doc.to_string();
        let digest = sha2::Sha256::digest(json.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        DesignCode {
            key: format!("{id}\u{0}{hex}"),
            json: json.into(),
        }
    }
}

/// A JavaScript engine, sandboxed: no I/O, every call bounded in time and memory. The native
/// host has one; a host without one answers every JavaScript feature with an error.
pub trait JsEngine: Send + Sync + 'static {
    /// Evaluates `__call(op, args)` of [`PRELUDE`] for `ddoc` (after `__init(ddoc.json)`,
    /// which the engine may have done before for the same key) and returns the JSON text it
    /// returns.
    fn call(&self, ddoc: &DesignCode, op: &str, args: &str)
        -> std::result::Result<String, JsError>;
}

/// A shared engine, or none.
pub type Engine = Option<Arc<dyn JsEngine>>;

fn engine(js: &Engine) -> Result<&Arc<dyn JsEngine>> {
    js.as_ref().ok_or_else(|| {
        CouchError::new(
            ErrorKind::Unavailable,
            "not_implemented",
            "this host runs no JavaScript",
        )
    })
}

/// A call that hit a limit: CouchDB's answer when its JavaScript process fails.
fn os_process_error(e: JsError) -> CouchError {
    CouchError::new(ErrorKind::Internal, "os_process_error", e.to_string())
}

/// Calls `op` and unwraps the prelude's `{ok}`; a thrown error is `render_error` (500, as
/// CouchDB), a function that does not compile `compilation_error` (400).
fn call(js: &Engine, ddoc: &DesignCode, op: &str, args: &Value) -> Result<Value> {
    let out = engine(js)?
        .call(ddoc, op, &args.to_string())
        .map_err(os_process_error)?;
    let mut out: Value = serde_json::from_str(&out)
        .map_err(|_| CouchError::internal("the JavaScript engine answered something not JSON"))?;
    if let Some(v) = out.get_mut("ok") {
        return Ok(v.take());
    }
    if let Some(reason) = out.get("compilation_error") {
        return Err(CouchError::new(
            ErrorKind::BadRequest,
            "compilation_error",
            reason.as_str().unwrap_or_default(),
        ));
    }
    Err(CouchError::new(
        ErrorKind::Internal,
        "render_error",
        out.get("error").and_then(Value::as_str).unwrap_or("failed"),
    ))
}

/// One map row: key and value as emitted.
pub type Row = (Value, Value);

/// Runs map functions `funs` of `ddoc` over `docs`: per document, per function, its rows.
pub fn map(
    js: &Engine,
    ddoc: &DesignCode,
    funs: &[&str],
    docs: &[&Value],
) -> Result<Vec<Vec<Vec<Row>>>> {
    let out = call(js, ddoc, "map", &json!({"funs": funs, "docs": docs}))?;
    let bad = || CouchError::internal("the map operation answered an unexpected shape");
    let Value::Array(per_doc) = out else {
        return Err(bad());
    };
    if per_doc.len() != docs.len() {
        return Err(bad());
    }
    per_doc
        .into_iter()
        .map(|per_fun| {
            let Value::Array(per_fun) = per_fun else {
                return Err(bad());
            };
            per_fun
                .into_iter()
                .map(|rows| {
                    let Value::Array(rows) = rows else {
                        return Err(bad());
                    };
                    rows.into_iter()
                        .map(|r| match r {
                            Value::Array(mut kv) if kv.len() == 2 => {
                                let v = kv.pop().unwrap_or(Value::Null);
                                let k = kv.pop().unwrap_or(Value::Null);
                                Ok((k, v))
                            }
                            _ => Err(bad()),
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// A JavaScript reduce: `keys` are `[key, docid]` pairs (none on rereduce).
pub fn reduce(
    js: &Engine,
    ddoc: &DesignCode,
    fun: &str,
    keys: Option<&[Value]>,
    values: &[Value],
    rereduce: bool,
) -> Result<Value> {
    call(
        js,
        ddoc,
        "reduce",
        &json!({"fun": fun, "keys": keys, "values": values, "rereduce": rereduce}),
    )
}

/// A filter function over `docs` with CouchDB's request object `req`.
pub fn filter(
    js: &Engine,
    ddoc: &DesignCode,
    fun: &str,
    docs: &[&Value],
    req: &Value,
) -> Result<Vec<bool>> {
    let out = call(
        js,
        ddoc,
        "filter",
        &json!({"fun": fun, "docs": docs, "req": req}),
    )?;
    serde_json::from_value(out)
        .map_err(|_| CouchError::internal("the filter operation answered an unexpected shape"))
}

/// What `validate_doc_update` said of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Forbidden(String),
    Unauthorized(String),
    /// It threw something else.
    Failed(String),
}

/// Runs `validate_doc_update` `fun` of `ddoc`.
pub fn validate(
    js: &Engine,
    ddoc: &DesignCode,
    fun: &str,
    new_doc: &Value,
    old_doc: Option<&Value>,
    user_ctx: &Value,
    sec_obj: &Value,
) -> Result<Verdict> {
    let out = call(
        js,
        ddoc,
        "validate",
        &json!({"fun": fun, "newDoc": new_doc, "oldDoc": old_doc, "userCtx": user_ctx, "secObj": sec_obj}),
    )?;
    let text = |k: &str| {
        out.get(k)
            .map(|v| v.as_str().unwrap_or_default().to_owned())
    };
    Ok(if let Some(m) = text("forbidden") {
        Verdict::Forbidden(m)
    } else if let Some(m) = text("unauthorized") {
        Verdict::Unauthorized(m)
    } else if let Some(m) = text("error") {
        Verdict::Failed(m)
    } else {
        Verdict::Ok
    })
}

/// Compiles functions (`(source, is_view_function)`), so a design document that does not
/// compile is refused when it is saved.
pub fn compile(js: &Engine, ddoc: &DesignCode, funs: &[(&str, bool)]) -> Result<()> {
    call(js, ddoc, "compile", &json!({"funs": funs})).map(|_| ())
}
