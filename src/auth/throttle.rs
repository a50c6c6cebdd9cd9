//! Login throttling: what a password guess costs the guesser.
//!
//! Every attempt that has to run the password hash (a cached, already verified password never
//! gets here) goes through [`Throttle::begin`], which may hold it back:
//! - Failures are counted per (name, address) and per address, forgotten a minute after the
//!   last one. The delay doubles with each (100 ms up to 5 s). A correct password from an
//!   address that has not failed is never delayed, however much others guess at the name.
//! - Attempts still in flight count as failures to come, so guesses sent in parallel from one
//!   address queue up behind each other's delays instead of racing past the counter.
//! - An attempt from an address with failures or attempts in flight ("suspect") runs one at a
//!   time per address and one at a time per name; any name has at most
//!   [`MAX_IN_FLIGHT_PER_NAME`] attempts hashing at once.
//!
//! The maps are bounded: failure records older than a minute are dropped when they grow past
//! [`MAX_RECORDS`], and gates are removed by the last one through.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::runtime::Runtime;

/// How many attempts for one name may run the password hash at the same time.
pub const MAX_IN_FLIGHT_PER_NAME: usize = 4;
/// Failure records kept before the expired ones are swept.
const MAX_RECORDS: usize = 10_000;
/// How long a failure is remembered after the last one, in seconds.
const FORGET_AFTER_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, Option<IpAddr>),
    Addr(Option<IpAddr>),
}

struct Failures {
    count: u32,
    last: u64,
}

#[derive(Default)]
struct State {
    failures: HashMap<Key, Failures>,
    /// Attempts running per address.
    in_flight: HashMap<Option<IpAddr>, u32>,
}

/// Async locks handed out by key and dropped when nobody holds or waits for them.
struct Gates<K, T> {
    map: Mutex<HashMap<K, Arc<T>>>,
    make: fn() -> T,
}

impl<K: Eq + Hash + Clone, T> Gates<K, T> {
    fn new(make: fn() -> T) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            make,
        }
    }

    fn get(&self, key: &K) -> Arc<T> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.clone())
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    /// Called by each holder when done: the last one removes the gate.
    fn release(&self, key: &K, gate: Arc<T>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // One count in the map, one here.
        if Arc::strong_count(&gate) <= 2 {
            map.remove(key);
        }
    }
}

pub struct Throttle {
    clock: Arc<dyn Clock>,
    runtime: Arc<dyn Runtime>,
    state: Mutex<State>,
    per_name: Gates<String, tokio::sync::Semaphore>,
    suspect_name: Gates<String, tokio::sync::Mutex<()>>,
    suspect_addr: Gates<Option<IpAddr>, tokio::sync::Mutex<()>>,
}

/// An attempt under way; hand it back to [`Throttle::end`] with the outcome.
pub struct Attempt {
    name: String,
    addr: Option<IpAddr>,
    /// The delay this attempt was held back by (for tests and logs).
    pub delay: Duration,
    pub suspect: bool,
}

fn backoff(count: u32) -> Duration {
    if count == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis((100u64 << (count - 1).min(6)).min(5000))
    }
}

impl Throttle {
    pub fn new(clock: Arc<dyn Clock>, runtime: Arc<dyn Runtime>) -> Self {
        Self {
            clock,
            runtime,
            state: Mutex::new(State::default()),
            per_name: Gates::new(|| tokio::sync::Semaphore::new(MAX_IN_FLIGHT_PER_NAME)),
            suspect_name: Gates::new(|| tokio::sync::Mutex::new(())),
            suspect_addr: Gates::new(|| tokio::sync::Mutex::new(())),
        }
    }

    fn recent(&self, state: &State, key: &Key, now: u64) -> u32 {
        state
            .failures
            .get(key)
            .filter(|f| now.saturating_sub(f.last) < FORGET_AFTER_SECS)
            .map_or(0, |f| f.count)
    }

