//! `_bulk_docs`, `_bulk_get` (streamed a page at a time) and `_revs_diff`.

use super::*;

pub(super) async fn bulk_docs(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    Extension(session): Extension<Session>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    db(&state, &name).await?;
    let (docs, new_edits) = bulk_docs_body(body)?;
    // `_users` takes bulk writes from server admins only (the auth layer saw to that).
    let results = write_docs(&state, &session, &name, docs, new_edits).await?;
    let rows = results
        .into_iter()
        .filter_map(|r| bulk_docs_row(r, new_edits))
        .collect();
    Ok(created(Value::Array(rows)))
}

/// `{docs: [..], new_edits?}`: the documents, each checked in itself (as CouchDB, one that is
/// wrong refuses the whole request), and `new_edits`.
fn bulk_docs_body(body: Value) -> Result<(Vec<Value>, bool)> {
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
    for doc in &docs {
        crate::couch::validate_document(doc, new_edits)?;
    }
    Ok((docs, new_edits))
}

/// One row of `_bulk_docs`' answer; with new_edits=false CouchDB reports only failures.
fn bulk_docs_row(result: WriteResult, new_edits: bool) -> Option<Value> {
    match result {
        WriteResult::Ok { .. } if !new_edits => None,
        WriteResult::Ok { id, rev } => Some(json!({"ok": true, "id": id, "rev": rev})),
        WriteResult::Err { id, error } => {
            Some(json!({"id": id, "error": error.error, "reason": error.reason}))
        }
    }
}

pub(super) async fn bulk_get(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let items = bulk_get_items(&body)?;
    drop(body);
    let mut opts = doc_options(&p)?;
    opts.rev = None;
    let st = (db, Arc::new(items), Arc::new(opts), 0);
    let first = bulk_get_page(st).await?;
    Ok(json_pages("{\"results\":[".into(), first, bulk_get_page))
}

/// `{docs: [{id, rev?, atts_since?}]}` as what to read.
fn bulk_get_items(body: &Value) -> Result<Vec<BulkGetItem>> {
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
    Ok(items)
}

/// Documents of a `_bulk_get` read and sent per page.
pub(super) const BULK_GET_PAGE: usize = 100;

pub(super) type BulkGetState = (Db, Arc<Vec<BulkGetItem>>, Arc<DocOptions>, usize);

pub(super) async fn bulk_get_page(
    (db, items, opts, at): BulkGetState,
) -> Result<Step<BulkGetState>> {
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

pub(super) async fn revs_diff(
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
