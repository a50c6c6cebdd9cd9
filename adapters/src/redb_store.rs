//! The embedded durable default: every namespace in one redb file, fsync on commit.
//!
//! redb is synchronous, so it never runs on the caller's executor: one writer thread owns every
//! write transaction and reader threads own the read transactions; callers hand them closures
//! and await a oneshot reply. The writer commits whatever batches queued up meanwhile in one
//! transaction (group commit: one fsync for many writers). Each batch checks its preconditions
//! before it writes anything, so a batch that fails leaves nothing behind in the shared
//! transaction. Readers likewise answer every queued read from one read transaction.
//!
//! Layout: table `data` maps `namespace id ‖ 0x00 ‖ key` (ids hold no NUL) to an encoded
//! [`Record`]; `namespaces` maps id to title; `meta` holds the last committed version.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::Bytes;
use futures::channel::oneshot;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};

use crate::range::key_bounds;
use crate::watch::WatchHub;
use crate::{
    Batch, Capabilities, Event, EventKind, EventStream, Expect, ListEntry, ListOptions, ListPage,
    Namespace, Op, Record, Result, Store, StoreError, WatchKind,
};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const SPACES: TableDefinition<&str, &str> = TableDefinition::new("namespaces");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const VERSION_KEY: &str = "version";

/// Threads answering reads; two match the cores this is sized for.
const READERS: usize = 2;
/// The most jobs one transaction takes from the queue.
const GROUP: usize = 256;

type ReadJob = Box<dyn FnOnce(&ReadTransaction) + Send>;
type Finish = Box<dyn FnOnce(Result<()>) + Send>;
/// Runs inside the shared write transaction; says whether it failed fatally (the transaction
/// must be aborted) and how to answer once the commit is known.
type WriteJob = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Finish) + Send>;

struct WriteCtx<'t> {
    data: Table<'t, &'static [u8], &'static [u8]>,
    spaces: Table<'t, &'static str, &'static str>,
    version: u64,
    events: Vec<(String, Vec<Event>)>,
}

pub struct RedbStore {
    writer: Mutex<Option<mpsc::Sender<WriteJob>>>,
    readers: Mutex<Option<mpsc::Sender<ReadJob>>>,
    hub: Arc<WatchHub>,
    closed: AtomicBool,
    /// Each thread drops its sender when it ends; `close` waits for all of them.
    done: Mutex<Vec<oneshot::Receiver<()>>>,
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = Database::create(path.as_ref()).map_err(backend)?;
        let version = {
            let txn = db.begin_write().map_err(backend)?;
            let version = {
                txn.open_table(DATA).map_err(backend)?;
                txn.open_table(SPACES).map_err(backend)?;
                let meta = txn.open_table(META).map_err(backend)?;
                let v = meta.get(VERSION_KEY).map_err(backend)?;
                v.map(|g| g.value()).unwrap_or(0)
            };
            txn.commit().map_err(backend)?;
            version
        };
        let db = Arc::new(db);
        let hub = Arc::new(WatchHub::default());
        let mut done = Vec::new();

        let (wtx, wrx) = mpsc::channel::<WriteJob>();
        let (dtx, drx) = oneshot::channel();
        done.push(drx);
        let (wdb, whub) = (db.clone(), hub.clone());
        thread::Builder::new()
            .name("couchkv-redb-writer".into())
            .spawn(move || {
                writer_loop(&wdb, &whub, wrx, version);
                // The file lock goes with the last handle: release it before saying "done".
                drop(wdb);
                drop(dtx);
            })
            .map_err(backend)?;

