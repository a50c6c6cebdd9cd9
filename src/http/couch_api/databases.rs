//! A database as a whole: info, create, delete, `POST /db`, `_security`, `_compact`,
//! `_purge`, `_ensure_full_commit`.

use super::*;

pub(super) async fn db_info(
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
        // A database has no file of its own: every size is what its documents hold.
        "sizes": {"active": info.bytes, "external": info.bytes, "file": info.bytes},
        "props": {},
    })))
}

pub(super) async fn db_create(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    state.couch.create_db(&name).await?;
    Ok(created(json!({"ok": true})))
}

pub(super) async fn db_delete(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Json<Value>> {
    state.couch.delete_db(&name).await?;
    Ok(Json(json!({"ok": true})))
}

/// `POST /db`: a new document, with a generated id unless it brings one.
pub(super) async fn db_post(
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

pub(super) async fn security_get(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Json<Value>> {
    Ok(Json(db(&state, &name).await?.security().await?.to_json()))
}

pub(super) async fn security_put(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let sec = crate::couch::Security::from_json(&body)?;
    db(&state, &name).await?.put_security(&sec).await?;
    Ok(Json(json!({"ok": true})))
}

/// `POST /{db}/_compact`: `202 {"ok":true}` at once; compaction runs in the background
/// (`compact_running` in the database's info meanwhile). Asking again while it runs is a no-op.
pub(super) async fn compact(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    start_compaction(&state, db);
    Ok((StatusCode::ACCEPTED, Json(json!({"ok": true}))).into_response())
}

/// `POST /{db}/_purge` (CouchDB 3's shape): `{id: [revs]}` →
/// `201 {"purge_seq": null, "purged": {id: [revs purged]}}`.
pub(super) async fn purge(
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

pub(super) async fn ensure_full_commit(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    // Every acknowledged write is already durable (the store commits before answering).
    db(&state, &name).await?.info().await?;
    Ok(created(json!({"ok": true, "instance_start_time": "0"})))
}
