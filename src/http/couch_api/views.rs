//! Views over HTTP: `/_design/{ddoc}/_view/{view}` (GET, and POST with `keys`), streamed a page
//! at a time; `/_design/{ddoc}/_info`; `/_view_cleanup`.

use super::*;
use crate::couch::views::{Update, ViewQuery};
use crate::couch::ViewCursor;

/// A view query's parameters (CouchDB's names and their aliases).
fn view_query(p: &Params, body_keys: Option<Vec<Value>>) -> Result<ViewQuery> {
    let first = |names: &[&str]| -> Result<Option<Value>> {
        for n in names {
            if let Some(v) = p.json(n)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    let docid = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| p.get(n).map(str::to_owned))
    };
    let key = first(&["key"])?;
    let keys = match body_keys {
        Some(k) => Some(k),
        None => match first(&["keys"])? {
            Some(Value::Array(k)) => Some(k),
            Some(_) => return Err(CouchError::bad_request("`keys` member must be an array.")),
            None => None,
        },
    };
    let mut q = ViewQuery {
        start: first(&["startkey", "start_key"])?,
        start_docid: docid(&["startkey_docid", "start_key_doc_id"]),
        end: first(&["endkey", "end_key"])?,
        end_docid: docid(&["endkey_docid", "end_key_doc_id"]),
        inclusive_end: p.get("inclusive_end") != Some("false"),
        descending: p.flag("descending")?,
        limit: p
            .number("limit")?
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        skip: p
            .number("skip")?
            .map_or(0, |s| usize::try_from(s).unwrap_or(usize::MAX)),
        include_docs: p.flag("include_docs")?,
        conflicts: p.flag("conflicts")?,
        attachments: p.flag("attachments")?,
        reduce: match p.get("reduce") {
            None => None,
            Some(_) => Some(p.flag("reduce")?),
        },
        group: p.flag("group")?,
        group_level: match p.get("group_level") {
            None | Some("exact") => None,
            Some(_) => p
                .number("group_level")?
                .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        },
        update_seq: p.flag("update_seq")?,
        update: match (p.get("update"), p.get("stale")) {
            (Some("false"), _) | (_, Some("ok")) => Update::Never,
            (Some("lazy"), _) | (_, Some("update_after")) => Update::After,
            (None | Some("true"), None) => Update::Before,
            (Some(u), _) => {
                return Err(CouchError::query_parse_error(format!(
                    "Invalid value for `update`: {u}"
                )))
            }
            (_, Some(s)) => {
                return Err(CouchError::query_parse_error(format!(
                    "Invalid value for `stale`: {s}"
                )))
            }
        },
        keys,
    };
    if let Some(k) = key {
        if q.keys.is_some() {
            return Err(CouchError::query_parse_error(
                "`keys` is incompatible with `key`",
            ));
        }
        q.start = Some(k.clone());
        q.end = Some(k);
        q.inclusive_end = true;
    }
    if q.keys.is_some() && (q.start.is_some() || q.end.is_some()) {
        return Err(CouchError::query_parse_error(
            "`keys` is incompatible with `key`, `start_key` and `end_key`",
        ));
    }
    if q.group_level.is_some() && p.get("group") == Some("false") {
        return Err(CouchError::query_parse_error(
            "Invalid use of grouping on a map view.",
        ));
    }
    Ok(q)
}

/// `/{db}/_design/{ddoc}/_view/{view}` path parts.
type ViewPath = (String, String, String);

pub(super) async fn view_get(
    State(state): State<AppState>,
    CouchPath((name, ddoc, view)): CouchPath<ViewPath>,
    p: Params,
) -> Result<Response> {
    run_view(state, name, ddoc, view, view_query(&p, None)?).await
}

pub(super) async fn view_post(
    State(state): State<AppState>,
    CouchPath((name, ddoc, view)): CouchPath<ViewPath>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let keys = match body.get("keys") {
        None => None,
        Some(Value::Array(k)) => Some(k.clone()),
        Some(_) => return Err(CouchError::bad_request("`keys` member must be an array.")),
    };
    run_view(state, name, ddoc, view, view_query(&p, keys)?).await
}

async fn run_view(
    state: AppState,
    name: String,
    ddoc: String,
    view: String,
    q: ViewQuery,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let group = db.view_group(&format!("_design/{ddoc}")).await?;
    let update = q.update;
    if update == Update::Before {
        db.update_view(&group).await?;
    }
    let wants_seq = q.update_seq;
    let mut cursor = db.view_query(group.clone(), &view, q).await?;
    if update == Update::After {
        let (db, group) = (db.clone(), group.clone());
        state.runtime.spawn(Box::pin(async move {
            let _ = db.update_view(&group).await;
        }));
    }
    let mut head = String::from("{");
    if !cursor.reduces() {
        head.push_str(&format!(
            "\"total_rows\":{},\"offset\":{},",
            cursor.total_rows, cursor.offset
        ));
    }
    if wants_seq {
        head.push_str(&format!("\"update_seq\":{},", cursor.update_seq));
    }
    head.push_str("\"rows\":[");
    let first = view_page(cursor_step(&mut cursor).await?, cursor);
    Ok(json_pages(head, first, |c: ViewCursor| async move {
        let mut c = c;
        let rows = cursor_step(&mut c).await?;
        Ok(view_page(rows, c))
    }))
}

/// The next rows, skipping pages that had none (a reduction reads many entries per row), so an
/// error found before the first row is answered with its status, not cut into a stream.
async fn cursor_step(c: &mut ViewCursor) -> Result<Option<Vec<Value>>> {
    loop {
        match c.next_page().await? {
            Some(rows) if rows.is_empty() => continue,
            other => return Ok(other),
        }
    }
}

fn view_page(rows: Option<Vec<Value>>, c: ViewCursor) -> Step<ViewCursor> {
    match rows {
        Some(rows) => Step::More(rows, c),
        None => Step::Last(Vec::new(), "]}".into()),
    }
}

/// `GET /{db}/_design/{ddoc}/_info`.
pub(super) async fn view_group_info(
    State(state): State<AppState>,
    CouchPath((name, ddoc)): CouchPath<(String, String)>,
) -> Result<Json<Value>> {
    let db = db(&state, &name).await?;
    let group = db.view_group(&format!("_design/{ddoc}")).await?;
    let info = db.view_info(&group).await?;
    Ok(Json(json!({
        "name": ddoc,
        "view_index": {
            "signature": info.signature,
            "language": "javascript",
            "update_seq": info.update_seq,
            "purge_seq": 0,
            "updater_running": false,
            "compact_running": false,
            "waiting_clients": 0,
            "waiting_commit": false,
            "rows": info.rows,
        }
    })))
}

/// `POST /{db}/_view_cleanup`.
pub(super) async fn view_cleanup(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    db(&state, &name).await?.view_cleanup().await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"ok": true}))).into_response())
}
