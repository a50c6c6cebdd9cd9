//! CouchDB's HTTP API: thin handlers that parse, call the couch core and shape the answer.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use super::extract::{CouchPath, JsonBody, Params, RawBody};
use super::stream::{json_pages, Step};
use super::AppState;
use crate::auth::Session;
use crate::couch::limits::{self, ListKind};
use crate::couch::revs::Rev;
use crate::couch::{
    AllDocsCursor, AllDocsOptions, BulkGetItem, Couch, CouchError, Db, DbNames, DocOptions,
    OpenRevs, WriteResult, ALL_DOCS_PAGE,
};

mod all_docs;
mod attachments;
mod bulk;
mod databases;
mod documents;
mod find;
mod local;
mod server;
mod views;

use all_docs::*;
use attachments::*;
use bulk::*;
use databases::*;
use documents::*;
use find::*;
use local::*;
use server::*;
use views::*;

type Result<T, E = CouchError> = std::result::Result<T, E>;

pub fn routes(state: &AppState) -> Router<AppState> {
    use crate::service::access::Resource::*;
    let g = |resource, route| super::auth_layer::guarded(state, resource, route);
    // `get` answers HEAD too (the same handler, without the body). A database's own methods
    // and `POST /db` (a new document) serve different resources.
    let database = || {
        g(Database, get(db_info).put(db_create).delete(db_delete))
            .merge(g(Documents, post(db_post)))
    };
    let document = || g(Document, get(doc_get).put(doc_put).delete(doc_delete));
    let attachment = || g(Attachment, get(att_get).put(att_put).delete(att_delete));
    Router::new()
        .route("/_all_dbs", g(AdminOnly, get(all_dbs)))
        .route(
            "/_db_updates",
            g(AdminOnly, get(super::changes::db_updates)),
        )
        .route("/_uuids", get(uuids))
        // PouchDB addresses a database as `/db/`.
        .route("/{db}", database())
        .route("/{db}/", database())
        .route(
            "/{db}/_all_docs",
            g(Documents, get(all_docs_get).post(all_docs_post)),
        )
        .route("/{db}/_bulk_docs", g(Documents, post(bulk_docs)))
        .route("/{db}/_bulk_get", g(Documents, post(bulk_get)))
        .route("/{db}/_revs_diff", g(Documents, post(revs_diff)))
        .route(
            "/{db}/_ensure_full_commit",
            g(Documents, post(ensure_full_commit)),
        )
        .route("/{db}/_find", g(Documents, post(find)))
        .route("/{db}/_explain", g(Documents, post(explain)))
        .route(
            "/{db}/_index",
            g(Indexes, get(index_list).post(index_create)),
        )
        .route(
            "/{db}/_index/{ddoc}/{kind}/{index}",
            g(Indexes, axum::routing::delete(index_delete)),
        )
        .route(
            "/{db}/_index/_design/{ddoc}/{kind}/{index}",
            g(Indexes, axum::routing::delete(index_delete)),
        )
        .route("/{db}/_compact", g(Maintenance, post(compact)))
        .route("/{db}/_purge", g(Maintenance, post(purge)))
        .route(
            "/{db}/_security",
            g(Security, get(security_get).put(security_put)),
        )
        .route(
            "/{db}/_changes",
            g(
                Documents,
                get(super::changes::changes_get).post(super::changes::changes_post),
            ),
        )
        .route(
            "/{db}/_local/{id}",
            g(Local, get(local_get).put(local_put).delete(local_delete)),
        )
        .route(
            "/{db}/_local/{id}/{*att}",
            axum::routing::any(local_attachment),
        )
        .route(
            "/{db}/_design/{ddoc}/_view/{view}",
            g(Documents, get(view_get).post(view_post)),
        )
        .route(
            "/{db}/_design/{ddoc}/_info",
            g(Documents, get(view_group_info)),
        )
        .route("/{db}/_view_cleanup", g(Maintenance, post(view_cleanup)))
        .route("/{db}/_design/{ddoc}", document())
        .route("/{db}/_design/{ddoc}/{*att}", attachment())
        .route("/{db}/{doc}", document())
        .route("/{db}/{doc}/{*att}", attachment())
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
        start_compaction(state, db);
    }
    Ok(written.results)
}

