//! The `cloudflare` backend: Cloudflare's Workers KV through its v4 REST API (the API wrangler and
//! the `cloudflare` SDK speak, described in KV-API.md). Native only (reqwest, tokio timers).
//!
//! What the service has and this backend therefore says (see [`Capabilities`]):
//! - Lists go forward by prefix with an opaque cursor. A "start after K" is served from a cache
//!   of the cursors this handle was given for earlier pages, else by paging from the prefix's
//!   start and skipping; no bounds, no reverse, no values in lists.
//! - Writes are not atomic together and not conditional. A batch is sent as bulk requests; if one
//!   fails, the earlier ones stay applied. Batches with preconditions are refused.
//! - No versions: records read back carry version 0. Batches still get increasing numbers from
//!   this handle, so its watchers see its own writes in order.
//! - The service expires keys itself and refuses expirations less than 60 s ahead;
//!   [`Store::sweep_expired`] does nothing.
//! - Watch: this handle's own writes are published at once, exactly; changes made by anyone
//!   else (another node, wrangler, a Worker) are found by listing the watched prefix every
//!   poll interval and comparing: late, coalesced, and blind to a rewrite that changes only the
//!   value.
//!
//! Namespaces keep caller-chosen ids (the `Store` contract) by carrying them in the Cloudflare
//! title, `couchkv:<id>:<title>`; namespaces made by anything else appear under their Cloudflare
//! id and title, so an existing namespace can be served as it is.
//!
//! The API token is sent as a sensitive header and appears in no error, log or `Debug` output.
//! 429 and 5xx answers and connection failures are retried with exponential backoff (honouring
//! `Retry-After`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::watch::WatchHub;
use crate::{
    Batch, Capabilities, Event, EventKind, EventStream, ListOptions, ListPage, Namespace,
    Namespaces, Op, Record, Result, Store, StoreError,
};

mod client;
mod data;
mod poll;

use poll::{watch_task, Seen};

/// Cloudflare's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// Where and how to reach the service.
#[derive(Clone)]
pub struct CloudflareConfig {
    /// The API root, `…/client/v4` (Cloudflare's, or a compatible server such as `couchkv serve`).
    pub base_url: String,
    pub account_id: String,
    /// An API token with Workers KV Storage edit rights. Never logged.
    pub token: String,
    /// `token` is `NAME:PASSWORD`, sent as HTTP Basic: a couchkv server's admin (Cloudflare
    /// itself takes API tokens only).
    pub basic_auth: bool,
    /// How often watchers list their prefix to find changes made elsewhere.
    pub poll_interval: Duration,
    /// Attempts after the first for a request answered 429 or 5xx, or not answered.
    pub retries: u32,
    /// The first backoff; it doubles with every retry.
    pub backoff: Duration,
    /// Per-request time limit.
    pub timeout: Duration,
}

impl CloudflareConfig {
    pub fn new(account_id: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            account_id: account_id.into(),
            token: token.into(),
            basic_auth: false,
            poll_interval: Duration::from_secs(5),
            retries: 5,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(120),
        }
    }
}

impl fmt::Debug for CloudflareConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareConfig")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("token", &"<redacted>")
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

/// A Workers KV account as a [`Store`]. Clones share the connection pool, caches and watchers.
#[derive(Clone)]
pub struct CloudflareStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for CloudflareStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareStore")
            .field("namespaces_url", &self.inner.root)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    /// `{base}/accounts/{account}/storage/kv/namespaces`
    root: String,
    auth: HeaderValue,
    retries: u32,
    backoff: Duration,
    poll_interval: Duration,
    /// Store id → the namespace on the service.
    namespaces: RwLock<HashMap<String, Remote>>,
    cursors: crate::paging::Cursors,
    version: AtomicU64,
    closed: crate::OpenState,
    hub: WatchHub,
    /// Per namespace: (writes started, writes not yet published), for watchers' polls.
    writes: Mutex<HashMap<String, (u64, u64)>>,
}

#[derive(Debug, Clone)]
struct Remote {
    cf_id: String,
    title: String,
}

const TITLE_TAG: &str = "couchkv:";
/// Cloudflare's bulk write limits: 10,000 items, 100 MB per request (we stay well below).
const BULK_ITEMS: usize = 10_000;
const BULK_BYTES: usize = 64 * 1024 * 1024;
const NAMESPACES_PER_PAGE: usize = 100;

/// Characters kept as they are in a path segment; everything else is percent-encoded, `/` too.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The Cloudflare title carrying a store id: `couchkv:<id with % and : escaped>:<title>`.
fn encode_title(id: &str, title: &str) -> String {
    let id = id.replace('%', "%25").replace(':', "%3A");
    format!("{TITLE_TAG}{id}:{title}")
}

