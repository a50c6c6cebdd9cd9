//! Namespaces: list (paged, ordered), create, get, rename, delete.

use super::*;
use couchkv_adapters::Namespace;

pub(super) async fn list_namespaces(State(s): State<AppState>, p: Params) -> Result<Response> {
    let listing = Listing::parse(&p)?;
    let all: Vec<_> =
        s.kv.list_namespaces()
            .await?
            .into_iter()
            .filter(|n| visible(&n.id))
            .collect();
    let total = all.len();
    let items: Vec<Value> = listing
        .page_of(all)
        .iter()
        .map(|n| namespace_json(&n.id, &n.title))
        .collect();
    let info = json!({"page": listing.page, "per_page": listing.per_page,
        "count": items.len(), "total_count": total});
    Ok(ok_with_info(Value::Array(items), info))
}

/// Which page of the namespaces, in which order.
struct Listing {
    page: usize,
    per_page: usize,
    by_title: bool,
    descending: bool,
}

impl Listing {
    fn parse(p: &Params) -> Result<Self> {
        let page = int_param(p, "page")?.unwrap_or(1);
        if page < 1 {
            return Err(ApiError::bad("page must be at least 1"));
        }
        let by_title = match p.get("order") {
            Some("title") => true,
            Some("id") | None => false,
            Some(other) => return Err(ApiError::bad(format!("Invalid order: {other}"))),
        };
        let descending = match p.get("direction") {
            Some("desc") => true,
            Some("asc") | None => false,
            Some(other) => return Err(ApiError::bad(format!("Invalid direction: {other}"))),
        };
        Ok(Self {
            page: usize::try_from(page).unwrap_or(usize::MAX),
            per_page: int_param(p, "per_page")?.unwrap_or(20).clamp(1, 1000) as usize,
            by_title,
            descending,
        })
    }

    /// This page of `all`, sorted; a page past the end is empty (the SDK pages until it gets
    /// one).
    fn page_of(&self, mut all: Vec<Namespace>) -> Vec<Namespace> {
        if self.by_title {
            all.sort_by(|a, b| a.title.cmp(&b.title));
        } else {
            all.sort_by(|a, b| a.id.cmp(&b.id));
        }
        if self.descending {
            all.reverse();
        }
        all.into_iter()
            // Checked: a client's page number times the page size must not wrap.
            .skip((self.page - 1).saturating_mul(self.per_page))
            .take(self.per_page)
            .collect()
    }
}

pub(super) fn title_of(body: &[u8]) -> Result<String> {
    match json_body(body)?.get("title") {
        Some(Value::String(t)) => Ok(t.clone()),
        _ => Err(ApiError::bad("A title is required")),
    }
}

pub(super) async fn create_namespace(
    State(s): State<AppState>,
    KvBody(body): KvBody,
) -> Result<Response> {
    let ns = s.kv.create_namespace(&title_of(&body)?).await?;
    Ok(ok(namespace_json(&ns.id, &ns.title)))
}

pub(super) async fn get_namespace(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
) -> Result<Response> {
    check_visible(&ns)?;
    let n = s.kv.get_namespace(&ns).await?;
    Ok(ok(namespace_json(&n.id, &n.title)))
}

pub(super) async fn rename_namespace(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    KvBody(body): KvBody,
) -> Result<Response> {
    check_visible(&ns)?;
    let n = s.kv.rename_namespace(&ns, &title_of(&body)?).await?;
    Ok(ok(namespace_json(&n.id, &n.title)))
}

pub(super) async fn delete_namespace(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
) -> Result<Response> {
    check_visible(&ns)?;
    s.kv.delete_namespace(&ns).await?;
    Ok(ok(json!({})))
}
