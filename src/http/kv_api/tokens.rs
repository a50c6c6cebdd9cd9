//! `/_couchkv/tokens`: API tokens made, listed and revoked by server admins.

use super::*;
use crate::auth::tokens::NewToken;

/// A failure of the server's own storage: 500 in Cloudflare's envelope.
fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, 10001, e.to_string())
}

/// `GET /_couchkv/tokens` (server admins): every token's id, name, scope, creation and
/// expiry; never a secret.
pub(super) async fn list_tokens(State(s): State<AppState>) -> Result<Response> {
    let tokens = s.tokens.list().await.map_err(internal)?;
    Ok(ok(Value::Array(
        tokens.iter().map(|t| t.to_json()).collect(),
    )))
}

/// `DELETE /_couchkv/tokens/{id}` (server admins): the token stops working at once.
pub(super) async fn revoke_token(
    State(s): State<AppState>,
    KvPath(id): KvPath<String>,
) -> Result<Response> {
    let found = s.tokens.revoke(&id).await.map_err(internal)?;
    if !found {
        return Err(ApiError::new(404, 10000, "token not found"));
    }
    Ok(ok(json!({"id": id})))
}

/// `POST /_couchkv/tokens` (server admins): `{name, namespaces?: [id], write: bool,
/// expires_in?: seconds}` → `{token}`, shown this once.
pub(super) async fn create_token(
    State(s): State<AppState>,
    KvBody(body): KvBody,
) -> Result<Response> {
    let now = s.auth.now();
    let new = NewToken::from_json(&json_body(&body)?, now).map_err(ApiError::bad)?;
    let token = s.tokens.create(&new, now).await.map_err(internal)?;
    Ok(ok(json!({"token": token})))
}
