//! The embedded durable default: every namespace in one redb file, fsync on commit.
//!
//! redb is synchronous, so it never runs on the caller's executor: one writer thread owns every
//! write transaction and reader threads own the read transactions; callers hand them closures
//! and await a oneshot reply. The writer commits whatever batches queued up meanwhile in one
//! transaction (group commit: one fsync for many writers). Each batch checks its preconditions
//! before it writes anything, so a batch that fails leaves nothing behind in the shared
//! transaction. Readers likewise answer every queued read from one read transaction.
//!
//! Layout: table `data` maps `namespace number ‖ key` to an encoded [`Record`], where the number
//! is a 4-byte big-endian counter given to each namespace when it is made (never reused, so a
//! namespace made again under an old id cannot see stale keys); `namespaces` maps id to
//! `number ‖ title`; `meta` holds the last committed version and the next namespace number.
//! The id → number map is also kept in memory, so reads need no namespace lookup.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread;

use bytes::Bytes;
use futures::channel::oneshot;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};

use crate::hot_cache::HotCache;
use crate::range::{key_bounds, ByteRange};
use crate::watch::WatchHub;
use crate::{
    Batch, Capabilities, Event, EventKind, EventStream, ListEntry, ListOptions, ListPage,
    Namespace, Namespaces, Op, Record, Result, Store, StoreError,
};

mod codec;
mod threads;
mod txn;

use codec::*;
use threads::{reader_loop, writer_loop};
use txn::{apply_batch, space_in_txn, title_taken};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const SPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const VERSION_KEY: &str = "version";
const NEXT_SPACE_KEY: &str = "next_namespace";

/// Threads answering reads. One: on the two cores this is sized for, the async runtime and the
/// writer need the rest, and a second reader mostly contends for the queue.
const READERS: usize = 1;
/// How long an idle reader polls its queue before it sleeps: a read that arrives meanwhile skips
/// the wake-up of a sleeping thread, which costs more than the read itself. Kept short: a
/// spinning reader burns a core the server may need.
const READER_SPIN: std::time::Duration = std::time::Duration::from_micros(20);
/// redb's page cache.
const REDB_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// The most jobs one transaction takes from the queue.
const GROUP: usize = 256;

type ReadJob = Box<dyn FnOnce(&ReadTransaction) + Send>;
type Finish = Box<dyn FnOnce(Result<()>) + Send>;
/// Runs inside the shared write transaction; says whether it failed fatally (the transaction
/// must be aborted) and how to answer once the commit is known.
type WriteJob = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Finish) + Send>;
/// A job and how soon its commit must be on disk.
type Queued = (WriteJob, crate::Durability);
/// How long a relaxed commit may stay off the disk before the writer makes it durable (by
/// default; [`RedbStore::open_with`]).
const RELAXED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

struct WriteCtx<'t> {
    data: Table<'t, &'static [u8], &'static [u8]>,
    spaces: Table<'t, &'static str, &'static [u8]>,
    version: u64,
    next_space: u32,
    events: Vec<(String, Vec<Event>)>,
    /// Namespace ids made (with their number) or removed (`None`), applied to the in-memory
    /// map right after the commit, in commit order.
    space_changes: Vec<(String, Option<u32>)>,
    /// Every data key written, for the hot cache to forget after the commit.
    written: Vec<Vec<u8>>,
}

type SpaceMap = Arc<RwLock<HashMap<String, u32>>>;

