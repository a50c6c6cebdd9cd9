//! CouchDB's `offset` (how many rows of a view come before a query's first) without counting
//! from the view's start on every query. Counting is what a key-value index offers (CouchDB
//! keeps counts in its b-tree's nodes); here every [`FENCE`]th entry's key is remembered with
//! its position, per view and per index sequence. A query counts from the nearest fence below
//! its start: at most `FENCE` keys. Fences are laid as far as queries have counted, so the first
//! query after the index moves costs what counting from the start costs, and the next ones a
//! binary search and a short count. Memory: one key per `FENCE` entries for at most
//! [`CACHED_VIEWS`] views of a database.

use super::*;
use crate::level::{LevelDb, RangeOptions};

/// Entries between two fences.
pub(super) const FENCE: u64 = 512;
/// Views of one database whose fences are kept (any one is dropped when more are asked).
const CACHED_VIEWS: usize = 32;

/// Keys at positions 0, FENCE, 2·FENCE, … of one view, as of one index sequence.
#[derive(Debug, Default)]
struct Fences {
    seq: u64,
    marks: Vec<(Vec<u8>, u64)>,
}

#[derive(Debug, Default)]
pub(super) struct OffsetCache {
    views: std::sync::Mutex<HashMap<(String, u16), Arc<Fences>>>,
}

impl OffsetCache {
    fn get(&self, sig: &str, view: u16, seq: u64) -> Option<Arc<Fences>> {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views
            .get(&(sig.to_owned(), view))
            .filter(|f| f.seq == seq)
            .cloned()
    }

    fn keep(&self, sig: &str, view: u16, fences: Fences) {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        let key = (sig.to_owned(), view);
        let better = match views.get(&key) {
            None => true,
            Some(old) => {
                old.seq < fences.seq
                    || (old.seq == fences.seq && old.marks.len() < fences.marks.len())
            }
        };
        if !better {
            return;
        }
        if views.len() >= CACHED_VIEWS && !views.contains_key(&key) {
            if let Some(any) = views.keys().next().cloned() {
                views.remove(&any);
            }
        }
        views.insert(key, Arc::new(fences));
    }

    /// How many entries of `view` (keys from `start`, the view's first possible key) sort
    /// before `bound` (`None`: the view's end), in index `ix` at sequence `seq`.
    pub(super) async fn count_before(
        &self,
        ix: &LevelDb,
        sig: &str,
        view: u16,
        seq: u64,
        start: Vec<u8>,
        bound: Option<Vec<u8>>,
    ) -> Result<u64> {
        let known = self.get(sig, view, seq);
        let marks = known.as_ref().map(|f| f.marks.as_slice()).unwrap_or(&[]);
        let below = match &bound {
            Some(b) => marks.partition_point(|(k, _)| k < b),
            None => marks.len(),
        };
        // Counting starts at the last fence below the bound; past the last fence, new fences
        // are laid on the way.
        let extend = below == marks.len();
        let (from, mut n) = match below.checked_sub(1).and_then(|i| marks.get(i)) {
            Some((k, pos)) => (k.clone(), *pos),
            None => (start, 0),
        };
        let mut laid: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut it = ix.keys(RangeOptions {
            gte: Some(from),
            lt: bound,
            ..RangeOptions::default()
        })?;
        while let Some(key) = it.next().await? {
            if extend && n % FENCE == 0 && marks.last().is_none_or(|(_, p)| *p < n) {
                laid.push((key, n));
            }
            n += 1;
        }
        if !laid.is_empty() {
            let mut all = marks.to_vec();
            all.extend(laid);
            self.keep(sig, view, Fences { seq, marks: all });
        }
        Ok(n)
    }
}
