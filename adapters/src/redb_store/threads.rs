//! redb's own threads: one writer that commits jobs in groups (one fsync a group), and readers
//! that answer read jobs, so the async side never blocks on the engine.

use super::*;

pub(super) fn writer_loop(
    db: &Database,
    hub: &WatchHub,
    cache: &HotCache,
    spaces: &RwLock<HashMap<String, u32>>,
    rx: mpsc::Receiver<Queued>,
    mut counters: (u64, u32),
    relaxed_for: std::time::Duration,
) {
    // A relaxed commit not yet followed by a durable one: made durable after `relaxed_for`.
    let mut pending = false;
    loop {
        let first = if pending {
            match rx.recv_timeout(relaxed_for) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    pending = !make_durable(db);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // One durable job makes the whole group (and every relaxed commit before it) durable.
        let durable = jobs.iter().any(|(_, d)| *d == crate::Durability::Immediate);
        let jobs = jobs.into_iter().map(|(job, _)| job).collect();
        match run_group(db, jobs, counters, durable) {
            Ok(done) => {
                pending = !durable;
                counters = done.counters;
                // Before anyone hears of the commit, so no read after the ack finds the old value.
                if done.space_changes.iter().any(|(_, n)| n.is_none()) {
                    cache.clear();
                } else {
                    cache.invalidate(done.written.iter().map(Vec::as_slice));
                }
                if !done.space_changes.is_empty() {
                    let mut map = spaces.write().unwrap_or_else(|p| p.into_inner());
                    for (id, num) in done.space_changes {
                        match num {
                            Some(n) => map.insert(id, n),
                            None => map.remove(&id),
                        };
                    }
                }
                // After the commit and before any writer hears back: watchers see every
                // acknowledged write, in commit order.
                for (ns, evs) in done.events {
                    hub.publish(&ns, evs);
                }
                for f in done.finishers {
                    f(Ok(()));
                }
            }
            Err((e, finishers)) => {
                for f in finishers {
                    f(Err(e.clone()));
                }
            }
        }
    }
    // Closing: what was committed relaxed goes to disk before the file is let go.
    if pending {
        make_durable(db);
    }
}

/// An empty durable commit, which makes every relaxed commit before it durable. Whether it did.
fn make_durable(db: &Database) -> bool {
    match db.begin_write() {
        Ok(txn) => txn.commit().is_ok(),
        Err(_) => false,
    }
}

pub(super) struct GroupOk {
    counters: (u64, u32),
    events: Vec<(String, Vec<Event>)>,
    space_changes: Vec<(String, Option<u32>)>,
    written: Vec<Vec<u8>>,
    finishers: Vec<Finish>,
}

pub(super) fn run_group(
    db: &Database,
    jobs: Vec<WriteJob>,
    (version, next_space): (u64, u32),
    durable: bool,
) -> std::result::Result<GroupOk, (StoreError, Vec<Finish>)> {
    let mut finishers = Vec::with_capacity(jobs.len());
    let mut txn: WriteTransaction = match db.begin_write() {
        Ok(t) => t,
        Err(e) => return Err((backend(e), finishers)),
    };
    if !durable {
        // Off the disk until the next durable commit: a crash before it loses this group whole.
        if let Err(e) = txn.set_durability(redb::Durability::None) {
            return Err((backend(e), finishers));
        }
    }
    pub(super) type Staged = (
        (u64, u32),
        Vec<(String, Vec<Event>)>,
        Vec<(String, Option<u32>)>,
        Vec<Vec<u8>>,
    );
    let staged = (|| -> Result<Staged> {
        let mut ctx = WriteCtx {
            data: txn.open_table(DATA).map_err(backend)?,
            spaces: txn.open_table(SPACES).map_err(backend)?,
            version,
            next_space,
            events: Vec::new(),
            space_changes: Vec::new(),
            written: Vec::new(),
        };
        let mut fatal = false;
        for job in jobs {
            if fatal {
                // Dropped unanswered: its caller hears that the write was not carried out.
                continue;
            }
            let (is_fatal, finish) = job(&mut ctx);
            finishers.push(finish);
            fatal = is_fatal;
        }
        if fatal {
            return Err(StoreError::Backend(
                "a batch failed; transaction aborted".into(),
            ));
        }
        if ctx.version != version || ctx.next_space != next_space {
            let mut meta = txn.open_table(META).map_err(backend)?;
            meta.insert(VERSION_KEY, ctx.version).map_err(backend)?;
            meta.insert(NEXT_SPACE_KEY, u64::from(ctx.next_space))
                .map_err(backend)?;
        }
        Ok((
            (ctx.version, ctx.next_space),
            ctx.events,
            ctx.space_changes,
            ctx.written,
        ))
    })();
    match staged {
        Ok((counters, events, space_changes, written)) => match txn.commit() {
            Ok(()) => Ok(GroupOk {
                counters,
                events,
                space_changes,
                written,
                finishers,
            }),
            Err(e) => Err((backend(e), finishers)),
        },
        Err(e) => {
            let _ = txn.abort();
            Err((e, finishers))
        }
    }
}

pub(super) fn reader_loop(db: &Database, rx: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let jobs = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            let Some(first) = next_job(&rx) else { return };
            let mut jobs = vec![first];
            while jobs.len() < GROUP {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        // On failure the jobs are dropped and their callers hear the read was not carried out.
        if let Ok(txn) = db.begin_read() {
            for job in jobs {
                job(&txn);
            }
        }
    }
}

/// The next job: polls for [`READER_SPIN`] before blocking (reading the clock only every 32
/// polls). `None` once the store closed.
pub(super) fn next_job(rx: &mpsc::Receiver<ReadJob>) -> Option<ReadJob> {
    let start = std::time::Instant::now();
    let mut polls = 0u32;
    loop {
        match rx.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
        }
        polls += 1;
        if polls % 32 == 0 && start.elapsed() >= READER_SPIN {
            return rx.recv().ok();
        }
    }
}
