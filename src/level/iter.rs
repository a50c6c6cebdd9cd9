//! Iterators: pages read on demand (small first, growing), the limit counted across pages, and
//! `seek` within the range. Keys come back without the sublevel prefix.

use std::collections::VecDeque;
use std::ops::Bound;

use bytes::Bytes;
use couchkv_adapters::range::{contains, ByteRange};

use super::{after, ErrorCode, LevelDb, LevelError, RangeOptions, Result, Resume, ScanRequest};

/// The first page is small (an iterator often reads one entry); pages double up to this.
const FIRST_PAGE: usize = 16;
const MAX_PAGE: usize = 1000;

pub struct Iter {
    db: LevelDb,
    /// The whole range asked for (absolute keys); `None` when it holds nothing.
    range: Option<ByteRange>,
    /// What is left to read: the range, narrowed by a seek.
    window: Option<ByteRange>,
    reverse: bool,
    values: bool,
    remaining: Option<usize>,
    buf: VecDeque<(Vec<u8>, Option<Bytes>)>,
    resume: Option<Resume>,
    started: bool,
    exhausted: bool,
    closed: bool,
    page: usize,
}

impl Iter {
    pub(super) fn new(db: LevelDb, opts: RangeOptions, values: bool) -> Self {
        let range = opts.bounds(&db.prefix);
        Self {
            db,
            window: range.clone(),
            range,
            reverse: opts.reverse,
            values,
            remaining: opts.limit,
            buf: VecDeque::new(),
            resume: None,
            started: false,
            exhausted: false,
            closed: false,
            page: FIRST_PAGE,
        }
    }

    fn check(&self) -> Result<()> {
        if self.closed {
            return Err(LevelError::new(
                ErrorCode::IteratorNotOpen,
                "the iterator is closed",
            ));
        }
        self.db.check_open()
    }

    /// The next entry, with its key relative to the database it came from.
    pub async fn next(&mut self) -> Result<Option<(Vec<u8>, Option<Bytes>)>> {
        self.check()?;
        if self.remaining == Some(0) {
            return Ok(None);
        }
        while self.buf.is_empty() && !self.exhausted {
            self.fill().await?;
        }
        let Some((key, value)) = self.buf.pop_front() else {
            return Ok(None);
        };
        if let Some(n) = &mut self.remaining {
            *n -= 1;
        }
        let strip = self.db.prefix.len();
        Ok(Some((key[strip..].to_vec(), value)))
    }

    async fn fill(&mut self) -> Result<()> {
        let Some(window) = &self.window else {
            self.exhausted = true;
            return Ok(());
        };
        if self.started && self.resume.is_none() {
            self.exhausted = true;
            return Ok(());
        }
        let mut limit = self.page;
        if let Some(n) = self.remaining {
            limit = limit.min(n.max(1));
        }
        let req = ScanRequest {
            range: window.clone(),
            reverse: self.reverse,
            limit,
            values: self.values,
            resume: self.resume.take(),
        };
        self.started = true;
        self.page = (self.page * 2).min(MAX_PAGE);
        let page = self.db.level.scan(&req).await?;
        self.buf.extend(page.entries);
        self.resume = page.resume;
        if self.resume.is_none() {
            self.exhausted = true;
        }
        Ok(())
    }

    /// Moves to the first key at or after `target` (at or before it, in reverse). A target
    /// outside the range ends the iteration. The limit keeps counting.
    pub fn seek(&mut self, target: impl AsRef<[u8]>) {
        let target = [self.db.prefix.as_slice(), target.as_ref()].concat();
        self.buf.clear();
        self.resume = None;
        self.started = false;
        self.exhausted = false;
        self.page = FIRST_PAGE;
        self.window = match &self.range {
            Some((lo, hi)) if contains(lo, hi, &target) => {
                if self.reverse {
                    Some((lo.clone(), Bound::Included(target)))
                } else {
                    Some((Bound::Included(target), hi.clone()))
                }
            }
            _ => None,
        };
    }

    /// Ends the iterator: later calls fail with `LEVEL_ITERATOR_NOT_OPEN`.
    pub fn close(&mut self) {
        self.closed = true;
        self.buf.clear();
    }

    /// Every remaining entry.
    pub async fn collect_all(&mut self) -> Result<Vec<(Vec<u8>, Option<Bytes>)>> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await? {
            out.push(e);
        }
        Ok(out)
    }
}

/// Narrowing used by implementations that page by key.
pub(super) fn narrowed(req: &ScanRequest) -> Option<ByteRange> {
    match &req.resume {
        Some(r) => after(&req.range, &r.after, req.reverse),
        None => Some(req.range.clone()),
    }
}

macro_rules! wrapper {
    ($name:ident, $item:ty, $doc:literal, |$e:ident| $map:expr) => {
        #[doc = $doc]
        pub struct $name(pub(super) Iter);

        impl $name {
            pub async fn next(&mut self) -> Result<Option<$item>> {
                Ok(self.0.next().await?.map(|$e| $map))
            }
            pub fn seek(&mut self, target: impl AsRef<[u8]>) {
                self.0.seek(target)
            }
            pub fn close(&mut self) {
                self.0.close()
            }
            pub async fn all(&mut self) -> Result<Vec<$item>> {
                let mut out = Vec::new();
                while let Some(x) = self.next().await? {
                    out.push(x);
                }
                Ok(out)
            }
        }
    };
}

wrapper!(
    Entries,
    (Vec<u8>, Bytes),
    "An iterator of keys and values.",
    |e| (e.0, e.1.unwrap_or_default())
);
wrapper!(Keys, Vec<u8>, "An iterator of keys.", |e| e.0);
wrapper!(Values, Bytes, "An iterator of values.", |e| e
    .1
    .unwrap_or_default());
