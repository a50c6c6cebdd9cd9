//! `/_couchkv/tokens`: API tokens made, listed and revoked by server admins.

use super::*;

/// `GET /_couchkv/tokens` (server admins): every token's id, name, scope, creation and
/// expiry; never a secret.
pub(super) async fn list_tokens(State(s): State<AppState>) -> Result<Response> {
    let tokens = crate::auth::tokens::list(s.kv.store().as_ref(), crate::auth::SYSTEM_NAMESPACE)
        .await
        .map_err(|e| ApiError::new(500, 10001, e.to_string()))?;
    Ok(ok(Value::Array(
        tokens.iter().map(|t| t.to_json()).collect(),
    )))
}

/// `DELETE /_couchkv/tokens/{id}` (server admins): the token stops working at once.
pub(super) async fn revoke_token(
    State(s): State<AppState>,
    KvPath(id): KvPath<String>,
) -> Result<Response> {
    let found =
        crate::auth::tokens::revoke(s.kv.store().as_ref(), crate::auth::SYSTEM_NAMESPACE, &id)
            .await
            .map_err(|e| ApiError::new(500, 10001, e.to_string()))?;
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
    let req = json_body(&body)?;
    let name = req["name"]
        .as_str()
        .ok_or_else(|| ApiError::bad("name is required"))?;
    let namespaces: Vec<String> = match &req["namespaces"] {
        Value::Null => Vec::new(),
        v => serde_json::from_value(v.clone())
            .map_err(|_| ApiError::bad("namespaces must be an array of ids"))?,
    };
    let write = match (req.get("write"), req.get("read")) {
        (Some(Value::Bool(w)), _) => *w,
        (None, Some(Value::Bool(true))) => false,
        _ => {
            return Err(ApiError::bad(
                "give the token a scope: \"write\": true, or \"read\": true",
            ))
        }
    };
    let now = s.auth.now();
    let expires = match req.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| now.checked_add(n))
                .ok_or_else(|| ApiError::bad("expires_in must be a positive number of seconds"))?,
        ),
    };
    let new = crate::auth::tokens::NewToken {
        name: name.to_owned(),
        namespaces,
        write,
        expires,
    };
    let token = crate::auth::tokens::create(
        s.kv.store().as_ref(),
        crate::auth::SYSTEM_NAMESPACE,
        &new,
        now,
    )
    .await
    .map_err(|e| ApiError::new(500, 10001, e.to_string()))?;
    Ok(ok(json!({"token": token})))
}
