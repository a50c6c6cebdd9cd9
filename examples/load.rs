//! Load generator: K live-feed subscribers (EventSource or long-poll) over D databases while
//! writes arrive at W per second for S seconds; prints write→delivery latency p50/p99/max,
//! deliveries lost, the server's RSS over time and its CPU. One process, a tokio task and an
//! HTTP/1.1 connection per subscriber, so thousands cost little and the figures are the
//! server's, not the client's. The server is the release binary, started as its own process.
//!
//! ```text
//! cargo build --release && cargo run --release --example load -- [OPTIONS]
//!   --subscribers 1000 --dbs 100 --rate 50 --secs 60 --feed eventsource|longpoll
//!   --find-max 50     raise the rate step by step; print the highest with p99 under 50 ms
//!   --store redb      passed to `couchkv serve --store`
//! ```

#[path = "support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Response};
use serde_json::{json, Value};
use support::{cpu_secs, percentile, rss_mib, wait_up, Conn, Server};

#[derive(Parser, Clone)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    #[arg(long, default_value_t = 100)]
    dbs: usize,
    /// Writes per second, spread over the databases in turn.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    #[arg(long, default_value_t = 60.0)]
    secs: f64,
    #[arg(long, default_value = "eventsource")]
    feed: String,
    /// Find the highest rate whose p99 stays under this many ms (runs of `--secs` each).
    #[arg(long)]
    find_max: Option<f64>,
    #[arg(long, default_value = "redb")]
    store: String,
    /// Connections the writes are sent on.
    #[arg(long, default_value_t = 16)]
    writers: usize,
}

/// What one run measured.
struct Run {
    rate: f64,
    /// Writes acknowledged per second of the run (below `rate` when the server falls behind).
    achieved: f64,
    expected: usize,
    delivered: usize,
    latencies: Vec<f64>,
    write_errors: usize,
    feed_errors: usize,
    cpu: f64,
    rss: Vec<f64>,
}

/// Tells the feeds to stop. A watch, not a `Notify`: a subscriber busy with a frame when it is
/// sent still sees it at its next wait.
type Stop = tokio::sync::watch::Receiver<bool>;

async fn stopped(stop: &Stop) {
    let mut stop = stop.clone();
    let _ = stop.wait_for(|s| *s).await;
}

/// When each write was sent, in µs since the run began (0: not sent, or failed).
struct Sent {
    t0: Instant,
    at: Vec<AtomicU64>,
}

impl Sent {
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64 + 1
    }
}

struct Subscriber {
    db: usize,
    seen: HashSet<usize>,
    latencies: Vec<f64>,
    errors: usize,
}

/// Turns each change row's `id` (a write's number) into a delivery.
fn deliver(sub: &mut Subscriber, sent: &Sent, row: &Value) {
    let Some(i) = row["id"].as_str().and_then(|s| s.parse::<usize>().ok()) else {
        return;
    };
    let now = sent.now_us();
    if sub.seen.insert(i) {
        let at = sent.at.get(i).map_or(0, |a| a.load(Ordering::Acquire));
        if at > 0 {
            sub.latencies.push(now.saturating_sub(at) as f64 / 1000.0);
        }
    }
}

/// The feed's connection and its answer, once the server said 200.
async fn open_eventsource(addr: &str, db: &str) -> Option<(Conn, Response<Incoming>)> {
    let mut conn = Conn::open(addr).await.ok()?;
    let path = format!("/{db}/_changes?feed=eventsource&since=0&heartbeat=10000");
    let resp = conn.start(Method::GET, &path, None).await.ok()?;
    (resp.status() == 200).then_some((conn, resp))
}

async fn eventsource(
    addr: String,
    db: String,
    mut sub: Subscriber,
    sent: Arc<Sent>,
    ready: Arc<AtomicUsize>,
    stop: Stop,
) -> Subscriber {
    let opened = open_eventsource(&addr, &db).await;
    ready.fetch_add(1, Ordering::SeqCst);
    // The connection stays alive as long as its feed is read.
    let Some((_conn, resp)) = opened else {
        sub.errors += 1;
        return sub;
    };
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = stopped(&stop) => break,
        };
        let Some(Ok(frame)) = frame else {
            sub.errors += 1;
            break;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        // Events end with a blank line; `data: ` holds the change row.
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            for line in event.split(|b| *b == b'\n') {
                if let Some(json) = line.strip_prefix(b"data: ") {
                    if let Ok(row) = serde_json::from_slice::<Value>(json) {
                        deliver(&mut sub, &sent, &row);
                    }
                }
            }
        }
    }
    sub
}

