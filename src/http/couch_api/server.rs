//! Server-wide routes: `_all_dbs`, `_uuids`.

use super::*;

/// Names read per page of an `_all_dbs` answer, which is streamed: a server with a million
/// databases answers a request for all of them in bounded memory.
const ALL_DBS_PAGE: usize = 1000;

/// Where an `_all_dbs` answer is: the next page's range, names still to skip and to give.
struct AllDbsAt {
    couch: Arc<Couch>,
    names: DbNames,
    skip: usize,
    left: usize,
}

/// `GET /_all_dbs` with CouchDB's `startkey`/`start_key`, `endkey`/`end_key`,
/// `inclusive_end`, `descending`, `limit` and `skip`.
pub(super) async fn all_dbs(State(state): State<AppState>, p: Params) -> Result<Response> {
    let name_param = |names: &[&str]| p.json_string(names);
    let names = DbNames {
        start: name_param(&["startkey", "start_key"])?.map(|s| (s, true)),
        end: name_param(&["endkey", "end_key"])?
            .map(|s| (s, p.get("inclusive_end") != Some("false"))),
        descending: p.flag("descending")?,
        limit: ALL_DBS_PAGE,
    };
    let at = AllDbsAt {
        couch: state.couch.clone(),
        names,
        skip: p.number("skip")?.unwrap_or(0) as usize,
        left: p.number("limit")?.map_or(usize::MAX, |l| l as usize),
    };
    let first = all_dbs_page(at).await?;
    Ok(json_pages("[".into(), first, all_dbs_page))
}

async fn all_dbs_page(mut at: AllDbsAt) -> Result<Step<AllDbsAt>> {
    while at.left > 0 {
        let names = at.couch.db_names(&at.names).await?;
        let full = names.len() == at.names.limit;
        if let Some(last) = names.last() {
            // The next page starts after the last name read, in the answer's direction.
            at.names.start = Some((last.clone(), false));
        }
        let skipped = at.skip.min(names.len());
        at.skip -= skipped;
        let rows: Vec<Value> = names
            .into_iter()
            .skip(skipped)
            .take(at.left)
            .map(Value::String)
            .collect();
        at.left -= rows.len();
        if !full {
            return Ok(Step::Last(rows, "]".into()));
        }
        if !rows.is_empty() && at.left > 0 {
            return Ok(Step::More(rows, at));
        }
        if at.left == 0 {
            return Ok(Step::Last(rows, "]".into()));
        }
    }
    Ok(Step::Last(Vec::new(), "]".into()))
}

pub(super) async fn uuids(State(state): State<AppState>, p: Params) -> Result<Json<Value>> {
    let count = p.number("count")?.unwrap_or(1);
    if count > 1000 {
        return Err(CouchError::bad_request("count parameter too large"));
    }
    let ids: Vec<String> = (0..count).map(|_| state.couch.ids().new_id()).collect();
    Ok(Json(json!({"uuids": ids})))
}