/// (store id, store title) of a Cloudflare namespace.
fn decode_title(cf_id: &str, cf_title: &str) -> (String, String) {
    if let Some(rest) = cf_title.strip_prefix(TITLE_TAG) {
        if let Some((id, title)) = rest.split_once(':') {
            let id = id.replace("%3A", ":").replace("%25", "%");
            return (id, title.to_owned());
        }
    }
    (cf_id.to_owned(), cf_title.to_owned())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: Option<T>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Deserialize, Default)]
struct ResultInfo {
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct CfNamespace {
    id: String,
    title: String,
}

#[derive(Deserialize)]
struct CfKey {
    name: String,
    #[serde(default)]
    expiration: Option<u64>,
    #[serde(default)]
    metadata: Option<Box<RawValue>>,
}

impl CfKey {
    fn listed(self) -> crate::paging::ListedKey {
        crate::paging::ListedKey {
            name: self.name,
            metadata: self.metadata.map(|m| m.get().to_owned()),
            expiration: self.expiration,
        }
    }
}

#[derive(Deserialize)]
struct BulkResult {
    #[serde(default)]
    unsuccessful_keys: Vec<String>,
}

/// A failed answer of the service, kept as status plus the envelope's first error.
struct Failure {
    status: StatusCode,
    code: u64,
    message: String,
}

impl Failure {
    fn into_error(self, ns: &str) -> StoreError {
        match (self.status, self.code) {
            (_, 10013) => StoreError::NamespaceNotFound(ns.to_owned()),
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => StoreError::Backend(format!(
                "Cloudflare refused the API token ({}): {}",
                self.status.as_u16(),
                self.message
            )),
            _ => StoreError::Backend(format!(
                "Cloudflare answered {} (code {}): {}",
                self.status.as_u16(),
                self.code,
                self.message
            )),
        }
    }
}

fn backend(e: reqwest::Error) -> StoreError {
    // reqwest's messages carry the URL (account id and key, never the token).
    StoreError::Backend(format!("Cloudflare request failed: {e}"))
}

/// Marks a write in flight on a namespace until dropped (see [`Inner::writes`]).
struct WriteGuard<'a> {
    inner: &'a Inner,
    ns: String,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        let mut w = self.inner.writes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = w.get_mut(&self.ns) {
            state.1 = state.1.saturating_sub(1);
        }
    }
}

