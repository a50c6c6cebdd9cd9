//! Mango over HTTP: `_find` (streamed a page at a time), `_explain`, `_index`.

use super::*;
use crate::couch::mango::query::{choose, encode_bookmark, Plan};
use crate::couch::mango::{FindRequest, IndexDef, IndexRequest};
use crate::couch::FIND_PAGE;

/// The database and the parsed request of a `_find` or `_explain`, and which index answers it.
async fn planned(
    state: &AppState,
    name: &str,
    body: &Value,
) -> Result<(Db, FindRequest, Plan, Option<String>)> {
    let db = db(state, name).await?;
    let req = FindRequest::parse(body)?;
    let (plan, warning) = choose(&req, &db.mango_indexes().await?)?;
    Ok((db, req, plan, warning))
}

pub(super) struct FindState {
    db: Db,
    req: Arc<FindRequest>,
    plan: Arc<Plan>,
    warning: Option<String>,
    after: Option<Vec<u8>>,
    bookmark: Option<Vec<u8>>,
    skip: usize,
    left: usize,
    keys: u64,
    docs: u64,
    returned: u64,
    /// The clock's milliseconds when the request came (the host's clock: a Worker has no
    /// `Instant`).
    started: u64,
    clock: Arc<dyn crate::clock::Clock>,
}

pub(super) async fn find(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let clock = state.kv.clock().clone();
    let started = clock.now_millis();
    let (db, req, plan, warning) = planned(&state, &name, &body).await?;
    // The index read is brought up to date first, unless the request says not to.
    if let (Plan::Json(def), true) = (&plan, req.update) {
        db.update_index(def).await?;
    }
    let st = FindState {
        db,
        after: req.bookmark.clone(),
        bookmark: req.bookmark.clone(),
        skip: req.skip,
        left: req.limit,
        req: Arc::new(req),
        plan: Arc::new(plan),
        warning,
        keys: 0,
        docs: 0,
        returned: 0,
        started,
        clock,
    };
    let first = find_page(st).await?;
    Ok(json_pages("{\"docs\":[".into(), first, find_page))
}

async fn find_page(mut st: FindState) -> Result<Step<FindState>> {
    if st.left == 0 {
        return Ok(Step::Last(Vec::new(), find_tail(&st)));
    }
    let max = st.left.min(FIND_PAGE);
    let page = st
        .db
        .find_page(&st.plan, &st.req, st.after.as_deref(), st.skip, max)
        .await?;
    st.skip = st.skip.saturating_sub(page.skipped);
    st.left = st.left.saturating_sub(page.docs.len());
    st.keys += page.keys_examined;
    st.docs += page.docs_examined;
    st.returned += page.docs.len() as u64;
    if page.last_returned.is_some() {
        st.bookmark = page.last_returned;
    }
    match page.next {
        Some(next) if st.left > 0 => {
            st.after = Some(next);
            Ok(Step::More(page.docs, st))
        }
        _ => {
            let tail = find_tail(&st);
            Ok(Step::Last(page.docs, tail))
        }
    }
}

/// What follows the documents: the bookmark, a warning, the execution statistics.
fn find_tail(st: &FindState) -> String {
    let mut tail = Map::new();
    tail.insert(
        "bookmark".into(),
        Value::String(match &st.bookmark {
            Some(k) => encode_bookmark(k),
            None => "nil".into(),
        }),
    );
    if let Some(w) = &st.warning {
        tail.insert("warning".into(), Value::String(w.clone()));
    }
    if st.req.execution_stats {
        tail.insert(
            "execution_stats".into(),
            json!({
                "total_keys_examined": st.keys,
                "total_docs_examined": st.docs,
                "total_quorum_docs_examined": 0,
                "results_returned": st.returned,
                "execution_time_ms": st.clock.now_millis().saturating_sub(st.started),
            }),
        );
    }
    let rest = Value::Object(tail).to_string();
    // `{"bookmark":…}` → `],"bookmark":…}`
    format!("],{}", &rest[1..])
}

pub(super) async fn explain(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let (db, req, plan, _) = planned(&state, &name, &body).await?;
    let range = match &plan {
        Plan::AllDocs => json!({"start_key": null, "end_key": null}),
        Plan::Json(def) => {
            let first = def.paths[0].clone();
            let r = req.selector.range_of(&first);
            json!({
                "start_key": r.low.map(|(v, _)| vec![v]),
                "end_key": r.high.map(|(v, _)| vec![v]),
            })
        }
    };
    let mut opts = json!({
        "use_index": [],
        "bookmark": "nil",
        "limit": req.limit,
        "skip": req.skip,
        "sort": {},
        "fields": req.fields_json.clone().unwrap_or(json!("all_fields")),
        "r": [49],
        "conflicts": req.conflicts,
    });
    if !req.sort_json.is_empty() {
        opts["sort"] = Value::Array(req.sort_json.clone());
    }
    Ok(Json(json!({
        "dbname": db.name(),
        "index": plan.to_json(),
        "partitioned": false,
        "selector": req.selector_json,
        "opts": opts,
        "limit": req.limit,
        "skip": req.skip,
        "fields": req.fields_json.clone().unwrap_or(json!("all_fields")),
        "mrargs": {
            "include_docs": true,
            "view_type": "map",
            "reduce": false,
            "direction": if req.dir == crate::couch::mango::SortDir::Desc { "rev" } else { "fwd" },
            "start_key": range["start_key"],
            "end_key": range["end_key"],
            "stable": false,
            "update": req.update,
        },
    }))
    .into_response())
}

pub(super) async fn index_list(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let mut indexes = vec![crate::couch::mango::query::all_docs_index_json()];
    indexes.extend(db.mango_indexes().await?.iter().map(IndexDef::to_json));
    Ok(Json(json!({"total_rows": indexes.len(), "indexes": indexes})).into_response())
}

pub(super) async fn index_create(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let req = IndexRequest::parse(&body)?;
    let created = db.put_index(&req).await?;
    let out = json!({
        "result": if created { "created" } else { "exists" },
        "id": req.ddoc,
        "name": req.name,
    });
    Ok(Json(out).into_response())
}

pub(super) async fn index_delete(
    State(state): State<AppState>,
    CouchPath((name, ddoc, kind, index)): CouchPath<(String, String, String, String)>,
) -> Result<Response> {
    if kind != "json" {
        return Err(CouchError::not_found("Index not found"));
    }
    let db = db(&state, &name).await?;
    let ddoc = if ddoc.starts_with("_design/") {
        ddoc
    } else {
        format!("_design/{ddoc}")
    };
    db.delete_index(&ddoc, &index).await?;
    Ok(Json(json!({"ok": true})).into_response())
}
