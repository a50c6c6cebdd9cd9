//! The databases this process has loaded: one handle per database while anything uses it (so
//! one writer lock, and a deletion reaches every user), and a bounded number of idle ones kept
//! warm. A server with a million databases holds only the ones in use and the most recent.

use std::collections::HashMap;

use bytes::Bytes;

use super::Db;

/// Idle databases kept loaded; past it the least recently used idle half is let go.
const KEEP_IDLE: usize = 4096;

struct Slot {
    /// The registry entry the database was loaded from.
    entry: Bytes,
    db: Db,
    used: u64,
}

#[derive(Default)]
pub(super) struct Loaded {
    slots: HashMap<String, Slot>,
    clock: u64,
    /// How many slots make the next look for idle databases (amortizes it when many are in use).
    look_at: usize,
}

impl Loaded {
    pub(super) fn get(&mut self, name: &str) -> Option<(Bytes, Db)> {
        self.clock += 1;
        let slot = self.slots.get_mut(name)?;
        slot.used = self.clock;
        Some((slot.entry.clone(), slot.db.clone()))
    }

    /// Keeps `db` unless another task loaded the same database first: the first one in wins.
    pub(super) fn insert(&mut self, name: &str, entry: Bytes, db: Db) -> Db {
        self.clock += 1;
        if self.slots.len() >= self.look_at.max(2 * KEEP_IDLE) {
            self.let_go_idle();
            self.look_at = self.slots.len() + KEEP_IDLE;
        }
        let used = self.clock;
        self.slots
            .entry(name.to_owned())
            .or_insert(Slot { entry, db, used })
            .db
            .clone()
    }

    /// Forgets the database if it is still the one loaded from `entry` (any entry with `None`).
    pub(super) fn remove(&mut self, name: &str, entry: Option<&Bytes>) -> Option<Db> {
        match (self.slots.get(name), entry) {
            (Some(slot), Some(e)) if slot.entry != *e => None,
            (None, _) => None,
            _ => self.slots.remove(name).map(|s| s.db),
        }
    }

    /// Drops the least recently used idle databases until at most [`KEEP_IDLE`] are idle.
    /// Databases in use stay: they must remain the one handle of their database.
    fn let_go_idle(&mut self) {
        let mut idle: Vec<(u64, String)> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.db.in_use())
            .map(|(n, s)| (s.used, n.clone()))
            .collect();
        if idle.len() <= KEEP_IDLE {
            return;
        }
        let excess = idle.len() - KEEP_IDLE;
        idle.select_nth_unstable(excess - 1);
        for (_, name) in &idle[..excess] {
            self.slots.remove(name);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}
