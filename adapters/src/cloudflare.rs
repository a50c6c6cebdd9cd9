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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    Batch, Capabilities, Event, EventKind, EventStream, ListEntry, ListOptions, ListPage,
    Namespace, Namespaces, Op, Record, Result, Store, StoreError, WatchKind,
};

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
    cursors: Mutex<HashMap<CursorKey, String>>,
    version: AtomicU64,
    closed: AtomicBool,
    hub: WatchHub,
    /// Per namespace: (writes started, writes not yet published), for watchers' polls.
    writes: Mutex<HashMap<String, (u64, u64)>>,
}

#[derive(Debug, Clone)]
struct Remote {
    cf_id: String,
    title: String,
}

/// (Cloudflare namespace id, prefix, last key of a page) → a cursor from which listing yields
/// every key after that last key (and perhaps some before it, which are skipped).
type CursorKey = (String, String, String);

const CURSOR_CACHE: usize = 4096;
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
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.token))
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
                cursors: Mutex::new(HashMap::new()),
                version: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                hub: WatchHub::default(),
                writes: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Open watch streams on a namespace (for tests and diagnostics).
    pub fn watchers(&self, ns: &str) -> usize {
        self.inner.hub.watchers(ns)
    }
}

impl Inner {
    fn open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Sends a request, retrying 429, 5xx and unanswered ones. `build` makes each attempt. The
    /// outer error is the transport's (or a closed store); the inner one the service's answer.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<std::result::Result<reqwest::Response, Failure>> {
        let mut attempt = 0;
        loop {
            self.open()?;
            let sent = build(&self.http)
                .header(AUTHORIZATION, self.auth.clone())
                .send()
                .await;
            let retry_after = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(Ok(resp)),
                Ok(resp) => {
                    let status = resp.status();
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !transient || attempt >= self.retries {
                        return Ok(Err(failure(resp).await));
                    }
                    resp.headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(60)))
                }
                Err(e) if (e.is_connect() || e.is_timeout()) && attempt < self.retries => None,
                Err(e) => return Err(backend(e)),
            };
            let wait = retry_after.unwrap_or(self.backoff * 2u32.saturating_pow(attempt));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// [`Inner::send`] with the service's refusal as a store error.
    async fn fetch(
        &self,
        ns: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<reqwest::Response> {
        self.send(build).await?.map_err(|f| f.into_error(ns))
    }

    /// A request whose answer is the envelope; returns its result and result_info.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        ns: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<(Option<T>, ResultInfo)> {
        let resp = self.fetch(ns, build).await?;
        let body = resp.bytes().await.map_err(backend)?;
        let env: Envelope<T> = serde_json::from_slice(&body).map_err(|e| {
            StoreError::Backend(format!("Cloudflare answered an unexpected body: {e}"))
        })?;
        Ok((env.result, env.result_info.unwrap_or_default()))
    }

    /// Every namespace of the account, fetched afresh into the id map.
    async fn refresh(&self) -> Result<HashMap<String, Remote>> {
        let mut all = HashMap::new();
        for page in 1.. {
            let url = format!(
                "{}?page={page}&per_page={NAMESPACES_PER_PAGE}&order=id&direction=asc",
                self.root
            );
            let (list, _) = self.call::<Vec<CfNamespace>>("", |c| c.get(&url)).await?;
            let list = list.unwrap_or_default();
            let n = list.len();
            for cf in list {
                let (id, title) = decode_title(&cf.id, &cf.title);
                all.insert(
                    id,
                    Remote {
                        cf_id: cf.id,
                        title,
                    },
                );
            }
            if n < NAMESPACES_PER_PAGE {
                break;
            }
        }
        let mut map = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        *map = all.clone();
        Ok(all)
    }

    /// The service's namespace behind a store id, refreshing the map on a miss.
    async fn remote(&self, ns: &str) -> Result<Remote> {
        self.open()?;
        if let Some(r) = self
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(ns)
        {
            return Ok(r.clone());
        }
        self.refresh()
            .await?
            .remove(ns)
            .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))
    }

    fn forget(&self, ns: &str) {
        self.namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ns);
    }

    /// Maps a NamespaceNotFound from the service to a forgotten map entry.
    fn checked<T>(&self, ns: &str, r: Result<T>) -> Result<T> {
        if let Err(StoreError::NamespaceNotFound(_)) = r {
            self.forget(ns);
        }
        r
    }

    fn begin_write(&self, ns: &str) -> WriteGuard<'_> {
        let mut w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let state = w.entry(ns.to_owned()).or_default();
        state.0 += 1;
        state.1 += 1;
        WriteGuard {
            inner: self,
            ns: ns.to_owned(),
        }
    }

    fn write_state(&self, ns: &str) -> (u64, u64) {
        let w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        w.get(ns).copied().unwrap_or_default()
    }

    /// One page of the service's list: (keys, cursor of the next page if any).
    async fn list_page(
        &self,
        ns: &str,
        cf_id: &str,
        prefix: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<CfKey>, Option<String>)> {
        let mut url = format!(
            "{}/{}/keys?limit={limit}&prefix={}",
            self.root,
            segment(cf_id),
            segment(prefix)
        );
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.push_str(&segment(c));
        }
        let (keys, info) = self.call::<Vec<CfKey>>(ns, |c| c.get(&url)).await?;
        let next = info.cursor.filter(|c| !c.is_empty());
        Ok((keys.unwrap_or_default(), next))
    }

    /// Every key under `prefix` with its metadata and expiration (a watcher's snapshot).
    async fn list_all(&self, ns: &str, prefix: &str) -> Result<BTreeMap<String, Seen>> {
        let remote = self.remote(ns).await?;
        let mut out = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let (keys, next) = self
                .list_page(ns, &remote.cf_id, prefix, 1000, cursor.as_deref())
                .await?;
            for k in keys {
                out.insert(
                    k.name,
                    Seen {
                        metadata: k.metadata.map(|m| m.get().to_owned()),
                        expiration: k.expiration,
                    },
                );
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let remote = self.remote(ns).await?;
        let value_url = format!(
            "{}/{}/values/{}",
            self.root,
            segment(&remote.cf_id),
            segment(key)
        );
        // Metadata and expiration come from a list by the key as prefix: the key itself sorts
        // first among the keys it prefixes. Both requests run at once; they are not one read.
        let value = async {
            match self.send(|c| c.get(&value_url)).await? {
                Ok(resp) => Ok(Some(resp.bytes().await.map_err(backend)?)),
                Err(f) if f.status == StatusCode::NOT_FOUND && f.code != 10013 => Ok(None),
                Err(f) => Err(f.into_error(ns)),
            }
        };
        let about = self.list_page(ns, &remote.cf_id, key, 10, None);
        let (value, about) = futures::future::join(value, about).await;
        let Some(value) = self.checked(ns, value)? else {
            return Ok(None);
        };
        let (keys, _) = self.checked(ns, about)?;
        let entry = keys.into_iter().find(|k| k.name == key);
        Ok(Some(Record {
            value,
            metadata: entry
                .as_ref()
                .and_then(|e| e.metadata.as_ref().map(|m| m.get().to_owned())),
            expiration: entry.and_then(|e| e.expiration),
            version: 0,
        }))
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        use std::ops::Bound;
        if opts.reverse || opts.values || !matches!(opts.end, Bound::Unbounded) {
            return Err(StoreError::NotSupported(
                "Workers KV lists forward by prefix only, without values",
            ));
        }
        let after = match &opts.start {
            Bound::Unbounded => None,
            Bound::Excluded(k) => Some(k.as_str()),
            Bound::Included(_) => {
                return Err(StoreError::NotSupported(
                    "Workers KV resumes a list only after a cursor",
                ))
            }
        };
        let remote = self.remote(ns).await?;
        let limit = opts.limit.max(1);
        let cache_key = |last: &str| (remote.cf_id.clone(), opts.prefix.clone(), last.to_owned());
        let mut cursor = after.and_then(|k| {
            self.cursors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&cache_key(k))
                .cloned()
        });
        let mut entries = Vec::new();
        let mut more = false;
        // Where the page the last entry came from started: resuming there and skipping finds
        // every key after it.
        let mut page_start: Option<String>;
        loop {
            page_start = cursor.clone();
            // One more than asked makes `more` exact; Cloudflare lists at least 10.
            let want = (limit - entries.len() + 1).clamp(10, 1000);
            let r = self
                .list_page(ns, &remote.cf_id, &opts.prefix, want, cursor.as_deref())
                .await;
            let (keys, next) = match r {
                // A cursor the service no longer takes: page from the prefix's start instead.
                Err(StoreError::Backend(_)) if cursor.is_some() && entries.is_empty() => {
                    cursor = None;
                    continue;
                }
                r => self.checked(ns, r)?,
            };
            let mut fresh = keys
                .into_iter()
                .filter(|k| after.is_none_or(|a| k.name.as_str() > a));
            for k in fresh.by_ref() {
                if entries.len() == limit {
                    more = true;
                    break;
                }
                entries.push(ListEntry {
                    key: k.name,
                    metadata: k.metadata.map(|m| m.get().to_owned()),
                    expiration: k.expiration,
                    version: 0,
                    value: None,
                });
            }
            if more {
                break;
            }
            match next {
                Some(c) => {
                    if entries.len() == limit {
                        // Full, and the service says more may follow: resume from its cursor.
                        more = true;
                        page_start = Some(c);
                        break;
                    }
                    cursor = Some(c);
                }
                None => break,
            }
        }
        if let (true, Some(last), Some(start)) = (more, entries.last(), page_start) {
            let mut cache = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CURSOR_CACHE {
                cache.clear();
            }
            cache.insert(cache_key(&last.key), start);
        }
        Ok(ListPage { entries, more })
    }

    /// Writes one key with the single-value route (no base64, any size up to the service's).
    async fn put_one(
        &self,
        ns: &str,
        cf_id: &str,
        key: &str,
        value: &Bytes,
        metadata: Option<&str>,
        expiration: Option<u64>,
    ) -> Result<()> {
        let mut url = format!("{}/{}/values/{}", self.root, segment(cf_id), segment(key));
        if let Some(e) = expiration {
            url.push_str(&format!("?expiration={e}"));
        }
        self.fetch(ns, |c| {
            let req = c.put(&url);
            match metadata {
                Some(m) => {
                    let form = reqwest::multipart::Form::new()
                        .part(
                            "value",
                            reqwest::multipart::Part::stream(reqwest::Body::from(value.clone())),
                        )
                        .text("metadata", m.to_owned());
                    req.multipart(form)
                }
                None => req
                    .header("content-type", "application/octet-stream")
                    .body(value.clone()),
            }
        })
        .await?;
        Ok(())
    }

    async fn bulk_put(&self, ns: &str, cf_id: &str, items: &[&Op]) -> Result<()> {
        let mut body = Vec::with_capacity(items.len());
        for op in items {
            if let Op::Put {
                key,
                value,
                metadata,
                expiration,
            } = op
            {
                let mut item = serde_json::json!({
                    "key": key,
                    "value": BASE64.encode(value),
                    "base64": true,
                });
                if let Some(e) = expiration {
                    item["expiration"] = Value::from(*e);
                }
                if let Some(m) = metadata {
                    item["metadata"] = serde_json::from_str(m).map_err(|e| {
                        StoreError::Backend(format!("metadata of {key:?} is not JSON: {e}"))
                    })?;
                }
                body.push(item);
            }
        }
        let body = Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|e| StoreError::Backend(format!("bulk body: {e}")))?,
        );
        let url = format!("{}/{}/bulk", self.root, segment(cf_id));
        let (result, _) = self
            .call::<BulkResult>(ns, |c| {
                c.put(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        match result {
            Some(r) if !r.unsuccessful_keys.is_empty() => Err(StoreError::Backend(format!(
                "Cloudflare did not write {} of the keys, first {:?}",
                r.unsuccessful_keys.len(),
                r.unsuccessful_keys[0]
            ))),
            _ => Ok(()),
        }
    }

    async fn bulk_delete(&self, ns: &str, cf_id: &str, keys: &[&str]) -> Result<()> {
        let url = format!("{}/{}/bulk/delete", self.root, segment(cf_id));
        let body = Bytes::from(
            serde_json::to_vec(keys).map_err(|e| StoreError::Backend(format!("bulk body: {e}")))?,
        );
        self.call::<Value>(ns, |c| {
            c.post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        if !batch.preconditions.is_empty() {
            return Err(StoreError::NotSupported(
                "Workers KV has no conditional writes",
            ));
        }
        let remote = self.remote(ns).await?;
        let _writing = self.begin_write(ns);
        // Non-atomic anyway: only each key's last write matters, sent puts first, then deletes.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, op) in batch.ops.iter().enumerate() {
            last.insert(op.key(), i);
        }
        let finals: Vec<&Op> = batch
            .ops
            .iter()
            .enumerate()
            .filter(|(i, op)| last.get(op.key()) == Some(i))
            .map(|(_, op)| op)
            .collect();
        let version = self.next_version();
        let r = self.apply(ns, &remote.cf_id, &finals).await;
        let r = self.checked(ns, r);
        if r.is_ok() {
            self.hub
                .publish(ns, batch.ops.iter().map(|op| op.event(version)));
        }
        r.map(|()| version)
    }

    async fn apply(&self, ns: &str, cf_id: &str, finals: &[&Op]) -> Result<()> {
        let (puts, deletes): (Vec<&Op>, Vec<&Op>) =
            finals.iter().partition(|op| matches!(op, Op::Put { .. }));
        if let [Op::Put {
            key,
            value,
            metadata,
            expiration,
        }] = puts.as_slice()
        {
            self.put_one(ns, cf_id, key, value, metadata.as_deref(), *expiration)
                .await?;
        } else {
            let mut chunk: Vec<&Op> = Vec::new();
            let mut bytes = 0;
            for op in puts {
                let size = match op {
                    Op::Put { value, .. } => value.len() * 4 / 3 + op.key().len() + 1100,
                    _ => 0,
                };
                if !chunk.is_empty() && (chunk.len() == BULK_ITEMS || bytes + size > BULK_BYTES) {
                    self.bulk_put(ns, cf_id, &chunk).await?;
                    chunk.clear();
                    bytes = 0;
                }
                chunk.push(op);
                bytes += size;
            }
            if !chunk.is_empty() {
                self.bulk_put(ns, cf_id, &chunk).await?;
            }
        }
        let deletes: Vec<&str> = deletes.iter().map(|op| op.key()).collect();
        if let [key] = deletes.as_slice() {
            let url = format!("{}/{}/values/{}", self.root, segment(cf_id), segment(key));
            self.call::<Value>(ns, |c| c.delete(&url)).await?;
        } else {
            for chunk in deletes.chunks(BULK_ITEMS) {
                self.bulk_delete(ns, cf_id, chunk).await?;
            }
        }
        Ok(())
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

/// What a watcher last saw of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    metadata: Option<String>,
    expiration: Option<u64>,
}

fn apply_event(snapshot: &mut BTreeMap<String, Seen>, ev: &Event) {
    match &ev.kind {
        EventKind::Put {
            metadata,
            expiration,
        } => {
            snapshot.insert(
                ev.key.clone(),
                Seen {
                    metadata: metadata.clone(),
                    expiration: *expiration,
                },
            );
        }
        EventKind::Delete | EventKind::Expire => {
            snapshot.remove(&ev.key);
        }
    }
}

/// The changes between two listings, as events in key order.
fn diff(
    inner: &Inner,
    old: &BTreeMap<String, Seen>,
    new: &BTreeMap<String, Seen>,
    now: u64,
) -> Vec<Event> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let kind = match (old.get(key), new.get(key)) {
            (before, Some(seen)) if before != Some(seen) => EventKind::Put {
                metadata: seen.metadata.clone(),
                expiration: seen.expiration,
            },
            (Some(before), None) if before.expiration.is_some_and(|t| t <= now) => {
                EventKind::Expire
            }
            (Some(_), None) => EventKind::Delete,
            _ => continue,
        };
        out.push(Event {
            key: key.clone(),
            version: inner.next_version(),
            kind,
        });
    }
    out
}

/// A watcher: forwards this handle's own writes at once and finds everyone else's by polling.
async fn watch_task(
    inner: Arc<Inner>,
    ns: String,
    prefix: String,
    mut snapshot: BTreeMap<String, Seen>,
    mut local: EventStream,
    out: mpsc::Sender<Result<Event>>,
) {
    let forward = |ev: Result<Event>| match out.try_send(ev) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            // The consumer fell behind: say so and end, as the other backends do.
            let _ = out.try_send(Err(StoreError::WatchLagged(1)));
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    };
    let mut tick = tokio::time::interval(inner.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            // The watcher went away: stop polling for it.
            _ = out.closed() => return,
            ev = local.next() => match ev {
                Some(Ok(ev)) => {
                    apply_event(&mut snapshot, &ev);
                    if !forward(Ok(ev)) { return; }
                }
                Some(Err(e)) => { forward(Err(e)); return; }
                None => return,
            },
            _ = tick.tick() => {
                if out.is_closed() { return; }
                // A poll counts only if no write of this handle overlapped it: the listing
                // could hold a write whose event is not yet applied to the snapshot.
                let before = inner.write_state(&ns);
                while let Some(ev) = local.next().now_or_never() {
                    match ev {
                        Some(Ok(ev)) => {
                            apply_event(&mut snapshot, &ev);
                            if !forward(Ok(ev)) { return; }
                        }
                        Some(Err(e)) => { forward(Err(e)); return; }
                        None => return,
                    }
                }
                let listed = inner.list_all(&ns, &prefix).await;
                match listed {
                    Ok(now) => {
                        if before.1 != 0 || inner.write_state(&ns) != before {
                            continue;
                        }
                        for ev in diff(&inner, &snapshot, &now, now_secs()) {
                            if !forward(Ok(ev)) { return; }
                        }
                        snapshot = now;
                    }
                    Err(StoreError::Closed) => return,
                    Err(e @ StoreError::NamespaceNotFound(_)) => { forward(Err(e)); return; }
                    // A failed poll (after its retries) is tried again next tick.
                    Err(_) => {}
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Namespaces for CloudflareStore {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let inner = &self.inner;
        inner.open()?;
        let all = inner.refresh().await?;
        if all.contains_key(id) {
            return Err(StoreError::NamespaceIdTaken(id.to_owned()));
        }
        if all.values().any(|r| r.title == title) {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        let cf_title = encode_title(id, title);
        let body = serde_json::json!({ "title": cf_title });
        let made = inner
            .call::<CfNamespace>("", |c| c.post(&inner.root).json(&body))
            .await;
        let cf = match made {
            Ok((Some(cf), _)) => cf,
            Ok((None, _)) => {
                return Err(StoreError::Backend(
                    "Cloudflare made a namespace but did not say which".into(),
                ))
            }
            // A retried create whose first attempt had landed: it is ours.
            Err(e) => match inner.refresh().await?.get(id) {
                Some(r) if r.title == title => CfNamespace {
                    id: r.cf_id.clone(),
                    title: cf_title,
                },
                _ => return Err(e),
            },
        };
        inner
            .namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id.to_owned(),
                Remote {
                    cf_id: cf.id,
                    title: title.to_owned(),
                },
            );
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
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
            ranges: false,
            atomic_batch: false,
            preconditions: false,
            list_values: false,
            watch: WatchKind::Polling,
            durable: true,
            versions: false,
            native_expiry: true,
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
        self.inner.closed.store(true, Ordering::Release);
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
