//! `_all_docs`, GET and POST, streamed a page at a time.

use super::*;

pub(super) fn all_docs_options(p: &Params, keys: Option<Vec<String>>) -> Result<AllDocsOptions> {
    let key_param = |names: &[&str]| p.json_string(names);
    let key = key_param(&["key"])?;
    let mut opts = AllDocsOptions {
        start: key_param(&["startkey", "start_key"])?,
        end: key_param(&["endkey", "end_key"])?,
        inclusive_end: p.get("inclusive_end") != Some("false"),
        descending: p.flag("descending")?,
        limit: p.number("limit")?.map(|l| l as usize),
        skip: p.number("skip")?.unwrap_or(0) as usize,
        include_docs: p.flag("include_docs")?,
        conflicts: p.flag("conflicts")?,
        attachments: p.flag("attachments")?,
        update_seq: p.flag("update_seq")?,
        keys,
    };
    if let Some(k) = key {
        opts.start = Some(k.clone());
        opts.end = Some(k);
        opts.inclusive_end = true;
    }
    if opts.keys.is_none() {
        if let Some(v) = p.json("keys")? {
            opts.keys = Some(string_list(&v, "keys", ListKind::Keys)?);
        }
    }
    let ranged = ["key", "startkey", "start_key", "endkey", "end_key"]
        .iter()
        .any(|k| p.get(k).is_some());
    if opts.keys.is_some() && ranged {
        return Err(CouchError::query_parse_error(
            "`keys` is incompatible with `key`, `start_key` and `end_key`",
        ));
    }
    Ok(opts)
}

pub(super) async fn all_docs_get(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    p: Params,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    all_docs(db, all_docs_options(&p, None)?).await
}

pub(super) async fn all_docs_post(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let db = db(&state, &name).await?;
    let keys = match body.get("keys") {
        Some(v) => Some(string_list(v, "keys", ListKind::Keys)?),
        None => None,
    };
    all_docs(db, all_docs_options(&p, keys)?).await
}

pub(super) struct AllDocsState {
    db: Db,
    opts: Arc<AllDocsOptions>,
    at: AllDocsCursor,
    skip: usize,
    left: Option<usize>,
}

/// `_all_docs`, streamed a page at a time.
pub(super) async fn all_docs(db: Db, opts: AllDocsOptions) -> Result<Response> {
    let info = db.info().await?;
    let update_seq = if opts.update_seq {
        format!("\"update_seq\":{},", info.update_seq)
    } else {
        String::new()
    };
    let head = format!(
        "{{\"total_rows\":{},\"offset\":{},{update_seq}\"rows\":[",
        info.doc_count, opts.skip
    );
    let st = AllDocsState {
        db,
        skip: opts.skip,
        left: opts.limit,
        opts: Arc::new(opts),
        at: AllDocsCursor::Start,
    };
    let first = all_docs_page(st).await?;
    Ok(json_pages(head, first, all_docs_page))
}

pub(super) async fn all_docs_page(mut st: AllDocsState) -> Result<Step<AllDocsState>> {
    let max = st.left.unwrap_or(usize::MAX).min(ALL_DOCS_PAGE);
    let page = st.db.all_docs_page(&st.opts, &st.at, st.skip, max).await?;
    st.skip = st.skip.saturating_sub(page.skipped);
    st.left = st.left.map(|l| l.saturating_sub(page.rows.len()));
    match page.next {
        Some(at) if st.left != Some(0) => {
            st.at = at;
            Ok(Step::More(page.rows, st))
        }
        _ => Ok(Step::Last(page.rows, "]}".into())),
    }
}