        let (rtx, rrx) = mpsc::channel::<ReadJob>();
        let rrx = Arc::new(Mutex::new(rrx));
        for i in 0..READERS {
            let (dtx, drx) = oneshot::channel();
            done.push(drx);
            let (rdb, rrx) = (db.clone(), rrx.clone());
            thread::Builder::new()
                .name(format!("couchkv-redb-reader-{i}"))
                .spawn(move || {
                    reader_loop(&rdb, &rrx);
                    drop(rdb);
                    drop(dtx);
                })
                .map_err(backend)?;
        }
        Ok(Self {
            writer: Mutex::new(Some(wtx)),
            readers: Mutex::new(Some(rtx)),
            hub,
            closed: AtomicBool::new(false),
            done: Mutex::new(done),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open()?;
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |txn| {
            let _ = tx.send(f(txn));
        });
        {
            let guard = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        rx.await
            .map_err(|_| StoreError::Backend("the read was not carried out".into()))?
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open()?;
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: WriteJob = Box::new(move |ctx| {
            let result = f(ctx);
            let fatal = matches!(result, Err(StoreError::Backend(_) | StoreError::Corrupt(_)));
            let finish: Finish = Box::new(move |commit| {
                let _ = tx.send(result.and_then(|v| commit.map(|()| v)));
            });
            (fatal, finish)
        });
        {
            let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        rx.await
            .map_err(|_| StoreError::Backend("the write was not carried out".into()))?
    }
}

fn writer_loop(db: &Database, hub: &WatchHub, rx: mpsc::Receiver<WriteJob>, mut version: u64) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match run_group(db, jobs, version) {
            Ok((v, events, finishers)) => {
                version = v;
                // After the commit and before any writer hears back: watchers see every
                // acknowledged write, in commit order.
                for (ns, evs) in events {
                    hub.publish(&ns, evs);
                }
                for f in finishers {
                    f(Ok(()));
                }
            }
            Err((e, finishers)) => {
                for f in finishers {
                    f(Err(e.clone()));
                }
            }
        }
    }
}

type GroupOk = (u64, Vec<(String, Vec<Event>)>, Vec<Finish>);

fn run_group(
    db: &Database,
    jobs: Vec<WriteJob>,
    version: u64,
) -> std::result::Result<GroupOk, (StoreError, Vec<Finish>)> {
    let mut finishers = Vec::with_capacity(jobs.len());
    let txn: WriteTransaction = match db.begin_write() {
        Ok(t) => t,
        Err(e) => return Err((backend(e), finishers)),
    };
    let staged = (|| -> Result<(u64, Vec<(String, Vec<Event>)>)> {
        let mut ctx = WriteCtx {
            data: txn.open_table(DATA).map_err(backend)?,
            spaces: txn.open_table(SPACES).map_err(backend)?,
            version,
            events: Vec::new(),
        };
        let mut fatal = false;
        for job in jobs {
            if fatal {
                // Dropped unanswered: its caller hears that the write was not carried out.
                continue;
            }
            let (is_fatal, finish) = job(&mut ctx);
            finishers.push(finish);
            fatal = is_fatal;
        }
        if fatal {
            return Err(StoreError::Backend(
                "a batch failed; transaction aborted".into(),
            ));
        }
        if ctx.version != version {
            let mut meta = txn.open_table(META).map_err(backend)?;
            meta.insert(VERSION_KEY, ctx.version).map_err(backend)?;
        }
        Ok((ctx.version, ctx.events))
    })();
    match staged {
        Ok((v, events)) => match txn.commit() {
            Ok(()) => Ok((v, events, finishers)),
            Err(e) => Err((backend(e), finishers)),
        },
        Err(e) => {
            let _ = txn.abort();
            Err((e, finishers))
        }
    }
}

fn reader_loop(db: &Database, rx: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let jobs = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(first) = rx.recv() else { return };
            let mut jobs = vec![first];
            while jobs.len() < GROUP {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        // On failure the jobs are dropped and their callers hear the read was not carried out.
        if let Ok(txn) = db.begin_read() {
            for job in jobs {
                job(&txn);
            }
        }
    }
}

