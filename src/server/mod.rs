//! The binary's runtime: opens the store, keeps the server's identity, runs the expiry sweeper,
//! serves HTTP until SIGINT/SIGTERM, then closes the store so queued writes finish.

use couchkv_adapters::StoreExt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use couchkv_adapters::{
    CloudflareConfig, CloudflareStore, DynStore, MemoryStore, PostgresConfig, PostgresStore,
    RedbStore, Store, StoreError,
};
use tokio::net::TcpListener;

mod accept;

pub use accept::ConnLimits;

use crate::auth::{Auth, AuthConfig, USERS_DB};
use crate::cli::{ServeArgs, StoreSpec};
use crate::clock::{Clock, IdSource};
use crate::couch::Couch;
use crate::http::{app, AppState, HttpConfig};
use crate::kv::Kv;
use crate::level::{KvLevel, LevelDb};
use crate::runtime::{Runtime, TokioRuntime};

pub use crate::auth::SYSTEM_NAMESPACE;
/// The namespace the CouchDB databases live in.
pub const COUCH_NAMESPACE: &str = "_couchkv_couch";

/// What `run` needs beyond the listener and the store.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub sweep_interval: Duration,
    pub http: HttpConfig,
    pub conn: ConnLimits,
    pub auth: AuthConfig,
}

const AUTH_SECRET_KEY: &str = "auth_secret";

/// A value of couchkv's own, made once and kept in the system namespace: the stored one, or
/// `made`, written only while still absent (a node sharing the store may have made it first:
/// then theirs wins).
async fn system_value(store: &dyn Store, key: &str, made: Bytes) -> Result<Bytes, StoreError> {
    system_namespace(store, SYSTEM_NAMESPACE).await?;
    if let Some(rec) = store.get(SYSTEM_NAMESPACE, key).await? {
        return Ok(rec.value);
    }
    if store
        .put_if_absent(SYSTEM_NAMESPACE, key, made.clone())
        .await?
    {
        return Ok(made);
    }
    store
        .get(SYSTEM_NAMESPACE, key)
        .await?
        .map(|r| r.value)
        .ok_or_else(|| StoreError::Corrupt(format!("{key} vanished")))
}

/// The key that signs session cookies, made once and kept in the store so sessions survive a
/// restart. Never logged.
async fn auth_secret(store: &dyn Store) -> Result<[u8; 32], StoreError> {
    let made = Bytes::copy_from_slice(&crate::auth::crypto::random_bytes::<32>());
    let key = system_value(store, AUTH_SECRET_KEY, made).await?;
    <[u8; 32]>::try_from(key.as_ref()).map_err(|_| StoreError::Corrupt("auth secret".into()))
}

