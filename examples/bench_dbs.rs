//! A million databases on one node (redb): creation rate, bytes on disk and server memory per
//! database, `_all_dbs` pages, and opening (and writing to) a cold database picked at random
//! among them, at 10k, 100k and 1M databases.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_dbs [-- MAX]   # default 1000000
//! ```

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::Method;
use rand::{Rng, SeedableRng};
use support::{percentile, rss_mib, wait_up, Conn, Server};

/// Connections creating databases at once.
const CREATORS: usize = 32;
/// Samples per latency figure.
const SAMPLES: usize = 200;

fn name(i: usize) -> String {
    format!("user-{i:08}")
}

async fn create(addr: &str, from: usize, to: usize) {
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..CREATORS {
        let (addr, next) = (addr.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&addr).await.expect("a connection");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return;
                }
                let (status, body) = c
                    .call(Method::PUT, &format!("/{}", name(i)), None)
                    .await
                    .expect("PUT /db");
                assert_eq!(status, 201, "PUT /{}: {body:?}", name(i));
            }
        }));
    }
    for t in tasks {
        t.await.expect("a creator");
    }
}

/// p50 and p99 (ms) of `SAMPLES` requests made by `path(random database number)`.
async fn timed(
    addr: &str,
    count: usize,
    rng: &mut rand::rngs::SmallRng,
    method: Method,
    path: impl Fn(usize) -> String,
    expect: u16,
) -> (f64, f64) {
    let mut c = Conn::open(addr).await.expect("a connection");
    let mut ms = Vec::new();
    for _ in 0..SAMPLES {
        let i = rng.random_range(0..count);
        let body = (method == Method::POST).then(|| b"{\"v\":1}".to_vec());
        let t = Instant::now();
        let (status, answer) = c
            .call(method.clone(), &path(i), body)
            .await
            .expect("a request");
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, expect, "{} {answer:?}", path(i));
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 50.0), percentile(&ms, 99.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let max: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let server = Server::start(&["--store", "redb"]);
    wait_up(&server.addr).await;
    let addr = server.addr.clone();
    let (disk0, rss0) = (server.bytes_on_disk(), rss_mib(server.pid()));
    eprintln!("bench_dbs: up to {max} databases on redb, {CREATORS} creators; empty server: {:.1} MiB on disk, {rss0:.1} MiB RSS", disk0 as f64 / 1048576.0);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut rows = Vec::new();
    let mut made = 0;
    for step in [10_000, 100_000, 1_000_000] {
        let step = step.min(max);
        if step <= made {
            continue;
        }
        let t = Instant::now();
        create(&addr, made, step).await;
        let secs = t.elapsed().as_secs_f64();
        let rate = (step - made) as f64 / secs;
        eprintln!("bench_dbs: {step} databases ({rate:.0}/s)");
        made = step;
        let (disk, rss) = (server.bytes_on_disk(), rss_mib(server.pid()));
        let all_dbs = timed(
            &addr,
            made,
            &mut rng,
            Method::GET,
            |i| format!("/_all_dbs?startkey=%22{}%22&limit=100", name(i)),
            200,
        )
        .await;
        // Databases not opened since they were made: loading one reads its counters.
        let cold = timed(
            &addr,
            made,
            &mut rng,
            Method::GET,
            |i| format!("/{}", name(i)),
            200,
        )
        .await;
        let write = timed(
            &addr,
            made,
            &mut rng,
            Method::POST,
            |i| format!("/{}", name(i)),
            201,
        )
        .await;
        rows.push((step, rate, disk, rss, all_dbs, cold, write));
    }
    println!();
    println!(
        "{:>9} {:>10} {:>10} {:>11} {:>10} {:>13} {:>17} {:>17} {:>17}",
        "databases",
        "created/s",
        "disk MiB",
        "bytes/db",
        "RSS MiB",
        "RSS bytes/db",
        "_all_dbs p50/p99",
        "cold GET p50/p99",
        "cold write p50/99"
    );
    for (n, rate, disk, rss, all_dbs, cold, write) in rows {
        println!(
            "{:>9} {:>10.0} {:>10.1} {:>11.0} {:>10.1} {:>13.0} {:>17} {:>17} {:>17}",
            n,
            rate,
            disk as f64 / 1048576.0,
            disk.saturating_sub(disk0) as f64 / n as f64,
            rss,
            (rss - rss0).max(0.0) * 1048576.0 / n as f64,
            format!("{:.2}/{:.2} ms", all_dbs.0, all_dbs.1),
            format!("{:.2}/{:.2} ms", cold.0, cold.1),
            format!("{:.2}/{:.2} ms", write.0, write.1),
        );
    }
    println!("(RSS: the server's resident memory right after creating; redb's page cache is capped at 64 MiB and counts in it. Latencies: {SAMPLES} requests each at random databases, one connection)");
}
