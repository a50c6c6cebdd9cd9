//! A LevelDB-style layer in the shape of abstract-level: get, get_many, put, del, batch (a list
//! or a chained builder), ordered iterators with gt/gte/lt/lte, reverse, limit and seek, clear
//! of a range, and sublevels that nest.
//!
//! Two pieces, as in abstract-level:
//! - [`Level`] is what an implementation provides: a small set of methods on absolute byte keys
//!   ([`MemoryLevel`], [`KvLevel`]). Implementations never validate.
//! - [`LevelDb`] is the handle users hold. Its public methods do the shared work once — is the
//!   database (and every parent of a sublevel) open, is the key within the implementation's
//!   limit, add the sublevel prefix — and only then call the implementation.
//!
//! Keys and values are bytes. A missing key reads as `None`, never an error. Errors carry a
//! stable [`ErrorCode`].

mod batch;
mod error;
mod handle;
mod iter;
pub mod keycode;
mod kv_level;
mod memory;
mod spaces;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use couchkv_adapters::range::{
    byte_bounds, is_empty, prefix_successor, tighter_lower, tighter_upper, ByteRange,
};
pub use couchkv_adapters::Durability;

pub use batch::ChainedBatch;
pub use error::{ErrorCode, LevelError};
pub use handle::{LevelDb, Status};
pub use iter::{Entries, Iter, Keys, Values};
pub use kv_level::KvLevel;
pub use memory::MemoryLevel;
pub use spaces::{NamespaceSpaces, Spaces};

pub type Result<T, E = LevelError> = std::result::Result<T, E>;

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put { key: Vec<u8>, value: Bytes },
    Del { key: Vec<u8> },
}

impl BatchOp {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Bytes>) -> Self {
        BatchOp::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    pub fn del(key: impl Into<Vec<u8>>) -> Self {
        BatchOp::Del { key: key.into() }
    }
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Del { key } => key,
        }
    }
    fn key_mut(&mut self) -> &mut Vec<u8> {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Del { key } => key,
        }
    }
}

/// A range of keys as abstract-level states it. When both `gt` and `gte` (or `lt` and `lte`)
/// are given, the tighter one holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeOptions {
    pub gt: Option<Vec<u8>>,
    pub gte: Option<Vec<u8>>,
    pub lt: Option<Vec<u8>>,
    pub lte: Option<Vec<u8>>,
    /// Newest-first: the same entries, in the opposite order (with `limit`, the highest keys).
    pub reverse: bool,
    /// At most this many entries; `None` for all of them. `Some(0)` yields nothing.
    pub limit: Option<usize>,
}

impl RangeOptions {
    pub fn all() -> Self {
        Self::default()
    }
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    pub fn gt(mut self, k: impl Into<Vec<u8>>) -> Self {
        self.gt = Some(k.into());
        self
    }
    pub fn gte(mut self, k: impl Into<Vec<u8>>) -> Self {
        self.gte = Some(k.into());
        self
    }
    pub fn lt(mut self, k: impl Into<Vec<u8>>) -> Self {
        self.lt = Some(k.into());
        self
    }
    pub fn lte(mut self, k: impl Into<Vec<u8>>) -> Self {
        self.lte = Some(k.into());
        self
    }

    /// The absolute byte range under `prefix`; `None` when it holds no key.
    fn bounds(&self, prefix: &[u8]) -> Option<ByteRange> {
        let with = |k: &Vec<u8>| [prefix, k].concat();
        let mut lower = Bound::Unbounded;
        if let Some(k) = &self.gte {
            lower = tighter_lower(lower, Bound::Included(with(k)));
        }
        if let Some(k) = &self.gt {
            lower = tighter_lower(lower, Bound::Excluded(with(k)));
        }
        let mut upper = Bound::Unbounded;
        if let Some(k) = &self.lte {
            upper = tighter_upper(upper, Bound::Included(with(k)));
        }
        if let Some(k) = &self.lt {
            upper = tighter_upper(upper, Bound::Excluded(with(k)));
        }
        byte_bounds(prefix, lower, upper)
    }
}