async fn longpoll(
    addr: String,
    db: String,
    mut sub: Subscriber,
    sent: Arc<Sent>,
    ready: Arc<AtomicUsize>,
    stop: Stop,
) -> Subscriber {
    let mut since = Value::from(0);
    let mut first = true;
    let mut conn = Conn::open(&addr).await.ok();
    loop {
        let Some(c) = conn.as_mut() else {
            sub.errors += 1;
            break;
        };
        let path = format!("/{db}/_changes?feed=longpoll&since={since}&timeout=30000");
        let call = c.call(Method::GET, &path, None);
        if first {
            // The first poll is on its way; since=0 makes a late start lose nothing.
            ready.fetch_add(1, Ordering::SeqCst);
            first = false;
        }
        let answer = tokio::select! {
            a = call => a,
            _ = stopped(&stop) => break,
        };
        match answer {
            Ok((200, body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                for row in v["results"].as_array().into_iter().flatten() {
                    deliver(&mut sub, &sent, row);
                }
                since = v["last_seq"].clone();
            }
            _ => {
                sub.errors += 1;
                conn = Conn::open(&addr).await.ok();
            }
        }
    }
    sub
}

async fn run(args: &Args, server: &Server, round: usize, rate: f64) -> Run {
    let addr = server.addr.clone();
    let names: Vec<String> = (0..args.dbs)
        .map(|d| format!("load{round}-{d:04}"))
        .collect();
    let mut admin = Conn::open(&addr).await.expect("a connection");
    for n in &names {
        let (status, _) = admin
            .call(Method::PUT, &format!("/{n}"), None)
            .await
            .expect("PUT db");
        assert_eq!(status, 201, "PUT /{n}");
    }
    let total = (rate * args.secs).ceil() as usize;
    let sent = Arc::new(Sent {
        t0: Instant::now(),
        at: (0..total).map(|_| AtomicU64::new(0)).collect(),
    });
    let ready = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut subs = Vec::new();
    for k in 0..args.subscribers {
        let db = k % args.dbs;
        let sub = Subscriber {
            db,
            seen: HashSet::new(),
            latencies: Vec::new(),
            errors: 0,
        };
        let (addr, name, sent, ready, stop) = (
            addr.clone(),
            names[db].clone(),
            sent.clone(),
            ready.clone(),
            stop.clone(),
        );
        subs.push(if args.feed == "longpoll" {
            tokio::spawn(longpoll(addr, name, sub, sent, ready, stop))
        } else {
            tokio::spawn(eventsource(addr, name, sub, sent, ready, stop))
        });
    }
    while ready.load(Ordering::SeqCst) < args.subscribers {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Writes: a pacer hands write numbers to the writer connections at the rate.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let write_errors = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..args.writers {
        let (rx, addr, names, sent, errors) = (
            rx.clone(),
            addr.clone(),
            names.clone(),
            sent.clone(),
            write_errors.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await.expect("a writer connection");
            loop {
                // The lock is held only while waiting for the next number.
                let Some(i) = rx.lock().await.recv().await else {
                    break;
                };
                let db = &names[i % names.len()];
                let doc = json!({"_id": i.to_string(), "n": i});
                sent.at[i].store(sent.now_us(), Ordering::Release);
                match conn
                    .call(
                        Method::POST,
                        &format!("/{db}"),
                        Some(doc.to_string().into_bytes()),
                    )
                    .await
                {
                    Ok((201, _)) => {}
                    _ => {
                        sent.at[i].store(0, Ordering::Release);
                        errors.fetch_add(1, Ordering::SeqCst);
                        if let Ok(c) = Conn::open(&addr).await {
                            conn = c;
                        }
                    }
                }
            }
        }));
    }
    let pid = server.pid();
    let cpu0 = cpu_secs(pid);
    let mut rss = vec![rss_mib(pid)];
    let start = Instant::now();
    let mut last_sample = Instant::now();
    for i in 0..total {
        let due = Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let _ = tx.send(i);
        if last_sample.elapsed() >= Duration::from_secs(1) {
            rss.push(rss_mib(pid));
            last_sample = Instant::now();
        }
    }
    drop(tx);
    for w in writers {
        let _ = w.await;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_secs(pid) - cpu0) / wall;
    // Everything sent has had time to arrive: then the feeds stop and count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rss.push(rss_mib(pid));
    let _ = stop_tx.send(true);
    let acknowledged: Vec<bool> = sent
        .at
        .iter()
        .map(|a| a.load(Ordering::Acquire) > 0)
        .collect();
    let mut run = Run {
        rate,
        achieved: acknowledged.iter().filter(|a| **a).count() as f64 / wall,
        expected: 0,
        delivered: 0,
        latencies: Vec::new(),
        write_errors: write_errors.load(Ordering::SeqCst),
        feed_errors: 0,
        cpu,
        rss,
    };

    for s in subs {
        let sub = s.await.expect("a subscriber");
        let mine = (0..total).filter(|i| i % args.dbs == sub.db && acknowledged[*i]);
        let expected: Vec<usize> = mine.collect();
        run.expected += expected.len();
        run.delivered += expected.iter().filter(|i| sub.seen.contains(i)).count();
        run.latencies.extend(sub.latencies);
        run.feed_errors += sub.errors;
    }
    run.latencies.sort_by(f64::total_cmp);
    run
}

