//! A store on an embedded SQL engine reached through a tiny synchronous interface
//! ([`SqlExec`]): a Durable Object's SQLite storage in the edge host (`edge/`), where every call
//! is synchronous and the object is single-threaded. Edge-ready: no runtime, no I/O of its own.
//!
//! Keys are BLOBs (SQLite compares them with `memcmp`: byte order, as the contract wants); one
//! table holds every namespace's records, one the namespaces, one the store's version. A value
//! over [`PART_BYTES`] is kept in parts in a table of its own: a Durable Object's SQLite takes
//! at most 2 MB a row, and Workers KV values go to 25 MiB. A batch
//! runs inside [`SqlExec::transaction`], so it applies whole or not at all, preconditions
//! included. Watchers are served in process ([`WatchHub`]): an object is the only writer of its
//! storage, so it sees every change.

use std::ops::Bound;

use bytes::Bytes;

use crate::range::{key_bounds, ByteRange};
use crate::watch::WatchHub;
use crate::{
    Batch, Capabilities, Event, EventKind, EventStream, ListEntry, ListOptions, ListPage,
    Namespace, Namespaces, Op, Record, Result, Store, StoreError,
};

/// A value going into or coming out of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// What the store needs of the engine: statements with positional `?` parameters, and a
/// transaction around a closure. Implementations are synchronous.
pub trait SqlExec: Send + Sync {
    /// Runs one statement; returns its rows, each a list of column values.
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>>;
    /// Runs `work` as one transaction: every statement it ran applies, or (when it returns an
    /// error) none does.
    fn transaction(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()>;
}

/// The largest value kept in its record's row; larger ones go to `kv_parts` in parts this size.
pub const PART_BYTES: usize = 1024 * 1024;

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS kv_namespaces (id TEXT PRIMARY KEY, title TEXT NOT NULL UNIQUE)",
    // `parts` 0: the value is in `value`; n > 0: it is in n rows of kv_parts.
    "CREATE TABLE IF NOT EXISTS kv_records (ns TEXT NOT NULL, key BLOB NOT NULL, \
     value BLOB NOT NULL, metadata TEXT, expiration INTEGER, version INTEGER NOT NULL, \
     parts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (ns, key)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS kv_parts (ns TEXT NOT NULL, key BLOB NOT NULL, \
     part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (ns, key, part)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS kv_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
];

/// A [`Store`] on an [`SqlExec`].
pub struct SqlStore<E: SqlExec> {
    sql: E,
    hub: WatchHub,
    closed: crate::OpenState,
}

fn text(v: &SqlValue) -> Result<String> {
    match v {
        SqlValue::Text(s) => Ok(s.clone()),
        other => Err(StoreError::Corrupt(format!(
            "expected text, found {other:?}"
        ))),
    }
}

fn int(v: &SqlValue) -> Result<Option<u64>> {
    match v {
        SqlValue::Null => Ok(None),
        SqlValue::Integer(n) => u64::try_from(*n)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("negative number {n}"))),
        other => Err(StoreError::Corrupt(format!(
            "expected an integer, found {other:?}"
        ))),
    }
}

fn blob(v: &SqlValue) -> Result<Vec<u8>> {
    match v {
        SqlValue::Blob(b) => Ok(b.clone()),
        // An empty BLOB may come back as an empty text or array depending on the engine.
        SqlValue::Text(s) => Ok(s.clone().into_bytes()),
        other => Err(StoreError::Corrupt(format!(
            "expected bytes, found {other:?}"
        ))),
    }
}

/// The metadata, expiration and version columns, in that order.
fn beside(r: &[SqlValue]) -> Result<(Option<String>, Option<u64>, u64)> {
    let metadata = match &r[0] {
        SqlValue::Null => None,
        v => Some(text(v)?),
    };
    Ok((metadata, int(&r[1])?, int(&r[2])?.unwrap_or(0)))
}

fn opt_int(v: Option<u64>) -> Result<SqlValue> {
    match v {
        None => Ok(SqlValue::Null),
        Some(n) => i64::try_from(n)
            .map(SqlValue::Integer)
            .map_err(|_| StoreError::Backend(format!("{n} is too large to store"))),
    }
}

fn opt_text(v: Option<String>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Text)
}

fn utf8(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|_| StoreError::Corrupt("a key is not UTF-8".into()))
}

/// `key > ?` and friends for a byte range, with their parameters.
fn range_sql(bounds: ByteRange, params: &mut Vec<SqlValue>) -> String {
    let mut sql = String::new();
    for (bound, incl, excl) in [(bounds.0, ">=", ">"), (bounds.1, "<=", "<")] {
        let (op, b) = match bound {
            Bound::Included(b) => (incl, b),
            Bound::Excluded(b) => (excl, b),
            Bound::Unbounded => continue,
        };
        sql.push_str(&format!(" AND key {op} ?"));
        params.push(SqlValue::Blob(b));
    }
    sql
}

impl<E: SqlExec> SqlStore<E> {
    /// Opens the store on `sql`, making its tables the first time.
    pub fn open(sql: E) -> Result<Self> {
        for statement in SCHEMA {
            sql.exec(statement, &[])?;
        }
        Ok(Self {
            sql,
            hub: WatchHub::new(1024),
            closed: crate::OpenState::default(),
        })
    }