fn single(mut results: Vec<WriteResult>) -> Result<WriteResult> {
    results
        .pop()
        .ok_or_else(|| CouchError::internal("no write result"))
}

/// Compacts in the background unless a compaction of that database already runs.
fn start_compaction(state: &AppState, db: Db) {
    if db.begin_compaction() {
        state.runtime.spawn(Box::pin(async move {
            match db.compact().await {
                Ok(n) => tracing::debug!(db = db.name(), dropped = n, "compacted"),
                Err(e) => tracing::warn!(db = db.name(), error = %e, "compaction failed"),
            }
        }));
    }
}

fn string_list(v: &Value, what: &str, kind: ListKind) -> Result<Vec<String>> {
    if let Some(list) = v.as_array() {
        limits::check(kind, list.len())?;
    }
    v.as_array()
        .and_then(|a| a.iter().map(|k| k.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| CouchError::bad_request(format!("`{what}` must be an array of strings")))
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

/// What `filter` asks of `_changes`: `_doc_ids` (the ids from the body or the query),
/// `_selector` (a Mango selector from the body), or a design document's filter (`ddoc/name`,
/// or `_view` with `view`), resolved against the database by [`ChangesFilter::resolve`].
pub(super) struct ChangesFilter {
    pub doc_ids: Option<HashSet<String>>,
    pub selector: Option<std::sync::Arc<crate::couch::mango::Selector>>,
    /// `filter` and `view` of a design-document filter.
    pub design: Option<(String, Option<String>)>,
}

impl ChangesFilter {
    /// The filter the feed applies: the selector, or the design document's function with
    /// CouchDB's request object (the query, the user, the database's security).
    pub async fn resolve(
        self,
        db: &Db,
        p: &Params,
        user: &crate::couch::UserCtx,
        body: Option<&Value>,
    ) -> Result<Option<std::sync::Arc<dyn crate::couch::views::ChangeFilter>>> {
        if let Some(sel) = self.selector {
            return Ok(Some(sel));
        }
        let Some((filter, view)) = self.design else {
            return Ok(None);
        };
        let query: Map<String, Value> =
            p.0.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
        let mut user_ctx = user.to_json();
        user_ctx["db"] = Value::String(db.name().to_owned());
        let req = json!({
            "info": {"db_name": db.name()},
            "id": null,
            "method": if body.is_some() { "POST" } else { "GET" },
            "path": [db.name(), "_changes"],
            "query": query,
            "headers": {},
            "body": body.map_or_else(|| "undefined".to_owned(), Value::to_string),
            "peer": "127.0.0.1",
            "form": {},
            "cookie": {},
            "userCtx": user_ctx,
            "secObj": db.security().await?.to_json(),
        });
        Ok(Some(db.design_filter(&filter, view.as_deref(), req).await?))
    }
}

pub(super) fn changes_filter(p: &Params, body: Option<&Value>) -> Result<ChangesFilter> {
    let mut out = ChangesFilter {
        doc_ids: None,
        selector: None,
        design: None,
    };
    match p.get("filter") {
        None => {}
        Some("_doc_ids") => {
            let v = match body.and_then(|b| b.get("doc_ids")) {
                Some(v) => v.clone(),
                None => p
                    .json("doc_ids")?
                    .ok_or_else(|| CouchError::bad_request("filter=_doc_ids needs doc_ids"))?,
            };
            out.doc_ids = Some(
                string_list(&v, "doc_ids", ListKind::DocIds)?
                    .into_iter()
                    .collect(),
            );
        }
        Some("_selector") => {
            let v = match body.and_then(|b| b.get("selector")) {
                Some(v) => v.clone(),
                None => p.json("selector")?.ok_or_else(|| {
                    CouchError::bad_request("Selector must be specified in POST payload")
                })?,
            };
            if !v.is_object() {
                return Err(CouchError::bad_request(
                    "Selector error: expected a JSON object",
                ));
            }
            out.selector = Some(std::sync::Arc::new(crate::couch::mango::Selector::parse(
                &v,
            )?));
        }
        Some("_design") => {
            return Err(CouchError::bad_request(
                "`filter` must be of the form `designname/filtername`",
            ))
        }
        Some(other) => {
            out.design = Some((other.to_owned(), p.get("view").map(str::to_owned)));
        }
    }
    Ok(out)
}