    /// Runs `work` (the password check, `true` when it matched) as one throttled attempt for
    /// `name` from `addr`: held back as the module says, and counted.
    pub async fn attempt<F, Fut>(
        &self,
        name: &str,
        addr: Option<IpAddr>,
        work: F,
    ) -> (bool, Attempt)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let name_gate = self.per_name.get(&name.to_owned());
        let (suspect, pending) = {
            let now = self.clock.now_secs();
            // Read and count this attempt in one critical section, so simultaneous arrivals
            // each see the ones before them.
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let failed = self
                .recent(&state, &Key::Pair(name.to_owned(), addr), now)
                .max(self.recent(&state, &Key::Addr(addr), now));
            let running = state.in_flight.get(&addr).copied().unwrap_or(0);
            Self::count_in_flight(&mut state, addr, true);
            (failed > 0 || running > 0, failed.saturating_add(running))
        };
        let attempt = Attempt {
            name: name.to_owned(),
            addr,
            delay: backoff(pending),
            suspect,
        };
        let ok = {
            // Suspect attempts go one at a time per address and per name.
            let addr_gate = suspect.then(|| self.suspect_addr.get(&addr));
            let sname_gate = suspect.then(|| self.suspect_name.get(&name.to_owned()));
            let _a = match &addr_gate {
                Some(g) => Some(g.lock().await),
                None => None,
            };
            let _n = match &sname_gate {
                Some(g) => Some(g.lock().await),
                None => None,
            };
            if !attempt.delay.is_zero() {
                self.runtime.sleep(attempt.delay).await;
            }
            let ok = match name_gate.acquire().await {
                Ok(_permit) => work().await,
                Err(_) => false,
            };
            drop((_a, _n));
            if let Some(g) = addr_gate {
                self.suspect_addr.release(&addr, g);
            }
            if let Some(g) = sname_gate {
                self.suspect_name.release(&name.to_owned(), g);
            }
            ok
        };
        self.per_name.release(&name.to_owned(), name_gate);
        // One critical section: an attempt arriving between the two would see neither this one
        // running nor its failure, and be held back one step too little.
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            Self::count_in_flight(&mut state, addr, false);
            self.record(&mut state, &attempt, ok);
        }
        (ok, attempt)
    }

    fn count_in_flight(state: &mut State, addr: Option<IpAddr>, up: bool) {
        if up {
            *state.in_flight.entry(addr).or_insert(0) += 1;
        } else if let Some(n) = state.in_flight.get_mut(&addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.in_flight.remove(&addr);
            }
        }
    }

    fn record(&self, state: &mut State, attempt: &Attempt, ok: bool) {
        let now = self.clock.now_secs();
        let pair = Key::Pair(attempt.name.clone(), attempt.addr);
        if ok {
            // A success forgives this name from this address, not the address: one valid
            // account must not wash an address's record of guessing at others.
            state.failures.remove(&pair);
            return;
        }
        if state.failures.len() > MAX_RECORDS {
            state
                .failures
                .retain(|_, f| now.saturating_sub(f.last) < FORGET_AFTER_SECS);
        }
        for key in [pair, Key::Addr(attempt.addr)] {
            let f = state.failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.saturating_sub(f.last) >= FORGET_AFTER_SECS {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::runtime::TokioRuntime;

    fn addr(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, n]))
    }

    #[tokio::test(start_paused = true)]
    async fn others_failing_never_slow_a_clean_address() {
        let clock = Arc::new(ManualClock::at_secs(1_000_000));
        let t = Throttle::new(clock.clone(), Arc::new(TokioRuntime));
        for n in 2..42 {
            for _ in 0..5 {
                t.attempt("alice", addr(n), || async { false }).await;
            }
        }
        let (ok, a) = t.attempt("alice", addr(1), || async { true }).await;
        assert!(ok);
        assert_eq!(a.delay, Duration::ZERO);
        assert!(!a.suspect);
        // The guessing addresses themselves are held back: five failures, 1.6 s.
        let (_, a) = t.attempt("alice", addr(2), || async { false }).await;
        assert_eq!(a.delay, Duration::from_millis(1600));
        // A minute after the last failure it is forgotten.
        clock.advance_secs(61);
        let (_, a) = t.attempt("alice", addr(2), || async { true }).await;
        assert_eq!(a.delay, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn parallel_guesses_from_one_address_queue_up() {
        let clock = Arc::new(ManualClock::at_secs(1_000_000));
        let t = Arc::new(Throttle::new(clock, Arc::new(TokioRuntime)));
        let started = tokio::time::Instant::now();
        let guesses: Vec<_> = (0..8)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.attempt("alice", addr(9), || async { false }).await.1 })
            })
            .collect();
        let mut delays = Vec::new();
        for g in guesses {
            delays.push(g.await.unwrap().delay);
        }
        // They did not race past the counter: one ran at once, the others waited, in turn,
        // at least 100+200+400+800+1600+3200+5000 ms (virtual time).
        assert_eq!(delays.iter().filter(|d| d.is_zero()).count(), 1);
        assert!(
            started.elapsed() >= Duration::from_millis(11_300),
            "{:?}",
            started.elapsed()
        );
        assert!(t.state.lock().unwrap().in_flight.is_empty());
        assert!(t.suspect_addr.map.lock().unwrap().is_empty());
        assert!(t.per_name.map.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn success_forgives_the_pair_not_the_address() {
        let clock = Arc::new(ManualClock::at_secs(1_000_000));
        let t = Throttle::new(clock, Arc::new(TokioRuntime));
        t.attempt("bob", addr(3), || async { false }).await;
        t.attempt("mallory", addr(3), || async { true }).await;
        let (_, a) = t.attempt("bob", addr(3), || async { false }).await;
        assert!(a.suspect && !a.delay.is_zero());
    }
}