fn data_key(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1 + key.len());
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Byte bounds in `data` for the namespace's part of the options' range.
fn data_bounds(ns: &str, opts: &ListOptions) -> Option<(Bound<Vec<u8>>, Bound<Vec<u8>>)> {
    let (lo, hi) = key_bounds(&opts.prefix, &opts.start, &opts.end)?;
    let with_ns = |k: Vec<u8>| {
        let mut out = data_key(ns, "");
        out.extend_from_slice(&k);
        out
    };
    let lo = match lo {
        Bound::Included(k) => Bound::Included(with_ns(k)),
        Bound::Excluded(k) => Bound::Excluded(with_ns(k)),
        Bound::Unbounded => Bound::Included(data_key(ns, "")),
    };
    let hi = match hi {
        Bound::Included(k) => Bound::Included(with_ns(k)),
        Bound::Excluded(k) => Bound::Excluded(with_ns(k)),
        Bound::Unbounded => {
            let mut end = ns.as_bytes().to_vec();
            end.push(1);
            Bound::Excluded(end)
        }
    };
    Some((lo, hi))
}

fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

// Record encoding: version u64 LE ‖ expiration u64 LE (0 = none) ‖ metadata length u32 LE
// (u32::MAX = none) ‖ metadata ‖ value.
const HEADER: usize = 20;

fn encode(value: &[u8], metadata: Option<&str>, expiration: Option<u64>, version: u64) -> Vec<u8> {
    let meta = metadata.map(str::as_bytes);
    let mut out = Vec::with_capacity(HEADER + meta.map_or(0, <[u8]>::len) + value.len());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&expiration.unwrap_or(0).to_le_bytes());
    let mlen = meta.map_or(u32::MAX, |m| m.len() as u32);
    out.extend_from_slice(&mlen.to_le_bytes());
    if let Some(m) = meta {
        out.extend_from_slice(m);
    }
    out.extend_from_slice(value);
    out
}

struct Decoded<'a> {
    version: u64,
    expiration: Option<u64>,
    metadata: Option<String>,
    value: &'a [u8],
}

fn decode(raw: &[u8]) -> Result<Decoded<'_>> {
    let corrupt = || StoreError::Corrupt("record shorter than its header".into());
    let header = raw.get(..HEADER).ok_or_else(corrupt)?;
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let version = u64_at(0);
    let expiration = Some(u64_at(8)).filter(|&e| e != 0);
    let mut l = [0u8; 4];
    l.copy_from_slice(&header[16..20]);
    let mlen = u32::from_le_bytes(l);
    let (metadata, value) = if mlen == u32::MAX {
        (None, &raw[HEADER..])
    } else {
        let end = HEADER + mlen as usize;
        let m = raw.get(HEADER..end).ok_or_else(corrupt)?;
        let m = String::from_utf8(m.to_vec())
            .map_err(|_| StoreError::Corrupt("metadata is not UTF-8".into()))?;
        (Some(m), &raw[end..])
    };
    Ok(Decoded {
        version,
        expiration,
        metadata,
        value,
    })
}

fn to_record(raw: &[u8]) -> Result<Record> {
    let d = decode(raw)?;
    Ok(Record {
        value: Bytes::copy_from_slice(d.value),
        metadata: d.metadata,
        expiration: d.expiration,
        version: d.version,
    })
}

fn require_space(txn: &ReadTransaction, ns: &str) -> Result<()> {
    let spaces = txn.open_table(SPACES).map_err(backend)?;
    match spaces.get(ns).map_err(backend)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NamespaceNotFound(ns.to_owned())),
    }
}

fn title_taken(
    spaces: &Table<'_, &'static str, &'static str>,
    title: &str,
    except: &str,
) -> Result<bool> {
    for row in spaces.iter().map_err(backend)? {
        let (id, t) = row.map_err(backend)?;
        if t.value() == title && id.value() != except {
            return Ok(true);
        }
    }
    Ok(false)
}

