//! `_local` documents.

use super::*;

pub(super) async fn local_attachment() -> CouchError {
    CouchError::bad_request("_local documents do not accept attachments.")
}

pub(super) async fn local_get(
    State(s): State<AppState>,
    CouchPath((name, id)): CouchPath<(String, String)>,
) -> Result<Json<Value>> {
    Ok(Json(db(&s, &name).await?.get_local(&id).await?))
}

pub(super) async fn local_put(
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

pub(super) async fn local_delete(
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
