//! What every handler reaches, and how a host assembles it: couchkv's own namespaces, the
//! server's identity and cookie secret (made once, kept in the store), the CouchDB layer with
//! `_users`, auth and the service rules. The native host and the Worker call the same
//! [`AppState::open`] with what differs between them ([`Host`]).

use std::sync::Arc;

use bytes::Bytes;
use couchkv_adapters::{DynStore, Store, StoreError, StoreExt};

use crate::auth::tokens::ApiTokens;
use crate::auth::{Auth, AuthConfig, SYSTEM_NAMESPACE, USERS_DB};
use crate::clock::{Clock, IdSource};
use crate::couch::{Couch, CouchError, ErrorKind};
use crate::kv::Kv;
use crate::level::{KvLevel, LevelDb, LevelError, NamespaceSpaces};
use crate::runtime::Runtime;
use crate::service::CouchService;

use super::HttpConfig;

/// The namespace the CouchDB databases live in.
pub const COUCH_NAMESPACE: &str = "_couchkv_couch";

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub kv: Kv,
    pub couch: Arc<Couch>,
    pub auth: Arc<Auth>,
    /// The server's identity, stable across restarts (replication checkpoints depend on it).
    pub uuid: Arc<str>,
    /// The API's rules (see [`crate::service`]).
    pub service: Arc<CouchService>,
    /// The KV API's tokens.
    pub tokens: ApiTokens,
    /// The host's timers and tasks.
    pub runtime: Arc<dyn Runtime>,
}

/// What a host hands in.
pub struct Host {
    pub store: DynStore,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub runtime: Arc<dyn Runtime>,
    /// The JavaScript engine for design documents (views, filters, `validate_doc_update`).
    pub js: crate::couch::js::Engine,
}

/// Why the API could not be opened on a store.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("level: {0}")]
    Level(#[from] LevelError),
    #[error("couch: {0}")]
    Couch(#[from] CouchError),
}

impl AppState {
    /// Opens the API on `host.store`, making what is missing the first time.
    pub async fn open(
        host: Host,
        auth: AuthConfig,
        http: &HttpConfig,
    ) -> Result<AppState, SetupError> {
        let store = host.store;
        let kv = Kv::new(store.clone(), host.clock.clone(), host.ids.clone());
        let uuid = server_uuid(store.as_ref(), host.ids.as_ref()).await?;
        let couch = Arc::new(open_couch(&kv, host.ids).await?.with_js(host.js));
        match couch.create_db(USERS_DB).await {
            Ok(()) => {}
            Err(e) if e.is(ErrorKind::Exists) => {}
            Err(e) => return Err(e.into()),
        }
        let secret = auth_secret(store.as_ref()).await?;
        let auth = Arc::new(Auth::new(
            couch.clone(),
            host.clock,
            host.runtime.clone(),
            secret,
            auth,
        ));
        let service = Arc::new(CouchService {
            couch: couch.clone(),
            auth: auth.clone(),
            compact_after: http.compact_after,
        });
        Ok(AppState {
            kv,
            couch,
            service,
            auth,
            uuid: uuid.into(),
            tokens: ApiTokens::new(store, SYSTEM_NAMESPACE),
            runtime: host.runtime,
        })
    }
}

/// The CouchDB layer: a level database on its own KV namespace.
pub async fn open_couch(kv: &Kv, ids: Arc<dyn IdSource>) -> Result<Couch, SetupError> {
    system_namespace(kv.store().as_ref(), COUCH_NAMESPACE).await?;
    let level = KvLevel::new(kv.namespace(COUCH_NAMESPACE), "");
    let db = LevelDb::opened(level).await?;
    // Several nodes share a store only where its changes reach every node.
    let caps = kv.store().capabilities();
    let shared = caps.watch == couchkv_adapters::WatchKind::CrossNode;
    let couch = Couch::new(db, ids)?.shared(shared);
    // Where the store's namespaces take no lock in common, each database gets its own: commits
    // to different databases never wait on each other, on any node.
    Ok(if caps.independent_namespaces {
        couch.with_spaces(Arc::new(NamespaceSpaces::new(
            kv.clone(),
            crate::kv::UNEXPIRING_PREFIX,
        )))
    } else {
        couch
    })
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

/// The server's uuid, made once and kept in the store.
pub async fn server_uuid(store: &dyn Store, ids: &dyn IdSource) -> Result<String, StoreError> {
    let uuid = system_value(store, UUID_KEY, Bytes::from(ids.new_id())).await?;
    String::from_utf8(uuid.to_vec()).map_err(|_| StoreError::Corrupt("server uuid".into()))
}

/// Opens (making it the first time) the namespace a system part of couchkv keeps its data in.
pub async fn system_namespace(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    match store.create_namespace(id, id).await {
        Ok(_) | Err(StoreError::NamespaceIdTaken(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