const UUID_KEY: &str = "server_uuid";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("--store cloudflare://… needs an API token in COUCHKV_CLOUDFLARE_TOKEN")]
    MissingCloudflareToken,
    #[error("no {0}:// store: the schemes are postgres:// and cloudflare://")]
    UnavailableStore(String),
    #[error("level: {0}")]
    Level(#[from] crate::level::LevelError),
    #[error("couch: {0}")]
    Couch(#[from] crate::couch::CouchError),
}

/// The system clock, outside the core.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Random v4 uuids, as 32 lowercase hex digits.
pub struct UuidIds;

impl IdSource for UuidIds {
    fn new_id(&self) -> String {
        crate::auth::crypto::random_uuid()
    }
}

/// Opens (making it the first time) the embedded store in `dir`, owner-only: the directory
/// 0700 and the file 0600, since the file holds the cookie secret and the password hashes.
/// Permissions of an existing directory and file are tightened too.
pub fn open_redb(dir: &std::path::Path) -> Result<RedbStore, ServerError> {
    let file = dir.join("couchkv.redb");
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        // redb initializes an empty file: make it here, with the mode, before redb opens it.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&file)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(RedbStore::open(file)?)
}

pub async fn open_store(args: &ServeArgs) -> Result<DynStore, ServerError> {
    Ok(match args.store {
        StoreSpec::Memory => Arc::new(MemoryStore::new()),
        StoreSpec::Redb => Arc::new(open_redb(&args.data)?),
        StoreSpec::Postgres(ref url) => {
            let mut config = PostgresConfig::new(url.0.clone());
            config.schema = args.postgres_schema.clone();
            config.pool_size = args.postgres_pool.max(2);
            Arc::new(PostgresStore::open(config).await?)
        }
        StoreSpec::Cloudflare { ref account } => {
            let token = args
                .cloudflare_token
                .as_ref()
                .ok_or(ServerError::MissingCloudflareToken)?;
            let mut config = CloudflareConfig::new(account.clone(), token.0.clone());
            config.base_url = args.cloudflare_api_url.clone();
            config.poll_interval = Duration::from_secs(args.cloudflare_poll_interval.max(1));
            Arc::new(CloudflareStore::new(config)?)
        }
        StoreSpec::Unavailable(ref scheme) => {
            return Err(ServerError::UnavailableStore(scheme.clone()))
        }
    })
}

/// The server's uuid, made once and kept in the store.
pub async fn server_uuid(store: &dyn Store, ids: &dyn IdSource) -> Result<String, StoreError> {
    let uuid = system_value(store, UUID_KEY, Bytes::from(ids.new_id())).await?;
    String::from_utf8(uuid.to_vec()).map_err(|_| StoreError::Corrupt("server uuid".into()))
}

/// Opens (making it the first time) the namespace a system part of couchkv keeps its data in.
async fn system_namespace(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    match store.create_namespace(id, id).await {
        Ok(_) | Err(StoreError::NamespaceIdTaken(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes an API token on a store (the `couchkv token create` command).
pub async fn create_token(
    store: &dyn Store,
    new: &crate::auth::tokens::NewToken,
) -> Result<String, ServerError> {
    system_namespace(store, SYSTEM_NAMESPACE).await?;
    let now = SystemClock.now_secs();
    Ok(crate::auth::tokens::create(store, SYSTEM_NAMESPACE, new, now).await?)
}

/// The CouchDB layer: a level database on its own KV namespace.
pub async fn open_couch(kv: &Kv) -> Result<Couch, ServerError> {
    system_namespace(kv.store().as_ref(), COUCH_NAMESPACE).await?;
    let level = KvLevel::new(kv.namespace(COUCH_NAMESPACE), "");
    let db = LevelDb::opened(level).await?;
    // Several nodes share a store only where its changes reach every node.
    let shared = kv.store().capabilities().watch == couchkv_adapters::WatchKind::CrossNode;
    Ok(Couch::new(db, Arc::new(UuidIds))?.shared(shared))
}

/// Serves until `shutdown` resolves, then closes the store.
pub async fn run(
    listener: TcpListener,
    store: DynStore,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let kv = Kv::new(store.clone(), Arc::new(SystemClock), Arc::new(UuidIds));
    let uuid = server_uuid(store.as_ref(), &UuidIds).await?;
    let couch = Arc::new(open_couch(&kv).await?);
    match couch.create_db(USERS_DB).await {
        Ok(())
        | Err(crate::couch::CouchError {
            kind: crate::couch::ErrorKind::Exists,
            ..
        }) => {}
        Err(e) => return Err(e.into()),
    }
    let secret = auth_secret(store.as_ref()).await?;
    if config.auth.admins.is_empty() {
        tracing::warn!(
            "no server admin configured (--admin NAME:PASSWORD): admin-only routes are refused"
        );
    }
    let runtime: Arc<dyn Runtime> = Arc::new(TokioRuntime);
    let auth = Arc::new(Auth::new(
        couch.clone(),
        Arc::new(SystemClock),
        runtime.clone(),
        secret,
        config.auth.clone(),
    ));
    let sweeper = tokio::spawn(sweep_forever(kv.clone(), config.sweep_interval));
    let service = Arc::new(crate::service::CouchService {
        couch: couch.clone(),
        auth: auth.clone(),
        compact_after: config.http.compact_after,
    });
    let state = AppState {
        kv,
        couch,
        service,
        auth,
        uuid: uuid.into(),
        tokens: crate::auth::tokens::ApiTokens::new(store.clone(), SYSTEM_NAMESPACE),
        runtime,
    };
    tracing::info!(addr = %listener.local_addr()?, "couchkv listening");
    accept::serve(listener, app(state, &config.http), config.conn, shutdown).await;
    sweeper.abort();
    tracing::info!("shutting down: closing the store");
    store.close().await?;
    Ok(())
}

async fn sweep_forever(kv: Kv, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match kv.sweep(1000).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "swept expired keys"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
