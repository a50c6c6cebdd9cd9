//! The `postgres` backend: every namespace in PostgreSQL tables, for several couchkv nodes on one
//! database (tokio-postgres through a deadpool pool).
//!
//! - **Schema**, in a schema of its own (`couchkv` unless configured), created and migrated on
//!   open under an advisory lock, versioned in `schema_version`: `namespaces (id, title, num,
//!   version)`, `kv (ns, key bytea, value, metadata, expiration, version)` keyed by `(ns, key)` — a
//!   B-tree, so lists run in byte order both ways — and `changes`, the change log.
//! - **Batches** are one transaction. It starts by bumping the namespace's version row
//!   (`UPDATE … RETURNING`), which locks it: batches on one namespace commit one after another, so
//!   versions are strictly increasing in commit order on every node, and preconditions read under
//!   that lock cannot be overtaken.
//! - **Watch across nodes.** Each batch writes its events to `changes` in the same transaction
//!   and sends `NOTIFY` (delivered at commit) only as a wake-up. One tailer per watched namespace
//!   and node reads the log after the last version it delivered, woken by the notification or,
//!   if one was missed (a dropped listener connection), by a one-second timer; it hands events to
//!   the in-process hub, which routes them by prefix. The log keeps the last
//!   [`CHANGES_KEPT`] versions per namespace; a watcher further behind gets `WatchLagged`.
//! - **Expiry** is swept natively (`DELETE … WHERE expiration <= now`), logged as `Expire`.
//!
//! Passwords in the connection URL are never logged: only the host, port and database name are
//! ever shown.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::range::key_bounds;
use crate::watch::WatchHub;
use crate::{
    Batch, Capabilities, Event, EventKind, EventStream, Expect, ListEntry, ListOptions, ListPage,
    Namespace, Namespaces, Op, Record, Result, Store, StoreError, WatchKind,
};

/// Versions of change log kept per namespace (older ones are pruned by the sweep).
pub const CHANGES_KEPT: i64 = 100_000;
/// How often a tailer reads the log even without a notification.
const TAIL_FALLBACK: Duration = Duration::from_secs(1);
/// Change rows a tailer reads per query.
const TAIL_PAGE: i64 = 1000;

/// Where the data lives.
#[derive(Clone)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database` (or a key=value string).
    pub url: String,
    /// The schema couchkv's tables live in; nodes sharing data use the same one.
    pub schema: String,
    /// Connections in the pool (the listener has one more of its own).
    pub pool_size: usize,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "couchkv".into(),
            pool_size: 16,
        }
    }
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .finish()
    }
}

#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    pg: tokio_postgres::Config,
    schema: String,
    channel: String,
    closed: AtomicBool,
    hub: Arc<WatchHub>,
    /// Namespaces (by number) that changed, from NOTIFY.
    wake: broadcast::Sender<i64>,
    /// Namespace ids with a running tailer.
    tailers: Mutex<HashMap<String, ()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    // The Display of a server error is its message; it never carries connection parameters.
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("postgres: {}", db.message())),
        None => backend(e),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        other => backend(other),
    }
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|x| i64::try_from(x).unwrap_or(i64::MAX))
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.map(|x| u64::try_from(x).unwrap_or(0))
}

fn utf8(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))
}

const KIND_PUT: i16 = 0;
const KIND_DELETE: i16 = 1;
const KIND_EXPIRE: i16 = 2;

