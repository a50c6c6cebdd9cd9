//! CouchDB's HTTP API: thin handlers that parse, call the couch core and shape the answer.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use super::error::{CouchPath, JsonBody, Params, RawBody};
use super::stream::{json_pages, Step};
use super::AppState;
use crate::auth::Session;
use crate::couch::limits::{self, ListKind};
use crate::couch::revs::Rev;
use crate::couch::{
    AllDocsCursor, AllDocsOptions, BulkGetItem, CouchError, Db, DocOptions, OpenRevs, WriteResult,
    ALL_DOCS_PAGE,
};

type Result<T, E = CouchError> = std::result::Result<T, E>;

pub fn routes() -> Router<AppState> {
    // `get` answers HEAD too (the same handler, without the body).
    let database = get(db_info).put(db_create).delete(db_delete).post(db_post);
    let document = get(doc_get).put(doc_put).delete(doc_delete);
    let attachment = get(att_get).put(att_put).delete(att_delete);
    Router::new()
        .route("/_all_dbs", get(all_dbs))
        .route("/_uuids", get(uuids))
        // PouchDB addresses a database as `/db/`.
        .route("/{db}", database.clone())
        .route("/{db}/", database)
        .route("/{db}/_all_docs", get(all_docs_get).post(all_docs_post))
        .route("/{db}/_bulk_docs", post(bulk_docs))
        .route("/{db}/_bulk_get", post(bulk_get))
        .route("/{db}/_revs_diff", post(revs_diff))
        .route("/{db}/_ensure_full_commit", post(ensure_full_commit))
        .route("/{db}/_compact", post(compact))
        .route("/{db}/_purge", post(purge))
        .route("/{db}/_security", get(security_get).put(security_put))
        .route(
            "/{db}/_changes",
            get(super::changes::changes_get).post(super::changes::changes_post),
        )
        .route(
            "/{db}/_local/{id}",
            get(local_get).put(local_put).delete(local_delete),
        )
        .route(
            "/{db}/_local/{id}/{*att}",
            axum::routing::any(local_attachment),
        )
        .route("/{db}/_design/{ddoc}", document.clone())
        .route("/{db}/_design/{ddoc}/{*att}", attachment.clone())
        .route("/{db}/{doc}", document)
        .route("/{db}/{doc}/{*att}", attachment)
}