impl CloudflareStore {
    pub fn new(config: CloudflareConfig) -> Result<Self> {
        let credential = match config.basic_auth {
            true => format!("Basic {}", BASE64.encode(&config.token)),
            false => format!("Bearer {}", config.token),
        };
        let mut auth = HeaderValue::from_str(&credential)
            .map_err(|_| StoreError::Backend("the API token is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("couchkv/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(backend)?;
        let root = format!(
            "{}/accounts/{}/storage/kv/namespaces",
            config.base_url.trim_end_matches('/'),
            segment(&config.account_id)
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                root,
                auth,
                retries: config.retries,
                backoff: config.backoff,
                poll_interval: config.poll_interval,
                namespaces: RwLock::new(HashMap::new()),
                cursors: Default::default(),
                version: AtomicU64::new(0),
                closed: crate::OpenState::default(),
                hub: WatchHub::default(),
                writes: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Makes a namespace the service's way, as wrangler's `kv namespace create` does: its title
    /// as given, its id the one the service picks. It is served under that id.
    pub async fn create_service_namespace(&self, title: &str) -> Result<Namespace> {
        self.make_namespace(None, title).await
    }

    /// Makes a namespace: with `id`, under that id (carried in the title); without, under the
    /// service's id, with the title as it is.
    async fn make_namespace(&self, id: Option<&str>, title: &str) -> Result<Namespace> {
        let inner = &self.inner;
        inner.open()?;
        let all = inner.refresh().await?;
        if let Some(id) = id.filter(|id| all.contains_key(*id)) {
            return Err(StoreError::NamespaceIdTaken(id.to_owned()));
        }
        if all.values().any(|r| r.title == title) {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        let cf_title = match id {
            Some(id) => encode_title(id, title),
            None => title.to_owned(),
        };
        let body = serde_json::json!({ "title": cf_title });
        let made = inner
            .call::<CfNamespace>("", |c| c.post(&inner.root).json(&body))
            .await;
        let cf_id = match made {
            Ok((Some(cf), _)) => cf.id,
            Ok((None, _)) => {
                return Err(StoreError::Backend(
                    "Cloudflare made a namespace but did not say which".into(),
                ))
            }
            // A retried create whose first attempt had landed: it is ours.
            Err(e) => match inner
                .refresh()
                .await?
                .into_iter()
                .find(|(known, r)| r.title == title && id.is_none_or(|id| id == known))
            {
                Some((_, r)) => r.cf_id,
                None => return Err(e),
            },
        };
        let id = id.map_or_else(|| cf_id.clone(), str::to_owned);
        inner
            .namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id.clone(),
                Remote {
                    cf_id,
                    title: title.to_owned(),
                },
            );
        Ok(Namespace {
            id,
            title: title.to_owned(),
        })
    }

    /// Open watch streams on a namespace (for tests and diagnostics).
    pub fn watchers(&self, ns: &str) -> usize {
        self.inner.hub.watchers(ns)
    }
}

async fn failure(resp: reqwest::Response) -> Failure {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let first = serde_json::from_slice::<ErrorEnvelope>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next());
    match first {
        Some(e) => Failure {
            status,
            code: e.code,
            message: e.message,
        },
        None => Failure {
            status,
            code: 0,
            message: status.canonical_reason().unwrap_or("").to_owned(),
        },
    }
}

#[async_trait::async_trait]
impl Namespaces for CloudflareStore {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        self.make_namespace(Some(id), title).await
    }
    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        self.inner.open()?;
        let mut all: Vec<Namespace> = self
            .inner
            .refresh()
            .await?
            .into_iter()
            .map(|(id, r)| Namespace { id, title: r.title })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }
    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>> {
        match self.inner.remote(id).await {
            Ok(r) => Ok(Some(Namespace {
                id: id.to_owned(),
                title: r.title,
            })),
            Err(StoreError::NamespaceNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let inner = &self.inner;
        inner.open()?;
        let all = inner.refresh().await?;
        let Some(remote) = all.get(id) else {
            return Err(StoreError::NamespaceNotFound(id.to_owned()));
        };
        if all.iter().any(|(other, r)| other != id && r.title == title) {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        // A foreign namespace keeps a plain title; ours carry their id.
        let cf_title = if *id == remote.cf_id {
            title.to_owned()
        } else {
            encode_title(id, title)
        };
        let url = format!("{}/{}", inner.root, segment(&remote.cf_id));
        let body = serde_json::json!({ "title": cf_title });
        let r = inner.call::<Value>(id, |c| c.put(&url).json(&body)).await;
        inner.checked(id, r)?;
        inner
            .namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id.to_owned(),
                Remote {
                    cf_id: remote.cf_id.clone(),
                    title: title.to_owned(),
                },
            );
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }
    async fn delete_namespace(&self, id: &str) -> Result<()> {
        let inner = &self.inner;
        let remote = inner.remote(id).await?;
        let url = format!("{}/{}", inner.root, segment(&remote.cf_id));
        let r = inner.call::<Value>(id, |c| c.delete(&url)).await;
        inner.forget(id);
        inner.hub.close(Some(id));
        r.map(|_| ())
    }
}

#[async_trait::async_trait]
impl Store for CloudflareStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            native_expiry: true,
            ..Capabilities::PLAIN
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        self.inner.get(ns, key).await
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        // The service's bulk get returns text only, so values are fetched one by one, a few
        // at a time, in the order asked.
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(8) {
            let got = futures::future::join_all(chunk.iter().map(|k| self.inner.get(ns, k))).await;
            for g in got {
                out.push(g?);
            }
        }
        Ok(out)
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        self.inner.list(ns, opts).await
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        self.inner.batch(ns, batch).await
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        let inner = &self.inner;
        inner.remote(ns).await?;
        // Subscribed before the first listing: a write of ours in between is in both, and
        // applying it twice to the snapshot is harmless.
        let local = inner.hub.subscribe(ns, prefix);
        let snapshot = inner.list_all(ns, prefix).await?;
        let (tx, rx) = mpsc::channel(crate::watch::DEFAULT_CAPACITY);
        tokio::spawn(watch_task(
            inner.clone(),
            ns.to_owned(),
            prefix.to_owned(),
            snapshot,
            local,
            tx,
        ));
        Ok(futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) },
        )
        .boxed())
    }

    /// Workers KV removes expired keys itself.
    async fn sweep_expired(&self, _ns: &str, _now: u64, _limit: usize) -> Result<usize> {
        self.inner.open()?;
        Ok(0)
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.close();
        self.inner.hub.close(None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_carry_ids() {
        for (id, title) in [("abc", "t"), ("_couchkv_couch", "x:y"), ("a:b%c", "")] {
            let cf = encode_title(id, title);
            assert_eq!(decode_title("cfid", &cf), (id.to_owned(), title.to_owned()));
        }
        assert_eq!(
            decode_title("cfid", "someone else's"),
            ("cfid".to_owned(), "someone else's".to_owned())
        );
    }

    #[test]
    fn segments_encode_slashes_and_unicode() {
        assert_eq!(segment("hello/wörld key"), "hello%2Fw%C3%B6rld%20key");
        assert_eq!(segment("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn config_debug_hides_the_token() {
        let c = CloudflareConfig::new("acct", "very-secret-token");
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
