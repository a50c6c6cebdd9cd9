//! The binary's runtime: opens the store, keeps the server's identity, runs the expiry sweeper,
//! serves HTTP until SIGINT/SIGTERM, then closes the store so queued writes finish.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use couchkv_adapters::{
    CloudflareConfig, CloudflareStore, DynStore, MemoryStore, PostgresConfig, PostgresStore,
    RedbStore, Store, StoreError,
};
use tokio::net::TcpListener;

mod accept;
pub mod quickjs;

pub use accept::ConnLimits;

use crate::auth::AuthConfig;
use crate::cli::{ServeArgs, StoreSpec};
use crate::clock::Clock;
use crate::http::{app, AppState, Host, HttpConfig};
use crate::kv::Kv;

use crate::auth::crypto::RandomIds;
use crate::runtime::TokioRuntime;

pub use crate::auth::SYSTEM_NAMESPACE;
pub use crate::http::state::{open_couch, system_namespace, COUCH_NAMESPACE};

/// What `run` needs beyond the listener and the store.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub sweep_interval: Duration,
    pub http: HttpConfig,
    pub conn: ConnLimits,
    pub auth: AuthConfig,
    /// Limits of design documents' JavaScript.
    pub js: quickjs::QuickJs,
}

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
    #[error("{0}")]
    Setup(#[from] crate::http::state::SetupError),
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

/// Makes an API token on a store (the `couchkv token create` command).
pub async fn create_token(
    store: &dyn Store,
    new: &crate::auth::tokens::NewToken,
) -> Result<String, ServerError> {
    system_namespace(store, SYSTEM_NAMESPACE).await?;
    let now = SystemClock.now_secs();
    Ok(crate::auth::tokens::create(store, SYSTEM_NAMESPACE, new, now).await?)
}

/// Serves until `shutdown` resolves, then closes the store.
pub async fn run(
    listener: TcpListener,
    store: DynStore,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if config.auth.admins.is_empty() {
        tracing::warn!(
            "no server admin configured (--admin NAME:PASSWORD): admin-only routes are refused"
        );
    }
    let host = Host {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        runtime: Arc::new(TokioRuntime),
        js: Some(Arc::new(config.js)),
    };
    let state = AppState::open(host, config.auth.clone(), &config.http).await?;
    let sweeper = tokio::spawn(sweep_forever(state.kv.clone(), config.sweep_interval));
    let updates = state.couch.updates().clone();
    let flusher = tokio::spawn(flush_updates_forever(updates.clone()));
    tracing::info!(addr = %listener.local_addr()?, "couchkv listening");
    accept::serve(listener, app(state, &config.http), config.conn, shutdown).await;
    sweeper.abort();
    flusher.abort();
    if let Err(e) = updates.flush().await {
        tracing::warn!(error = %e, "recording the last database updates failed");
    }
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

/// Records the databases written to, a few times a second (`_db_updates`).
async fn flush_updates_forever(updates: Arc<crate::couch::updates::DbUpdates>) {
    let mut tick = tokio::time::interval(crate::couch::updates::FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = updates.flush().await {
            tracing::warn!(error = %e, "recording database updates failed");
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
