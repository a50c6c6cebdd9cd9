//! Time and randomness, handed in: the core never reads a clock or a random source itself, so
//! it runs unchanged inside a Worker and tests move time by hand instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

/// Wall-clock time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
    fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn at_secs(secs: u64) -> Self {
        Self(AtomicU64::new(secs * 1000))
    }
    pub fn set_secs(&self, secs: u64) {
        self.0.store(secs * 1000, Ordering::SeqCst);
    }
    pub fn advance_secs(&self, secs: u64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where new identifiers come from: 32 lowercase hex digits, as Workers KV namespace ids.
pub trait IdSource: Send + Sync {
    fn new_id(&self) -> String;
}

/// Predictable ids for tests: `00…01`, `00…02`, …
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdSource for SequentialIds {
    fn new_id(&self) -> String {
        format!("{:032x}", self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}
