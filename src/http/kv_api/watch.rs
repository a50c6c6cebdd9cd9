//! The watch extension: key changes as server-sent events, resumable by version.

use std::sync::Arc;

use futures::future::Either;

use super::*;
use crate::runtime::Runtime;

/// Heartbeat of an idle watch stream.
pub(super) const WATCH_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

pub(super) fn event_text(
    version: u64,
    kind: &str,
    key: &str,
    metadata: Option<&str>,
    expiration: Option<u64>,
) -> String {
    let mut data = json!({"key": key});
    if let Some(m) = metadata {
        data["metadata"] = serde_json::from_str(m).unwrap_or(Value::Null);
    }
    if let Some(e) = expiration {
        data["expiration"] = json!(e);
    }
    format!("id: {version}\nevent: {kind}\ndata: {data}\n\n")
}

/// `GET …/namespaces/{ns}/watch?prefix=` (couchkv's extension): every put, delete and expiry
/// under the prefix as server-sent events (`event: put|delete|expire`, `id:` the store's
/// version, `data:` key, metadata, expiration), a heartbeat every 15 s while idle. With
/// `Last-Event-ID` (header or query) the stream first replays, as `put` events, the keys under
/// the prefix written after that version; deletions in the gap are not replayed (the store
/// keeps no change log).
pub(super) async fn watch(
    State(s): State<AppState>,
    KvPath((_, ns)): KvPath<(String, String)>,
    p: Params,
    headers: HeaderMap,
) -> Result<Response> {
    check_visible(&ns)?;
    let prefix = p.get("prefix").unwrap_or_default().to_owned();
    let kv = s.kv.namespace(&ns);
    let last = last_event_id(&headers, &p)?;
    // Subscribe before reading the catch-up, so nothing falls between the two.
    let events = kv.watch(&prefix).await?;
    let catch_up = match last {
        Some(since) => kv.changed_since(&prefix, since).await?,
        None => Vec::new(),
    };
    Ok(event_stream(catch_up, events, s.runtime.clone()))
}

/// `Last-Event-ID`, from the header or the query.
fn last_event_id(headers: &HeaderMap, p: &Params) -> Result<Option<u64>> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(p.get("last-event-id"))
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad("Last-Event-ID must be a version number"))
        })
        .transpose()
}

/// One store event as an SSE event.
fn event_of(ev: &couchkv_adapters::Event) -> String {
    match &ev.kind {
        couchkv_adapters::EventKind::Put {
            metadata,
            expiration,
        } => event_text(ev.version, "put", &ev.key, metadata.as_deref(), *expiration),
        couchkv_adapters::EventKind::Delete => {
            event_text(ev.version, "delete", &ev.key, None, None)
        }
        couchkv_adapters::EventKind::Expire => {
            event_text(ev.version, "expire", &ev.key, None, None)
        }
    }
}

/// The catch-up as `put` events, then the live events with a heartbeat while idle, as an
/// event-stream response.
fn event_stream(
    catch_up: Vec<crate::kv::Changed>,
    events: couchkv_adapters::EventStream,
    runtime: Arc<dyn Runtime>,
) -> Response {
    use futures::StreamExt;
    let first = futures::stream::iter(catch_up.into_iter().map(|c| {
        Ok::<_, std::convert::Infallible>(Bytes::from(event_text(
            c.version,
            "put",
            &c.key,
            c.metadata.as_deref(),
            c.expiration,
        )))
    }));
    let live = futures::stream::unfold(Some(events), move |events| {
        let beat = runtime.sleep(WATCH_HEARTBEAT);
        async move {
            let mut events = events?;
            match futures::future::select(events.next(), beat).await {
                Either::Left((Some(Ok(ev)), _)) => {
                    Some((Ok(Bytes::from(event_of(&ev))), Some(events)))
                }
                // The store closed the watch (it lagged, or the namespace went away): end; the
                // client reconnects with Last-Event-ID.
                Either::Left(_) => None,
                Either::Right(_) => Some((
                    Ok(Bytes::from_static(b"event: heartbeat\ndata: \n\n")),
                    Some(events),
                )),
            }
        }
    });
    let mut resp = Response::new(axum::body::Body::from_stream(first.chain(live)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}