    /// Open watch streams on a namespace (for tests and diagnostics).
    pub fn watchers(&self, ns: &str) -> usize {
        self.hub.watchers(ns)
    }

    /// The engine underneath (for tests and diagnostics).
    pub fn executor(&self) -> &E {
        &self.sql
    }

    fn check_open(&self) -> Result<()> {
        self.closed.check()
    }

    fn namespace(&self, id: &str) -> Result<Option<Namespace>> {
        let rows = self.sql.exec(
            "SELECT id, title FROM kv_namespaces WHERE id = ?",
            &[SqlValue::Text(id.to_owned())],
        )?;
        rows.first()
            .map(|r| {
                Ok(Namespace {
                    id: text(&r[0])?,
                    title: text(&r[1])?,
                })
            })
            .transpose()
    }

    fn require(&self, ns: &str) -> Result<()> {
        self.check_open()?;
        match self.namespace(ns)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NamespaceNotFound(ns.to_owned())),
        }
    }

    fn title_taken(&self, title: &str, except: &str) -> Result<bool> {
        let rows = self.sql.exec(
            "SELECT id FROM kv_namespaces WHERE title = ? AND id <> ?",
            &[
                SqlValue::Text(title.to_owned()),
                SqlValue::Text(except.to_owned()),
            ],
        )?;
        Ok(!rows.is_empty())
    }

    fn version(&self) -> Result<u64> {
        let rows = self
            .sql
            .exec("SELECT value FROM kv_meta WHERE name = 'version'", &[])?;
        Ok(match rows.first() {
            Some(r) => int(&r[0])?.unwrap_or(0),
            None => 0,
        })
    }

    /// A record's value: the `value` column, or its parts when `parts` > 0.
    fn value_of(&self, ns: &str, key: &[u8], value: &SqlValue, parts: &SqlValue) -> Result<Bytes> {
        let parts = int(parts)?.unwrap_or(0);
        if parts == 0 {
            return Ok(Bytes::from(blob(value)?));
        }
        let rows = self.sql.exec(
            "SELECT data FROM kv_parts WHERE ns = ? AND key = ? ORDER BY part",
            &[SqlValue::Text(ns.to_owned()), SqlValue::Blob(key.to_vec())],
        )?;
        if rows.len() as u64 != parts {
            return Err(StoreError::Corrupt(format!(
                "a value has {} of its {parts} parts",
                rows.len()
            )));
        }
        let mut out = Vec::new();
        for r in &rows {
            out.extend_from_slice(&blob(&r[0])?);
        }
        Ok(Bytes::from(out))
    }

    fn current_version(&self, ns: &str, key: &str) -> Result<Option<u64>> {
        let rows = self.sql.exec(
            "SELECT version FROM kv_records WHERE ns = ? AND key = ?",
            &[
                SqlValue::Text(ns.to_owned()),
                SqlValue::Blob(key.as_bytes().to_vec()),
            ],
        )?;
        rows.first()
            .map(|r| int(&r[0]))
            .transpose()
            .map(Option::flatten)
    }

    /// Applies one op; whether it changed something (an expiry of a key already gone does not).
    fn apply(&self, ns: &str, op: &Op, version: i64) -> Result<bool> {
        let ns_v = SqlValue::Text(ns.to_owned());
        let key_v = SqlValue::Blob(op.key().as_bytes().to_vec());
        self.sql.exec(
            "DELETE FROM kv_parts WHERE ns = ? AND key = ?",
            &[ns_v.clone(), key_v.clone()],
        )?;
        match op {
            Op::Put {
                value,
                metadata,
                expiration,
                ..
            } => {
                let (inline, parts) = if value.len() <= PART_BYTES {
                    (value.to_vec(), 0)
                } else {
                    for (n, part) in value.chunks(PART_BYTES).enumerate() {
                        self.sql.exec(
                            "INSERT INTO kv_parts (ns, key, part, data) VALUES (?, ?, ?, ?)",
                            &[
                                ns_v.clone(),
                                key_v.clone(),
                                SqlValue::Integer(n as i64),
                                SqlValue::Blob(part.to_vec()),
                            ],
                        )?;
                    }
                    (Vec::new(), value.len().div_ceil(PART_BYTES))
                };
                self.sql.exec(
                    "INSERT OR REPLACE INTO kv_records \
                     (ns, key, value, metadata, expiration, version, parts) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &[
                        ns_v,
                        key_v,
                        SqlValue::Blob(inline),
                        opt_text(metadata.clone()),
                        opt_int(*expiration)?,
                        SqlValue::Integer(version),
                        SqlValue::Integer(parts as i64),
                    ],
                )?;
                Ok(true)
            }
            Op::Delete { .. } | Op::Expire { .. } => {
                let gone = self.sql.exec(
                    "DELETE FROM kv_records WHERE ns = ? AND key = ? RETURNING version",
                    &[ns_v, key_v],
                )?;
                Ok(!gone.is_empty())
            }
        }
    }
}

