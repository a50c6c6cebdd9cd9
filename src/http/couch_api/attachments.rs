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
    Ok(attachment_response(a))
}

/// The attachment's bytes with its content type, digest as ETag and MD5.
fn attachment_response(a: crate::couch::AttachmentData) -> Response {
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
    resp
}

pub(super) async fn write_att(
    state: &AppState,
    session: &Session,
    d: &DocPath,
    p: &Params,
    headers: &HeaderMap,
    data: Option<bytes::Bytes>,
) -> Result<Response> {
    let rev = rev_param(p, None, headers)?;
    let content_type = content_type_of(headers);
    let status = match data {
        Some(_) => StatusCode::CREATED,
        None => StatusCode::OK,
    };
    let r = state
        .service
        .write_attachment(
            &session.user,
            &d.db,
            &d.id,
            d.att()?,
            rev,
            data.map(|d| (content_type, d)),
        )
        .await?;
    Ok(write_response(r, status))
}

/// The attachment's content type, as its writer sent it.
fn content_type_of(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned()
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