/// What an implementation does; [`LevelDb::supports`] reports it (adjusted for sublevels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supports {
    /// Iterators read a snapshot taken when they were made. Neither implementation does:
    /// iterators read pages as they go and see writes made meanwhile.
    pub snapshots: bool,
    /// Data outlives the process.
    pub permanence: bool,
    pub seek: bool,
    pub clear: bool,
    pub get_many: bool,
    /// A batch is applied whole or not at all, and no reader sees it half-applied. Without it
    /// (KvLevel on a plain Workers KV namespace) a batch is still whole after a crash, through
    /// its journal, but readers may see it while it is being applied.
    pub atomic_batch: bool,
    /// Range reads and reverse iteration cost no more than forward ones.
    pub native_ranges: bool,
    /// The longest key, in bytes (counting sublevel prefixes); `None` for no limit.
    pub max_key_bytes: Option<usize>,
}

/// Where a scan stops and the next one starts. Opaque to the iterator: each implementation
/// uses what it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The last key the previous page returned; the next page starts after it.
    pub after: Vec<u8>,
    /// An implementation's own cursor (a Workers KV list cursor).
    pub cursor: Option<String>,
    /// Keys an implementation read ahead and has yet to return.
    pub pending: Vec<Vec<u8>>,
}

/// One page request of an iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// Absolute byte bounds, never empty.
    pub range: ByteRange,
    pub reverse: bool,
    /// At least 1; a page holds at most this many entries.
    pub limit: usize,
    /// Whether entries carry values.
    pub values: bool,
    /// Where the previous page stopped; `None` for the first page.
    pub resume: Option<Resume>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    pub entries: Vec<(Vec<u8>, Option<Bytes>)>,
    /// `None` when the range has nothing more. A page may be empty and still have more.
    pub resume: Option<Resume>,
}

