//! What the in-process HTTP tests share: a server on 127.0.0.1:0 over a memory store the test
//! can inspect, and a client that acts as its server admin.
// Each test binary uses part of this module.
#![allow(dead_code)]

pub mod binary;

use std::sync::Arc;
use std::time::Duration;

use couchkv::auth::AuthConfig;
use couchkv::http::HttpConfig;
use couchkv::server::{run, ConnLimits, RunConfig};
use couchkv_adapters::MemoryStore;

/// A running in-process server; it stops when this is dropped.
pub struct InProcess {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub store: Arc<MemoryStore>,
    /// Sends Basic credentials of the server admin (`admin:secret`) with every request.
    pub client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn start(http: HttpConfig) -> InProcess {
    start_with(http, ConnLimits::default()).await
}

/// [`start`] with the native host's connection limits set.
pub async fn start_with(http: HttpConfig, conn: ConnLimits) -> InProcess {
    let store = Arc::new(MemoryStore::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = RunConfig {
        sweep_interval: Duration::from_secs(3600),
        http,
        conn,
        auth: AuthConfig {
            admins: vec![("admin".into(), "secret".into())],
            pbkdf2_iterations: 1000,
            ..AuthConfig::default()
        },
        js: Default::default(),
    };
    tokio::spawn(run(listener, store.clone(), config, async {
        let _ = stopped.await;
    }));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        reqwest::header::HeaderValue::from_static("Basic YWRtaW46c2VjcmV0"),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    // The listener is bound before `run` starts, so the first request just waits for it.
    for _ in 0..100 {
        if client.get(&base).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    InProcess {
        base,
        store,
        client,
        _stop: stop,
    }
}

/// The namespaces couch keeps data in: its own, and one per database where each has its own.
async fn couch_namespaces(store: &MemoryStore) -> Vec<String> {
    use couchkv_adapters::Namespaces;
    store
        .list_namespaces()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .filter(|id| {
            id == couchkv::server::COUCH_NAMESPACE || id.starts_with(couchkv::kv::UNEXPIRING_PREFIX)
        })
        .collect()
}

/// The store watchers (one per live feed) on couch's namespaces.
pub async fn couch_watchers(store: &MemoryStore) -> usize {
    let mut n = 0;
    for ns in couch_namespaces(store).await {
        n += store.watchers(&ns);
    }
    n
}

/// Waits up to `within` for the CouchDB namespaces' store watchers (one per live feed) to number
/// `n`; says whether they did.
pub async fn couch_watchers_reach(store: &MemoryStore, n: usize, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if couch_watchers(store).await == n {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
}

/// Every level key couch's namespaces hold, decoded (lossily) to text, so a test can see what a
/// database keeps: `!m!<id>`, `!a!<id>\0<digest>`, …
pub async fn all_keys(store: &MemoryStore) -> Vec<String> {
    let mut out = Vec::new();
    for ns in couch_namespaces(store).await {
        keys_of(store, &ns, &mut out).await;
    }
    out
}

async fn keys_of(store: &MemoryStore, ns: &str, out: &mut Vec<String>) {
    use couchkv_adapters::{ListOptions, Store};
    let mut opts = ListOptions::default();
    loop {
        let page = store.list(ns, &opts).await.unwrap();
        for e in &page.entries {
            // Level keys are stored as "d" + their encoding.
            let key = e
                .key
                .strip_prefix('d')
                .and_then(couchkv::level::keycode::decode)
                .map(|k| String::from_utf8_lossy(&k).into_owned())
                .unwrap_or_else(|| e.key.clone());
            out.push(key);
        }
        match page.entries.last() {
            Some(last) if page.more => opts.start = std::ops::Bound::Excluded(last.key.clone()),
            _ => return,
        }
    }
}