pub struct RedbStore {
    spaces: SpaceMap,
    writer: Mutex<Option<mpsc::Sender<Queued>>>,
    readers: Mutex<Option<mpsc::Sender<ReadJob>>>,
    hub: Arc<WatchHub>,
    cache: Arc<HotCache>,
    closed: crate::OpenState,
    /// Each thread drops its sender when it ends; `close` waits for all of them.
    done: Mutex<Vec<oneshot::Receiver<()>>>,
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, RELAXED_FOR)
    }

    /// [`RedbStore::open`], with relaxed batches made durable at most `relaxed_for` after
    /// their commit (when no durable batch came first).
    pub fn open_with(path: impl AsRef<Path>, relaxed_for: std::time::Duration) -> Result<Self> {
        // redb's default page cache is 1 GiB, which a long-running server fills as its file
        // grows; a fixed one keeps the process's memory flat (the OS page cache still helps).
        let db = Database::builder()
            .set_cache_size(REDB_CACHE_BYTES)
            .create(path.as_ref())
            .map_err(backend)?;
        let mut map = HashMap::new();
        let (version, next_space) = {
            let txn = db.begin_write().map_err(backend)?;
            let counters = {
                txn.open_table(DATA).map_err(backend)?;
                let spaces = txn.open_table(SPACES).map_err(backend)?;
                for row in spaces.iter().map_err(backend)? {
                    let (id, v) = row.map_err(backend)?;
                    let (num, _) = split_space(v.value())?;
                    map.insert(id.value().to_owned(), num);
                }
                let meta = txn.open_table(META).map_err(backend)?;
                let get = |k| -> Result<u64> {
                    Ok(meta
                        .get(k)
                        .map_err(backend)?
                        .map(|g| g.value())
                        .unwrap_or(0))
                };
                (get(VERSION_KEY)?, get(NEXT_SPACE_KEY)? as u32)
            };
            txn.commit().map_err(backend)?;
            counters
        };
        let spaces: SpaceMap = Arc::new(RwLock::new(map));
        let db = Arc::new(db);
        let hub = Arc::new(WatchHub::default());
        let cache = Arc::new(HotCache::default());
        let mut done = Vec::new();

        let (wtx, wrx) = mpsc::channel::<Queued>();
        let (dtx, drx) = oneshot::channel();
        done.push(drx);
        let (wdb, whub, wspaces, wcache) = (db.clone(), hub.clone(), spaces.clone(), cache.clone());
        thread::Builder::new()
            .name("couchkv-redb-writer".into())
            .spawn(move || {
                writer_loop(
                    &wdb,
                    &whub,
                    &wcache,
                    &wspaces,
                    wrx,
                    (version, next_space),
                    relaxed_for,
                );
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
            spaces,
            writer: Mutex::new(Some(wtx)),
            readers: Mutex::new(Some(rtx)),
            hub,
            cache,
            closed: crate::OpenState::default(),
            done: Mutex::new(done),
        })
    }

    /// Open watch streams on a namespace (for tests and diagnostics).
    pub fn watchers(&self, ns: &str) -> usize {
        self.hub.watchers(ns)
    }

    /// The namespace's number, from memory.
    fn space(&self, ns: &str) -> Result<u32> {
        self.check_open()?;
        let map = self.spaces.read().unwrap_or_else(|p| p.into_inner());
        map.get(ns)
            .copied()
            .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))
    }

    fn check_open(&self) -> Result<()> {
        self.closed.check()
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
        self.write_with(crate::Durability::Immediate, f).await
    }

    async fn write_with<T: Send + 'static>(
        &self,
        durability: crate::Durability,
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
            sender
                .send((job, durability))
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await
            .map_err(|_| StoreError::Backend("the write was not carried out".into()))?
    }
}

