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
    Batch, Capabilities, Event, EventKind, EventStream, ListEntry, ListOptions, ListPage,
    Namespace, Namespaces, Op, Record, Result, Store, StoreError, WatchKind,
};

mod notify;
mod schema;
mod write;

use notify::{listen_forever, tail};
use schema::{migrations, valid_schema};

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
    closed: crate::OpenState,
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
            closed: crate::OpenState::default(),
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

impl Inner {
    fn open(&self) -> Result<()> {
        self.closed.check()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.open()?;
        self.pool.get().await.map_err(pool_err)
    }

    async fn num(&self, client: &deadpool_postgres::Object, ns: &str) -> Result<i64> {
        let s = &self.schema;
        client
            .query_opt(
                &client
                    .prepare_cached(&format!("SELECT num FROM {s}.namespaces WHERE id = $1"))
                    .await
                    .map_err(pg_err)?,
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
            watch: WatchKind::CrossNode,
            durable: true,
            // Each namespace has its own version row: commits to two namespaces take no lock
            // in common.
            independent_namespaces: true,
            ..Capabilities::ORDERED
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let s = &self.inner.schema;
        let client = self.inner.client().await?;
        // One round trip tells a missing namespace from a missing key.
        let row = client
            .query_opt(
                &client
                    .prepare_cached(&format!(
                        "SELECT n.num, kv.value, kv.metadata, kv.expiration, kv.version
                     FROM {s}.namespaces n
                     LEFT JOIN {s}.kv kv ON kv.ns = n.num AND kv.key = $2
                     WHERE n.id = $1"
                    ))
                    .await
                    .map_err(pg_err)?,
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
                &client
                    .prepare_cached(&format!(
                        "SELECT key, value, metadata, expiration, version FROM {s}.kv
                     WHERE ns = $1 AND key = ANY($2)"
                    ))
                    .await
                    .map_err(pg_err)?,
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
        // One more than asked tells whether more follow. A parameter, so the statement text
        // repeats and is prepared once per connection.
        params.push(Box::new(i64::try_from(limit + 1).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" LIMIT ${}", params.len()));
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
        let rows = client.query(&stmt, &refs).await.map_err(pg_err)?;
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
        self.inner.closed.close();
        let _ = self.inner.stop.send(true);
        self.inner.hub.close(None);
        self.inner.pool.close();
        Ok(())
    }
}