/// What a LevelDB-style implementation provides. Callers go through [`LevelDb`], which validates
/// before calling; implementations never validate again.
#[async_trait::async_trait]
pub trait Level: Send + Sync {
    fn supports(&self) -> Supports;
    /// Called by [`LevelDb::open`]; recovery (a journal replay) happens here.
    async fn open(&self) -> Result<()> {
        Ok(())
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
    /// Values in the order of `keys`; `None` for a missing key.
    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>>;
    /// Applies the writes in order (a later write to a key wins).
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()>;
    /// Applies the writes only while `guard` holds `expected` (`None`: absent); says whether it
    /// did. With [`Durability::Relaxed`] a crash shortly after may lose the writes (whole), on a
    /// store that can defer making them durable. The default checks by reading first, which is
    /// right for one writer at a time; implementations on a shared store make it one atomic step.
    async fn batch_if(
        &self,
        guard: &[u8],
        expected: Option<&[u8]>,
        ops: Vec<BatchOp>,
        _durability: Durability,
    ) -> Result<bool> {
        batch_if_by_reading(self, guard, expected, ops).await
    }
    /// One page of the range, in order.
    async fn scan(&self, req: &ScanRequest) -> Result<ScanPage>;
    /// Deletes every key in the range.
    async fn clear(&self, range: &ByteRange) -> Result<()> {
        clear_by_scanning(self, range).await
    }
    /// The keys under `prefix` written or deleted from now on, in commit order, each after its
    /// commit. A watcher that falls far behind gets an error and the end of the stream.
    async fn watch(&self, prefix: &[u8]) -> Result<KeyStream>;
}

/// Changed keys, as [`Level::watch`] and [`LevelDb::watch`] deliver them.
pub type KeyStream = futures::stream::BoxStream<'static, Result<Vec<u8>>>;

fn boxed_keys(s: impl futures::Stream<Item = Result<Vec<u8>>> + Send + 'static) -> KeyStream {
    futures::StreamExt::boxed(s)
}

/// The guarded batch any implementation can do: read the guard, then write. Right for one writer
/// at a time (callers serialize); not atomic against other processes.
pub async fn batch_if_by_reading<L: Level + ?Sized>(
    level: &L,
    guard: &[u8],
    expected: Option<&[u8]>,
    ops: Vec<BatchOp>,
) -> Result<bool> {
    let current = level.get_many(&[guard.to_vec()]).await?.pop().flatten();
    if current.as_deref() != expected {
        return Ok(false);
    }
    level.batch(ops).await?;
    Ok(true)
}

/// The clear any implementation can do: read the keys a page at a time, delete them in batches.
pub async fn clear_by_scanning<L: Level + ?Sized>(level: &L, range: &ByteRange) -> Result<()> {
    loop {
        let page = level
            .scan(&ScanRequest {
                range: range.clone(),
                reverse: false,
                limit: 1000,
                values: false,
                resume: None,
            })
            .await?;
        if page.entries.is_empty() && page.resume.is_none() {
            return Ok(());
        }
        let ops: Vec<BatchOp> = page
            .entries
            .into_iter()
            .map(|(k, _)| BatchOp::Del { key: k })
            .collect();
        let done = page.resume.is_none();
        if !ops.is_empty() {
            level.batch(ops).await?;
        }
        if done {
            return Ok(());
        }
    }
}

/// Narrows `range` to what comes after `after` in the direction of iteration.
fn after(range: &ByteRange, after: &[u8], reverse: bool) -> Option<ByteRange> {
    let (mut lower, mut upper) = range.clone();
    if reverse {
        upper = tighter_upper(upper, Bound::Excluded(after.to_vec()));
    } else {
        lower = tighter_lower(lower, Bound::Excluded(after.to_vec()));
    }
    (!is_empty(&lower, &upper)).then_some((lower, upper))
}

/// The longest byte prefix every key within `range` shares.
fn common_prefix(range: &ByteRange) -> Vec<u8> {
    let (Bound::Included(lo) | Bound::Excluded(lo)) = &range.0 else {
        return Vec::new();
    };
    let (Bound::Included(hi) | Bound::Excluded(hi)) = &range.1 else {
        return Vec::new();
    };
    let mut n = lo.iter().zip(hi.iter()).take_while(|(a, b)| a == b).count();
    // An exclusive upper bound that is the prefix's own successor still shares the prefix.
    if let Bound::Excluded(hi) = &range.1 {
        for len in (n..=lo.len()).rev() {
            if prefix_successor(&lo[..len]).as_deref() == Some(hi.as_slice()) {
                n = len;
                break;
            }
        }
    }
    lo[..n].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_combine_and_take_the_tighter_bound() {
        let r = RangeOptions::all().gt(b"a".to_vec()).gte(b"b".to_vec());
        assert_eq!(r.bounds(b"").unwrap().0, Bound::Included(b"b".to_vec()));
        let r = RangeOptions::all().gte(b"a".to_vec()).gt(b"a".to_vec());
        assert_eq!(r.bounds(b"").unwrap().0, Bound::Excluded(b"a".to_vec()));
        assert!(RangeOptions::all()
            .gt(b"b".to_vec())
            .lt(b"a".to_vec())
            .bounds(b"")
            .is_none());
        let (lo, hi) = RangeOptions::all().bounds(b"!s!").unwrap();
        assert_eq!(
            (lo, hi),
            (
                Bound::Included(b"!s!".to_vec()),
                Bound::Excluded(b"!s\"".to_vec())
            )
        );
    }

    #[test]
    fn common_prefixes() {
        let r = (
            Bound::Included(b"!s!".to_vec()),
            Bound::Excluded(b"!s\"".to_vec()),
        );
        assert_eq!(common_prefix(&r), b"!s!");
        let r = (
            Bound::Included(b"!s!a".to_vec()),
            Bound::Included(b"!s!b".to_vec()),
        );
        assert_eq!(common_prefix(&r), b"!s!");
        let r = (Bound::Unbounded, Bound::Included(b"x".to_vec()));
        assert_eq!(common_prefix(&r), b"");
    }
}