async fn db(state: &AppState, name: &str) -> Result<Db> {
    state.couch.db(name).await
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn write_response(r: WriteResult, status: StatusCode) -> Response {
    match r {
        WriteResult::Ok { id, rev } => {
            let etag = HeaderValue::from_str(&format!("\"{rev}\"")).ok();
            let mut resp =
                (status, Json(json!({"ok": true, "id": id, "rev": rev}))).into_response();
            if let Some(etag) = etag {
                resp.headers_mut().insert(header::ETAG, etag);
            }
            resp
        }
        WriteResult::Err { error, .. } => error.into_response(),
    }
}

fn rev_param(p: &Params, body: Option<&Value>, headers: &HeaderMap) -> Result<Option<Rev>> {
    let raw = p
        .get("rev")
        .map(str::to_owned)
        .or_else(|| {
            body.and_then(|b| b.get("_rev"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| {
            headers
                .get(header::IF_MATCH)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim_matches('"').to_owned())
        });
    match raw {
        None => Ok(None),
        Some(s) => Rev::parse(&s)
            .map(Some)
            .ok_or_else(|| CouchError::bad_request("Invalid rev format")),
    }
}

fn revs_list(v: &Value, what: &str, kind: ListKind) -> Result<Vec<Rev>> {
    let list = v
        .as_array()
        .ok_or_else(|| CouchError::bad_request(format!("{what} must be a JSON array")))?;
    limits::check(kind, list.len())?;
    list.iter()
        .map(|r| {
            r.as_str()
                .and_then(Rev::parse)
                .ok_or_else(|| CouchError::bad_request("Invalid rev format"))
        })
        .collect()
}

fn doc_options(p: &Params) -> Result<DocOptions> {
    Ok(DocOptions {
        rev: match p.get("rev") {
            Some(r) => {
                Some(Rev::parse(r).ok_or_else(|| CouchError::bad_request("Invalid rev format"))?)
            }
            None => None,
        },
        revs: p.flag("revs")?,
        revs_info: p.flag("revs_info")?,
        conflicts: p.flag("conflicts")?,
        deleted_conflicts: p.flag("deleted_conflicts")?,
        latest: p.flag("latest")?,
        attachments: p.flag("attachments")?,
        atts_since: match p.json("atts_since")? {
            Some(v) => revs_list(&v, "atts_since", ListKind::AttsSince)?,
            None => Vec::new(),
        },
        with_password_hash: false,
    })
}

// ---- server ----

async fn all_dbs(State(state): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(json!(state.couch.all_dbs().await?)))
}

async fn uuids(State(state): State<AppState>, p: Params) -> Result<Json<Value>> {
    let count = p.number("count")?.unwrap_or(1);
    if count > 1000 {
        return Err(CouchError::bad_request("count parameter too large"));
    }
    let ids: Vec<String> = (0..count).map(|_| state.couch.ids().new_id()).collect();
    Ok(Json(json!({"uuids": ids})))
}

// ---- databases ----

async fn db_info(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Json<Value>> {
    let info = db(&state, &name).await?.info().await?;
    Ok(Json(json!({
        "db_name": info.name,
        "update_seq": info.update_seq,
        "committed_update_seq": info.update_seq,
        "doc_count": info.doc_count,
        "doc_del_count": info.doc_del_count,
        "purge_seq": info.purge_seq,
        "compact_running": info.compact_running,
        "disk_format_version": 8,
        "instance_start_time": "0",
        "sizes": {"active": 0, "external": 0, "file": 0},
        "props": {},
    })))
}

async fn db_create(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    state.couch.create_db(&name).await?;
    Ok(created(json!({"ok": true})))
}

async fn db_delete(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Json<Value>> {
    state.couch.delete_db(&name).await?;
    Ok(Json(json!({"ok": true})))
}

/// `POST /db`: a new document, with a generated id unless it brings one.
async fn db_post(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    Extension(session): Extension<Session>,
    p: Params,
    headers: HeaderMap,
    JsonBody(doc): JsonBody,
) -> Result<Response> {
    if !doc.is_object() {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    }
    let id = match doc.get("_id").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => state.couch.ids().new_id(),
    };
    write_doc(&state, &session, &name, id, &p, &headers, doc).await
}

/// A write through the service; a database that asks to be compacted is, in the background.
async fn write_docs(
    state: &AppState,
    session: &Session,
    name: &str,
    docs: Vec<Value>,
    new_edits: bool,
) -> Result<Vec<WriteResult>> {
    let written = state
        .service
        .write_docs(&session.user, name, docs, new_edits)
        .await?;
    if let Some(db) = written.compact {
        start_compaction(db);
    }
    Ok(written.results)
}

async fn security_get(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Json<Value>> {
    Ok(Json(db(&state, &name).await?.security().await?.to_json()))
}

async fn security_put(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let sec = crate::couch::Security::from_json(&body)?;
    db(&state, &name).await?.put_security(&sec).await?;
    Ok(Json(json!({"ok": true})))
}

fn single(mut results: Vec<WriteResult>) -> Result<WriteResult> {
    results
        .pop()
        .ok_or_else(|| CouchError::internal("no write result"))
}

/// `POST /{db}/_compact`: `202 {"ok":true}` at once; compaction runs in the background
/// (`compact_running` in the database's info meanwhile). Asking again while it runs is a no-op.
async fn compact(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    start_compaction(db);
    Ok((StatusCode::ACCEPTED, Json(json!({"ok": true}))).into_response())
}

/// `POST /{db}/_purge` (CouchDB 3's shape): `{id: [revs]}` →
/// `201 {"purge_seq": null, "purged": {id: [revs purged]}}`.
async fn purge(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let Value::Object(req) = body else {
        return Err(CouchError::bad_request("_purge takes a JSON object"));
    };
    limits::check(ListKind::PurgeIds, req.len())?;
    let revs: usize = req.values().map(|v| v.as_array().map_or(0, Vec::len)).sum();
    limits::check(ListKind::RevsDiffRevs, revs)?;
    let mut parsed = Vec::with_capacity(req.len());
    for (id, revs) in &req {
        parsed.push((
            id.clone(),
            revs_list(revs, "revisions", ListKind::RevsDiffRevs)?,
        ));
    }
    let purged = db.purge(&parsed).await?;
    Ok(created(json!({"purge_seq": null, "purged": purged})))
}

/// Compacts in the background unless a compaction of that database already runs.
fn start_compaction(db: Db) {
    if db.begin_compaction() {
        tokio::spawn(async move {
            match db.compact().await {
                Ok(n) => tracing::debug!(db = db.name(), dropped = n, "compacted"),
                Err(e) => tracing::warn!(db = db.name(), error = %e, "compaction failed"),
            }
        });
    }
}

async fn ensure_full_commit(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    // Every acknowledged write is already durable (the store commits before answering).
    db(&state, &name).await?.info().await?;
    Ok(created(json!({"ok": true, "instance_start_time": "0"})))
}

async fn bulk_docs(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    Extension(session): Extension<Session>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    db(&state, &name).await?;
    let missing = || CouchError::bad_request("POST body must include `docs` parameter.");
    let Value::Object(mut body) = body else {
        return Err(missing());
    };
    let Some(Value::Array(docs)) = body.remove("docs") else {
        return Err(missing());
    };
    limits::check(ListKind::BulkDocs, docs.len())?;
    let new_edits = match body.get("new_edits") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(CouchError::bad_request(
                "`new_edits` parameter must be a boolean.",
            ))
        }
    };
    // As CouchDB: one document that is wrong in itself refuses the whole request.
    for doc in &docs {
        crate::couch::validate_document(doc, new_edits)?;
    }
    // `_users` takes bulk writes from server admins only (the auth layer saw to that).
    let results = write_docs(&state, &session, &name, docs, new_edits).await?;
    let rows: Vec<Value> = results
        .into_iter()
        .filter_map(|r| match r {
            // With new_edits=false CouchDB reports only failures.
            WriteResult::Ok { .. } if !new_edits => None,
            WriteResult::Ok { id, rev } => Some(json!({"ok": true, "id": id, "rev": rev})),
            WriteResult::Err { id, error } => {
                Some(json!({"id": id, "error": error.error, "reason": error.reason}))
            }
        })
        .collect();
    Ok(created(Value::Array(rows)))
}

async fn bulk_get(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let docs = body
        .get("docs")
        .and_then(Value::as_array)
        .ok_or_else(|| CouchError::bad_request("Missing JSON list of 'docs'."))?;
    limits::check(ListKind::BulkGet, docs.len())?;
    let mut items = Vec::with_capacity(docs.len());
    for d in docs {
        let id = d
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| CouchError::bad_request("Each of 'docs' needs an 'id'."))?;
        let rev = match d.get("rev").and_then(Value::as_str) {
            Some(r) => {
                Some(Rev::parse(r).ok_or_else(|| CouchError::bad_request("Invalid rev format"))?)
            }
            None => None,
        };
        let atts_since = match d.get("atts_since") {
            Some(v) => revs_list(v, "atts_since", ListKind::AttsSince)?,
            None => Vec::new(),
        };
        items.push(BulkGetItem {
            id: id.to_owned(),
            rev,
            atts_since,
        });
    }
    drop(body);
    let mut opts = doc_options(&p)?;
    opts.rev = None;
    let st = (db, Arc::new(items), Arc::new(opts), 0);
    let first = bulk_get_page(st).await?;
    Ok(json_pages("{\"results\":[".into(), first, bulk_get_page))
}

/// Documents of a `_bulk_get` read and sent per page.
const BULK_GET_PAGE: usize = 100;

type BulkGetState = (Db, Arc<Vec<BulkGetItem>>, Arc<DocOptions>, usize);

async fn bulk_get_page((db, items, opts, at): BulkGetState) -> Result<Step<BulkGetState>> {
    let end = at.saturating_add(BULK_GET_PAGE).min(items.len());
    let rows = db
        .bulk_get(items.get(at..end).unwrap_or_default(), &opts)
        .await?;
    Ok(if end >= items.len() {
        Step::Last(rows, "]}".into())
    } else {
        Step::More(rows, (db, items, opts, end))
    })
}

async fn revs_diff(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let db = db(&state, &name).await?;
    let Value::Object(req) = body else {
        return Err(CouchError::bad_request("_revs_diff takes a JSON object"));
    };
    limits::check(ListKind::RevsDiffIds, req.len())?;
    let revs: usize = req.values().map(|v| v.as_array().map_or(0, Vec::len)).sum();
    limits::check(ListKind::RevsDiffRevs, revs)?;
    Ok(Json(Value::Object(db.revs_diff(&req).await?)))
}

fn all_docs_options(p: &Params, keys: Option<Vec<String>>) -> Result<AllDocsOptions> {
    let key_param = |names: &[&str]| -> Result<Option<String>> {
        for n in names {
            if let Some(v) = p.json(n)? {
                return match v {
                    Value::String(s) => Ok(Some(s)),
                    _ => Err(CouchError::bad_request(format!(
                        "{n} must be a JSON string"
                    ))),
                };
            }
        }
        Ok(None)
    };
    let key = key_param(&["key"])?;
    let mut opts = AllDocsOptions {
        start: key_param(&["startkey", "start_key"])?,
        end: key_param(&["endkey", "end_key"])?,
        inclusive_end: p.get("inclusive_end") != Some("false"),
        descending: p.flag("descending")?,
        limit: p.number("limit")?.map(|l| l as usize),
        skip: p.number("skip")?.unwrap_or(0) as usize,
        include_docs: p.flag("include_docs")?,
        conflicts: p.flag("conflicts")?,
        attachments: p.flag("attachments")?,
        update_seq: p.flag("update_seq")?,
        keys,
    };
    if let Some(k) = key {
        opts.start = Some(k.clone());
        opts.end = Some(k);
        opts.inclusive_end = true;
    }
    if opts.keys.is_none() {
        if let Some(v) = p.json("keys")? {
            opts.keys = Some(string_list(&v, "keys", ListKind::Keys)?);
        }
    }
    let ranged = ["key", "startkey", "start_key", "endkey", "end_key"]
        .iter()
        .any(|k| p.get(k).is_some());
    if opts.keys.is_some() && ranged {
        return Err(CouchError::query_parse_error(
            "`keys` is incompatible with `key`, `start_key` and `end_key`",
        ));
    }
    Ok(opts)
}

fn string_list(v: &Value, what: &str, kind: ListKind) -> Result<Vec<String>> {
    if let Some(list) = v.as_array() {
        limits::check(kind, list.len())?;
    }
    v.as_array()
        .and_then(|a| a.iter().map(|k| k.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| CouchError::bad_request(format!("`{what}` must be an array of strings")))
}

async fn all_docs_get(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    p: Params,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    all_docs(db, all_docs_options(&p, None)?).await
}

async fn all_docs_post(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let keys = match body.get("keys") {
        Some(v) => Some(string_list(v, "keys", ListKind::Keys)?),
        None => None,
    };
    all_docs(db, all_docs_options(&p, keys)?).await
}

struct AllDocsState {
    db: Db,
    opts: Arc<AllDocsOptions>,
    at: AllDocsCursor,
    skip: usize,
    left: Option<usize>,
}

/// `_all_docs`, streamed a page at a time.
async fn all_docs(db: Db, opts: AllDocsOptions) -> Result<Response> {
    let info = db.info().await?;
    let update_seq = if opts.update_seq {
        format!("\"update_seq\":{},", info.update_seq)
    } else {
        String::new()
    };
    let head = format!(
        "{{\"total_rows\":{},\"offset\":{},{update_seq}\"rows\":[",
        info.doc_count, opts.skip
    );
    let st = AllDocsState {
        db,
        skip: opts.skip,
        left: opts.limit,
        opts: Arc::new(opts),
        at: AllDocsCursor::Start,
    };
    let first = all_docs_page(st).await?;
    Ok(json_pages(head, first, all_docs_page))
}

async fn all_docs_page(mut st: AllDocsState) -> Result<Step<AllDocsState>> {
    let max = st.left.unwrap_or(usize::MAX).min(ALL_DOCS_PAGE);
    let page = st.db.all_docs_page(&st.opts, &st.at, st.skip, max).await?;
    st.skip = st.skip.saturating_sub(page.skipped);
    st.left = st.left.map(|l| l.saturating_sub(page.rows.len()));
    match page.next {
        Some(at) if st.left != Some(0) => {
            st.at = at;
            Ok(Step::More(page.rows, st))
        }
        _ => Ok(Step::Last(page.rows, "]}".into())),
    }
}

// ---- documents ----

async fn read_doc(
    state: &AppState,
    session: &Session,
    name: &str,
    id: &str,
    p: &Params,
) -> Result<Response> {
    state.service.may_read_doc(&session.user, name, id)?;
    let db = db(state, name).await?;
    let opts = doc_options(p)?;
    if let Some(which) = p.get("open_revs") {
        let which = if which == "all" {
            OpenRevs::All
        } else {
            let v: Value = serde_json::from_str(which).map_err(|_| {
                CouchError::bad_request("open_revs must be \"all\" or a JSON array")
            })?;
            OpenRevs::Some(revs_list(&v, "open_revs", ListKind::OpenRevs)?)
        };
        return Ok(Json(Value::Array(db.open_revs(id, &which, &opts).await?)).into_response());
    }
    let doc = db.get(id, &opts).await?;
    let etag = doc["_rev"].as_str().map(|r| format!("\"{r}\""));
    let mut resp = Json(doc).into_response();
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    Ok(resp)
}

async fn write_doc(
    state: &AppState,
    session: &Session,
    name: &str,
    id: String,
    p: &Params,
    headers: &HeaderMap,
    mut doc: Value,
) -> Result<Response> {
    // An unknown database is reported before anything about the body.
    db(state, name).await?;
    let Value::Object(map) = &mut doc else {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    };
    if let Some(body_id) = map.get("_id").and_then(Value::as_str) {
        if body_id != id {
            return Err(CouchError::bad_request(
                "Document id in the body does not match the URL",
            ));
        }
    }
    map.insert("_id".into(), Value::String(id.clone()));
    if !map.contains_key("_rev") {
        if let Some(rev) = rev_param(p, None, headers)? {
            map.insert("_rev".into(), Value::String(rev.to_string()));
        }
    }
    let new_edits = p.get("new_edits") != Some("false");
    let r = single(write_docs(state, session, name, vec![doc], new_edits).await?)?;
    Ok(write_response(r, StatusCode::CREATED))
}

async fn delete_doc(
    state: &AppState,
    session: &Session,
    name: &str,
    id: String,
    p: &Params,
    headers: &HeaderMap,
) -> Result<Response> {
    db(state, name).await?;
    let rev = rev_param(p, None, headers)?.ok_or_else(CouchError::conflict)?;
    let doc = json!({"_id": id, "_rev": rev.to_string(), "_deleted": true});
    let r = single(write_docs(state, session, name, vec![doc], true).await?)?;
    Ok(write_response(r, StatusCode::OK))
}

/// A document's database and id, from `/{db}/{doc}` or `/{db}/_design/{ddoc}`.
pub struct DocPath {
    db: String,
    id: String,
    att: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for DocPath {
    type Rejection = CouchError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let CouchPath(mut p) =
            CouchPath::<std::collections::HashMap<String, String>>::from_request_parts(
                parts, state,
            )
            .await?;
        let db = p.remove("db").unwrap_or_default();
        let id = match (p.remove("ddoc"), p.remove("doc")) {
            (Some(ddoc), _) => format!("_design/{ddoc}"),
            (None, Some(doc)) => doc,
            (None, None) => return Err(CouchError::bad_request("no document in the path")),
        };
        Ok(DocPath {
            db,
            id,
            att: p.remove("att"),
        })
    }
}

impl DocPath {
    fn att(&self) -> Result<&str> {
        self.att
            .as_deref()
            .ok_or_else(|| CouchError::bad_request("no attachment in the path"))
    }
}

async fn doc_get(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
) -> Result<Response> {
    read_doc(&s, &session, &d.db, &d.id, &p).await
}

async fn doc_put(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
    JsonBody(doc): JsonBody,
) -> Result<Response> {
    write_doc(&s, &session, &d.db, d.id, &p, &headers, doc).await
}

async fn doc_delete(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
) -> Result<Response> {
    delete_doc(&s, &session, &d.db, d.id, &p, &headers).await
}

// ---- attachments ----

async fn read_att(
    state: &AppState,
    name: &str,
    id: &str,
    att: &str,
    p: &Params,
) -> Result<Response> {
    let db = db(state, name).await?;
    let rev = match p.get("rev") {
        Some(r) => {
            Some(Rev::parse(r).ok_or_else(|| CouchError::bad_request("Invalid rev format"))?)
        }
        None => None,
    };
    let a = db.get_attachment(id, att, rev.as_ref()).await?;
    let mut resp = a.data.into_response();
    let h = resp.headers_mut();
    if let Ok(ct) = HeaderValue::from_str(&a.content_type) {
        h.insert(header::CONTENT_TYPE, ct);
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", a.digest)) {
        h.insert(header::ETAG, etag);
    }
    if let Some(md5) = a
        .digest
        .strip_prefix("md5-")
        .and_then(|m| HeaderValue::from_str(m).ok())
    {
        h.insert("content-md5", md5);
    }
    Ok(resp)
}

async fn write_att(
    state: &AppState,
    session: &Session,
    d: &DocPath,
    p: &Params,
    headers: &HeaderMap,
    data: Option<bytes::Bytes>,
) -> Result<Response> {
    let (name, id, att) = (&d.db, &d.id, d.att()?);
    let db = db(state, name).await?;
    state
        .auth
        .authorize_doc_writes(&session.user, name, std::iter::once(id.as_str()))
        .await?;
    let rev = rev_param(p, None, headers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let is_put = data.is_some();
    let r = db
        .update_attachment(id, att, rev, data.map(|d| (content_type, d)))
        .await?;
    Ok(write_response(
        r,
        if is_put {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
    ))
}

async fn att_get(State(s): State<AppState>, d: DocPath, p: Params) -> Result<Response> {
    read_att(&s, &d.db, &d.id, d.att()?, &p).await
}

async fn att_put(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
    RawBody(data): RawBody,
) -> Result<Response> {
    write_att(&s, &session, &d, &p, &headers, Some(data)).await
}

async fn att_delete(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
) -> Result<Response> {
    write_att(&s, &session, &d, &p, &headers, None).await
}

// ---- _local ----

async fn local_attachment() -> CouchError {
    CouchError::bad_request("_local documents do not accept attachments.")
}

async fn local_get(
    State(s): State<AppState>,
    CouchPath((name, id)): CouchPath<(String, String)>,
) -> Result<Json<Value>> {
    Ok(Json(db(&s, &name).await?.get_local(&id).await?))
}

async fn local_put(
    State(s): State<AppState>,
    CouchPath((name, id)): CouchPath<(String, String)>,
    JsonBody(doc): JsonBody,
) -> Result<Response> {
    if !doc.is_object() {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    }
    let rev = db(&s, &name).await?.put_local(&id, doc).await?;
    Ok(created(
        json!({"ok": true, "id": format!("_local/{id}"), "rev": rev}),
    ))
}

async fn local_delete(
    State(s): State<AppState>,
    CouchPath((name, id)): CouchPath<(String, String)>,
    p: Params,
) -> Result<Json<Value>> {
    let mut doc = Map::new();
    doc.insert("_deleted".into(), Value::Bool(true));
    if let Some(r) = p.get("rev") {
        doc.insert("_rev".into(), Value::String(r.to_owned()));
    }
    let rev = db(&s, &name)
        .await?
        .put_local(&id, Value::Object(doc))
        .await?;
    Ok(Json(
        json!({"ok": true, "id": format!("_local/{id}"), "rev": rev}),
    ))
}

/// Doc ids for `filter=_doc_ids`, from the query or a POST body.
pub(super) fn doc_ids_filter(p: &Params, body: Option<&Value>) -> Result<Option<HashSet<String>>> {
    match p.get("filter") {
        None => Ok(None),
        Some("_doc_ids") => {
            let v = match body.and_then(|b| b.get("doc_ids")) {
                Some(v) => v.clone(),
                None => p
                    .json("doc_ids")?
                    .ok_or_else(|| CouchError::bad_request("filter=_doc_ids needs doc_ids"))?,
            };
            Ok(Some(
                string_list(&v, "doc_ids", ListKind::DocIds)?
                    .into_iter()
                    .collect(),
            ))
        }
        Some(other) => Err(CouchError::bad_request(format!(
            "filter {other:?} is not supported; only _doc_ids is"
        ))),
    }
}