#[async_trait::async_trait]
impl Namespaces for RedbStore {
    async fn create_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let (id, title) = (id.to_owned(), title.to_owned());
        self.write(move |ctx| {
            if space_in_txn(ctx, &id)?.is_some() {
                return Err(StoreError::NamespaceIdTaken(id));
            }
            if title_taken(ctx, &title, "")? {
                return Err(StoreError::NamespaceExists(title));
            }
            let num = ctx.next_space;
            ctx.next_space = num
                .checked_add(1)
                .ok_or_else(|| StoreError::Backend("namespace numbers exhausted".into()))?;
            ctx.spaces
                .insert(id.as_str(), space_entry(num, &title).as_slice())
                .map_err(backend)?;
            ctx.space_changes.push((id.clone(), Some(num)));
            Ok(Namespace { id, title })
        })
        .await
    }
    async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        self.read(|txn| {
            let spaces = txn.open_table(SPACES).map_err(backend)?;
            let mut out = Vec::new();
            for row in spaces.iter().map_err(backend)? {
                let (id, raw) = row.map_err(backend)?;
                out.push(Namespace {
                    id: id.value().to_owned(),
                    title: split_space(raw.value())?.1.to_owned(),
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
            let Some(raw) = spaces.get(id.as_str()).map_err(backend)? else {
                return Ok(None);
            };
            let title = split_space(raw.value())?.1.to_owned();
            Ok(Some(Namespace {
                id: id.clone(),
                title,
            }))
        })
        .await
    }
    async fn rename_namespace(&self, id: &str, title: &str) -> Result<Namespace> {
        let (id, title) = (id.to_owned(), title.to_owned());
        self.write(move |ctx| {
            let Some((num, _)) = space_in_txn(ctx, &id)? else {
                return Err(StoreError::NamespaceNotFound(id));
            };
            if title_taken(ctx, &title, &id)? {
                return Err(StoreError::NamespaceExists(title));
            }
            ctx.spaces
                .insert(id.as_str(), space_entry(num, &title).as_slice())
                .map_err(backend)?;
            Ok(Namespace { id, title })
        })
        .await
    }
    async fn delete_namespace(&self, id: &str) -> Result<()> {
        let owned = id.to_owned();
        self.write(move |ctx| {
            let id = owned;
            let Some((num, _)) = space_in_txn(ctx, &id)? else {
                return Err(StoreError::NamespaceNotFound(id));
            };
            ctx.spaces.remove(id.as_str()).map_err(backend)?;
            let lo = Bound::Included(num.to_be_bytes().to_vec());
            let hi = space_end(num);
            ctx.data
                .retain_in::<&[u8], _>((as_slice(&lo), as_slice(&hi)), |_, _| false)
                .map_err(backend)?;
            ctx.space_changes.push((id, None));
            Ok(())
        })
        .await?;
        self.hub.close(Some(id));
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for RedbStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: true,
            ..Capabilities::ORDERED
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Record>> {
        let k = data_key(self.space(ns)?, key);
        if let Some(hit) = self.cache.get(&k) {
            return Ok(hit);
        }
        let epoch = self.cache.epoch();
        let (k, rec) = self
            .read(move |txn| {
                let data = txn.open_table(DATA).map_err(backend)?;
                let raw = data.get(k.as_slice()).map_err(backend)?;
                let rec = raw.map(|r| to_record(r.value())).transpose()?;
                Ok((k, rec))
            })
            .await?;
        self.cache.fill(k, &rec, epoch);
        Ok(rec)
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let space = self.space(ns)?;
        let mut out = Vec::with_capacity(keys.len());
        // (position, key) of each miss.
        let mut misses = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let k = data_key(space, key);
            match self.cache.get(&k) {
                Some(hit) => out.push(hit),
                None => {
                    out.push(None);
                    misses.push((i, k));
                }
            }
        }
        if misses.is_empty() {
            return Ok(out);
        }
        let epoch = self.cache.epoch();
        let found = self
            .read(move |txn| {
                let data = txn.open_table(DATA).map_err(backend)?;
                misses
                    .into_iter()
                    .map(|(i, k)| {
                        let raw = data.get(k.as_slice()).map_err(backend)?;
                        let rec = raw.map(|r| to_record(r.value())).transpose()?;
                        Ok((i, k, rec))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        for (i, k, rec) in found {
            self.cache.fill(k, &rec, epoch);
            out[i] = rec;
        }
        Ok(out)
    }

    async fn list(&self, ns: &str, opts: &ListOptions) -> Result<ListPage> {
        let space = self.space(ns)?;
        let Some((lo, hi)) = data_bounds(space, opts) else {
            return Ok(ListPage::default());
        };
        let (reverse, values, limit) = (opts.reverse, opts.values, opts.limit.max(1));
        self.read(move |txn| {
            let data = txn.open_table(DATA).map_err(backend)?;
            let range = data
                .range::<&[u8]>((as_slice(&lo), as_slice(&hi)))
                .map_err(backend)?;
            let mut page = ListPage {
                entries: Vec::with_capacity(limit.min(1024)),
                more: false,
            };
            let mut push = |row: std::result::Result<_, redb::StorageError>| -> Result<bool> {
                if page.entries.len() == limit {
                    page.more = true;
                    return Ok(false);
                }
                let (k, v): (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>) =
                    row.map_err(backend)?;
                let key = std::str::from_utf8(&k.value()[4..])
                    .map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))?
                    .to_owned();
                let d = decode(v.value())?;
                page.entries.push(ListEntry {
                    key,
                    metadata: d.metadata,
                    expiration: d.expiration,
                    version: d.version,
                    value: values.then(|| Bytes::copy_from_slice(d.value)),
                });
                Ok(true)
            };
            if reverse {
                for row in range.rev() {
                    if !push(row)? {
                        break;
                    }
                }
            } else {
                for row in range {
                    if !push(row)? {
                        break;
                    }
                }
            }
            Ok(page)
        })
        .await
    }

    async fn batch(&self, ns: &str, batch: Batch) -> Result<u64> {
        let ns = ns.to_owned();
        self.write_with(batch.durability, move |ctx| apply_batch(ctx, &ns, batch))
            .await
    }

    async fn watch(&self, ns: &str, prefix: &str) -> Result<EventStream> {
        self.space(ns)?;
        Ok(self.hub.subscribe(ns, prefix))
    }

    async fn close(&self) -> Result<()> {
        self.closed.close();
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
    use crate::StoreExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    const CHILD: &str = "COUCHKV_REDB_CRASH_CHILD";

    fn relaxed(key: &str) -> Batch {
        let batch = Batch::new()
            .put(key, Bytes::from_static(b"v"))
            .put(format!("{key}-2"), Bytes::from_static(b"v"));
        Batch {
            durability: crate::Durability::Relaxed,
            ..batch
        }
    }

    /// In a child process (this test binary run again): a durable write, then relaxed ones
    /// (and, with `wait`, time for the writer to make them durable), then a crash.
    fn crashing_child(dir: &str, wait: bool) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            // Without waiting, a window no test run outlasts: the crash comes first, surely.
            let window = if wait { RELAXED_FOR } else { RELAXED_FOR * 600 };
            let store = RedbStore::open_with(Path::new(dir).join("db.redb"), window).unwrap();
            store.create_namespace("ns", "ns").await.unwrap();
            store
                .put("ns", "durable", Bytes::from_static(b"v"))
                .await
                .unwrap();
            store.batch("ns", relaxed("relaxed")).await.unwrap();
            assert!(
                store.get("ns", "relaxed").await.unwrap().is_some(),
                "read back at once"
            );
            if wait {
                std::thread::sleep(RELAXED_FOR * 3);
            }
        });
        std::process::abort();
    }

    /// Runs `test` of this binary in a child process that crashes; what survived in `dir`.
    fn after_a_crash(test: &str, dir: &std::path::Path) -> (bool, bool) {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, dir)
            .status()
            .unwrap();
        assert!(!status.success(), "the child crashed");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = RedbStore::open(dir.join("db.redb")).unwrap();
            let durable = store.get("ns", "durable").await.unwrap().is_some();
            let relaxed = store.get("ns", "relaxed").await.unwrap().is_some();
            let second = store.get("ns", "relaxed-2").await.unwrap().is_some();
            store.close().await.unwrap();
            assert_eq!(
                relaxed, second,
                "a relaxed batch survives whole or not at all"
            );
            (durable, relaxed)
        })
    }

    /// A crash right after a relaxed batch keeps every durable batch before it, and the relaxed
    /// one whole or not at all (a killed process's writes may still reach the disk through the
    /// OS; a machine that loses power loses them).
    #[test]
    fn a_crash_keeps_durable_batches_and_a_fresh_relaxed_one_whole_or_not() {
        if let Ok(dir) = std::env::var(CHILD) {
            crashing_child(&dir, false);
        }
        let dir = tempfile::tempdir().unwrap();
        let test =
            "redb_store::tests::a_crash_keeps_durable_batches_and_a_fresh_relaxed_one_whole_or_not";
        let (durable, relaxed) = after_a_crash(test, dir.path());
        assert!(durable);
        eprintln!(
            "the relaxed batch {}",
            if relaxed { "survived" } else { "was lost" }
        );
    }

    /// The writer makes a relaxed batch durable on its own within `RELAXED_FOR`.
    #[test]
    fn a_relaxed_batch_is_durable_soon_after() {
        if let Ok(dir) = std::env::var(CHILD) {
            crashing_child(&dir, true);
        }
        let dir = tempfile::tempdir().unwrap();
        let test = "redb_store::tests::a_relaxed_batch_is_durable_soon_after";
        assert_eq!(after_a_crash(test, dir.path()), (true, true));
    }

    /// Closing the store makes relaxed batches durable.
    #[tokio::test]
    async fn closing_makes_relaxed_batches_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = RedbStore::open(&path).unwrap();
        store.create_namespace("ns", "ns").await.unwrap();
        store.batch("ns", relaxed("a")).await.unwrap();
        store.close().await.unwrap();
        let store = RedbStore::open(&path).unwrap();
        assert!(store.get("ns", "a").await.unwrap().is_some());
        store.close().await.unwrap();
    }

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

    /// The hot cache never answers with a value older than one already acknowledged: readers
    /// hammer a key while a writer bumps it, and every read after an ack sees at least it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_reads_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path().join("c.redb")).unwrap());
        store.create_namespace("ns", "t").await.unwrap();
        let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (store, acked, stop) = (store.clone(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let floor = acked.load(Ordering::Acquire);
                        let got = match store.get("ns", "k").await.unwrap() {
                            Some(r) => std::str::from_utf8(&r.value).unwrap().parse().unwrap(),
                            None => 0u64,
                        };
                        assert!(got >= floor, "read {got} after {floor} was acknowledged");
                        reads += 1;
                        tokio::task::yield_now().await;
                    }
                    reads
                })
            })
            .collect();
        for i in 1..=300u64 {
            store
                .put("ns", "k", Bytes::from(i.to_string()))
                .await
                .unwrap();
            acked.store(i, Ordering::Release);
        }
        stop.store(true, Ordering::Release);
        for r in readers {
            assert!(r.await.unwrap() > 0);
        }
        let last = store.get("ns", "k").await.unwrap().unwrap();
        assert_eq!(last.value, "300");
        // A namespace made again after a delete does not see cached records of the old one.
        store.delete_namespace("ns").await.unwrap();
        store.create_namespace("ns", "t").await.unwrap();
        assert_eq!(store.get("ns", "k").await.unwrap(), None);
    }
}