fn apply_batch(ctx: &mut WriteCtx<'_>, ns: &str, batch: Batch) -> Result<u64> {
    if ctx.spaces.get(ns).map_err(backend)?.is_none() {
        return Err(StoreError::NamespaceNotFound(ns.to_owned()));
    }
    // Every check before the first write: a failed batch leaves the shared transaction as it was.
    for pre in &batch.preconditions {
        let current = match ctx
            .data
            .get(data_key(ns, &pre.key).as_slice())
            .map_err(backend)?
        {
            Some(raw) => Some(decode(raw.value())?.version),
            None => None,
        };
        let holds = match pre.expect {
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        };
        if !holds {
            return Err(StoreError::Conflict {
                key: pre.key.clone(),
            });
        }
    }
    let version = ctx.version + 1;
    let mut events = Vec::with_capacity(batch.ops.len());
    for op in batch.ops {
        let k = data_key(ns, op.key());
        match op {
            Op::Put {
                key,
                value,
                metadata,
                expiration,
            } => {
                let raw = encode(&value, metadata.as_deref(), expiration, version);
                ctx.data
                    .insert(k.as_slice(), raw.as_slice())
                    .map_err(backend)?;
                events.push(Event {
                    key,
                    version,
                    kind: EventKind::Put {
                        metadata,
                        expiration,
                    },
                });
            }
            Op::Delete { key } => {
                ctx.data.remove(k.as_slice()).map_err(backend)?;
                events.push(Event {
                    key,
                    version,
                    kind: EventKind::Delete,
                });
            }
            Op::Expire { key } => {
                if ctx.data.remove(k.as_slice()).map_err(backend)?.is_some() {
                    events.push(Event {
                        key,
                        version,
                        kind: EventKind::Expire,
                    });
                }
            }
        }
    }
    ctx.version = version;
    ctx.events.push((ns.to_owned(), events));
    Ok(version)
}

