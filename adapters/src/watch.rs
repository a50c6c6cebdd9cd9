//! The in-process change hub: one broadcast channel per watched namespace, created on the first
//! watcher and dropped with the last, so an unwatched namespace costs nothing on write.
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
pub const DEFAULT_CAPACITY: usize = 4096;

pub struct WatchHub {
    channels: Mutex<HashMap<String, broadcast::Sender<Event>>>,
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
                .or_insert_with(|| broadcast::channel(self.capacity).0)
                .subscribe()
        };
        let prefix = prefix.to_owned();
        let stream = futures::stream::unfold(Some(rx), move |rx| {
            let prefix = prefix.clone();
            async move {
                let mut rx = rx?;
                loop {
                    match rx.recv().await {
                        Ok(ev) if ev.key.starts_with(&prefix) => return Some((Ok(ev), Some(rx))),
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            return Some((Err(StoreError::WatchLagged(n)), None))
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        return stream.boxed();
        #[cfg(target_arch = "wasm32")]
        return stream.boxed_local();
    }

    /// Sends the events of one commit, in order. Call it in commit order.
    pub fn publish(&self, ns: &str, events: impl IntoIterator<Item = Event>) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = map.get(ns) else { return };
        if tx.receiver_count() == 0 {
            map.remove(ns);
            return;
        }
        for ev in events {
            // An error means every receiver is gone; nothing to deliver.
            let _ = tx.send(ev);
        }
    }

    /// How many watchers the namespace has now (a dropped stream stops counting at once).
    pub fn watchers(&self, ns: &str) -> usize {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.get(ns).map_or(0, broadcast::Sender::receiver_count)
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
