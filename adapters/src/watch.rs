//! The in-process change hub: one broadcast channel per watched (namespace, prefix), created on
//! the first watcher and dropped with the last. A commit is sent only to the channels whose prefix
//! its keys start with, so watchers of one CouchDB database (all of which share a namespace) are
//! not woken by writes to another; an unwatched namespace costs nothing on write.
//!
//! Backends publish under their commit order (holding their write lock, or from their single
//! writer thread), so every watcher sees events in commit order. A watcher that falls more than
//! the channel's capacity behind gets [`StoreError::WatchLagged`] and its stream ends: memory stays
//! bounded whatever the consumer does.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt;
use tokio::sync::broadcast;

use crate::{Event, EventStream, StoreError};

/// Events a watcher may fall behind before it is cut off.
pub const DEFAULT_CAPACITY: usize = 1024;

type Channels = HashMap<String, HashMap<String, broadcast::Sender<Event>>>;

pub struct WatchHub {
    /// namespace → prefix → channel.
    channels: Mutex<Channels>,
    capacity: usize,
}

impl Default for WatchHub {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl WatchHub {
    pub fn new(capacity: usize) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// A stream of the namespace's events whose key starts with `prefix`.
    pub fn subscribe(&self, ns: &str, prefix: &str) -> EventStream {
        let rx = {
            let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(ns.to_owned())
                .or_default()
                .entry(prefix.to_owned())
                .or_insert_with(|| broadcast::channel(self.capacity).0)
                .subscribe()
        };
        // Only matching events reach this channel: no filtering here.
        let stream = futures::stream::unfold(Some(rx), |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(ev) => Some((Ok(ev), Some(rx))),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Some((Err(StoreError::WatchLagged(n)), None))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        stream.boxed()
    }

    /// Sends the events of one commit, in order, to the watchers whose prefix they match. Call
    /// it in commit order.
    pub fn publish(&self, ns: &str, events: impl IntoIterator<Item = Event>) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let Some(prefixes) = map.get_mut(ns) else {
            return;
        };
        prefixes.retain(|_, tx| tx.receiver_count() > 0);
        if prefixes.is_empty() {
            map.remove(ns);
            return;
        }
        for ev in events {
            for (prefix, tx) in prefixes.iter() {
                if ev.key.starts_with(prefix.as_str()) {
                    // An error means every receiver is gone; nothing to deliver.
                    let _ = tx.send(ev.clone());
                }
            }
        }
    }

    /// How many watchers the namespace has now (a dropped stream stops counting at once).
    pub fn watchers(&self, ns: &str) -> usize {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.get(ns).map_or(0, |prefixes| {
            prefixes
                .values()
                .map(broadcast::Sender::receiver_count)
                .sum()
        })
    }

    /// Ends every stream (the store closed or the namespace went away).
    pub fn close(&self, ns: Option<&str>) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        match ns {
            Some(ns) => {
                map.remove(ns);
            }
            None => map.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;
    use futures::FutureExt;

    fn ev(key: &str, version: u64) -> Event {
        Event {
            key: key.into(),
            version,
            kind: EventKind::Delete,
        }
    }

    #[test]
    fn events_reach_only_matching_prefixes() {
        let hub = WatchHub::new(16);
        let mut a = hub.subscribe("ns", "a/");
        let mut all = hub.subscribe("ns", "");
        let mut other = hub.subscribe("other", "");
        assert_eq!(hub.watchers("ns"), 2);
        hub.publish("ns", [ev("a/1", 1), ev("b/1", 1)]);
        assert_eq!(
            a.next().now_or_never().flatten().unwrap().unwrap().key,
            "a/1"
        );
        assert!(a.next().now_or_never().is_none(), "b/1 did not reach a/");
        assert_eq!(
            all.next().now_or_never().flatten().unwrap().unwrap().key,
            "a/1"
        );
        assert_eq!(
            all.next().now_or_never().flatten().unwrap().unwrap().key,
            "b/1"
        );
        assert!(other.next().now_or_never().is_none());
        drop(a);
        assert_eq!(hub.watchers("ns"), 1);
        // A watcher that falls behind is cut off with an error, not left growing.
        let mut slow = hub.subscribe("ns", "s");
        hub.publish("ns", (0..20).map(|i| ev("s", i)));
        assert!(matches!(
            slow.next().now_or_never().flatten(),
            Some(Err(StoreError::WatchLagged(_)))
        ));
        assert!(slow.next().now_or_never().flatten().is_none());
    }
}
