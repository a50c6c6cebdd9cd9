//! Watchers: this handle's own writes at once, everyone else's found by polling and comparing.

use super::*;

/// What a watcher last saw of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) metadata: Option<String>,
    pub(super) expiration: Option<u64>,
}

pub(super) fn apply_event(snapshot: &mut BTreeMap<String, Seen>, ev: &Event) {
    match &ev.kind {
        EventKind::Put {
            metadata,
            expiration,
        } => {
            snapshot.insert(
                ev.key.clone(),
                Seen {
                    metadata: metadata.clone(),
                    expiration: *expiration,
                },
            );
        }
        EventKind::Delete | EventKind::Expire => {
            snapshot.remove(&ev.key);
        }
    }
}

/// The changes between two listings, as events in key order.
pub(super) fn diff(
    inner: &Inner,
    old: &BTreeMap<String, Seen>,
    new: &BTreeMap<String, Seen>,
    now: u64,
) -> Vec<Event> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let kind = match (old.get(key), new.get(key)) {
            (before, Some(seen)) if before != Some(seen) => EventKind::Put {
                metadata: seen.metadata.clone(),
                expiration: seen.expiration,
            },
            (Some(before), None) if before.expiration.is_some_and(|t| t <= now) => {
                EventKind::Expire
            }
            (Some(_), None) => EventKind::Delete,
            _ => continue,
        };
        out.push(Event {
            key: key.clone(),
            version: inner.next_version(),
            kind,
        });
    }
    out
}

/// A watcher: forwards this handle's own writes at once and finds everyone else's by polling.
pub(super) async fn watch_task(
    inner: Arc<Inner>,
    ns: String,
    prefix: String,
    mut snapshot: BTreeMap<String, Seen>,
    mut local: EventStream,
    out: mpsc::Sender<Result<Event>>,
) {
    let forward = |ev: Result<Event>| match out.try_send(ev) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            // The consumer fell behind: say so and end, as the other backends do.
            let _ = out.try_send(Err(StoreError::WatchLagged(1)));
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    };
    let mut tick = tokio::time::interval(inner.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            // The watcher went away: stop polling for it.
            _ = out.closed() => return,
            ev = local.next() => match ev {
                Some(Ok(ev)) => {
                    apply_event(&mut snapshot, &ev);
                    if !forward(Ok(ev)) { return; }
                }
                Some(Err(e)) => { forward(Err(e)); return; }
                None => return,
            },
            _ = tick.tick() => {
                if out.is_closed() { return; }
                // A poll counts only if no write of this handle overlapped it: the listing
                // could hold a write whose event is not yet applied to the snapshot.
                let before = inner.write_state(&ns);
                while let Some(ev) = local.next().now_or_never() {
                    match ev {
                        Some(Ok(ev)) => {
                            apply_event(&mut snapshot, &ev);
                            if !forward(Ok(ev)) { return; }
                        }
                        Some(Err(e)) => { forward(Err(e)); return; }
                        None => return,
                    }
                }
                let listed = inner.list_all(&ns, &prefix).await;
                match listed {
                    Ok(now) => {
                        if before.1 != 0 || inner.write_state(&ns) != before {
                            continue;
                        }
                        for ev in diff(&inner, &snapshot, &now, now_secs()) {
                            if !forward(Ok(ev)) { return; }
                        }
                        snapshot = now;
                    }
                    Err(StoreError::Closed) => return,
                    Err(e @ StoreError::NamespaceNotFound(_)) => { forward(Err(e)); return; }
                    // A failed poll (after its retries) is tried again next tick.
                    Err(_) => {}
                }
            }
        }
    }
}
