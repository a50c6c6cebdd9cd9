//! One attachment: GET, PUT, DELETE.

use super::*;

pub(super) async fn read_att(
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

pub(super) async fn write_att(
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

pub(super) async fn att_get(State(s): State<AppState>, d: DocPath, p: Params) -> Result<Response> {
    read_att(&s, &d.db, &d.id, d.att()?, &p).await
}

pub(super) async fn att_put(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
    RawBody(data): RawBody,
) -> Result<Response> {
    write_att(&s, &session, &d, &p, &headers, Some(data)).await
}

pub(super) async fn att_delete(
    State(s): State<AppState>,
    Extension(session): Extension<Session>,
    d: DocPath,
    p: Params,
    headers: HeaderMap,
) -> Result<Response> {
    write_att(&s, &session, &d, &p, &headers, None).await
}