fn print_header() {
    println!(
        "{:>11} {:>9} {:>9} {:>10} {:>10} {:>6} {:>8} {:>8} {:>8} {:>7} {:>6} {:>22}",
        "subscribers",
        "writes/s",
        "achieved",
        "expected",
        "delivered",
        "lost",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "CPU",
        "server RSS MiB"
    );
}

fn print_run(args: &Args, r: &Run) {
    let l = &r.latencies;
    let max = l.last().copied().unwrap_or(f64::NAN);
    let rss_max = r.rss.iter().copied().fold(0.0, f64::max);
    println!(
        "{:>11} {:>9.0} {:>9.0} {:>10} {:>10} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>6.2} {:>22}",
        args.subscribers,
        r.rate,
        r.achieved,
        r.expected,
        r.delivered,
        r.expected - r.delivered,
        percentile(l, 50.0),
        percentile(l, 99.0),
        max,
        r.write_errors + r.feed_errors,
        r.cpu,
        format!(
            "{:.1} → {:.1} (max {:.1})",
            r.rss.first().copied().unwrap_or(0.0),
            r.rss.last().copied().unwrap_or(0.0),
            rss_max
        ),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let server = Server::start(&["--store", &args.store]);
    wait_up(&server.addr).await;
    eprintln!(
        "load: {} {} subscribers over {} databases, {} s per run, server on {} ({})",
        args.subscribers, args.feed, args.dbs, args.secs, args.store, server.addr
    );
    let mut round = 0;
    match args.find_max {
        None => {
            let r = run(&args, &server, round, args.rate).await;
            print_header();
            print_run(&args, &r);
            println!(
                "RSS every second: {}",
                r.rss
                    .iter()
                    .map(|m| format!("{m:.1}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        Some(goal) => {
            let mut rate = args.rate;
            let mut best = None;
            print_header();
            loop {
                let r = run(&args, &server, round, rate).await;
                round += 1;
                print_run(&args, &r);
                let p99 = percentile(&r.latencies, 99.0);
                // Past the rate the server keeps up with, writes queue in this client and the
                // figure would no longer be the asked rate's.
                if p99 >= goal
                    || r.delivered < r.expected
                    || r.write_errors > 0
                    || r.achieved < 0.95 * rate
                {
                    break;
                }
                best = Some(rate);
                rate *= 2.0;
            }
            match best {
                Some(b) => println!(
                    "highest rate tried that the server kept up with, p99 under {goal} ms, nothing lost: {b:.0} writes/s"
                ),
                None => println!(
                    "p99 was over {goal} ms at the first rate tried ({:.0} writes/s)",
                    args.rate
                ),
            }
        }
    }
    println!("(CPU: the server's CPU seconds per second of writing; this machine has 2 cores, shared with this client)");
}
