//! Change notification across nodes: one LISTEN connection wakes tailers, which read each
//! namespace's change log and publish it to this process's watchers.

use super::*;

/// Holds a LISTEN connection and turns notifications into wake-ups; reconnects when it drops.
pub(super) async fn listen_forever(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.closed.is_closed() {
            return;
        }
        let (pg, channel, wake) = (
            strong.pg.clone(),
            strong.channel.clone(),
            strong.wake.clone(),
        );
        let mut stop = strong.stop.subscribe();
        drop(strong);
        if let Ok((client, mut conn)) = pg.connect(NoTls).await {
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            let sql = format!("LISTEN {channel}");
            let listen = client.batch_execute(&sql);
            // The connection must be polled for LISTEN to complete.
            let mut listen = std::pin::pin!(listen);
            let listened = loop {
                tokio::select! {
                    r = &mut listen => break r.is_ok(),
                    m = messages.next() => if m.is_none() { break false },
                }
            };
            if listened {
                // Tailers re-read after a reconnect: notifications sent meanwhile are lost.
                let _ = wake.send(-1);
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        m = messages.next() => match m {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if let Ok(num) = n.payload().parse::<i64>() {
                                    let _ = wake.send(num);
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Reads a namespace's change log after `last` and publishes it, until its last watcher leaves.
pub(super) async fn tail(inner: Arc<Inner>, ns: String, num: i64, mut last: i64) {
    let mut wake = inner.wake.subscribe();
    let mut stop = inner.stop.subscribe();
    let s = inner.schema.clone();
    let read = format!(
        "SELECT version, key, kind, metadata, expiration FROM {s}.changes
         WHERE ns = $1 AND version > $2 ORDER BY version, idx LIMIT $3"
    );
    let pruned = format!("SELECT pruned_below FROM {s}.namespaces WHERE num = $1");
    loop {
        if finished(&inner, &ns) {
            return;
        }
        // Drain the log; a full page means more may follow at once.
        let mut failed = false;
        loop {
            let rows = async {
                let client = inner.pool.get().await.map_err(pool_err)?;
                let floor: Option<i64> = client
                    .query_opt(&pruned, &[&num])
                    .await
                    .map_err(pg_err)?
                    .map(|r| r.get(0));
                let rows = client
                    .query(&read, &[&num, &last, &TAIL_PAGE])
                    .await
                    .map_err(pg_err)?;
                Ok::<_, StoreError>((floor, rows))
            }
            .await;
            let (floor, rows) = match rows {
                Ok(r) => r,
                Err(_) => {
                    failed = true;
                    break;
                }
            };
            let Some(floor) = floor else {
                // The namespace is gone: its watchers end.
                inner.hub.close(Some(&ns));
                break;
            };
            if last + 1 < floor {
                // Pruned past this tailer: its watchers missed events.
                inner.hub.close(Some(&ns));
                break;
            }
            let n = rows.len();
            let mut group: Vec<Event> = Vec::new();
            for row in rows {
                let version: i64 = row.get(0);
                let key: Vec<u8> = row.get(1);
                let Ok(key) = String::from_utf8(key) else {
                    continue;
                };
                let kind = match row.get::<_, i16>(2) {
                    KIND_PUT => EventKind::Put {
                        metadata: row.get(3),
                        expiration: to_u64(row.get(4)),
                    },
                    KIND_DELETE => EventKind::Delete,
                    _ => EventKind::Expire,
                };
                group.push(Event {
                    key,
                    version: version as u64,
                    kind,
                });
                last = version;
            }
            // A page may end inside a version: it is re-read from that version's start.
            if n as i64 == TAIL_PAGE {
                if let Some(cut) = group.last().map(|e| e.version) {
                    let whole: Vec<Event> =
                        group.iter().filter(|e| e.version < cut).cloned().collect();
                    if !whole.is_empty() {
                        last = cut as i64 - 1;
                        inner.hub.publish(&ns, whole);
                        continue;
                    }
                    // One version larger than a page: deliver it as read.
                }
            }
            inner.hub.publish(&ns, group);
            if (n as i64) < TAIL_PAGE {
                break;
            }
        }
        if finished(&inner, &ns) {
            return;
        }
        let pause = if failed {
            Duration::from_millis(200)
        } else {
            TAIL_FALLBACK
        };
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(pause) => {}
            w = wake.recv() => match w {
                Ok(n) if n == num || n == -1 => {}
                Ok(_) => {
                    // Another namespace's news: drain what else is queued, then re-check.
                    while let Ok(n) = wake.try_recv() {
                        if n == num || n == -1 { break; }
                    }
                }
                Err(_) => {}
            },
        }
    }
}

/// Whether a tailer should end (no watchers left, or the store closed); decided under the
/// tailers lock, so a watcher arriving at that moment either keeps this tailer or starts one.
pub(super) fn finished(inner: &Inner, ns: &str) -> bool {
    let mut tailers = inner.tailers.lock().unwrap_or_else(|p| p.into_inner());
    if inner.hub.watchers(ns) == 0 || inner.closed.is_closed() {
        tailers.remove(ns);
        true
    } else {
        false
    }
}