#[async_trait::async_trait]
impl<E: SqlExec> Namespaces for SqlStore<E> {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        self.check_open()?;
        if self.namespace(id)?.is_some() {
            return Err(StoreError::NamespaceIdTaken(id.to_owned()));
        }
        if self.title_taken(title, id)? {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        self.sql.exec(
            "INSERT INTO kv_namespaces (id, title) VALUES (?, ?)",
            &[
                SqlValue::Text(id.to_owned()),
                SqlValue::Text(title.to_owned()),
            ],
        )?;
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        self.check_open()?;
        self.sql
            .exec("SELECT id, title FROM kv_namespaces ORDER BY id", &[])?
            .iter()
            .map(|r| {
                Ok(Namespace {
                    id: text(&r[0])?,
                    title: text(&r[1])?,
                })
            })
            .collect()
    }

    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>> {
        self.check_open()?;
        self.namespace(id)
    }

    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        self.require(id)?;
        if self.title_taken(title, id)? {
            return Err(StoreError::NamespaceExists(title.to_owned()));
        }
        self.sql.exec(
            "UPDATE kv_namespaces SET title = ? WHERE id = ?",
            &[
                SqlValue::Text(title.to_owned()),
                SqlValue::Text(id.to_owned()),
            ],
        )?;
        Ok(Namespace {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    }

    async fn delete_namespace(&self, id: &str) -> Result<()> {
        self.require(id)?;
        let ns = [SqlValue::Text(id.to_owned())];
        self.sql.transaction(&mut || {
            self.sql.exec("DELETE FROM kv_parts WHERE ns = ?", &ns)?;
            self.sql.exec("DELETE FROM kv_records WHERE ns = ?", &ns)?;
            self.sql
                .exec("DELETE FROM kv_namespaces WHERE id = ?", &ns)?;
            Ok(())
        })?;
        self.hub.close(Some(id));
        Ok(())
    }
}

#[async_trait::async_trait]
impl<E: SqlExec> Store for SqlStore<E> {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            ..Capabilities::ORDERED
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        self.require(ns)?;
        let rows = self.sql.exec(
            "SELECT value, metadata, expiration, version, parts FROM kv_records \
             WHERE ns = ? AND key = ?",
            &[
                SqlValue::Text(ns.to_owned()),
                SqlValue::Blob(key.as_bytes().to_vec()),
            ],
        )?;
        rows.first()
            .map(|r| {
                let (metadata, expiration, version) = beside(&r[1..])?;
                Ok(Record {
                    value: self.value_of(ns, key.as_bytes(), &r[0], &r[4])?,
                    metadata,
                    expiration,
                    version,
                })
            })
            .transpose()
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        self.require(ns)?;
        let Some(bounds) = key_bounds(&opts.prefix, &opts.start, &opts.end) else {
            return Ok(ListPage::default());
        };
        let limit = opts.limit.max(1);
        let mut params = vec![SqlValue::Text(ns.to_owned())];
        let columns = if opts.values {
            "key, metadata, expiration, version, value, parts"
        } else {
            "key, metadata, expiration, version"
        };
        let mut sql = format!("SELECT {columns} FROM kv_records WHERE ns = ?");
        sql.push_str(&range_sql(bounds, &mut params));
        sql.push_str(if opts.reverse {
            " ORDER BY key DESC LIMIT ?"
        } else {
            " ORDER BY key ASC LIMIT ?"
        });
        params.push(SqlValue::Integer(
            i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
        ));
        let mut rows = self.sql.exec(&sql, &params)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let entries = rows
            .iter()
            .map(|r| {
                let (metadata, expiration, version) = beside(&r[1..])?;
                let key = blob(&r[0])?;
                let value = match (r.get(4), r.get(5)) {
                    (Some(v), Some(parts)) => Some(self.value_of(ns, &key, v, parts)?),
                    _ => None,
                };
                Ok(ListEntry {
                    key: utf8(key)?,
                    metadata,
                    expiration,
                    version,
                    value,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage { entries, more })
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        self.require(ns)?;
        let version = self.version()?.saturating_add(1);
        let stored = i64::try_from(version)
            .map_err(|_| StoreError::Backend("the version counter is exhausted".into()))?;
        let mut events: Vec<Event> = Vec::with_capacity(batch.ops.len());
        self.sql.transaction(&mut || {
            events.clear();
            for pre in &batch.preconditions {
                pre.check(self.current_version(ns, &pre.key)?)?;
            }
            for op in &batch.ops {
                let event = op.event(version);
                if self.apply(ns, op, stored)? || !matches!(event.kind, EventKind::Expire) {
                    events.push(event);
                }
            }
            self.sql.exec(
                "INSERT OR REPLACE INTO kv_meta (name, value) VALUES ('version', ?)",
                &[SqlValue::Integer(stored)],
            )?;
            Ok(())
        })?;
        self.hub.publish(ns, events);
        Ok(version)
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        self.require(ns)?;
        Ok(self.hub.subscribe(ns, prefix))
    }

    async fn close(&self) -> Result<()> {
        self.closed.close();
        self.hub.close(None);
        Ok(())
    }
}