/// The schema, one migration per entry; `schema_version` says how many ran.
fn migrations(s: &str) -> Vec<String> {
    vec![format!(
        "CREATE SEQUENCE {s}.namespace_numbers;
         CREATE TABLE {s}.namespaces (
             id text PRIMARY KEY,
             title text NOT NULL UNIQUE,
             num bigint NOT NULL UNIQUE DEFAULT nextval('{s}.namespace_numbers'),
             version bigint NOT NULL DEFAULT 0,
             pruned_below bigint NOT NULL DEFAULT 0
         );
         CREATE TABLE {s}.kv (
             ns bigint NOT NULL,
             key bytea NOT NULL,
             value bytea NOT NULL,
             metadata text,
             expiration bigint,
             version bigint NOT NULL,
             PRIMARY KEY (ns, key)
         );
         CREATE INDEX kv_expiring ON {s}.kv (ns, expiration) WHERE expiration IS NOT NULL;
         CREATE TABLE {s}.changes (
             ns bigint NOT NULL,
             version bigint NOT NULL,
             idx integer NOT NULL,
             key bytea NOT NULL,
             kind smallint NOT NULL,
             metadata text,
             expiration bigint,
             PRIMARY KEY (ns, version, idx)
         );"
    )]
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

impl PostgresStore {
    /// Connects, creates or migrates the schema, and starts listening for other nodes' changes.
    pub async fn open(config: PostgresConfig) -> Result<Self> {
        if !valid_schema(&config.schema) {
            return Err(StoreError::Backend(
                "the schema name must be lowercase letters, digits and _".into(),
            ));
        }
        let pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|_| StoreError::Backend("the postgres URL does not parse".into()))?;
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(2))
            .build()
            .map_err(backend)?;
        let s = config.schema.clone();
        {
            let mut client = pool.get().await.map_err(pool_err)?;
            let txn = client.transaction().await.map_err(pg_err)?;
            // Two nodes starting at once migrate one after the other.
            txn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('couchkv schema ' || $1))",
                &[&s],
            )
            .await
            .map_err(pg_err)?;
            txn.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s};
                 CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL);"
            ))
            .await
            .map_err(pg_err)?;
            let done: i64 = txn
                .query_one(&format!("SELECT count(*) FROM {s}.schema_version"), &[])
                .await
                .map_err(pg_err)?
                .get(0);
            let all = migrations(&s);
            if done as usize > all.len() {
                return Err(StoreError::Backend(format!(
                    "the schema {s} is at version {done}, newer than this couchkv knows ({})",
                    all.len()
                )));
            }
            for (i, m) in all.iter().enumerate().skip(done as usize) {
                txn.batch_execute(m).await.map_err(pg_err)?;
                txn.execute(
                    &format!("INSERT INTO {s}.schema_version VALUES ($1)"),
                    &[&(i as i32 + 1)],
                )
                .await
                .map_err(pg_err)?;
            }
            txn.commit().await.map_err(pg_err)?;
        }
        let (wake, _) = broadcast::channel(1024);
        let (stop, _) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner {
            pool,
            pg,
            channel: format!("couchkv_{s}"),
            schema: s,
            closed: AtomicBool::new(false),
            hub: Arc::new(WatchHub::default()),
            wake,
            tailers: Mutex::new(HashMap::new()),
            stop,
        });
        tokio::spawn(listen_forever(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Open watch streams on a namespace (for tests and diagnostics).
    pub fn watchers(&self, ns: &str) -> usize {
        self.inner.hub.watchers(ns)
    }
}

/// Holds a LISTEN connection and turns notifications into wake-ups; reconnects when it drops.
async fn listen_forever(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.closed.load(Ordering::Acquire) {
            return;
        }
        let (pg, channel, wake) = (
            strong.pg.clone(),
            strong.channel.clone(),
            strong.wake.clone(),
        );
        let mut stop = strong.stop.subscribe();
        drop(strong);
        if let Ok((client, mut conn)) = pg.connect(NoTls).await {
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            let sql = format!("LISTEN {channel}");
            let listen = client.batch_execute(&sql);
            // The connection must be polled for LISTEN to complete.
            let mut listen = std::pin::pin!(listen);
            let listened = loop {
                tokio::select! {
                    r = &mut listen => break r.is_ok(),
                    m = messages.next() => if m.is_none() { break false },
                }
            };
            if listened {
                // Tailers re-read after a reconnect: notifications sent meanwhile are lost.
                let _ = wake.send(-1);
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        m = messages.next() => match m {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if let Ok(num) = n.payload().parse::<i64>() {
                                    let _ = wake.send(num);
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Reads a namespace's change log after `last` and publishes it, until its last watcher leaves.
async fn tail(inner: Arc<Inner>, ns: String, num: i64, mut last: i64) {
    let mut wake = inner.wake.subscribe();
    let mut stop = inner.stop.subscribe();
    let s = inner.schema.clone();
    let read = format!(
        "SELECT version, key, kind, metadata, expiration FROM {s}.changes
         WHERE ns = $1 AND version > $2 ORDER BY version, idx LIMIT $3"
    );
    let pruned = format!("SELECT pruned_below FROM {s}.namespaces WHERE num = $1");
    loop {
        if finished(&inner, &ns) {
            return;
        }
        // Drain the log; a full page means more may follow at once.
        let mut failed = false;
        loop {
            let rows = async {
                let client = inner.pool.get().await.map_err(pool_err)?;
                let floor: Option<i64> = client
                    .query_opt(&pruned, &[&num])
                    .await
                    .map_err(pg_err)?
                    .map(|r| r.get(0));
                let rows = client
                    .query(&read, &[&num, &last, &TAIL_PAGE])
                    .await
                    .map_err(pg_err)?;
                Ok::<_, StoreError>((floor, rows))
            }
            .await;
            let (floor, rows) = match rows {
                Ok(r) => r,
                Err(_) => {
                    failed = true;
                    break;
                }
            };
            let Some(floor) = floor else {
                // The namespace is gone: its watchers end.
                inner.hub.close(Some(&ns));
                break;
            };
            if last + 1 < floor {
                // Pruned past this tailer: its watchers missed events.
                inner.hub.close(Some(&ns));
                break;
            }
            let n = rows.len();
            let mut group: Vec<Event> = Vec::new();
            for row in rows {
                let version: i64 = row.get(0);
                let key: Vec<u8> = row.get(1);
                let Ok(key) = String::from_utf8(key) else {
                    continue;
                };
                let kind = match row.get::<_, i16>(2) {
                    KIND_PUT => EventKind::Put {
                        metadata: row.get(3),
                        expiration: to_u64(row.get(4)),
                    },
                    KIND_DELETE => EventKind::Delete,
                    _ => EventKind::Expire,
                };
                group.push(Event {
                    key,
                    version: version as u64,
                    kind,
                });
                last = version;
            }
            // A page may end inside a version: it is re-read from that version's start.
            if n as i64 == TAIL_PAGE {
                if let Some(cut) = group.last().map(|e| e.version) {
                    let whole: Vec<Event> =
                        group.iter().filter(|e| e.version < cut).cloned().collect();
                    if !whole.is_empty() {
                        last = cut as i64 - 1;
                        inner.hub.publish(&ns, whole);
                        continue;
                    }
                    // One version larger than a page: deliver it as read.
                }
            }
            inner.hub.publish(&ns, group);
            if (n as i64) < TAIL_PAGE {
                break;
            }
        }
        if finished(&inner, &ns) {
            return;
        }
        let pause = if failed {
            Duration::from_millis(200)
        } else {
            TAIL_FALLBACK
        };
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(pause) => {}
            w = wake.recv() => match w {
                Ok(n) if n == num || n == -1 => {}
                Ok(_) => {
                    // Another namespace's news: drain what else is queued, then re-check.
                    while let Ok(n) = wake.try_recv() {
                        if n == num || n == -1 { break; }
                    }
                }
                Err(_) => {}
            },
        }
    }
}

/// Whether a tailer should end (no watchers left, or the store closed); decided under the
/// tailers lock, so a watcher arriving at that moment either keeps this tailer or starts one.
fn finished(inner: &Inner, ns: &str) -> bool {
    let mut tailers = inner.tailers.lock().unwrap_or_else(|p| p.into_inner());
    if inner.hub.watchers(ns) == 0 || inner.closed.load(Ordering::Acquire) {
        tailers.remove(ns);
        true
    } else {
        false
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

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.open()?;
        self.pool.get().await.map_err(pool_err)
    }

    async fn num(&self, client: &deadpool_postgres::Object, ns: &str) -> Result<i64> {
        let s = &self.schema;
        client
            .query_opt(
                &format!("SELECT num FROM {s}.namespaces WHERE id = $1"),
                &[&ns],
            )
            .await
            .map_err(pg_err)?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))
    }

    fn record(row: &tokio_postgres::Row, at: usize) -> Record {
        let value: Vec<u8> = row.get(at);
        Record {
            value: Bytes::from(value),
            metadata: row.get(at + 1),
            expiration: to_u64(row.get(at + 2)),
            version: row.get::<_, i64>(at + 3) as u64,
        }
    }

    /// Applies a batch in one transaction under the namespace's version lock; returns the
    /// version and how many `Expire` ops removed a key. With `expire_before`, an `Expire` removes
    /// a key only if it still expires by then (the sweep: a key rewritten meanwhile stays).
    async fn write(
        &self,
        ns: &str,
        batch: Batch,
        expire_before: Option<i64>,
    ) -> Result<(u64, usize)> {
        let s = &self.schema;
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let Some(row) = txn
            .query_opt(
                &format!(
                    "UPDATE {s}.namespaces SET version = version + 1 WHERE id = $1
                     RETURNING num, version"
                ),
                &[&ns],
            )
            .await
            .map_err(pg_err)?
        else {
            return Err(StoreError::NamespaceNotFound(ns.to_owned()));
        };
        let (num, version): (i64, i64) = (row.get(0), row.get(1));
        if !batch.preconditions.is_empty() {
            let keys: Vec<Vec<u8>> = batch
                .preconditions
                .iter()
                .map(|p| p.key.as_bytes().to_vec())
                .collect();
            let current: HashMap<Vec<u8>, i64> = txn
                .query(
                    &format!("SELECT key, version FROM {s}.kv WHERE ns = $1 AND key = ANY($2)"),
                    &[&num, &keys],
                )
                .await
                .map_err(pg_err)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for p in &batch.preconditions {
                let now = current.get(p.key.as_bytes()).map(|v| *v as u64);
                let holds = match p.expect {
                    Expect::Absent => now.is_none(),
                    Expect::Version(v) => now == Some(v),
                };
                if !holds {
                    return Err(StoreError::Conflict { key: p.key.clone() });
                }
            }
        }
        // Each key's last write is what lands; every write is logged for watchers.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, op) in batch.ops.iter().enumerate() {
            last.insert(op.key(), i);
        }
        let (mut pk, mut pv, mut pm, mut pe) = (vec![], vec![], vec![], vec![]);
        let (mut dk, mut ek) = (vec![], vec![]);
        for (i, op) in batch.ops.iter().enumerate() {
            if last.get(op.key()) != Some(&i) {
                continue;
            }
            match op {
                Op::Put {
                    key,
                    value,
                    metadata,
                    expiration,
                } => {
                    pk.push(key.as_bytes().to_vec());
                    pv.push(value.to_vec());
                    pm.push(metadata.clone());
                    pe.push(to_i64(*expiration));
                }
                Op::Delete { key } => dk.push(key.as_bytes().to_vec()),
                Op::Expire { key } => ek.push(key.as_bytes().to_vec()),
            }
        }
        if !pk.is_empty() {
            txn.execute(
                &format!(
                    "INSERT INTO {s}.kv (ns, key, value, metadata, expiration, version)
                     SELECT $1, k, v, m, e, $6
                     FROM unnest($2::bytea[], $3::bytea[], $4::text[], $5::bigint[]) AS t(k, v, m, e)
                     ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value,
                       metadata = EXCLUDED.metadata, expiration = EXCLUDED.expiration,
                       version = EXCLUDED.version"
                ),
                &[&num, &pk, &pv, &pm, &pe, &version],
            )
            .await
            .map_err(pg_err)?;
        }
        if !dk.is_empty() {
            txn.execute(
                &format!("DELETE FROM {s}.kv WHERE ns = $1 AND key = ANY($2)"),
                &[&num, &dk],
            )
            .await
            .map_err(pg_err)?;
        }
        // An expiry of a key already gone is no change (and no event).
        let expired: std::collections::HashSet<Vec<u8>> = if ek.is_empty() {
            Default::default()
        } else {
            txn.query(
                &format!(
                    "DELETE FROM {s}.kv WHERE ns = $1 AND key = ANY($2)
                     AND ($3::bigint IS NULL OR expiration <= $3) RETURNING key"
                ),
                &[&num, &ek, &expire_before],
            )
            .await
            .map_err(pg_err)?
            .into_iter()
            .map(|r| r.get(0))
            .collect()
        };
        let (mut ck, mut ckind, mut cm, mut ce) = (vec![], vec![], vec![], vec![]);
        for op in &batch.ops {
            let (kind, m, e) = match op {
                Op::Put {
                    metadata,
                    expiration,
                    ..
                } => (KIND_PUT, metadata.clone(), to_i64(*expiration)),
                Op::Delete { .. } => (KIND_DELETE, None, None),
                Op::Expire { key } => {
                    if !expired.contains(key.as_bytes()) {
                        continue;
                    }
                    (KIND_EXPIRE, None, None)
                }
            };
            ck.push(op.key().as_bytes().to_vec());
            ckind.push(kind);
            cm.push(m);
            ce.push(e);
        }
        if !ck.is_empty() {
            txn.execute(
                &format!(
                    "INSERT INTO {s}.changes (ns, version, idx, key, kind, metadata, expiration)
                     SELECT $1, $2, o::integer, k, c, m, e
                     FROM unnest($3::bytea[], $4::smallint[], $5::text[], $6::bigint[])
                       WITH ORDINALITY AS t(k, c, m, e, o)"
                ),
                &[&num, &version, &ck, &ckind, &cm, &ce],
            )
            .await
            .map_err(pg_err)?;
            let params: [&(dyn ToSql + Sync); 2] = [&self.channel, &num.to_string()];
            txn.execute("SELECT pg_notify($1, $2)", &params)
                .await
                .map_err(pg_err)?;
        }
        txn.commit().await.map_err(pg_err)?;
        Ok((version as u64, expired.len()))
    }
}

fn unique_violation(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or("").to_owned())
}

#[async_trait::async_trait]
impl Namespaces for PostgresStore {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        match client
            .execute(
                &format!("INSERT INTO {s}.namespaces (id, title) VALUES ($1, $2)"),
                &[&id, &title],
            )
            .await
        {
            Ok(_) => Ok(Namespace {
                id: id.to_owned(),
                title: title.to_owned(),
            }),
            Err(e) => match unique_violation(&e) {
                Some(c) if c.contains("title") => {
                    Err(StoreError::NamespaceExists(title.to_owned()))
                }
                Some(_) => Err(StoreError::NamespaceIdTaken(id.to_owned())),
                None => Err(pg_err(e)),
            },
        }
    }
    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        let rows = client
            .query(
                &format!("SELECT id, title FROM {s}.namespaces ORDER BY id COLLATE \"C\""),
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .into_iter()
            .map(|r| Namespace {
                id: r.get(0),
                title: r.get(1),
            })
            .collect())
    }
    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        Ok(client
            .query_opt(
                &format!("SELECT id, title FROM {s}.namespaces WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?
            .map(|r| Namespace {
                id: r.get(0),
                title: r.get(1),
            }))
    }
    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        match client
            .execute(
                &format!("UPDATE {s}.namespaces SET title = $2 WHERE id = $1"),
                &[&id, &title],
            )
            .await
        {
            Ok(0) => Err(StoreError::NamespaceNotFound(id.to_owned())),
            Ok(_) => Ok(Namespace {
                id: id.to_owned(),
                title: title.to_owned(),
            }),
            Err(e) if unique_violation(&e).is_some() => {
                Err(StoreError::NamespaceExists(title.to_owned()))
            }
            Err(e) => Err(pg_err(e)),
        }
    }
    async fn delete_namespace(&self, id: &str) -> Result<()> {
        let s = &self.inner.schema;
        let mut client = self.inner.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let Some(row) = txn
            .query_opt(
                &format!("DELETE FROM {s}.namespaces WHERE id = $1 RETURNING num"),
                &[&id],
            )
            .await
            .map_err(pg_err)?
        else {
            return Err(StoreError::NamespaceNotFound(id.to_owned()));
        };
        let num: i64 = row.get(0);
        txn.execute(&format!("DELETE FROM {s}.kv WHERE ns = $1"), &[&num])
            .await
            .map_err(pg_err)?;
        txn.execute(&format!("DELETE FROM {s}.changes WHERE ns = $1"), &[&num])
            .await
            .map_err(pg_err)?;
        let params: [&(dyn ToSql + Sync); 2] = [&self.inner.channel, &num.to_string()];
        txn.execute("SELECT pg_notify($1, $2)", &params)
            .await
            .map_err(pg_err)?;
        txn.commit().await.map_err(pg_err)?;
        self.inner.hub.close(Some(id));
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ranges: true,
            atomic_batch: true,
            preconditions: true,
            list_values: true,
            watch: WatchKind::CrossNode,
            durable: true,
            versions: true,
            native_expiry: false,
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        // One round trip tells a missing namespace from a missing key.
        let row = client
            .query_opt(
                &format!(
                    "SELECT n.num, kv.value, kv.metadata, kv.expiration, kv.version
                     FROM {s}.namespaces n
                     LEFT JOIN {s}.kv kv ON kv.ns = n.num AND kv.key = $2
                     WHERE n.id = $1"
                ),
                &[&ns, &key.as_bytes()],
            )
            .await
            .map_err(pg_err)?
            .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))?;
        if row.get::<_, Option<Vec<u8>>>(1).is_none() {
            return Ok(None);
        }
        Ok(Some(Inner::record(&row, 1)))
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        let num = self.inner.num(&client, ns).await?;
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let rows = client
            .query(
                &format!(
                    "SELECT key, value, metadata, expiration, version FROM {s}.kv
                     WHERE ns = $1 AND key = ANY($2)"
                ),
                &[&num, &wanted],
            )
            .await
            .map_err(pg_err)?;
        let found: HashMap<Vec<u8>, Record> = rows
            .iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), Inner::record(r, 1)))
            .collect();
        Ok(wanted.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        let num = self.inner.num(&client, ns).await?;
        let Some((lo, hi)) = key_bounds(&opts.prefix, &opts.start, &opts.end) else {
            return Ok(ListPage::default());
        };
        let limit = opts.limit.max(1);
        let mut sql = format!(
            "SELECT key, metadata, expiration, version{} FROM {s}.kv WHERE ns = $1",
            if opts.values { ", value" } else { "" }
        );
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(num)];
        for (bound, incl, excl) in [(&lo, ">=", ">"), (&hi, "<=", "<")] {
            let (op, k) = match bound {
                Bound::Included(k) => (incl, k),
                Bound::Excluded(k) => (excl, k),
                Bound::Unbounded => continue,
            };
            params.push(Box::new(k.clone()));
            sql.push_str(&format!(" AND key {op} ${}", params.len()));
        }
        sql.push_str(if opts.reverse {
            " ORDER BY key DESC"
        } else {
            " ORDER BY key"
        });
        // One more than asked tells whether more follow.
        sql.push_str(&format!(" LIMIT {}", limit + 1));
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&sql, &refs).await.map_err(pg_err)?;
        let more = rows.len() > limit;
        let mut entries = Vec::with_capacity(rows.len().min(limit));
        for row in rows.into_iter().take(limit) {
            entries.push(ListEntry {
                key: utf8(row.get(0))?,
                metadata: row.get(1),
                expiration: to_u64(row.get(2)),
                version: row.get::<_, i64>(3) as u64,
                value: opts.values.then(|| Bytes::from(row.get::<_, Vec<u8>>(4))),
            });
        }
        Ok(ListPage { entries, more })
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        Ok(self.inner.write(ns, batch, None).await?.0)
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        let inner = &self.inner;
        let s = &inner.schema;
        let client = inner.client().await?;
        // Subscribed before reading where the log stands, so nothing falls in between.
        let stream = inner.hub.subscribe(ns, prefix);
        let row = client
            .query_opt(
                &format!("SELECT num, version FROM {s}.namespaces WHERE id = $1"),
                &[&ns],
            )
            .await
            .map_err(pg_err)?
            .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))?;
        let (num, version): (i64, i64) = (row.get(0), row.get(1));
        let start = {
            let mut tailers = inner.tailers.lock().unwrap_or_else(|p| p.into_inner());
            tailers.insert(ns.to_owned(), ()).is_none()
        };
        if start {
            tokio::spawn(tail(inner.clone(), ns.to_owned(), num, version));
        }
        Ok(stream)
    }

    async fn sweep_expired(&self, ns: &str, now: u64, limit: usize) -> Result<usize> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        let num = self.inner.num(&client, ns).await?;
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let keys: Vec<Vec<u8>> = client
            .query(
                &format!("SELECT key FROM {s}.kv WHERE ns = $1 AND expiration <= $2 LIMIT $3"),
                &[&num, &now, &(limit as i64)],
            )
            .await
            .map_err(pg_err)?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        // The change log is pruned here too, the oldest versions first.
        client
            .execute(
                &format!(
                    "WITH cut AS (
                       UPDATE {s}.namespaces SET pruned_below = version - $2
                       WHERE num = $1 AND version - $2 > pruned_below RETURNING pruned_below)
                     DELETE FROM {s}.changes WHERE ns = $1 AND version < (SELECT pruned_below FROM cut)"
                ),
                &[&num, &CHANGES_KEPT],
            )
            .await
            .map_err(pg_err)?;
        drop(client);
        if keys.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::new();
        for k in keys {
            batch.ops.push(Op::Expire { key: utf8(k)? });
        }
        Ok(self.inner.write(ns, batch, Some(now)).await?.1)
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        let _ = self.inner.stop.send(true);
        self.inner.hub.close(None);
        self.inner.pool.close();
        Ok(())
    }
}