#[async_trait::async_trait]
impl Store for RedbStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ranges: true,
            atomic_batch: true,
            preconditions: true,
            list_values: true,
            watch: WatchKind::InProcess,
            durable: true,
        }
    }

    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let (id, title) = (id.to_owned(), title.to_owned());
        self.write(move |ctx| {
            if id.as_bytes().contains(&0) {
                return Err(StoreError::Backend("namespace ids may not hold NUL".into()));
            }
            if ctx.spaces.get(id.as_str()).map_err(backend)?.is_some() {
                return Err(StoreError::NamespaceIdTaken(id));
            }
            if title_taken(&ctx.spaces, &title, "")? {
                return Err(StoreError::NamespaceExists(title));
            }
            ctx.spaces
                .insert(id.as_str(), title.as_str())
                .map_err(backend)?;
            Ok(Namespace { id, title })
        })
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        self.read(|txn| {
            let spaces = txn.open_table(SPACES).map_err(backend)?;
            let mut out = Vec::new();
            for row in spaces.iter().map_err(backend)? {
                let (id, title) = row.map_err(backend)?;
                out.push(Namespace {
                    id: id.value().to_owned(),
                    title: title.value().to_owned(),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn get_namespace(&self, id: &str) -> Result<Option<Namespace>> {
        let id = id.to_owned();
        self.read(move |txn| {
            let spaces = txn.open_table(SPACES).map_err(backend)?;
            let title = spaces.get(id.as_str()).map_err(backend)?;
            Ok(title.map(|t| Namespace {
                title: t.value().to_owned(),
                id: id.clone(),
            }))
        })
        .await
    }

    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let (id, title) = (id.to_owned(), title.to_owned());
        self.write(move |ctx| {
            if ctx.spaces.get(id.as_str()).map_err(backend)?.is_none() {
                return Err(StoreError::NamespaceNotFound(id));
            }
            if title_taken(&ctx.spaces, &title, &id)? {
                return Err(StoreError::NamespaceExists(title));
            }
            ctx.spaces
                .insert(id.as_str(), title.as_str())
                .map_err(backend)?;
            Ok(Namespace { id, title })
        })
        .await
    }

    async fn delete_namespace(&self, id: &str) -> Result<()> {
        let owned = id.to_owned();
        self.write(move |ctx| {
            let id = owned;
            if ctx.spaces.remove(id.as_str()).map_err(backend)?.is_none() {
                return Err(StoreError::NamespaceNotFound(id));
            }
            let lo = data_key(&id, "");
            let mut hi = id.as_bytes().to_vec();
            hi.push(1);
            ctx.data
                .retain_in::<&[u8], _>(lo.as_slice()..hi.as_slice(), |_, _| false)
                .map_err(backend)?;
            Ok(())
        })
        .await?;
        self.hub.close(Some(id));
        Ok(())
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let (ns, k) = (ns.to_owned(), data_key(ns, key));
        self.read(move |txn| {
            require_space(txn, &ns)?;
            let data = txn.open_table(DATA).map_err(backend)?;
            let raw = data.get(k.as_slice()).map_err(backend)?;
            raw.map(|r| to_record(r.value())).transpose()
        })
        .await
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let ns = ns.to_owned();
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| data_key(&ns, k)).collect();
        self.read(move |txn| {
            require_space(txn, &ns)?;
            let data = txn.open_table(DATA).map_err(backend)?;
            keys.iter()
                .map(|k| {
                    let raw = data.get(k.as_slice()).map_err(backend)?;
                    raw.map(|r| to_record(r.value())).transpose()
                })
                .collect()
        })
        .await
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        let ns = ns.to_owned();
        let opts = opts.clone();
        self.read(move |txn| {
            require_space(txn, &ns)?;
            let Some((lo, hi)) = data_bounds(&ns, &opts) else {
                return Ok(ListPage::default());
            };
            let data = txn.open_table(DATA).map_err(backend)?;
            let range = data
                .range::<&[u8]>((as_slice(&lo), as_slice(&hi)))
                .map_err(backend)?;
            let iter: Box<dyn Iterator<Item = _>> = if opts.reverse {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            let skip = ns.len() + 1;
            let limit = opts.limit.max(1);
            let mut page = ListPage::default();
            for row in iter {
                if page.entries.len() == limit {
                    page.more = true;
                    break;
                }
                let (k, v) = row.map_err(backend)?;
                let key = std::str::from_utf8(&k.value()[skip..])
                    .map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))?
                    .to_owned();
                let raw = v.value();
                let d = decode(raw)?;
                page.entries.push(ListEntry {
                    key,
                    metadata: d.metadata,
                    expiration: d.expiration,
                    version: d.version,
                    value: opts.values.then(|| Bytes::copy_from_slice(d.value)),
                });
            }
            Ok(page)
        })
        .await
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        let ns = ns.to_owned();
        self.write(move |ctx| apply_batch(ctx, &ns, batch)).await
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        let ns_owned = ns.to_owned();
        self.read(move |txn| require_space(txn, &ns_owned)).await?;
        Ok(self.hub.subscribe(ns, prefix))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        // Dropping the senders ends the threads once the queued jobs are done.
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let done = std::mem::take(&mut *self.done.lock().unwrap_or_else(|p| p.into_inner()));
        for d in done {
            let _ = d.await;
        }
        self.hub.close(None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip() {
        let raw = encode(b"value", Some("{\"a\":1}"), Some(42), 7);
        let d = decode(&raw).unwrap();
        assert_eq!(
            (d.version, d.expiration, d.metadata.as_deref(), d.value),
            (7, Some(42), Some("{\"a\":1}"), &b"value"[..])
        );
        let raw = encode(b"", None, None, 1);
        let d = decode(&raw).unwrap();
        assert_eq!((d.expiration, d.metadata, d.value), (None, None, &b""[..]));
        assert!(decode(&raw[..10]).is_err());
    }
}
