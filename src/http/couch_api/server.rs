//! Server-wide routes: `_all_dbs`, `_uuids`.

use super::*;

pub(super) async fn all_dbs(State(state): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(json!(state.couch.all_dbs().await?)))
}

pub(super) async fn uuids(State(state): State<AppState>, p: Params) -> Result<Json<Value>> {
    let count = p.number("count")?.unwrap_or(1);
    if count > 1000 {
        return Err(CouchError::bad_request("count parameter too large"));
    }
    let ids: Vec<String> = (0..count).map(|_| state.couch.ids().new_id()).collect();
    Ok(Json(json!({"uuids": ids})))
}
