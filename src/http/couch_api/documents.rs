//! One document: GET, PUT, DELETE.

use super::*;

pub(super) async fn read_doc(
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
        let which = open_revs(which)?;
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

/// `open_revs=all` or a JSON array of revisions.
fn open_revs(which: &str) -> Result<OpenRevs> {
    if which == "all" {
        return Ok(OpenRevs::All);
    }
    let v: Value = serde_json::from_str(which)
        .map_err(|_| CouchError::bad_request("open_revs must be \"all\" or a JSON array"))?;
    Ok(OpenRevs::Some(revs_list(
        &v,
        "open_revs",
        ListKind::OpenRevs,
    )?))
}

pub(super) async fn write_doc(
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
    put_target(&mut doc, &id, p, headers)?;
    let new_edits = p.get("new_edits") != Some("false");
    let r = single(write_docs(state, session, name, vec![doc], new_edits).await?)?;
    Ok(write_response(r, StatusCode::CREATED))
}

/// A PUT's document with its `_id` from the URL (a different one in the body is refused) and
/// its `_rev` from `?rev=` or `If-Match` when the body has none.
fn put_target(doc: &mut Value, id: &str, p: &Params, headers: &HeaderMap) -> Result<()> {
    let Value::Object(map) = doc else {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    };
    if let Some(body_id) = map.get("_id").and_then(Value::as_str) {
        if body_id != id {
            return Err(CouchError::bad_request(
                "Document id in the body does not match the URL",
            ));
        }
    }
    map.insert("_id".into(), Value::String(id.to_owned()));
    if !map.contains_key("_rev") {
        if let Some(rev) = rev_param(p, None, headers)? {
            map.insert("_rev".into(), Value::String(rev.to_string()));
        }
    }
    Ok(())
}

pub(super) async fn delete_doc(
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

pub(super) async fn doc_get(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
) -> Result<Response> {
    read_doc(&s, &session, &d.db, &d.id, &p).await
}

pub(super) async fn doc_put(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
    JsonBody(doc): JsonBody,
) -> Result<Response> {
    write_doc(&s, &session, &d.db, d.id, &p, &headers, doc).await
}

pub(super) async fn doc_delete(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
) -> Result<Response> {
    delete_doc(&s, &session, &d.db, d.id, &p, &headers).await
}
